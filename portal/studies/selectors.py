"""Reads with permissions applied in one place."""

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet

from portal.accounts.models import Role
from portal.accounts.services import user_roles
from portal.studies.models import Series, Study


def visible_studies(user: User) -> QuerySet[Study]:
    """Admins and experts see everything; clinicians their own uploads and studies shared with them;
    annotators the studies assigned to them; insurers only what a claim exposes (not this list)."""
    roles = user_roles(user)
    studies = Study.objects.select_related("patient")
    if roles & {Role.ADMIN, Role.EXPERT}:
        return studies
    if roles & {Role.CLINICIAN, Role.ANNOTATOR}:
        return studies.filter(Q(uploaded_by=user) | Q(access__user=user)).distinct()
    return studies.none()


def study_list(user: User) -> QuerySet[Study]:
    return visible_studies(user).annotate(
        num_series=Count("series", distinct=True), num_instances=Count("series__instances", distinct=True)
    )


def visible_series(user: User) -> QuerySet[Series]:
    return Series.objects.filter(study__in=visible_studies(user)).select_related("study")


def can_view_study(user: User, study_uid: str) -> bool:
    return visible_studies(user).filter(study_uid=study_uid).exists()
