"""The provenance ledger: append (sign + chain) and verify.

Payload (canonical JSON, sorted keys) = every LedgerEntry field except entry_hash and signature.
entry_hash = SHA-256(payload); signature = Ed25519(payload) with key `key_id`; prev_hash = previous entry_hash
(GENESIS_HASH for seq 1). seq is dense (1, 2, 3, ...) so a deleted entry leaves a visible gap even when
the attacker re-links the chain, which they cannot do without the private key anyway.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pydicom
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.claims import crypto, imaging
from portal.claims.models import GENESIS_HASH, LedgerEntry
from portal.studies import header

logger = logging.getLogger(__name__)

PAYLOAD_FIELDS = (
    "seq", "recorded_at", "study_uid", "series_uid", "sop_instance_uid", "pixel_sha256", "file_sha256",
    "render_sha256", "pixel_shape", "pixel_dtype", "transfer_syntax_uid", "key_id", "prev_hash",
)


def _value(entry: LedgerEntry, name: str):
    value = getattr(entry, name)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, tuple):
        return list(value)
    return value


def payload(entry: LedgerEntry) -> bytes:
    return crypto.canonical_json({name: _value(entry, name) for name in PAYLOAD_FIELDS})


@dataclass(frozen=True)
class Fingerprint:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    pixel_sha256: str
    file_sha256: str
    render_sha256: str
    pixel_shape: list[int]
    pixel_dtype: str
    transfer_syntax_uid: str


def fingerprint(ds: pydicom.Dataset, file_bytes: bytes) -> Fingerprint:
    meta = getattr(ds, "file_meta", None)
    study_uid, series_uid, sop_uid = (str(header.value(ds, keyword)) for keyword in
                                      ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
    try:
        pixels = imaging.decoded_pixels(ds)
    except Exception as exc:  # no pixel data (SR, SEG without frames...) or an undecodable encoding
        # Still record the file hash: the upload must not fail, and the entry shows the pixels were not hashed.
        logger.warning("no decodable pixels in %s: %s", sop_uid, exc)
        return Fingerprint(
            study_uid=study_uid, series_uid=series_uid, sop_instance_uid=sop_uid, pixel_sha256="",
            file_sha256=imaging.file_hash(file_bytes), render_sha256="", pixel_shape=[], pixel_dtype="",
            transfer_syntax_uid=str(getattr(meta, "TransferSyntaxUID", "") or ""),
        )
    return Fingerprint(
        study_uid=study_uid,
        series_uid=series_uid,
        sop_instance_uid=sop_uid,
        pixel_sha256=imaging.pixel_hash(pixels),
        file_sha256=imaging.file_hash(file_bytes),
        render_sha256=imaging.pixel_hash(imaging.render_lung(ds, pixels)) if pixels.ndim == 2 else "",
        pixel_shape=[int(n) for n in pixels.shape],
        pixel_dtype=pixels.dtype.newbyteorder("<").str,
        transfer_syntax_uid=str(getattr(meta, "TransferSyntaxUID", "") or ""),
    )


def append_many(fps: list[Fingerprint], *, attempts: int = 20) -> list[LedgerEntry]:
    """Sign and chain records in one transaction (one head read, one insert).

    Concurrent writers race on the unique seq/prev_hash; the loser re-reads the head and retries."""
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                last = LedgerEntry.objects.order_by("-seq").only("seq", "entry_hash").first()
                kid, private_key = crypto.active_signing_key()
                seq, prev_hash = (last.seq, last.entry_hash) if last else (0, GENESIS_HASH)
                recorded_at = timezone.now()
                entries = []
                for fp in fps:
                    seq += 1
                    entry = LedgerEntry(seq=seq, prev_hash=prev_hash, recorded_at=recorded_at, key_id=kid,
                                        **fp.__dict__)
                    body = payload(entry)
                    entry.entry_hash = hashlib.sha256(body).hexdigest()
                    entry.signature = private_key.sign(body).hex()
                    prev_hash = entry.entry_hash
                    entries.append(entry)
                return LedgerEntry.objects.bulk_create(entries)
        except IntegrityError:
            logger.info("ledger append raced (attempt %d), retrying", attempt + 1)
    raise RuntimeError("could not append to the provenance ledger after repeated conflicts")


def append(fp: Fingerprint) -> LedgerEntry:
    return append_many([fp])[0]


def record_file(path, *, data: bytes | None = None) -> LedgerEntry:
    return append(file_fingerprint(path, None, data))


def file_fingerprint(path: Path, ds: pydicom.Dataset | None, data: bytes | None) -> Fingerprint:
    """The fingerprint of a stored file; the bytes and a dataset parsed from exactly those bytes are reused
    when the caller still has them."""
    data = data if data is not None else Path(path).read_bytes()
    return fingerprint(ds if ds is not None else pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)), data)


@dataclass
class ChainReport:
    ok: bool
    entries: int
    head: str
    problems: list[dict] = field(default_factory=list)  # [{seq, problem}]

    def as_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "head": self.head, "problems": self.problems}


def verify_entry(entry: LedgerEntry, keys=None) -> list[str]:
    """Problems with one entry on its own: hash mismatch (edited) or bad signature (forged)."""
    problems = []
    body = payload(entry)
    if hashlib.sha256(body).hexdigest() != entry.entry_hash:
        problems.append("entry hash does not match its content (entry edited)")
    keys = crypto.public_keys() if keys is None else keys
    if entry.key_id not in keys:
        problems.append(f"signed with unknown key {entry.key_id}")
    elif not crypto.verify(body, entry.signature, entry.key_id, keys):
        problems.append("signature invalid (entry forged or edited)")
    return problems


def verify_chain(entries=None) -> ChainReport:
    """Walk the whole ledger in seq order: dense seq, prev_hash links, entry hashes and signatures."""
    keys = crypto.public_keys()
    problems: list[dict] = []
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    rows = entries if entries is not None else LedgerEntry.objects.order_by("seq").iterator(chunk_size=2000)
    for entry in rows:
        count += 1
        if entry.seq != expected_seq:
            problems.append({"seq": entry.seq, "problem": f"gap: expected seq {expected_seq} (entries deleted)"})
        if entry.prev_hash != expected_prev:
            problems.append({"seq": entry.seq, "problem": "chain broken: prev_hash does not match previous entry"})
        problems.extend({"seq": entry.seq, "problem": p} for p in verify_entry(entry, keys))
        expected_prev, expected_seq = entry.entry_hash, entry.seq + 1
    return ChainReport(ok=not problems, entries=count, head=expected_prev, problems=problems)


def entries_for_uid(sop_instance_uid: str):
    return LedgerEntry.objects.filter(sop_instance_uid=sop_instance_uid).order_by("seq")


def entry_dict(entry: LedgerEntry, keys=None) -> dict:
    problems = verify_entry(entry, keys)
    return {
        "seq": entry.seq,
        "recorded_at": _value(entry, "recorded_at"),
        "study_uid": entry.study_uid,
        "series_uid": entry.series_uid,
        "sop_instance_uid": entry.sop_instance_uid,
        "pixel_sha256": entry.pixel_sha256,
        "file_sha256": entry.file_sha256,
        "render_sha256": entry.render_sha256,
        "pixel_shape": entry.pixel_shape,
        "pixel_dtype": entry.pixel_dtype,
        "transfer_syntax_uid": entry.transfer_syntax_uid,
        "key_id": entry.key_id,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
        "signature": entry.signature,
        "signature_valid": not problems,
        "problems": problems,
    }
