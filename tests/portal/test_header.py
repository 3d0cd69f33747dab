"""Header values decoded from raw elements equal what pydicom gives, for every attribute the ingest path reads."""

import copy

import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from portal.studies import header

KEYWORDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Rows", "Columns",
            "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel", "NumberOfFrames",
            "PhotometricInterpretation", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
            "PixelSpacing", "RescaleSlope", "RescaleIntercept", "Modality", "SeriesNumber", "ImageType",
            "PatientName", "StudyDate", "WindowCenter"]


def _plain(v):
    if isinstance(v, pydicom.multival.MultiValue | list):
        return [_plain(x) for x in v]
    return float(v) if isinstance(v, int | float) else (None if v is None else str(v))


def _check(ds_bytes_source) -> None:
    fast, reference = ds_bytes_source(), ds_bytes_source()
    for keyword in KEYWORDS:
        assert _plain(header.value(fast, keyword)) == _plain(reference.get(keyword)), keyword


def test_raw_values_equal_pydicoms_on_real_slices(ct_files, shared_data):
    for path in [*ct_files[::9], shared_data / "lidc-idri-0002-single-slice" / "ref_scan.dcm"]:
        _check(lambda path=path: pydicom.dcmread(path))


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_other_encodings_and_awkward_values(ct_files, tmp_path, syntax):
    ds = pydicom.dcmread(ct_files[5])
    ds.InstanceNumber = ""  # empty IS
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]  # multi-valued CS
    ds.SeriesNumber = " 7 "
    ds.PixelSpacing = ["0.7", "7e-1"]
    if syntax == ExplicitVRBigEndian:
        del ds.PixelData  # pydicom will not byte-swap pixels for us; the header is what matters here
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "x.dcm"
    pydicom.dcmwrite(path, ds, implicit_vr=syntax == ImplicitVRLittleEndian,
                     little_endian=syntax != ExplicitVRBigEndian, force_encoding=True)
    _check(lambda: pydicom.dcmread(path))


def test_converted_elements_and_missing_ones_go_through_pydicom(ct_files):
    ds = pydicom.dcmread(ct_files[0])
    ds.Rows = 256  # a converted (set) element
    assert header.value(ds, "Rows") == 256
    assert header.value(copy.deepcopy(ds), "NumberOfFrames", 1) == 1
    with pytest.raises(KeyError):
        header.value(ds, "NoSuchKeyword")
