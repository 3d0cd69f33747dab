"""A study reused with slices changed: the portal finds the earlier upload of the same images by their signed
pixel hashes and names the slices that differ; only studies the asker may read are named."""

import pydicom
import pytest

from portal.studies.models import StudyAccess
from tests.claims.test_provenance_mismatch import _tampered
from tests.conftest import fresh_copies, pdf_text, upload_paths

pytestmark = pytest.mark.django_db


def test_a_copy_with_changed_slices_is_found_and_the_changes_located(orthanc, ct_files, tmp_path, user_factory,
                                                                     api_client):  # fmt: skip
    by_z = sorted(ct_files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    clinician = user_factory("clinician")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    original = upload_paths(clinician, fresh_copies(by_z[40:46], tmp_path / "a", patient_id="PATIENT-A"))
    # The same scan under another patient, with slices 2 and 3 (z order) changed: a reused, tampered scan.
    reused = fresh_copies(by_z[40:46], tmp_path / "b", patient_id="PATIENT-B")
    for path in reused[2:4]:
        _tampered(path).save_as(path, enforce_file_format=True)
    copy = upload_paths(clinician, reused)
    original_uid, copy_uid = original.stored[0]["study_uid"], copy.stored[0]["study_uid"]
    client = api_client(clinician)

    [found] = client.get(f"/api/provenance/studies/{copy_uid}/copies").json()
    assert (found["study_uid"], found["patient_id"]) == (original_uid, "PATIENT-A")
    assert (found["shared_images"], found["images"]) == (4, 6)
    assert found["differing"] == [{"series_uid": copy.stored[0]["series_uid"], "slices": [[2, 3]]}]
    [back] = client.get(f"/api/provenance/studies/{original_uid}/copies").json()  # and the other way round
    assert back["study_uid"] == copy_uid and back["differing"][0]["slices"] == [[2, 3]]

    # The copy's PDF report says it too.
    text = pdf_text(client.get(f"/api/studies/{copy_uid}/report.pdf").content)
    assert b"Same images elsewhere: 4 of 6 images are pixel for pixel" in text  # the PDF wraps long lines
    assert original_uid.encode() in text and b"PATIENT-A" in text and rb"differ at slice\(s\) 3-4." in text

    # Someone who may read the copy but not the original learns nothing about it.
    colleague = user_factory("clinician")
    StudyAccess.objects.create(study=copy.jobs[0].series.study, user=colleague, kind=StudyAccess.Kind.SHARE)
    assert api_client(colleague).get(f"/api/provenance/studies/{copy_uid}/copies").json() == []
    assert api_client(user_factory("annotator")).get(f"/api/provenance/studies/{copy_uid}/copies").status_code == 403
    assert api_client(colleague).get(f"/api/provenance/studies/{original_uid}/copies").status_code == 404
