"""Reads with permissions applied in one place."""

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet

from portal.accounts.models import Role
from portal.accounts.services import user_roles
from portal.studies.models import Series, Study, UploadBatch


def visible_studies(user: User) -> QuerySet[Study]:
    """Admins and experts see everything; clinicians their own uploads and studies shared with them;
    annotators the studies assigned to them; insurers only what a claim exposes (not this list).
    Withdrawn studies are nobody's (see withdrawn_studies)."""
    roles = user_roles(user)
    studies = Study.objects.current().select_related("patient")
    if roles & {Role.ADMIN, Role.EXPERT}:
        return studies
    if roles & {Role.CLINICIAN, Role.ANNOTATOR}:
        return studies.filter(Q(uploaded_by=user) | Q(access__user=user)).distinct()
    return studies.none()


def withdrawn_studies(user: User) -> QuerySet[Study]:
    """Only admins see withdrawn studies (to restore them)."""
    if Role.ADMIN not in user_roles(user):
        return Study.objects.none()
    return Study.objects.withdrawn().select_related("patient", "withdrawn_by")


def openable_studies(user: User) -> QuerySet[Study]:
    """What a study page opens: the visible studies and, for an admin, the withdrawn ones."""
    return (visible_studies(user) | withdrawn_studies(user)).select_related("patient", "withdrawn_by")


def study_list(user: User, *, withdrawn: bool = False) -> QuerySet[Study]:
    return with_counts(withdrawn_studies(user) if withdrawn else visible_studies(user))


def with_counts(studies: QuerySet[Study]) -> QuerySet[Study]:
    return studies.annotate(
        num_series=Count("series", distinct=True), num_instances=Count("series__instances", distinct=True)
    )


def visible_series(user: User) -> QuerySet[Series]:
    return Series.objects.filter(study__in=visible_studies(user)).select_related("study")


def can_view_study(user: User, study_uid: str) -> bool:
    return visible_studies(user).filter(study_uid=study_uid).exists()


def visible_batches(user: User) -> QuerySet[UploadBatch]:
    """Upload history: one's own uploads; admins see everyone's."""
    batches = UploadBatch.objects.select_related("uploaded_by")
    return batches if Role.ADMIN in user_roles(user) else batches.filter(uploaded_by=user)
