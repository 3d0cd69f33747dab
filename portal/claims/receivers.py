"""Signal receivers: the ledger records what the PACS actually accepted."""

import logging

from portal.claims import ledger

logger = logging.getLogger(__name__)


def record_stored_instances(sender, items=(), user=None, **kwargs) -> None:
    # Runs before the staged files are removed, so item.path holds exactly the bytes the PACS accepted.
    for item in items:
        entry = ledger.record_file(item.path)
        logger.debug("ledger #%d for %s", entry.seq, item.instance.sop_instance_uid)
