"""A slice whose PACS copy no longer has the signed pixels is refused (409), and the refusal says why: changed
inside the PACS, or the same SOP Instance UID uploaded again through the portal with other pixels."""

import io

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from portal.claims.models import LedgerEntry
from tests.conftest import upload_paths

pytestmark = pytest.mark.django_db


def _tampered(path) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.copy()
    pixels[200:212, 200:212] = pixels.max()  # a crude injected nodule
    ds.PixelData = pixels.tobytes()
    return ds


def _delete_from_pacs(orthanc, sop_uid: str) -> None:
    found = requests.post(f"{orthanc.url}/tools/lookup", data=sop_uid, timeout=10).json()
    for hit in found:
        requests.delete(f"{orthanc.url}/instances/{hit['ID']}", timeout=10).raise_for_status()


@pytest.fixture
def restore_original(orthanc, ct_slice_paths):
    """The PACS is shared by the whole session: put the untouched file back, byte for byte, after the test."""
    yield
    _delete_from_pacs(orthanc, pydicom.dcmread(ct_slice_paths[0], stop_before_pixels=True).SOPInstanceUID)
    requests.post(f"{orthanc.url}/instances", data=ct_slice_paths[0].read_bytes(), timeout=30).raise_for_status()


def test_a_pacs_copy_changed_outside_the_portal_is_refused_with_the_reason(shared_study, orthanc, ct_slice_paths,
                                                                          api_client, restore_original):  # fmt: skip
    ds = _tampered(ct_slice_paths[0])
    uid = ds.SOPInstanceUID
    client = api_client(shared_study["insurer"])
    assert client.get(f"/api/provenance/instances/{uid}/lung.png").status_code == 200

    _delete_from_pacs(orthanc, uid)
    DICOMwebClient(orthanc.dicomweb_url).store_instances([ds])
    r = client.get(f"/api/provenance/instances/{uid}/lung.png", HTTP_ACCEPT="application/json")
    assert r.status_code == 409, r.content
    first = LedgerEntry.objects.filter(sop_instance_uid=uid).order_by("seq").first()
    assert f"ledger #{first.seq}" in r.json()["detail"]
    assert "changed in the PACS" in r.json()["detail"]


def test_a_re_upload_with_other_pixels_is_named_in_the_refusal(shared_study, orthanc, ct_slice_paths, api_client,
                                                               tmp_path, restore_original):  # fmt: skip
    ds = _tampered(ct_slice_paths[0])
    uid = ds.SOPInstanceUID
    _delete_from_pacs(orthanc, uid)
    path = tmp_path / "again.dcm"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    path.write_bytes(buf.getvalue())
    outcome = upload_paths(shared_study["clinician"], [path])
    assert len(outcome.stored) == 1, outcome.errors

    entries = list(LedgerEntry.objects.filter(sop_instance_uid=uid).order_by("seq"))
    assert len(entries) == 2 and entries[0].pixel_sha256 != entries[1].pixel_sha256
    r = api_client(shared_study["insurer"]).get(f"/api/provenance/instances/{uid}/lung.png")
    assert r.status_code == 409, r.content
    assert f"ledger #{entries[0].seq}" in r.json()["detail"]
    assert f"uploaded again with other pixels (ledger #{entries[1].seq}" in r.json()["detail"]


def test_a_slice_the_pacs_no_longer_holds_is_a_502_saying_so(shared_study, orthanc, ct_slice_paths, api_client,
                                                            restore_original):  # fmt: skip
    """Not a 500: the portal signed it, the PACS lost it; the answer names the PACS as the party that refused."""
    uid = pydicom.dcmread(ct_slice_paths[0], stop_before_pixels=True).SOPInstanceUID
    _delete_from_pacs(orthanc, uid)
    r = api_client(shared_study["insurer"]).get(f"/api/provenance/instances/{uid}/lung.png",
                                                HTTP_ACCEPT="application/json")
    assert r.status_code == 502, r.content
    assert "PACS refused" in r.json()["detail"] and r.json()["retry"] is False


def test_sharing_a_study_the_pacs_lost_part_of_is_a_502_and_creates_no_share(shared_study, orthanc, ct_slice_paths,
                                                                            api_client, restore_original):  # fmt: skip
    from portal.claims.models import EncryptedShare

    _delete_from_pacs(orthanc, pydicom.dcmread(ct_slice_paths[0], stop_before_pixels=True).SOPInstanceUID)
    before = EncryptedShare.objects.count()
    r = api_client(shared_study["clinician"]).post(
        "/api/shares/encrypted", {"study_uid": shared_study["study"].study_uid}, format="json")
    assert r.status_code == 502, r.content
    assert "no longer holds 1 of the 5 instances" in r.json()["detail"], r.json()
    assert EncryptedShare.objects.count() == before
