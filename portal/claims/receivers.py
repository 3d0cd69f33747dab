"""Signal receivers: the ledger records what the PACS actually accepted."""

import logging

from portal.claims import ledger

logger = logging.getLogger(__name__)


def record_stored_instances(sender, items=(), user=None, **kwargs) -> None:
    # Runs before the staged files are removed, so item.path holds exactly the bytes the PACS accepted.
    entries = ledger.record_files([(item.path, item.dataset, item.data) for item in items])
    if entries:
        logger.debug("ledger #%d..#%d for %d instance(s)", entries[0].seq, entries[-1].seq, len(entries))
