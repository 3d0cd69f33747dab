"""Scoring finished -> rebuild that series' active-learning queue (in a task: it may refetch the series)."""

from django.db import transaction
from django.dispatch import receiver

from portal.studies.signals import series_scored


@receiver(series_scored, dispatch_uid="annotations.queue_on_scored")
def queue_on_scored(sender, job, **kwargs) -> None:
    from annotations.tasks import build_queue_task

    transaction.on_commit(lambda: build_queue_task.delay(job.pk))
