from celery import shared_task

from portal.studies.dicomweb import PacsUnavailable


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(PacsUnavailable,),
             retry_backoff=5, retry_backoff_max=300, max_retries=10)
def build_queue_task(self, job_id: int, strategy: str | None = None, batch_size: int | None = None) -> None:
    from annotations.services import queue_build
    from detection.models import ScoringJob

    job = ScoringJob.objects.filter(pk=job_id, status=ScoringJob.Status.DONE).select_related("series").first()
    if job is not None:  # idempotent: a rebuild retires the previous untouched items
        queue_build(job=job, strategy=strategy, batch_size=batch_size)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(PacsUnavailable,),
             retry_backoff=10, retry_backoff_max=600, max_retries=5)
def retrain_task(self, run_id: int) -> None:
    from detection.promotion import run_retrain

    run_retrain(run_id=run_id)
