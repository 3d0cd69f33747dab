"""Expert relabelling: an expert changes the class of anyone's label, always with a reason.

Built on services.label_update, which versions the change (a LabelRevision with actor, time and reason) and
re-settles the label's queue item; this adds the expert-only rule and the mandatory reason for every relabel.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from annotations import services
from annotations.models import Label
from portal.accounts.models import Role
from portal.accounts.services import has_role


def label_relabel(*, expert: User, label: Label, label_class: str, reason: str) -> Label:
    if not has_role(expert, Role.EXPERT, Role.ADMIN):
        raise PermissionDenied("only experts relabel")
    if not reason.strip():
        raise ValidationError({"reason": "give a reason for the new class"})
    if label.label_class == label_class:
        raise ValidationError({"label_class": f"the label is already {label_class}"})
    return services.label_update(user=expert, label=label, reason=reason.strip(), label_class=label_class)
