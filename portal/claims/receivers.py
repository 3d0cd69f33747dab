"""Signal receivers: the ledger records what the PACS actually accepted."""

import logging

from portal.claims import ledger

logger = logging.getLogger(__name__)
PREPARED_KEY = "claims.fingerprint"


def fingerprint_staged_instances(sender, items=(), **kwargs) -> None:
    # Off the request thread, while the PACS stores the chunk: hashing is most of the ledger's work.
    for item in items:
        item.prepared[PREPARED_KEY] = ledger.file_fingerprint(item.path, item.dataset, item.data)


def record_stored_instances(sender, items=(), user=None, **kwargs) -> None:
    # Runs before the staged files are removed, so item.path holds exactly the bytes the PACS accepted.
    fps = [item.prepared.get(PREPARED_KEY) or ledger.file_fingerprint(item.path, item.dataset, item.data)
           for item in items]
    entries = ledger.append_many(fps) if fps else []
    if entries:
        logger.debug("ledger #%d..#%d for %d instance(s)", entries[0].seq, entries[-1].seq, len(entries))


def check_image_reuse(sender, series=(), **kwargs) -> None:
    """After an upload is stored, whatever its modality (the ledger signed its images): are its studies'
    images another patient's? Queued for the worker, so the check adds only a message to the upload."""
    from portal.celery import delay_after_commit
    from portal.claims.tasks import image_reuse_alert_task

    for study_id in sorted({s.study_id for s in series}):
        delay_after_commit(image_reuse_alert_task, study_id)
