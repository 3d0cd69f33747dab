"""Reads with the claims permission rules applied in one place."""

from django.contrib.auth.models import User
from django.db.models import QuerySet

from portal.accounts.models import Role
from portal.accounts.services import has_role
from portal.claims.models import Claim, EncryptedShare
from portal.studies.models import Study, StudyAccess
from portal.studies.selectors import visible_studies


def visible_claims(user: User) -> QuerySet[Claim]:
    """Admins see every claim; insurers only their own; nobody else any."""
    claims = Claim.objects.select_related("insurer").prefetch_related("studies")
    if has_role(user, Role.ADMIN):
        return claims
    if has_role(user, Role.INSURER):
        return claims.filter(insurer=user)
    return claims.none()


def studies_shared_with_insurer(user: User) -> QuerySet[Study]:
    return Study.objects.current().filter(access__user=user, access__kind=StudyAccess.Kind.SHARE).select_related(
        "patient")


def insurer_accounts() -> QuerySet[User]:
    """Active insurer accounts, for the clinician's share picker."""
    return User.objects.filter(is_active=True, groups__name=Role.INSURER).order_by("username")


def insurers_with_access(study: Study) -> QuerySet[StudyAccess]:
    return (StudyAccess.objects.filter(study=study, kind=StudyAccess.Kind.SHARE, user__groups__name=Role.INSURER)
            .select_related("study", "user", "granted_by").order_by("created"))


def readable_studies(user: User) -> QuerySet[Study]:
    """Studies whose pixels this user may see: the studies app's rule plus insurer shares."""
    if has_role(user, Role.INSURER) and not has_role(user, Role.ADMIN, Role.CLINICIAN, Role.ANNOTATOR):
        return studies_shared_with_insurer(user)
    return visible_studies(user)


def can_read_study_uid(user: User, study_uid: str) -> bool:
    if readable_studies(user).filter(study_uid=study_uid).exists():
        return True
    return has_role(user, Role.INSURER) and studies_shared_with_insurer(user).filter(study_uid=study_uid).exists()


def visible_shares(user: User) -> QuerySet[EncryptedShare]:
    if has_role(user, Role.ADMIN):
        return EncryptedShare.objects.all()
    return EncryptedShare.objects.filter(created_by=user)
