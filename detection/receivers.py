"""Scoring finished with a new tamper verdict -> email alert (in a task: SMTP may be slow or down)."""

import logging

from django.db import transaction
from django.dispatch import receiver

from portal.studies.signals import series_scored

log = logging.getLogger(__name__)


@receiver(series_scored, dispatch_uid="detection.alert_on_tamper")
def alert_on_tamper(sender, job, **kwargs) -> None:
    from detection.alerts import is_new_tamper_verdict
    from detection.tasks import tamper_alert_task

    def send() -> None:
        try:
            tamper_alert_task.delay(job.pk)
        except Exception:  # an alert that cannot be queued (or, run eagerly, sent) must not fail the scoring
            log.exception("tamper alert for scoring job %s not sent", job.pk)

    if is_new_tamper_verdict(job):
        transaction.on_commit(send)
