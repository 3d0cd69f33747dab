"""The claim analysis runs in a real Celery worker process (the web request only stores the upload)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.claims.models import ClaimImage
from tests.conftest import wait_for


@pytest.fixture
def worker_visible_dirs(settings):
    # The worker process reads the default settings: use the same key and file locations (under VAR_DIR).
    settings.PORTAL_SIGNING_KEY_DIR = None
    settings.PORTAL_CLAIMS_DIR = None


@pytest.mark.slow
def test_claim_image_is_analysed_by_a_worker(transactional_db, worker_visible_dirs, scoring_worker, shared_study,
                                             ct_slice_paths, api_client):
    client = api_client(shared_study["insurer"])
    claim = client.post("/api/claims/", {"reference": "W-1"}, format="json").json()
    r = client.post(f"/api/claims/{claim['id']}/images",
                    {"files": [SimpleUploadedFile("s.dcm", ct_slice_paths[0].read_bytes())]}, format="multipart")
    assert r.status_code == 201
    assert r.json()["images"][0]["status"] == "pending"  # queued, not analysed in the request
    try:
        image = wait_for(
            lambda: ClaimImage.objects.filter(claim_id=claim["id"], position=1).exclude(status="pending").first(),
            timeout=300, message="worker analysis",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{scoring_worker.log()}") from None
    assert image.provenance == "exact", image.result
    assert client.get(f"/claims/{claim['id']}/images/1/heatmap.png").status_code == 200
