"""Experts review what the copy-move check found in radiographs (the TB/TM/FB/FM labels are CT classes): each
image with a copy is confirmed, or dismissed with a reason. The latest review of an image counts; a dismissed
image leaves the study's verdict (detection.radiographs.update_study_copy_move)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from annotations.models import CopyMoveReview
from detection.models import CopyMoveCheck
from detection.radiographs import latest_done_checks, update_study_copy_move
from portal.accounts.models import AuditEvent, Role
from portal.accounts.services import audit, has_role
from portal.celery import delay_after_commit
from portal.studies.models import Series, Study
from portal.studies.selectors import visible_studies

REVIEWERS = (Role.EXPERT, Role.ADMIN)
AUDIT_ACTIONS = {CopyMoveReview.Decision.CONFIRMED: "study.copy_move_confirm",
                 CopyMoveReview.Decision.DISMISSED: "study.copy_move_dismiss"}


def review_copy_move(*, actor: User, series: Series, sop_instance_uid: str, decision: str,
                     reason: str = "") -> CopyMoveReview:
    """Record an expert's decision on an image the series' latest finished check found a copy in."""
    if not has_role(actor, *REVIEWERS):
        raise PermissionDenied("only experts and admins review copy-move findings")
    if decision not in CopyMoveReview.Decision.values:
        raise ValidationError({"decision": [f"one of {', '.join(CopyMoveReview.Decision.values)}"]})
    reason = reason.strip()
    if decision == CopyMoveReview.Decision.DISMISSED and not reason:
        raise ValidationError({"reason": ["say why it is no copy (it is kept with the review and in the audit log)"]})
    check = series.copy_move_checks.filter(status=CopyMoveCheck.Status.DONE).first()  # a re-check may be waiting
    if check is None:
        raise ValidationError({"sop_instance_uid": ["the series has no finished copy-move check"]})
    if not any(image["sop_instance_uid"] == sop_instance_uid for image in check.found):
        raise ValidationError({"sop_instance_uid": ["the series' latest copy-move check found no copy in this image"]})
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=series.study_id)
        review = CopyMoveReview.objects.create(series=series, sop_instance_uid=sop_instance_uid, decision=decision,
                                               reason=reason, reviewer=actor)
        audit(actor, AUDIT_ACTIONS[decision], study, series_uid=series.series_uid,
              sop_instance_uid=sop_instance_uid, reason=reason)
        left = update_study_copy_move(study)  # `study` still holds the count from before
        if study.copy_move_images and not left and _alerted(study):
            from detection.tasks import copy_move_cleared_task

            delay_after_commit(copy_move_cleared_task, study.pk, actor.username)  # the alert's all-clear
    return review


def _alerted(study: Study) -> bool:
    return AuditEvent.objects.filter(action="study.copy_move_alert", object_type="Study",
                                     object_id=str(study.pk)).exists()


@dataclass
class Finding:
    """One image a copy was found in, with its latest review (None: waiting for one)."""

    study: Study
    check: CopyMoveCheck
    image: dict  # the check's found entry: slice_index, sop_instance_uid, regions
    review: CopyMoveReview | None


def findings(user: User, *, reviewed: bool | None = None) -> list[Finding]:
    """The images with a copy in the latest finished checks of the studies the user sees, oldest check first
    (the longest waiting); ``reviewed`` False keeps those without a review, True those with one."""
    studies = visible_studies(user).filter(copy_move_images__isnull=False).exclude(
        copy_move_images=0, copy_move_dismissed=0)
    checks = sorted((check for check in latest_done_checks(studies) if check.found),
                    key=lambda check: (check.finished, check.pk))
    found = [Finding(check.series.study, check, image, review)
             for check, image, review in CopyMoveReview.of_found(checks)]
    return found if reviewed is None else [f for f in found if (f.review is not None) == reviewed]
