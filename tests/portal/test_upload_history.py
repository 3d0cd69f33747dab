"""Upload history: each upload request with what it stored, what it refused and why, and the studies it added
images to; one's own for a clinician, everyone's for an admin."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import fresh_copies

pytestmark = pytest.mark.django_db


def test_uploader_reads_what_each_upload_stored_and_refused(orthanc, ct_files, tmp_path, user_factory, api_client):
    owner, other, admin = user_factory("clinician"), user_factory("clinician"), user_factory("admin")
    good = fresh_copies(ct_files[20:22], tmp_path)
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in good] + [
        SimpleUploadedFile("notes.txt", b"not an image\n")]
    upload = api_client(owner).post("/api/studies/upload", {"files": files}, format="multipart")
    assert upload.status_code == 207
    batch_id, study_uid = upload.json()["batch"], upload.json()["stored"][0]["study_uid"]
    api_client(owner).post("/api/studies/upload", {"files": [SimpleUploadedFile("x.txt", b"no")]},
                           format="multipart")  # a second upload: nothing stored

    history = api_client(owner).get("/api/uploads").json()
    assert history["count"] == 2
    latest, first = history["results"]
    assert latest["status"] == "failed" and latest["instances_stored"] == 0 and latest["studies"] == []
    assert first["id"] == batch_id and first["status"] == "stored"
    assert (first["files_received"], first["instances_stored"]) == (3, 2)
    assert [e["file"] for e in first["errors"]] == ["notes.txt"] and "not a DICOM" in first["errors"][0]["reason"]
    assert [s["study_uid"] for s in first["studies"]] == [study_uid]
    assert api_client(owner).get("/api/uploads?status=failed").json()["count"] == 1

    assert api_client(other).get("/api/uploads").json()["count"] == 0
    assert api_client(other).get(f"/api/uploads/{batch_id}").status_code == 404
    assert api_client(user_factory("annotator")).get("/api/uploads").status_code == 403
    seen_by_admin = api_client(admin).get(f"/api/uploads/{batch_id}").json()
    assert seen_by_admin["uploaded_by"] == owner.username

    # A study withdrawn since: gone from the uploader's history, marked for admins.
    api_client(owner).post(f"/api/studies/{study_uid}/withdraw", {"reason": "wrong exam"})
    assert api_client(owner).get(f"/api/uploads/{batch_id}").json()["studies"] == []
    assert api_client(admin).get(f"/api/uploads/{batch_id}").json()["studies"][0]["withdrawn"]["reason"] == "wrong exam"
