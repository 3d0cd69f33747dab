"""Extension points for other apps (provenance ledger, active-learning queues).

instances_staged: sent from a background thread for each chunk of an upload on its way to the PACS.
    kwargs: items (list[ingest.StagedInstance]). Receivers may precompute per-instance work that needs neither
    the database nor the PACS's answer (the ledger's fingerprints) into item.prepared[key]: it runs while the
    request thread validates the next files, and reaches instances_stored as StoredInstance.prepared.
instances_stored: sent once per stored batch, before its staged files are removed.
    kwargs: user (User | None), items (list[StoredInstance])
upload_stored: sent once per upload batch after the PACS confirmed it, outside any transaction (follow-up
    checks that read the whole study, not a chunk). kwargs: batch (UploadBatch), series (list[Series])
series_scored: sent when a scoring job finished successfully.
    kwargs: job (detection.models.ScoringJob)
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from django.dispatch import Signal

from portal.studies.models import Instance


@dataclass(frozen=True)
class StoredInstance:
    instance: Instance
    path: Path  # the exact file bytes the PACS accepted
    dataset: pydicom.Dataset | None = None  # parsed from those bytes at upload, so receivers need not re-parse
    data: bytes | None = None  # those bytes, while the uploader still holds them, so receivers need not re-read
    prepared: Mapping[str, Any] = field(default_factory=dict)  # what instances_staged receivers precomputed


instances_staged = Signal()
instances_stored = Signal()
upload_stored = Signal()
series_scored = Signal()
