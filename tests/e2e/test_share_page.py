"""Encrypted study shares in the browser: a clinician creates one on the study page and sees the key once; the
insurer opens and downloads it with the key; the clinician revokes it and the key stops working."""

import hashlib
import io
import zipfile

import pytest

from tests.conftest import upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_clinician_shares_insurer_opens_clinician_revokes(live_server, orthanc, ct_files, user_factory, page,
                                                          screenshot, tmp_path):
    from portal.claims import crypto
    from portal.claims.models import EncryptedShare
    from portal.studies.models import Study, StudyAccess

    clinician, insurer = user_factory("clinician"), user_factory("insurer")
    outcome = upload_paths(clinician, ct_files[45:50])
    study = Study.objects.get(study_uid=outcome.stored[0]["study_uid"])

    # From the study list to the study page; create a share for the insurer.
    page.goto(f"{live_server.url}/studies")
    log_in(page, clinician.username)
    page.get_by_test_id("open-study").first.click()
    page.get_by_test_id("share-panel").wait_for()
    assert page.url.endswith(f"/studies/{study.study_uid}")

    # Insurer access (in-portal, for claims): grant from the list of insurer accounts, then revoke.
    page.get_by_test_id("insurer-none").wait_for()
    page.get_by_test_id("insurer-pick").select_option(insurer.username)
    page.get_by_test_id("insurer-grant").click()
    granted = page.locator(f"[data-testid=insurer-row][data-insurer='{insurer.username}']")
    granted.wait_for()
    assert f"by {clinician.username}" in granted.inner_text()
    assert StudyAccess.objects.filter(study=study, user=insurer, kind=StudyAccess.Kind.SHARE).exists()
    granted.get_by_test_id("insurer-revoke").click()
    page.get_by_test_id("insurer-none").wait_for()
    assert not StudyAccess.objects.filter(study=study, user=insurer).exists()
    page.get_by_test_id("share-list-status").get_by_text("No encrypted shares of this study yet.").wait_for()
    page.get_by_test_id("share-recipient").fill("ACME Insurance, claim 2026-113")
    page.get_by_test_id("share-create").click()
    page.get_by_test_id("share-key-box").wait_for(timeout=60_000)
    assert not page.get_by_test_id("share-form").is_visible()  # no second share before this key is stored

    # The key is shown once, next to the link to hand over; only its hash is stored.
    key = page.get_by_test_id("share-key").input_value()
    link = page.get_by_test_id("share-link").input_value()
    share = EncryptedShare.objects.get(study=study)
    assert share.key_sha256 == hashlib.sha256(crypto.decode_key(key)).hexdigest()
    assert link == f"{live_server.url}/shares/open/{share.id}"
    row = page.locator(f"[data-testid=share-row][data-share-id='{share.id}']")
    row.wait_for()
    assert "ACME Insurance" in row.inner_text() and row.get_by_test_id("share-state").inner_text() == "Active"
    screenshot("key-once")
    page.get_by_test_id("share-key-done").click()
    page.get_by_test_id("share-key-box").wait_for(state="detached")
    assert page.get_by_test_id("share-form").is_visible()
    page.reload()
    row.wait_for()
    assert key not in page.content()  # never shown again

    # The insurer follows the link, tries a wrong key, then opens it with the right one.
    page.get_by_test_id("logout").click()
    page.goto(link)
    log_in(page, insurer.username)
    page.get_by_test_id("share-open-page").wait_for()
    assert page.get_by_test_id("nav-open-share").is_visible()
    assert page.get_by_test_id("open-share-id").input_value() == str(share.id)
    page.get_by_test_id("open-share-key").fill(crypto.encode_key(b"\x07" * 32))
    page.get_by_test_id("open-share-submit").click()
    assert "does not open this share" in page.get_by_test_id("open-share-error").inner_text()
    page.get_by_test_id("open-share-key").fill(key)
    page.get_by_test_id("open-share-submit").click()
    check = page.locator("[data-testid=share-check][data-ok=true]")
    check.wait_for()
    assert "5 of 5 images match" in check.get_by_test_id("share-check-summary").inner_text()
    assert clinician.username in check.inner_text()
    screenshot("insurer-opened")
    with page.expect_download() as download:
        page.get_by_test_id("open-share-download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as zf:
        names = zf.namelist()
    assert "manifest.json" in names and sum(n.endswith(".dcm") for n in names) == 5

    # The clinician lists their shares and revokes this one (two steps).
    page.get_by_test_id("logout").click()
    page.goto(f"{live_server.url}/shares")
    log_in(page, clinician.username)
    row = page.locator(f"[data-testid=share-row][data-share-id='{share.id}']")
    row.get_by_test_id("share-revoke").click()
    row.get_by_test_id("share-revoke-confirm").click()
    revoked = page.locator(f"[data-testid=share-row][data-share-id='{share.id}'][data-revoked=true]")
    revoked.wait_for()
    assert revoked.get_by_test_id("share-state").inner_text().startswith("Revoked")
    assert revoked.get_by_test_id("share-revoke").count() == 0
    share.refresh_from_db()
    assert share.revoked_at is not None and share.revoked_by == clinician
    screenshot("revoked")

    # The same key no longer opens it.
    page.get_by_test_id("logout").click()
    page.goto(link)
    log_in(page, insurer.username)
    page.get_by_test_id("open-share-key").fill(key)
    page.get_by_test_id("open-share-submit").click()
    assert "revoked" in page.get_by_test_id("open-share-error").inner_text()
