from celery import shared_task

from portal.celery import EMAIL_TASK
from portal.claims import services
from portal.claims.models import ClaimImage


# Idempotent: re-running the analysis overwrites the result with the same (deterministic) one. DoesNotExist is
# retried because a caller inside a transaction may enqueue before its commit is visible to the worker.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, autoretry_for=(ClaimImage.DoesNotExist, OSError),
             retry_backoff=2, retry_backoff_max=120, max_retries=10)
def analyse_claim_image_task(self, image_id: int) -> None:
    services.analyse_image(image=ClaimImage.objects.select_related("claim").get(pk=image_id))


@shared_task(**EMAIL_TASK)
def image_reuse_alert_task(study_id: int) -> None:
    from portal.claims.copies import send_reuse_alert

    send_reuse_alert(study_id)
