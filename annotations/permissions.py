from portal.accounts.models import Role
from portal.accounts.permissions import RolePermission


class LabelAccess(RolePermission):
    """Annotators/experts/admins write labels; clinicians may read labels of studies they can see."""

    roles = (Role.ANNOTATOR, Role.EXPERT, Role.ADMIN)
    read_roles = (Role.CLINICIAN,)


class CanReadModels(RolePermission):
    roles = (Role.EXPERT, Role.ADMIN)
