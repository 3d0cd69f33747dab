"""Extension points for other apps (provenance ledger, active-learning queues).

instances_stored: sent once per stored batch, before its staged files are removed.
    kwargs: user (User | None), items (list[StoredInstance])
series_scored: sent when a scoring job finished successfully.
    kwargs: job (detection.models.ScoringJob)
"""

from dataclasses import dataclass
from pathlib import Path

import pydicom
from django.dispatch import Signal

from portal.studies.models import Instance


@dataclass(frozen=True)
class StoredInstance:
    instance: Instance
    path: Path  # the exact file bytes the PACS accepted
    dataset: pydicom.Dataset | None = None  # parsed from those bytes at upload, so receivers need not re-parse
    data: bytes | None = None  # those bytes, while the uploader still holds them, so receivers need not re-read


instances_stored = Signal()
series_scored = Signal()
