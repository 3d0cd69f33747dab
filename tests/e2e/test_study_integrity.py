"""The study page's integrity check in the browser: all images as signed; then one changed inside the PACS is
named with a link to its slice, and the access log says the check was made (and lists a tamper alert)."""

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from detection.alerts import send_tamper_alert
from detection.models import ScoringJob
from tests.claims.test_provenance_mismatch import _delete_from_pacs, _tampered
from tests.conftest import fresh_copies, upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_integrity_check_on_the_study_page(live_server, orthanc, ct_files, tmp_path, user_factory, page):
    clinician = user_factory("clinician")
    copies = fresh_copies(ct_files[45:48], tmp_path)
    outcome = upload_paths(clinician, copies)
    study_uid = outcome.stored[0]["study_uid"]
    page.goto(f"{live_server.url}/studies/{study_uid}")
    log_in(page, clinician.username)
    page.get_by_test_id("integrity-check").click()
    summary = page.get_by_test_id("integrity-summary")
    assert summary.inner_text(timeout=30_000) == "All 3 images match what the portal signed at upload."

    tampered = pydicom.dcmread(copies[1], stop_before_pixels=True).SOPInstanceUID
    _delete_from_pacs(orthanc, tampered)
    DICOMwebClient(orthanc.dicomweb_url).store_instances([_tampered(copies[1])])
    page.get_by_test_id("integrity-check").click()
    page.locator("[data-testid=integrity-summary][data-ok=false]").wait_for(timeout=30_000)
    assert summary.inner_text() == "2 of 3 images match what the portal signed at upload."
    problem = page.get_by_test_id("integrity-changed").get_by_test_id("integrity-problem")
    slice_index = outcome.jobs[0].series.instances.get(sop_instance_uid=tampered).slice_index
    assert problem.inner_text().startswith(f"Slice {slice_index + 1}: the PACS copy of {tampered}")
    assert problem.get_by_role("link").get_attribute("href").endswith(f"?slice={slice_index}")
    job = ScoringJob.objects.get(series__study__study_uid=study_uid)
    ScoringJob.objects.filter(pk=job.pk).update(status="done", verdict="FM", verdict_score=0.99)
    clinician.email = "clinician@example.org"
    clinician.save()
    send_tamper_alert(job.pk)  # as the worker does after a new FM verdict
    page.reload()
    row = page.locator("[data-testid=access-row][data-action='study.integrity_check']").first
    assert "checked its images in the PACS: 1 changed, 0 missing, 0 unverifiable" in row.inner_text(timeout=10_000)
    alert = page.locator("[data-testid=access-row][data-action='study.tamper_alert']")
    assert "emailed a tamper alert (FM) to clinician@example.org" in alert.inner_text()
