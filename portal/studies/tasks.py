from celery import shared_task

from portal.studies import services
from portal.studies.dicomweb import PacsUnavailable


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(PacsUnavailable,),
             retry_backoff=5, retry_backoff_max=300, max_retries=50)
def store_batch_task(self, batch_id: str) -> None:
    services.store_batch(batch_id=batch_id)
