from celery import shared_task

from portal.celery import EMAIL_TASK
from portal.studies import services
from portal.studies.dicomweb import PacsUnavailable


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(PacsUnavailable,),
             retry_backoff=5, retry_backoff_max=300, max_retries=50)
def store_batch_task(self, batch_id: str) -> None:
    services.store_batch(batch_id=batch_id)


@shared_task(**EMAIL_TASK)
def withdrawal_email_task(study_id: int, change: str) -> None:
    from portal.studies.withdrawal import send_withdrawal_email

    send_withdrawal_email(study_id, change)
