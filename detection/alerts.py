"""Tamper alerts: when a series' scoring finds tampering (FB/FM) that its previous scores did not, or a
radiograph's copy-move check finds a copy its previous check did not, the study's uploader and the configured
addresses (TAMPER_ALERT_EMAILS) get an email, and another when an expert dismisses every copy alerted on. It
names no patient (email is not a safe channel for health data): the finding, the model and a link to the study,
which asks for a sign-in."""

from django.conf import settings
from django.core.mail import send_mail

from detection.ml.constants import TAMPER_CLASSES
from detection.models import CopyMoveCheck, ScoringJob
from portal.accounts.services import audit
from portal.studies.models import Study
from portal.studies.report import VERDICT_WORDS

NAMES_NO_PATIENT = "This message names no patient."


def is_new_tamper_verdict(job: ScoringJob) -> bool:
    """A tamper verdict the series' previous finished job did not have (a re-score that agrees stays quiet)."""
    if job.verdict not in TAMPER_CLASSES:
        return False
    previous = (ScoringJob.objects.filter(series=job.series_id, status=ScoringJob.Status.DONE)
                .exclude(pk=job.pk).order_by("-finished").first())  # fmt: skip
    return previous is None or previous.verdict not in TAMPER_CLASSES


def recipients(study: Study) -> list[str]:
    uploader = study.uploaded_by
    addresses = [uploader.email] if uploader and uploader.email else []
    return list(dict.fromkeys(addresses + settings.TAMPER_ALERT_EMAILS))


def send_tamper_alert(job_id: int) -> int:
    """Send the alert for a finished job; returns the number of recipients (0: nobody to tell)."""
    job = ScoringJob.objects.select_related("series__study__uploaded_by", "model_version").get(pk=job_id)
    study = job.series.study
    to = recipients(study)
    if not to:
        return 0
    body = "\n".join([
        f"The tamper detector flagged a series: {VERDICT_WORDS[job.verdict]}, probability {job.verdict_score:.0%}.",
        f"Locations at or above the flag threshold: {job.flagged_locations or 0}.",
        f"Model: {job.model_version.name if job.model_version else 'unknown'}.",
        *study_lines(study),
        f"{NAMES_NO_PATIENT} The verdict is the model's, for an expert to review.",
    ])
    send_mail(f"Tampering suspected ({job.verdict}) in a study on the tamper detection portal", body,
              settings.DEFAULT_FROM_EMAIL, to)
    audit(None, "study.tamper_alert", study, job=job.pk, verdict=job.verdict, recipients=to)
    return len(to)


def send_copy_move_alert(check_id: int) -> int:
    """Send the alert for a radiograph series' check that found a copy; returns the number of recipients."""
    check = CopyMoveCheck.objects.select_related("series__study__uploaded_by").get(pk=check_id)
    study = check.series.study
    to = recipients(study)
    if not to:
        return 0
    regions = sum(len(image["regions"]) for image in check.found)
    body = "\n".join([
        f"A copy-move check found the same content at two places of a radiograph: {regions} region(s) in "
        f"{len(check.found)} of the series' {check.images_checked} image(s), one place copied onto the other.",
        *study_lines(study),
        f"{NAMES_NO_PATIENT} The finding is the copy-move check's, for an expert to review.",
    ])
    send_mail("Tampering suspected (copy-move) in a radiograph on the tamper detection portal", body,
              settings.DEFAULT_FROM_EMAIL, to)
    audit(None, "study.copy_move_alert", study, check=check.pk, images=len(check.found), recipients=to)
    return len(to)


def send_copy_move_cleared(study_id: int, reviewer: str) -> int:
    """Tell those a copy-move alert went to that an expert dismissed every copy found in the study since. The
    expert's reason stays in the portal (free text could name the patient)."""
    study = Study.objects.select_related("uploaded_by").get(pk=study_id)
    to = recipients(study)
    if not to:
        return 0
    body = "\n".join([
        f"An expert ({reviewer}) reviewed the copy-move finding of a radiograph study you were alerted to and "
        "dismissed it: no region was copied. The study no longer counts as tampering suspected.",
        *study_lines(study),
        f"{NAMES_NO_PATIENT} The study page gives the expert's reason.",
    ])
    send_mail("Copy-move finding dismissed by an expert on the tamper detection portal", body,
              settings.DEFAULT_FROM_EMAIL, to)
    audit(None, "study.copy_move_cleared", study, reviewer=reviewer, recipients=to)
    return len(to)


def study_lines(study: Study) -> list[str]:
    return [f"Study uploaded {study.created:%Y-%m-%d %H:%M} UTC.", "",
            f"Open the study (sign-in required): {settings.PORTAL_URL}/studies/{study.study_uid}", ""]
