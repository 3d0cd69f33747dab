"""The ingest fast path for pixels must give exactly what pydicom's pixel_array gives (the ledger's hashes
are verified later through pixel_array)."""

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from portal.claims import imaging


def _reread(ds: pydicom.Dataset, syntax) -> pydicom.Dataset:
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _same(ds: pydicom.Dataset) -> np.ndarray:
    fast, reference = imaging.decoded_pixels(ds), pydicom.dcmread(io.BytesIO(_bytes(ds))).pixel_array
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    np.testing.assert_array_equal(fast, reference)
    assert imaging.pixel_hash(fast) == imaging.pixel_hash(reference)
    return fast


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_real_ct_and_lidc_slices_match_pixel_array(ct_files, shared_data):
    for path in [*ct_files[::7], shared_data / "lidc-idri-0002-single-slice" / "ref_scan.dcm"]:
        ds = pydicom.dcmread(path)
        _same(ds)
        assert imaging.render_lung(ds, imaging.decoded_pixels(ds)).tobytes() == imaging.render_lung(
            pydicom.dcmread(path)).tobytes()


@pytest.mark.parametrize("signed", [0, 1])
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_unused_high_bits_are_corrected_as_pydicom_does(ct_files, signed, syntax):
    ds = pydicom.dcmread(ct_files[40])
    raw = np.frombuffer(ds.PixelData, "<u2").copy()
    raw[::3] |= 0xA000  # garbage in the 4 unused bits of a 12-bit image
    raw[1::5] = 0x0F00  # a negative 12-bit value when signed (sign bit 11 set)
    ds.PixelData, ds.PixelRepresentation, ds.BitsStored, ds.HighBit = raw.tobytes(), signed, 12, 11
    pixels = _same(_reread(ds, syntax))
    assert pixels.min() < 0 if signed else pixels.max() < 4096


def test_eight_bit_and_padded_pixel_data(ct_files):
    ds = pydicom.dcmread(ct_files[10])
    eight = (np.frombuffer(ds.PixelData, "<u2") >> 4).astype(np.uint8)
    ds.PixelData = eight.tobytes() + b"\x00\x00"  # trailing padding after the last pixel
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 7, 6, 0
    _same(_reread(ds, ExplicitVRLittleEndian))


def test_other_encodings_go_through_pydicom(ct_files):
    original = pydicom.dcmread(ct_files[20]).pixel_array
    big_endian = pydicom.dcmread(ct_files[20])
    big_endian.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    big_endian.PixelData = original.astype(">u2").tobytes()
    np.testing.assert_array_equal(imaging.decoded_pixels(big_endian), original)  # not read as little-endian
    two_frames = pydicom.dcmread(ct_files[20])
    two_frames.NumberOfFrames, two_frames.PixelData = 2, two_frames.PixelData * 2
    assert imaging.decoded_pixels(two_frames).shape == (2, *original.shape)
    truncated = pydicom.dcmread(ct_files[20])
    truncated.PixelData = truncated.PixelData[:1000]
    with pytest.raises(ValueError):
        imaging.decoded_pixels(truncated)  # pydicom's own error, not a silently short array


def test_heatmap_is_red_only_where_it_reaches_the_flag_threshold():
    grey = np.full((4, 4), 100, np.uint8)
    heat = np.array([[0.0, 0.5], [0.95, 1.0]], np.float32)  # resized to 4 x 4 (nearest at the corners)
    rgb = imaging.heatmap_overlay(grey, heat, threshold=0.9)
    assert tuple(rgb[0, 0]) == (100, 100, 100)  # probability 0: the image unchanged
    assert tuple(rgb[3, 3]) == (255, 0, 0)  # at the threshold: red
    below = rgb[0, 3]  # 0.5: amber, fainter than a flagged cell
    assert below[0] > below[1] > below[2] and below[2] < 100 and below[0] < 255
    unflagged = imaging.heatmap_overlay(grey, heat)[3, 3]  # no threshold: never red
    assert tuple(unflagged) == (193, 146, 40)  # amber (255, 176, 0) at 60 % over grey 100
