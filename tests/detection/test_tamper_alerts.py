"""Tamper alerts: a new FB/FM verdict emails the uploader and the configured addresses (no patient named);
a re-score that agrees, a genuine verdict or nobody to tell sends nothing."""

import pytest
from django.core import mail
from django.utils import timezone

from detection.models import ScoringJob
from portal.accounts.models import AuditEvent
from portal.studies.models import Patient, Series, Study
from portal.studies.signals import series_scored

pytestmark = pytest.mark.django_db(transaction=True)  # the alert is sent when the scoring transaction commits


def finish(series: Series, verdict: str, score: float = 0.97) -> ScoringJob:
    """A finished job as run_scoring_job leaves it, and its signal."""
    job = ScoringJob.objects.create(series=series, status=ScoringJob.Status.DONE, verdict=verdict, verdict_score=score,
                                    flagged_locations=3 if verdict in ("FB", "FM") else 0, finished=timezone.now())
    series_scored.send(sender=ScoringJob, job=job)
    return job


@pytest.fixture(autouse=True)
def without_queue_building():
    """These series exist in no PACS: the review-queue receiver of the same signal would fetch them."""
    from annotations.receivers import queue_on_scored

    series_scored.disconnect(dispatch_uid="annotations.queue_on_scored")
    yield
    series_scored.connect(queue_on_scored, dispatch_uid="annotations.queue_on_scored")


@pytest.fixture
def series(user_factory) -> Series:
    uploader = user_factory("clinician")
    uploader.email = "uploader@example.org"
    uploader.save()
    study = Study.objects.create(study_uid="1.2.826.0.1.3680043.10.9", uploaded_by=uploader,
                                 patient=Patient.objects.create(patient_id="SECRET-ID", patient_name="Doe^Jane"))
    return Series.objects.create(series_uid=f"{study.study_uid}.1", study=study)


def test_a_new_tamper_verdict_emails_the_uploader_and_the_security_team(series, settings):
    settings.TAMPER_ALERT_EMAILS = ["security@example.org", "uploader@example.org"]
    settings.PORTAL_URL = "https://portal.example.org"
    finish(series, "TM")
    assert mail.outbox == []  # genuine

    job = finish(series, "FM")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["uploader@example.org", "security@example.org"]  # each address once
    assert "fake tumour injected (FM), probability 97%" in message.body and "flag threshold: 3" in message.body
    assert f"https://portal.example.org/studies/{series.study.study_uid}" in message.body
    assert "SECRET-ID" not in message.body + message.subject and "Doe" not in message.body + message.subject
    event = AuditEvent.objects.get(action="study.tamper_alert")
    assert event.object_id == str(series.study.pk) and event.details["job"] == job.pk

    finish(series, "FB")  # a re-score that still finds tampering: no second alert
    assert len(mail.outbox) == 1
    finish(series, "TB")
    finish(series, "FB")  # tampering found again after a genuine verdict
    assert len(mail.outbox) == 2


def test_nobody_to_tell_sends_nothing(series, settings):
    settings.TAMPER_ALERT_EMAILS = []
    series.study.uploaded_by.email = ""
    series.study.uploaded_by.save()
    finish(series, "FB")
    assert mail.outbox == [] and not AuditEvent.objects.filter(action="study.tamper_alert").exists()


def test_a_mail_server_that_is_down_does_not_fail_the_scoring(series, settings):
    from portal.orthanc import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", free_port(), False  # nobody there
    job = finish(series, "FM")  # the task's retries run at once here (eager) and give up; the scorer goes on
    assert ScoringJob.objects.get(pk=job.pk).status == ScoringJob.Status.DONE
    assert not AuditEvent.objects.filter(action="study.tamper_alert").exists()  # nothing claims it was sent
