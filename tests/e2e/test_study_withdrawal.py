"""Withdrawing a study in the browser: the uploader gives a reason and the study leaves their list; an admin
finds it under "Withdrawn studies", reads who withdrew it and why, and restores it."""

import pytest

from tests.conftest import fresh_copies, upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_uploader_withdraws_and_admin_restores(live_server, orthanc, ct_files, tmp_path, user_factory, browser,
                                               page):
    clinician, admin = user_factory("clinician"), user_factory("admin")
    study_uid = upload_paths(clinician, fresh_copies(ct_files[50:52], tmp_path)).stored[0]["study_uid"]
    page.goto(f"{live_server.url}/studies/{study_uid}")
    log_in(page, clinician.username)
    page.get_by_test_id("withdraw-open").click()
    page.get_by_test_id("withdraw-confirm").click()
    assert "Say why" in page.get_by_test_id("withdraw-message").inner_text()
    page.get_by_test_id("withdraw-reason").fill("Uploaded under the wrong patient")
    page.get_by_test_id("withdraw-confirm").click()
    assert "Study withdrawn" in page.get_by_test_id("withdrawn-done").inner_text(timeout=10_000)
    page.goto(f"{live_server.url}/studies")
    page.get_by_test_id("studies-status").filter(has_text="No studies yet").wait_for(timeout=10_000)

    admin_page = browser.new_page()
    try:
        admin_page.goto(f"{live_server.url}/studies")
        log_in(admin_page, admin.username)
        admin_page.get_by_test_id("filter-withdrawn").select_option("true")
        admin_page.get_by_test_id("filter-apply").click()
        note = admin_page.get_by_test_id("withdrawn-note")
        assert f"by {clinician.username}: Uploaded under the wrong patient" in note.inner_text(timeout=10_000)
        admin_page.get_by_test_id("open-study").click()
        banner = admin_page.get_by_test_id("withdrawn-banner")
        assert "Uploaded under the wrong patient" in banner.inner_text(timeout=10_000)
        admin_page.get_by_test_id("restore-study").click()
        admin_page.get_by_test_id("open-series").first.wait_for(timeout=10_000)
        assert admin_page.get_by_test_id("withdrawn-banner").count() == 0
        log = admin_page.locator("[data-testid=access-row][data-action='study.restore']")
        assert "restored it (withdrawn by" in log.inner_text(timeout=10_000)
    finally:
        admin_page.close()

    page.reload()
    page.get_by_test_id("study-row").wait_for(timeout=10_000)
    assert page.get_by_test_id("study-row").get_attribute("data-study-uid") == study_uid
