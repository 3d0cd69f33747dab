"""Withdrawing a study: taking it out of the portal without deleting anything.

A study uploaded in error (wrong patient, wrong exam) or whose patient withdrew consent is hidden from every
list, the viewer, the queues and retraining. Its images stay in the PACS and its signed ledger entries stay
in the ledger: medical records are kept, and the copy and integrity checks still know them. The uploader or
an admin withdraws it with a reason; only an admin sees withdrawn studies and restores them. An uploader whose
study an admin withdrew or restored is emailed (they no longer see it in the portal)."""

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied, ValidationError

from portal.accounts.models import Role
from portal.accounts.services import audit, has_role
from portal.studies.models import Study

REASON_MAX_CHARS = 1000


class AlreadyInState(Exception):
    """Withdrawing a withdrawn study, or restoring one that is not withdrawn."""


def can_withdraw(user: User, study: Study) -> bool:
    return has_role(user, Role.ADMIN) or (study.uploaded_by_id is not None and study.uploaded_by_id == user.pk)


def withdraw_study(*, actor: User, study: Study, reason: str) -> Study:
    if not can_withdraw(actor, study):
        raise PermissionDenied("only the study's uploader and admins withdraw it")
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": ["say why the study is withdrawn (it is kept in the audit log)"]})
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationError({"reason": [f"at most {REASON_MAX_CHARS} characters"]})
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.withdrawn_at is not None:
            raise AlreadyInState(f"withdrawn already, on {study.withdrawn_at:%Y-%m-%d %H:%M} UTC")
        study.withdrawn_at, study.withdrawn_by, study.withdrawn_reason = timezone.now(), actor, reason
        study.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawn_reason"])
        audit(actor, "study.withdraw", study, reason=reason)
        _tell_uploader(actor, study, "withdrawn")
    return study


def restore_study(*, actor: User, study: Study) -> Study:
    if not has_role(actor, Role.ADMIN):
        raise PermissionDenied("only admins restore a withdrawn study")
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.withdrawn_at is None:
            raise AlreadyInState("the study is not withdrawn")
        audit(actor, "study.restore", study, withdrawn_reason=study.withdrawn_reason,
              withdrawn_by=study.withdrawn_by.username if study.withdrawn_by else None)
        study.withdrawn_at, study.withdrawn_by, study.withdrawn_reason = None, None, ""
        study.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawn_reason"])
        _tell_uploader(actor, study, "restored")
    return study


def _tell_uploader(actor: User, study: Study, change: str) -> None:
    if study.uploaded_by_id is None or study.uploaded_by_id == actor.pk or not study.uploaded_by.email:
        return
    from portal.celery import delay_after_commit
    from portal.studies.tasks import withdrawal_email_task

    delay_after_commit(withdrawal_email_task, study.pk, change)


def send_withdrawal_email(study_id: int, change: str) -> None:
    """Tell the uploader that an admin withdrew (with the reason) or restored their study. Names no patient: the
    study's upload time and UID only."""
    study = Study.objects.select_related("uploaded_by", "withdrawn_by").get(pk=study_id)
    lines = [f"The study you uploaded on {study.created:%Y-%m-%d %H:%M} UTC (study UID {study.study_uid}) "
             f"was {change} by an admin of the tamper detection portal."]
    if change == "withdrawn":
        lines += [f"Reason given: {study.withdrawn_reason}", "",
                  "It no longer appears in the portal; nothing was deleted (its images stay in the image archive), "
                  "and an admin can restore it."]
    else:
        lines += ["", f"It is back in the portal: {settings.PORTAL_URL}/studies/{study.study_uid} (sign-in required)."]
    send_mail(f"Your study was {change} on the tamper detection portal", "\n".join(lines),
              settings.DEFAULT_FROM_EMAIL, [study.uploaded_by.email])
    audit(None, "study.withdrawal_email", study, change=change, recipients=[study.uploaded_by.email])


def withdrawn_notice(study: Study) -> str:
    """Why an upload into this study is refused."""
    return (f"study {study.study_uid} was withdrawn on {study.withdrawn_at:%Y-%m-%d}; "
            "an admin must restore it before images are added to it")
