"""Scoring finished with a new tamper verdict -> email alert (in a task: SMTP may be slow or down); an upload
stored -> copy-move checks of its projection radiographs."""

from django.dispatch import receiver

from portal.celery import delay_after_commit
from portal.studies.signals import series_scored, upload_stored


@receiver(series_scored, dispatch_uid="detection.alert_on_tamper")
def alert_on_tamper(sender, job, **kwargs) -> None:
    from detection.alerts import is_new_tamper_verdict
    from detection.tasks import tamper_alert_task

    if is_new_tamper_verdict(job):  # an alert that cannot be sent must not fail the scoring
        delay_after_commit(tamper_alert_task, job.pk)


@receiver(upload_stored, dispatch_uid="detection.copy_move_check")
def check_radiographs(sender, series=(), **kwargs) -> None:
    """X-ray and other projection series, which the CT detector does not read, are checked for copied regions."""
    from detection.radiographs import enqueue_copy_move_check

    for s in series:
        enqueue_copy_move_check(s)
