"""AES-256-GCM archives: exact round trip, wrong key / tampering refused, ciphertext statistics."""

import os

import numpy as np
import pydicom
import pytest

from portal.claims import crypto, imaging


@pytest.fixture
def slice_image(ct_files) -> np.ndarray:
    return imaging.render_lung(pydicom.dcmread(ct_files[49]))


def test_round_trip_restores_bytes_exactly(ct_files):
    data = ct_files[3].read_bytes()
    sealed = crypto.seal(data, {"kind": "study", "share_id": "x"})
    header, plain = crypto.open_sealed(sealed.blob, crypto.decode_key(sealed.key_b64))
    assert plain == data and header == {"kind": "study", "share_id": "x"}
    assert sealed.key_sha256 == crypto.key_fingerprint(crypto.decode_key(sealed.key_b64))
    assert data[:1000] not in sealed.blob


def test_wrong_key_is_rejected(ct_files):
    sealed = crypto.seal(ct_files[3].read_bytes(), {"k": 1})
    with pytest.raises(crypto.DecryptionError, match="wrong key"):
        crypto.open_sealed(sealed.blob, os.urandom(32))


@pytest.mark.parametrize("where", ["ciphertext", "tag", "header", "nonce"])
def test_tampered_archive_is_rejected(where):
    sealed = crypto.seal(b"pixel data " * 1000, {"kind": "study"})
    blob = bytearray(sealed.blob)
    header, aad, nonce, ciphertext = crypto.read_header(bytes(blob))
    offset = {"ciphertext": len(aad) + 12 + 100, "tag": len(blob) - 1, "nonce": len(aad) + 3,
              "header": len(aad) - 3}[where]
    blob[offset] ^= 0x01
    with pytest.raises(crypto.DecryptionError):
        crypto.open_sealed(bytes(blob), crypto.decode_key(sealed.key_b64))


def test_each_seal_uses_a_fresh_nonce():
    key = os.urandom(32)
    a, b = crypto.seal(b"same", {}, key=key), crypto.seal(b"same", {}, key=key)
    assert a.blob != b.blob
    assert crypto.read_header(a.blob)[2] != crypto.read_header(b.blob)[2]


def test_bad_key_text_is_a_clear_error():
    with pytest.raises(crypto.DecryptionError, match="32 bytes"):
        crypto.decode_key("c2hvcnQ")


def test_ciphertext_has_no_adjacent_pixel_correlation(slice_image):
    """The image-encryption papers' test: adjacent pixels of a CT slice are strongly correlated; the same
    positions in the ciphertext (viewed as an image of the same size) are not."""
    sealed = crypto.seal(slice_image.tobytes(), {"shape": list(slice_image.shape)})
    _, aad, nonce, ciphertext = crypto.read_header(sealed.blob)
    cipher_image = np.frombuffer(ciphertext[:slice_image.size], dtype=np.uint8).reshape(slice_image.shape)
    figures = {}
    for direction in ("horizontal", "vertical", "diagonal"):
        plain = imaging.adjacent_correlation(slice_image, direction)
        cipher = imaging.adjacent_correlation(cipher_image, direction)
        figures[direction] = (plain, cipher)
        assert plain > 0.9, figures
        assert abs(cipher) < 0.01, figures
    # Histogram of the ciphertext is flat (chi-square with 255 dof; 99.9% quantile ~ 330).
    counts = np.bincount(cipher_image.ravel(), minlength=256)
    expected = cipher_image.size / 256
    assert ((counts - expected) ** 2 / expected).sum() < 330
    _, plain_bytes = crypto.open_sealed(sealed.blob, crypto.decode_key(sealed.key_b64))
    assert np.array_equal(np.frombuffer(plain_bytes, np.uint8).reshape(slice_image.shape), slice_image)
    print("adjacent-pixel correlation (plain, cipher):", figures)
