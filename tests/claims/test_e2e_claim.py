"""Browser flow: an insurer logs in, creates a claim, uploads a tampered PNG of a slice, reads the report,
downloads the PDF. Headless Debian Chromium via Playwright against the live server (no SPA build needed)."""

import os
from pathlib import Path

import pydicom
import pytest

from tests.claims.conftest import tamper_png
from tests.conftest import TEST_PASSWORD
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls between sync Playwright steps

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.e2e
def test_insurer_checks_a_tampered_png_in_the_browser(transactional_db, live_server, shared_study, ct_slice_paths,
                                                       tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    insurer, study = shared_study["insurer"], shared_study["study"]
    uid = pydicom.dcmread(ct_slice_paths[2]).SOPInstanceUID
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{live_server.url}/accounts/login/?next=/claims")
            page.fill("input[name=username]", insurer.username)
            page.fill("input[name=password]", TEST_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/claims/")
            page.screenshot(path=str(ARTIFACTS / "claims-1-list.png"))

            # The insurer exports the shared slice as the portal renders it, then "retouches" it.
            exported = page.request.get(f"{live_server.url}/api/provenance/instances/{uid}/lung.png")
            assert exported.ok, exported.text()
            tampered = tmp_path / "claim-slice.png"
            tampered.write_bytes(tamper_png(exported.body(), x=310, y=220, size=14))

            page.fill("input[name=reference]", "CLM-E2E-7")
            page.select_option("select[name=study_uid]", study.study_uid)
            page.click("#new-claim button[type=submit]")
            expect(page.locator("h1")).to_have_text("Claim CLM-E2E-7")
            page.set_input_files("input[name=files]", str(tampered))
            page.click("#upload-form button[type=submit]")
            status = page.locator("section.result [data-testid=status]").first
            expect(status).to_have_text("TAMPERED")
            expect(page.locator("section.result")).to_contain_text("localized region")
            expect(page.locator("img[alt='Differences (boxes)']")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "claims-2-report.png"), full_page=True)

            with page.expect_download() as info:
                page.click("#pdf-link")
            pdf = tmp_path / "report.pdf"
            info.value.save_as(pdf)
            assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 20_000
        finally:
            browser.close()
