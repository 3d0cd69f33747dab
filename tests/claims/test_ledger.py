"""Provenance ledger without Orthanc: datasets straight from the shared CT files."""

import hashlib
import io

import numpy as np
import pydicom
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from pydicom.uid import RLELossless

from portal.claims import crypto, imaging, ledger
from portal.claims.models import AppendOnlyError, LedgerEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_entries(ct_files):
    return [ledger.record_file(p) for p in ct_files[10:13]]


def test_untouched_instance_verifies_exactly(ct_files, three_entries):
    entry = three_entries[0]
    ds = pydicom.dcmread(ct_files[10])
    assert entry.sop_instance_uid == ds.SOPInstanceUID
    assert entry.pixel_sha256 == imaging.pixel_hash(ds.pixel_array)
    assert entry.file_sha256 == hashlib.sha256(ct_files[10].read_bytes()).hexdigest()
    assert ledger.verify_entry(entry) == []
    report = ledger.verify_chain()
    assert report.ok and report.entries == 3 and report.head == three_entries[-1].entry_hash
    assert [e.prev_hash for e in three_entries[1:]] == [e.entry_hash for e in three_entries[:-1]]


def test_pixel_hash_is_independent_of_transfer_syntax(ct_files):
    ds = pydicom.dcmread(ct_files[20])
    plain = imaging.pixel_hash(ds.pixel_array)
    ds.compress(RLELossless)
    buf = io.BytesIO()
    ds.save_as(buf)
    reread = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    assert reread.file_meta.TransferSyntaxUID == RLELossless
    assert imaging.pixel_hash(reread.pixel_array) == plain
    assert hashlib.sha256(buf.getvalue()).hexdigest() != hashlib.sha256(ct_files[20].read_bytes()).hexdigest()


def test_one_pixel_edit_changes_the_pixel_hash_and_is_localised(ct_files):
    ds = pydicom.dcmread(ct_files[30])
    edited = ds.pixel_array.copy()
    edited[301, 187] += 1
    assert imaging.pixel_hash(edited) != imaging.pixel_hash(ds.pixel_array)
    result = imaging.diff(edited, ds.pixel_array)
    assert result.changed_pixels == 1
    assert result.boxes == [{"x": 187, "y": 301, "w": 1, "h": 1, "pixels": 1}]


def test_edited_entry_is_detected(three_entries):
    LedgerEntry.objects.filter(seq=2).update(pixel_sha256="0" * 64)  # what a DB-level attacker can do
    report = ledger.verify_chain()
    assert not report.ok
    assert {p["seq"] for p in report.problems} == {2}
    assert any("edited" in p["problem"] for p in report.problems)


def test_forged_entry_signed_with_another_key_is_detected(three_entries):
    # The attacker rewrites entry 2 consistently (new hash) and signs it with their own key under our key id.
    forged = LedgerEntry.objects.get(seq=2)
    forged.pixel_sha256 = "ab" * 32
    body = ledger.payload(forged)
    new_hash = hashlib.sha256(body).hexdigest()
    LedgerEntry.objects.filter(seq=2).update(
        pixel_sha256=forged.pixel_sha256, entry_hash=new_hash, signature=Ed25519PrivateKey.generate().sign(body).hex()
    )
    report = ledger.verify_chain()
    problems = {(p["seq"], p["problem"]) for p in report.problems}
    assert (2, "signature invalid (entry forged or edited)") in problems
    assert (3, "chain broken: prev_hash does not match previous entry") in problems


def test_deleted_entry_breaks_the_chain(three_entries):
    LedgerEntry.objects.filter(seq=2).delete()  # QuerySet.delete bypasses the model's guard, as raw SQL would
    report = ledger.verify_chain()
    assert not report.ok
    assert any("gap" in p["problem"] for p in report.problems)
    assert any("chain broken" in p["problem"] for p in report.problems)


def test_orm_refuses_to_edit_or_delete_entries(three_entries):
    entry = three_entries[0]
    entry.pixel_sha256 = "0" * 64
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_rotation_keeps_old_entries_verifiable(ct_files, settings, client):
    old = ledger.record_file(ct_files[0])
    call_command("rotate_signing_key")
    new = ledger.record_file(ct_files[1])
    assert old.key_id != new.key_id
    assert not (settings.PORTAL_SIGNING_KEY_DIR / f"{old.key_id}.key").exists()  # old private key destroyed
    assert ledger.verify_chain().ok
    body = client.get("/api/provenance/keys").json()
    assert body["active"] == new.key_id
    assert {k["key_id"] for k in body["keys"]} == {old.key_id, new.key_id}
    # An outsider can verify an entry with nothing but the published PEM.
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    pem = next(k["public_key_pem"] for k in body["keys"] if k["key_id"] == old.key_id)
    load_pem_public_key(pem.encode()).verify(bytes.fromhex(old.signature), ledger.payload(old))


def test_unknown_key_id_fails_verification(three_entries):
    LedgerEntry.objects.filter(seq=1).update(key_id="feedfacecafebeef")
    report = ledger.verify_chain()
    assert any("unknown key" in p["problem"] for p in report.problems)


def test_lung_render_is_the_documented_window(ct_files):
    ds = pydicom.dcmread(ct_files[50])
    render = imaging.render_lung(ds)
    assert render.dtype == np.uint8 and render.shape == (512, 512)
    hu = float(ds.pixel_array[0, 0]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert render[0, 0] == round((hu + 1350) / 1500 * 255)
    assert render.max() == 255  # bone saturates the lung window


def test_crypto_verify_rejects_wrong_payload():
    kid, sig = crypto.sign(b"payload")
    assert crypto.verify(b"payload", sig, kid)
    assert not crypto.verify(b"payload!", sig, kid)


def test_instance_without_pixels_is_recorded_by_file_hash(ct_files, tmp_path):
    ds = pydicom.dcmread(ct_files[5])
    del ds.PixelData
    path = tmp_path / "no-pixels.dcm"
    ds.save_as(path)
    entry = ledger.record_file(path)
    assert entry.pixel_sha256 == "" and entry.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ledger.verify_chain().ok


def test_signal_receiver_records_stored_instances(ct_files):
    from portal.studies.models import Instance, Patient, Series, Study
    from portal.studies.signals import StoredInstance, instances_stored

    ds = pydicom.dcmread(ct_files[7])
    study = Study.objects.create(study_uid=ds.StudyInstanceUID, patient=Patient.objects.create(patient_id="p1"))
    series = Series.objects.create(series_uid=ds.SeriesInstanceUID, study=study)
    instance = Instance.objects.create(sop_instance_uid=ds.SOPInstanceUID, series=series)
    instances_stored.send(sender=None, user=None, items=[StoredInstance(instance, ct_files[7])])
    entry = LedgerEntry.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert entry.pixel_sha256 == imaging.pixel_hash(ds.pixel_array) and ledger.verify_chain().ok


def test_fingerprint_prepared_while_staged_is_what_gets_signed(ct_files, tmp_path):
    """The hashes computed off the request thread (instances_staged) are the ones signed at confirmation:
    the staged file is gone by then, so the entry can only come from the prepared fingerprint."""
    from portal.studies.ingest import StagedInstance
    from portal.studies.models import Instance, Patient, Series, Study
    from portal.studies.signals import StoredInstance, instances_staged, instances_stored

    data = ct_files[5].read_bytes()
    staged_path = tmp_path / "staged.dcm"
    staged_path.write_bytes(data)
    ds = pydicom.dcmread(staged_path)
    item = StagedInstance("slice.dcm", staged_path, ds, data)
    instances_staged.send(sender=None, items=[item])
    staged_path.unlink()
    study = Study.objects.create(study_uid=ds.StudyInstanceUID, patient=Patient.objects.create(patient_id="p1"))
    series = Series.objects.create(series_uid=ds.SeriesInstanceUID, study=study)
    instance = Instance.objects.create(sop_instance_uid=ds.SOPInstanceUID, series=series)
    instances_stored.send(sender=None, user=None,
                          items=[StoredInstance(instance, staged_path, prepared=item.prepared)])
    entry = LedgerEntry.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert entry.file_sha256 == hashlib.sha256(data).hexdigest()
    assert entry.pixel_sha256 == imaging.pixel_hash(ds.pixel_array) and ledger.verify_chain().ok


@pytest.mark.parametrize("dtype", ["<i2", "<u2", ">i2", "|u1"])
@pytest.mark.parametrize(("slope", "intercept"), [(1.0, -1024.0), (0.5, 3.7), (2.5, -3000.0)])
def test_lookup_table_render_equals_the_formula(dtype, slope, intercept):
    """Signed render hashes must not depend on which code path rendered the slice."""
    info = np.iinfo(np.dtype(dtype))
    values = np.random.default_rng(7).integers(info.min, info.max + 1, size=(64, 48)).astype(dtype)
    fast = imaging._lung_lut(values.dtype.str, slope, intercept)[values.view(values.dtype.str.replace("i", "u"))]
    assert np.array_equal(fast, imaging._lung_window(values, slope, intercept))


def test_render_of_a_real_slice_equals_the_formula(ct_files):
    ds = pydicom.dcmread(ct_files[40])
    expected = imaging._lung_window(ds.pixel_array, float(ds.RescaleSlope), float(ds.RescaleIntercept))
    assert np.array_equal(imaging.render_lung(ds), expected)
