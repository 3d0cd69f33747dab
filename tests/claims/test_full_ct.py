"""The whole 99-slice CT: a tampered PNG of one slice is matched to the right slice and localised."""

import time

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.claims.services import study_share_with_insurer
from tests.claims.conftest import tamper_png


@pytest.mark.slow
@pytest.mark.django_db
def test_tampered_png_is_found_among_99_slices(uploaded_ct, ct_files, user_factory, api_client):
    clinician, insurer = user_factory("clinician"), user_factory("insurer")
    study = uploaded_ct(clinician)
    study_share_with_insurer(actor=clinician, study=study, insurer=insurer)
    client = api_client(insurer)
    uid = pydicom.dcmread(ct_files[60]).SOPInstanceUID
    exported = client.get(f"/api/provenance/instances/{uid}/lung.png").content
    claim = client.post("/api/claims/", {"reference": "FULL"}, format="json").json()
    client.post(f"/api/claims/{claim['id']}/studies", {"study_uid": study.study_uid}, format="json")
    started = time.perf_counter()
    r = client.post(f"/api/claims/{claim['id']}/images",
                    {"files": [SimpleUploadedFile("t.png", tamper_png(exported, x=200, y=330, size=10))]},
                    format="multipart")
    elapsed = time.perf_counter() - started
    image = r.json()["images"][0]
    prov = image["result"]["provenance"]
    assert image["provenance"] == "modified" and prov["ledger"]["sop_instance_uid"] == uid
    assert 193 <= prov["diff"]["boxes"][0]["x"] <= 197 and 323 <= prov["diff"]["boxes"][0]["y"] <= 327
    print(f"tampered PNG matched against 99 slices (PACS fetch, ledger check, render, diff, detector): {elapsed:.1f}s")
