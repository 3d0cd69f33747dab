from celery import shared_task
from django.conf import settings

from detection import services
from portal.celery import EMAIL_TASK
from portal.studies.dicomweb import PacsUnavailable


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(PacsUnavailable,),
             retry_backoff=5, retry_backoff_max=300, max_retries=20)
def score_series_task(self, job_id: int) -> None:
    queue = (self.request.delivery_info or {}).get("routing_key")
    services.run_scoring_job(job_id=job_id, from_bulk_queue=queue == settings.CELERY_BULK_QUEUE)


@shared_task(**EMAIL_TASK)
def tamper_alert_task(job_id: int) -> None:
    from detection.alerts import send_tamper_alert

    send_tamper_alert(job_id)


@shared_task(**EMAIL_TASK)
def copy_move_alert_task(check_id: int) -> None:
    from detection.alerts import send_copy_move_alert

    send_copy_move_alert(check_id)


@shared_task(**EMAIL_TASK)
def copy_move_cleared_task(study_id: int, reviewer: str) -> None:
    from detection.alerts import send_copy_move_cleared

    send_copy_move_cleared(study_id, reviewer)


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(PacsUnavailable,), retry_backoff=5,
             retry_backoff_max=300, max_retries=20)
def copy_move_check_task(check_id: int) -> None:
    from detection.radiographs import run_copy_move_check

    run_copy_move_check(check_id=check_id)
