from portal.accounts.models import Role
from portal.accounts.permissions import RolePermission


class CanShareStudies(RolePermission):
    roles = (Role.CLINICIAN, Role.ADMIN)


class CanCheckClaims(RolePermission):
    roles = (Role.INSURER, Role.ADMIN)


class CanReadProvenance(RolePermission):
    # Per-study visibility is checked in the view; annotators never see provenance records.
    roles = (Role.CLINICIAN, Role.INSURER, Role.EXPERT, Role.ADMIN)
