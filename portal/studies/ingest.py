"""Turn uploaded files (DICOM files or zips of them) into validated DICOM instances staged on disk.

Pure file handling: no database, no PACS. Every rejected file gets a reason a person can act on.
"""

import io
import queue
import threading
import zipfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from portal.studies import header

REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
IGNORED_MEMBERS = ("__MACOSX/", ".DS_Store", "Thumbs.db")
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_zip_total_bytes: int
    max_zip_ratio: int
    # Decoded pixel bytes of one instance: RLE compresses a blank 16-bit image 64:1, JPEG 2000 far more, so
    # the file size limit alone lets a small file decode to tens of GB in the web process.
    max_decoded_pixel_bytes: int = 2 * 1024**3


@dataclass
class FileError:
    file: str
    reason: str


@dataclass
class StagedInstance:
    file: str
    path: Path
    dataset: pydicom.Dataset
    data: bytes | None = None  # the file bytes while they are in memory anyway (saves re-reading for STOW)
    prepared: dict[str, Any] = field(default_factory=dict)  # filled by signals.instances_staged receivers

    @property
    def sop_uid(self) -> str:
        return header.value(self.dataset, "SOPInstanceUID")

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size


@dataclass
class IngestResult:
    """What an ingest saw: errors and counts, not the instances (so memory stays bounded by the consumer)."""

    errors: list[FileError] = field(default_factory=list)
    files_received: int = 0
    instances_staged: int = 0


def _is_zip(name: str, head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") or name.lower().endswith(".zip")


def _unsafe_member_path(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def iter_zip_members(
    name: str, stream: BinaryIO, limits: Limits, errors: list[FileError]
) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) for the files of a zip, folders flattened; refuse traversal and bombs."""
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        errors.append(FileError(name, f"not a readable zip archive: {exc}"))
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        declared_total = sum(m.file_size for m in members)
        if declared_total > limits.max_zip_total_bytes:
            errors.append(FileError(name, f"zip expands to {declared_total} bytes, over the limit of "
                                          f"{limits.max_zip_total_bytes}; split the upload"))
            return
        for member in members:
            label = f"{name}/{member.filename}"
            if any(part in member.filename for part in IGNORED_MEMBERS):
                continue
            if _unsafe_member_path(member.filename):
                errors.append(FileError(label, "unsafe path in zip (absolute or '..'); member skipped"))
                continue
            if member.file_size > limits.max_file_bytes:
                errors.append(FileError(label, f"file is {member.file_size} bytes, over the limit of "
                                               f"{limits.max_file_bytes}"))
                continue
            if member.compress_size and member.file_size / member.compress_size > limits.max_zip_ratio:
                errors.append(FileError(label, "compression ratio is suspiciously high (zip bomb?); member skipped"))
                continue
            with archive.open(member) as handle:
                # Read one byte past the declared size: a lying header must not expand without bound.
                data = handle.read(member.file_size + 1)
            if len(data) > member.file_size:
                errors.append(FileError(label, "member is larger than its header declares; skipped"))
                continue
            yield label, data


def _decoded_pixel_bytes(ds: pydicom.Dataset) -> int:
    frames = int(header.value(ds, "NumberOfFrames", 1) or 1)
    samples = int(header.value(ds, "SamplesPerPixel", 1))
    rows, columns, bits = (header.value(ds, keyword) for keyword in ("Rows", "Columns", "BitsAllocated"))
    return int(rows) * int(columns) * samples * frames * int(bits) // 8


def validate(label: str, data: bytes, limits: Limits) -> tuple[pydicom.Dataset | None, str | None]:
    """Parse and check one file. Returns (dataset, None) or (None, reason)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError:
        return None, "not a DICOM file (no 'DICM' marker after the 128-byte preamble)"
    except Exception as exc:  # pydicom raises many types for damaged files
        return None, f"corrupt DICOM: {type(exc).__name__}: {exc}"
    if ds.file_meta.get("MediaStorageSOPClassUID") == DICOMDIR_SOP_CLASS:
        return None, "DICOMDIR index file, not an image instance; skipped"
    missing = [tag for tag in REQUIRED_UIDS if not header.value(ds, tag)]
    if missing:
        return None, f"DICOM file lacks required attribute(s): {', '.join(missing)}"
    if "PixelData" in ds:
        try:
            decoded = _decoded_pixel_bytes(ds)
        except (AttributeError, TypeError, ValueError) as exc:
            return None, f"image attributes are inconsistent: {exc}"
        compressed = ds.file_meta.TransferSyntaxUID.is_compressed
        actual = len(ds.PixelData or b"")
        if not compressed and actual < decoded:
            return None, f"truncated DICOM: pixel data has {actual} of {decoded} bytes"
        cap = limits.max_decoded_pixel_bytes
        if decoded > cap:
            return None, (f"the image decodes to {decoded / 2**20:,.0f} MiB of pixels ({header.value(ds, 'Columns')}x"
                          f"{header.value(ds, 'Rows')}, {header.value(ds, 'NumberOfFrames', 1) or 1} frame(s)), more "
                          f"than the {cap / 2**20:,.0f} MiB an instance may have")
        if compressed:
            try:
                np.asarray(ds.pixel_array)  # compressed: prove the frames decode
            except Exception as exc:
                return None, f"compressed pixel data cannot be decoded: {exc}"
    return ds, None


def iter_ingest(files: Iterable[tuple[str, BinaryIO, int]], staging_dir: Path, limits: Limits,
                result: IngestResult) -> Iterator[StagedInstance]:
    """files: (name, stream, size). Yields each valid instance as soon as it is written to
    staging_dir/<SOPInstanceUID>.dcm (byte-exact), so storing can start while later files are still being
    validated. Errors and counts accumulate in `result`."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}

    def accept(label: str, data: bytes) -> StagedInstance | None:
        ds, reason = validate(label, data, limits)
        if ds is None:
            result.errors.append(FileError(label, reason or "invalid"))
            return None
        sop_uid = str(header.value(ds, "SOPInstanceUID"))
        if sop_uid in seen:
            result.errors.append(FileError(label, f"duplicate SOP Instance UID (same as {seen[sop_uid]}); skipped"))
            return None
        seen[sop_uid] = label
        path = staging_dir / f"{sop_uid}.dcm"
        path.write_bytes(data)
        staged = StagedInstance(label, path, ds, data)
        result.instances_staged += 1
        return staged

    for name, stream, size in files:
        result.files_received += 1
        if size > limits.max_file_bytes and not name.lower().endswith(".zip"):
            result.errors.append(FileError(name, f"file is {size} bytes, over the limit of {limits.max_file_bytes}"))
            continue
        head = stream.read(4)
        stream.seek(0)
        members = iter_zip_members(name, stream, limits, result.errors) if _is_zip(name, head) else [
            (name, stream.read())]
        for label, data in members:
            if staged := accept(label, data):
                yield staged


@dataclass
class _Raised:
    error: BaseException


_DONE = object()


def in_background(items: Iterator[T], *, ahead: int, name: str) -> Generator[T, None, None]:
    """Yield what `items` yields, computed in a thread up to `ahead` items in advance, so that validating
    files (pydicom parsing) overlaps with storing and indexing in the consuming thread. An exception in
    `items` is raised here; closing this generator stops the thread at its next item."""
    handoff: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                handoff.put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            handoff.put(_Raised(exc))
        finally:
            if isinstance(items, Generator):
                items.close()
            handoff.put(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        while item is not _DONE:  # unblock the producer if the consumer stopped early
            item = handoff.get()
        thread.join()


def slice_position(ds: pydicom.Dataset) -> float | None:
    """Position along the slice normal, so sorting works for any orientation (not just axial)."""
    ipp = header.value(ds, "ImagePositionPatient")
    if not isinstance(ipp, list | MultiValue) or len(ipp) != 3:
        return None
    iop = header.value(ds, "ImageOrientationPatient")
    if not isinstance(iop, list | MultiValue) or len(iop) != 6:
        return float(ipp[2])
    # Plain floats: numpy's per-call overhead on 3-vectors costs more than the arithmetic, once per instance.
    rx, ry, rz, cx, cy, cz = (float(v) for v in iop)
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    return sum(n * float(p) for n, p in zip(normal, ipp, strict=True))
