"""Named DRF permission classes, one per role family (tested as a matrix in tests/test_roles.py)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from portal.accounts.models import Role
from portal.accounts.services import has_role


class RolePermission(BasePermission):
    roles: tuple[str, ...] = ()
    read_roles: tuple[str, ...] = ()  # extra roles allowed for GET/HEAD/OPTIONS

    def has_permission(self, request, view) -> bool:
        allowed = self.roles + (self.read_roles if request.method in SAFE_METHODS else ())
        return has_role(request.user, *allowed)


class CanUpload(RolePermission):
    roles = (Role.CLINICIAN, Role.ADMIN)


class CanBrowseStudies(RolePermission):
    roles = (Role.CLINICIAN, Role.ANNOTATOR, Role.EXPERT, Role.ADMIN)


class CanRescore(RolePermission):
    roles = (Role.CLINICIAN, Role.EXPERT, Role.ADMIN)


class CanLabel(RolePermission):
    roles = (Role.ANNOTATOR, Role.EXPERT, Role.ADMIN)


class IsExpert(RolePermission):
    roles = (Role.EXPERT, Role.ADMIN)


class IsInsurer(RolePermission):
    roles = (Role.INSURER, Role.ADMIN)


class IsAdmin(RolePermission):
    roles = (Role.ADMIN,)
