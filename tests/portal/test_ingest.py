"""File handling without services: geometry, zip safety, streaming order."""

import io
import threading
import zipfile

import numpy as np
import pydicom
import pytest

from portal.studies.ingest import IngestResult, Limits, in_background, iter_ingest, slice_position

LIMITS = Limits(max_file_bytes=10_000_000, max_zip_total_bytes=100_000_000, max_zip_ratio=200)


@pytest.mark.parametrize("iop", [
    [1, 0, 0, 0, 1, 0],  # axial
    [1, 0, 0, 0, 0, -1],  # coronal
    [0, 1, 0, 0, 0, -1],  # sagittal
    [0.866, 0.5, 0, -0.5, 0.866, 0],  # axial, rotated in-plane
    [1, 0, 0, 0, 0.8, -0.6],  # oblique
])
def test_slice_position_is_the_distance_along_the_slice_normal(iop):
    ds = pydicom.Dataset()
    ds.ImageOrientationPatient = iop
    ds.ImagePositionPatient = [12.5, -40.25, 103.0]
    expected = float(np.dot(np.cross(iop[:3], iop[3:]), ds.ImagePositionPatient))
    assert slice_position(ds) == pytest.approx(expected, abs=1e-9)


def test_slice_position_without_orientation_falls_back_to_z():
    ds = pydicom.Dataset()
    ds.ImagePositionPatient = [1, 2, -7.5]
    assert slice_position(ds) == -7.5
    assert slice_position(pydicom.Dataset()) is None


def test_iter_ingest_stages_each_instance_before_reading_the_next_file(ct_files, tmp_path):
    """Storing starts while later files are still being read: each yielded instance is already on disk."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in ct_files[2:4]:
            zf.writestr(f"scan/{path.name}", path.read_bytes())
    files = [(ct_files[0].name, io.BytesIO(ct_files[0].read_bytes()), ct_files[0].stat().st_size),
             ("notes.txt", io.BytesIO(b"not dicom"), 9),
             ("scan.zip", archive, archive.getbuffer().nbytes)]
    result = IngestResult()
    seen = []
    for staged in iter_ingest(files, tmp_path, LIMITS, result):
        assert staged.path.read_bytes() in {p.read_bytes() for p in (ct_files[0], ct_files[2], ct_files[3])}
        seen.append(staged.file)
    assert seen == [ct_files[0].name, f"scan.zip/scan/{ct_files[2].name}", f"scan.zip/scan/{ct_files[3].name}"]
    assert result.files_received == 3 and [e.file for e in result.errors] == ["notes.txt"]
    assert result.instances_staged == 3
    assert set(vars(result)) == {"errors", "files_received", "instances_staged"}  # no instances kept: bounded memory


def test_in_background_keeps_order_and_raises_the_producers_error():
    def numbers():
        yield from range(5)
        raise ValueError("file 5 is broken")

    got = []
    with pytest.raises(ValueError, match="file 5 is broken"):
        for n in in_background(numbers(), ahead=2, name="test-ingest"):
            got.append(n)
    assert got == [0, 1, 2, 3, 4]


def test_in_background_stops_the_producer_when_the_consumer_stops():
    produced, closed = [], threading.Event()

    def numbers():
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    items = in_background(numbers(), ahead=2, name="test-ingest")
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert closed.is_set() and len(produced) <= 6  # two taken, at most `ahead` queued and one more made
    assert not any(t.name == "test-ingest" for t in threading.enumerate())
