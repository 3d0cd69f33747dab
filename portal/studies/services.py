"""Writes for studies: upload (stage -> STOW -> index -> score), re-sync from the PACS, sharing."""

import io
import logging
import shutil
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

import pydicom
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache, caches
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet
from pydicom.multival import MultiValue

from portal.accounts.models import AuditEvent
from portal.accounts.services import audit
from portal.studies import dicomweb, header
from portal.studies.ingest import (
    FileError,
    IngestResult,
    Limits,
    StagedInstance,
    in_background,
    iter_ingest,
    slice_position,
)
from portal.studies.models import Instance, Patient, Series, Study, StudyAccess, UploadBatch
from portal.studies.signals import StoredInstance, instances_staged, instances_stored, upload_stored
from portal.studies.withdrawal import withdrawn_notice

log = logging.getLogger(__name__)
STOW_QUEUED_PER_CONNECTION = 2  # STOW requests sent or waiting per connection: bounds the bytes held in memory
VALIDATED_AHEAD = 16  # instances validated and staged ahead of the STOW pipeline (about one chunk)


@dataclass
class UploadOutcome:
    batch: UploadBatch
    stored: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    jobs: list = field(default_factory=list)
    not_scored: list[dict] = field(default_factory=list)  # stored series the detector does not score, and why
    pacs_down: str = ""


def upload_limits() -> Limits:
    return Limits(
        max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES,
        max_zip_total_bytes=settings.UPLOAD_MAX_ZIP_UNCOMPRESSED_BYTES,
        max_zip_ratio=settings.UPLOAD_MAX_ZIP_RATIO,
        max_decoded_pixel_bytes=settings.UPLOAD_MAX_DECODED_PIXEL_BYTES,
    )


def study_upload(*, user: User, files: Iterable[UploadedFile], body_errors: list[dict] | None = None) -> UploadOutcome:
    """Validate and stage every file and store it in the PACS as it goes.

    If the PACS is down the batch stays staged on disk and a retrying task stores it later. `body_errors`:
    problems of the request body itself, filled in while `files` is consumed (upload_stream.StreamedUpload)."""
    batch = UploadBatch.objects.create(uploaded_by=user)
    ingested = IngestResult()
    staged = in_background(
        iter_ingest(((f.name, f, f.size) for f in files), batch.staging_dir, upload_limits(), ingested),
        ahead=VALIDATED_AHEAD, name="upload-ingest")
    outcome = UploadOutcome(batch=batch)
    try:
        outcome.stored, refused, outcome.jobs = store_staged(batch, staged)
    except dicomweb.PacsUnavailable as exc:
        deque(staged, maxlen=0)  # stage the rest too: the retry stores everything that is left
        refused, outcome.pacs_down = [], str(exc)
        batch.last_error = str(exc)
        from portal.studies.tasks import store_batch_task

        transaction.on_commit(lambda: store_batch_task.apply_async((str(batch.id),), countdown=5))
    finally:
        staged.close()  # after an unexpected error: stop the ingest thread
    outcome.errors = [e.__dict__ for e in ingested.errors] + refused + (body_errors or [])
    outcome.not_scored = _not_scored(outcome.stored)
    batch.files_received = ingested.files_received
    batch.instances_staged = ingested.instances_staged
    batch.errors = outcome.errors
    batch.save()
    audit(user, "study.upload", batch, files=ingested.files_received, staged=ingested.instances_staged,
          errors=len(outcome.errors))
    return outcome


def _not_scored(stored: list[dict]) -> list[dict]:
    from detection.radiographs import is_projection
    from detection.services import not_scored_reason

    series = Series.objects.filter(series_uid__in={row["series_uid"] for row in stored}).select_related("study")
    return [{"study_uid": s.study.study_uid, "series_uid": s.series_uid, "reason": reason,
             "copy_move_check": is_projection(s)} for s in series if (reason := not_scored_reason(s))]


def _load_staged(batch: UploadBatch) -> Iterator[StagedInstance]:
    # Read each file once: its bytes go to the PACS and to the instances_staged receivers (ledger hashes).
    for path in sorted(batch.staging_dir.glob("*.dcm")):
        data = path.read_bytes()
        yield StagedInstance(path.name, path, pydicom.dcmread(io.BytesIO(data)), data)


def store_batch(*, batch_id: str) -> UploadBatch:
    """Retry path: store whatever a batch still has staged. Raises PacsUnavailable (the task retries)."""
    batch = UploadBatch.objects.get(pk=batch_id)
    if batch.status != UploadBatch.Status.STAGED:
        return batch  # already done: retries and redeliveries are harmless
    _, refused, _ = store_staged(batch, _load_staged(batch))
    batch.errors = list(batch.errors) + refused
    batch.save(update_fields=["errors"])
    return batch


def _chunks(items: Iterable[StagedInstance], size: int) -> Iterator[list[StagedInstance]]:
    chunk: list[StagedInstance] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stow(chunk: list[StagedInstance]) -> tuple[set[str], dict[str, str]]:
    try:
        return dicomweb.store({item.sop_uid: item.data if item.data is not None
                               else item.path.read_bytes() for item in chunk})
    except dicomweb.PacsRejected as exc:
        return set(), {item.sop_uid: str(exc) for item in chunk}


def _without_withdrawn(chunk: list[StagedInstance], refused: list[dict]) -> list[StagedInstance]:
    """Files of a withdrawn study are refused, not stored: nobody but admins would see them there."""
    uids = {header.value(item.dataset, "StudyInstanceUID") for item in chunk}
    withdrawn = {s.study_uid: s for s in Study.objects.withdrawn().filter(study_uid__in=uids)}
    if not withdrawn:
        return chunk
    kept = []
    for item in chunk:
        if study := withdrawn.get(header.value(item.dataset, "StudyInstanceUID")):
            refused.append(FileError(item.file, withdrawn_notice(study)).__dict__)
        else:
            kept.append(item)
    return kept


def _send_robust(signal, **kwargs) -> None:
    """Send a signal whose receivers do optional work: one that fails is logged and never fails the upload."""
    for receiver, error in signal.send_robust(sender=UploadBatch, **kwargs):
        if isinstance(error, Exception):
            log.warning("receiver %r failed: %s", receiver, error)


def _prepare(chunk: list[StagedInstance]) -> None:
    _send_robust(instances_staged, items=chunk)  # only a head start: instances_stored's receiver computes it again


def store_staged(batch: UploadBatch, staged: Iterable[StagedInstance]) -> tuple[list[dict], list[dict], list]:
    """STOW the staged instances chunk by chunk; index and sign each chunk the PACS confirmed; unstage it.

    Pipelined: while the PACS stores chunks (DICOMWEB_STOW_PARALLEL requests at a time, from background
    threads waiting on the network) and another thread precomputes what receivers need (instances_staged:
    the ledger's hashes, which release the GIL), this thread takes the next chunks as they are validated
    (by the ingest thread of a live upload) and indexes and signs each chunk once the PACS has confirmed it.
    Returns (stored, refused, jobs); raises PacsUnavailable with the unconfirmed files still staged."""
    batch.attempts += 1
    batch.save(update_fields=["attempts"])
    stored_rows: list[dict] = []
    refused: list[dict] = []
    touched: dict[int, Series] = {}
    series_by_uid: dict[str, Series] = {}

    def confirm(chunk: list[StagedInstance], stow: Future, prepared: Future) -> None:
        ok, failed = stow.result()
        prepared.result()
        confirmed = [item for item in chunk if item.sop_uid in ok]
        with transaction.atomic():
            instances = index_datasets([item.dataset for item in confirmed], uploaded_by=batch.uploaded_by,
                                       sizes={item.sop_uid: item.size for item in confirmed},
                                       series_by_uid=series_by_uid)
            for instance in instances:
                touched[instance.series_id] = instance.series
            instances_stored.send(
                sender=UploadBatch, user=batch.uploaded_by,
                items=[StoredInstance(inst, item.path, item.dataset, item.data, item.prepared)
                       for inst, item in zip(instances, confirmed, strict=True)],
            )
            batch.instances_stored += len(confirmed)
            batch.save(update_fields=["instances_stored"])
        for item in chunk:
            item.data, item.prepared = None, {}  # stored: free the memory
            uid = item.sop_uid
            if uid in failed:
                refused.append(FileError(item.file, failed[uid]).__dict__)
            else:
                item.path.unlink(missing_ok=True)
        stored_rows.extend(
            {"file": item.file, "sop_instance_uid": item.sop_uid,
             "study_uid": header.value(item.dataset, "StudyInstanceUID"),
             "series_uid": header.value(item.dataset, "SeriesInstanceUID")}
            for item in confirmed
        )

    try:
        with (ThreadPoolExecutor(settings.DICOMWEB_STOW_PARALLEL, thread_name_prefix="stow") as pacs,
              ThreadPoolExecutor(1, thread_name_prefix="prepare") as helper):
            in_flight: deque[tuple[list[StagedInstance], Future, Future]] = deque()
            max_in_flight = STOW_QUEUED_PER_CONNECTION * settings.DICOMWEB_STOW_PARALLEL
            for chunk in _chunks(staged, settings.DICOMWEB_STOW_BATCH):
                if not (chunk := _without_withdrawn(chunk, refused)):
                    continue
                # Both queued behind the earlier chunks.
                in_flight.append((chunk, pacs.submit(_stow, chunk), helper.submit(_prepare, chunk)))
                # Index and sign what the PACS has confirmed so far; wait only to bound what is in flight.
                while in_flight and (in_flight[0][1].done() and in_flight[0][2].done()
                                     or len(in_flight) > max_in_flight):
                    confirm(*in_flight.popleft())
            while in_flight:
                confirm(*in_flight.popleft())
    finally:
        # Whatever was confirmed before a failure is indexed: renumber and score it either way.
        for series in touched.values():
            renumber_slices(series)
        if touched:  # for the uploader's history (a retry adds to what the first attempt stored)
            batch.study_uids = sorted(set(batch.study_uids) | {s.study.study_uid for s in touched.values()})
            batch.save(update_fields=["study_uids"])
    batch.status = UploadBatch.Status.STORED if batch.instances_stored else UploadBatch.Status.FAILED
    batch.last_error = ""
    batch.save(update_fields=["status", "last_error"])
    if not refused:
        shutil.rmtree(batch.staging_dir, ignore_errors=True)
    if touched:
        _send_robust(upload_stored, batch=batch, series=list(touched.values()))
    from detection.services import enqueue_scoring

    jobs = [job for series in touched.values() if (job := enqueue_scoring(series=series))]
    return stored_rows, refused, jobs


def _dicom_date(value: str | None) -> date | None:
    try:
        return datetime.strptime(str(value), "%Y%m%d").date() if value else None
    except ValueError:
        return None


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


INDEXED_FIELDS = ["series", "sop_class_uid", "instance_number", "z", "rows", "columns", "pixel_spacing",
                  "transfer_syntax_uid", "file_size"]


def index_datasets(datasets: list[pydicom.Dataset], *, uploaded_by: User | None,
                   sizes: dict[str, int] | None = None,
                   series_by_uid: dict[str, Series] | None = None) -> list[Instance]:
    """Create or update Patient/Study/Series/Instance rows from DICOM headers (one upsert for the instances).

    Returns the Instance rows as written (primary key set by the upsert, series attached; other columns are
    not read back). `series_by_uid`: series already resolved by this caller, e.g. by earlier chunks of one
    upload, so their parents are looked up once."""
    series_by_uid = {} if series_by_uid is None else series_by_uid
    rows = []
    for ds in datasets:
        series_uid, sop_uid = header.value(ds, "SeriesInstanceUID"), header.value(ds, "SOPInstanceUID")
        series = series_by_uid.get(series_uid)
        if series is None:
            series = series_by_uid[series_uid] = _index_series(ds, uploaded_by=uploaded_by)
        spacing = header.value(ds, "PixelSpacing")
        rows.append(Instance(
            sop_instance_uid=sop_uid,
            series=series,
            sop_class_uid=str(header.value(ds, "SOPClassUID")),
            instance_number=_int(header.value(ds, "InstanceNumber")),
            z=slice_position(ds),
            rows=_int(header.value(ds, "Rows")),
            columns=_int(header.value(ds, "Columns")),
            pixel_spacing=[float(v) for v in spacing] if isinstance(spacing, list | MultiValue) else None,
            transfer_syntax_uid=str(ds.file_meta.get("TransferSyntaxUID", "")),
            file_size=(sizes or {}).get(sop_uid),
        ))
    if not rows:
        return []
    # A QIDO re-sync knows no file sizes: keep the ones recorded at upload.
    update_fields = INDEXED_FIELDS if sizes is not None else [f for f in INDEXED_FIELDS if f != "file_size"]
    return Instance.objects.bulk_create(rows, update_conflicts=True, unique_fields=["sop_instance_uid"],
                                        update_fields=update_fields)


def _index_series(ds: pydicom.Dataset, *, uploaded_by: User | None) -> Series:
    patient, _ = Patient.objects.get_or_create(
        patient_id=str(ds.get("PatientID", "") or "UNKNOWN"),
        defaults={"patient_name": str(ds.get("PatientName", "")), "sex": str(ds.get("PatientSex", "")),
                  "birth_date": str(ds.get("PatientBirthDate", ""))},
    )
    study, created = Study.objects.get_or_create(
        study_uid=ds.StudyInstanceUID,
        defaults={"patient": patient, "study_date": _dicom_date(ds.get("StudyDate")),
                  "description": str(ds.get("StudyDescription", "")),
                  "accession_number": str(ds.get("AccessionNumber", "")), "uploaded_by": uploaded_by},
    )
    if not created and uploaded_by is not None and study.uploaded_by_id != uploaded_by.pk:
        # A second clinician uploading the same study gets to see it.
        StudyAccess.objects.get_or_create(study=study, user=uploaded_by, defaults={"granted_by": uploaded_by})
    series, _ = Series.objects.get_or_create(
        series_uid=ds.SeriesInstanceUID,
        defaults={"study": study, "modality": str(ds.get("Modality", "")),
                  "description": str(ds.get("SeriesDescription", "")),
                  "series_number": _int(ds.get("SeriesNumber"))},
    )
    return series


def renumber_slices(series: Series) -> None:
    """slice_index = rank along the slice normal (then InstanceNumber), never file-name order."""
    instances = list(series.instances.all())
    instances.sort(key=lambda i: (i.z is None, i.z if i.z is not None else 0.0, i.instance_number or 0,
                                  i.sop_instance_uid))
    for index, instance in enumerate(instances):
        instance.slice_index = index
    Instance.objects.bulk_update(instances, ["slice_index"])


def _first(value: dict, tag: str):
    values = value.get(tag, {}).get("Value") or [None]
    return values[0]


def sync_from_pacs(*, actor: User | None = None) -> dict[str, int]:
    """QIDO-RS is the source of truth: rebuild the index from what the PACS holds."""
    counts = {"studies": 0, "series": 0, "instances": 0}
    offset = 0
    while True:
        studies = dicomweb.search_studies(offset=offset, limit=100)
        if not studies:
            break
        offset += len(studies)
        for study_json in studies:
            study_uid = _first(study_json, "0020000D")
            counts["studies"] += 1
            for series_json in dicomweb.search_series(study_uid):
                series_uid = _first(series_json, "0020000E")
                counts["series"] += 1
                datasets = []
                for inst_json in dicomweb.search_instances(study_uid, series_uid):
                    ds = pydicom.Dataset.from_json({**study_json, **series_json, **inst_json})
                    ds.file_meta = pydicom.dataset.FileMetaDataset()
                    datasets.append(ds)
                with transaction.atomic():
                    instances = index_datasets(datasets, uploaded_by=None)
                    if instances:
                        renumber_slices(instances[0].series)
                counts["instances"] += len(datasets)
    audit(actor, "pacs.sync", object_type="PACS", object_id=settings.DICOMWEB_URL, **counts)
    return counts


# One access record per user, study and hour: the viewer makes hundreds of requests for one look at a study.
STUDY_VIEW_WINDOW_S = 3600


def record_study_view(*, user: User, study_uid: str, via: str) -> None:
    """Audit that the user opened the study (its page, a series in the viewer, or its images over DICOMweb).
    The window is checked in this process's memory, then in the shared cache (another process may have
    recorded it), so a proxied frame request costs neither a query nor, mostly, a network round trip."""
    key = f"study-view:{user.pk}:{study_uid}"
    if not caches["local"].add(key, True, STUDY_VIEW_WINDOW_S) or not cache.add(key, True, STUDY_VIEW_WINDOW_S):
        return
    if study := Study.objects.filter(study_uid=study_uid).first():
        audit(user, "study.view", study, via=via)


def study_access_log(study: Study) -> QuerySet[AuditEvent]:
    """Who opened the study, who was given or lost access to it, and which claims referenced it, newest first."""
    return AuditEvent.objects.filter(
        Q(object_type="Study", object_id=str(study.pk))
        | Q(action="claim.reference_study", details__study_uid=study.study_uid)
    ).select_related("actor")


def study_share(*, actor: User, study: Study, user: User, kind: str = StudyAccess.Kind.SHARE) -> StudyAccess:
    access, _ = StudyAccess.objects.get_or_create(study=study, user=user, defaults={"kind": kind, "granted_by": actor})
    audit(actor, f"study.{kind}", study, user=user.username)
    return access


def staged_batches() -> list[UploadBatch]:
    return list(UploadBatch.objects.filter(status=UploadBatch.Status.STAGED))
