"""Upload page in the browser: per-file errors from the API, dropped zip archives, series the detector does not
score and what a radiograph's copy-move check found."""

import pytest

from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_upload_shows_per_file_rejections(live_server, orthanc, ct_files, user_factory, page, tmp_path):
    clinician = user_factory("clinician")
    bogus = tmp_path / "notes.dcm"
    bogus.write_text("not a DICOM file")
    page.goto(f"{live_server.url}/upload")
    log_in(page, clinician.username)
    page.get_by_test_id("file-input").set_input_files([str(bogus), str(ct_files[0])])
    page.get_by_test_id("upload-start").click()
    page.get_by_test_id("upload-done").wait_for()
    rejected = page.locator("[data-testid=file-row][data-state=error]")
    assert rejected.count() == 1
    assert "notes.dcm" in rejected.inner_text() and "Rejected:" in rejected.inner_text()
    assert page.locator("[data-testid=file-row][data-state=stored]").count() == 1
    assert "1 stored, 1 rejected" in page.get_by_test_id("upload-done").inner_text()


def test_dropped_zip_is_uploaded_and_counted(live_server, orthanc, ct_files, user_factory, page, tmp_path):
    import base64
    import zipfile

    archive = tmp_path / "three-slices.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in ct_files[:3]:
            zf.write(path, f"series/{path.name}")
    clinician = user_factory("clinician")
    page.goto(f"{live_server.url}/upload")
    log_in(page, clinician.username)
    page.get_by_test_id("drop-zone").wait_for()
    # Drop the archive on the zone the way a file manager would.
    page.evaluate(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: 'application/zip' }));
            const zone = document.querySelector('[data-testid=drop-zone]');
            zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        [archive.name, base64.b64encode(archive.read_bytes()).decode()],
    )
    page.locator("[data-testid=upload-summary]", has_text="1 file(s)").wait_for()
    page.get_by_test_id("upload-start").click()
    page.get_by_test_id("upload-done").wait_for()
    row = page.locator("[data-testid=file-row][data-state=stored]")
    assert row.count() == 1
    assert "3 image(s)" in row.inner_text()
    page.get_by_test_id("job").first.wait_for()


def test_archive_down_says_files_are_kept(live_server, orthanc, scoring_worker, ct_files, user_factory, page, settings):
    # Nothing listens on port 9: the upload is staged but cannot reach the archive. (With a real worker
    # the later store attempts go to the broker instead of running inside the request.)
    settings.DICOMWEB_URL = "http://127.0.0.1:9/dicom-web"
    clinician = user_factory("clinician")
    page.goto(f"{live_server.url}/upload")
    log_in(page, clinician.username)
    page.get_by_test_id("file-input").set_input_files([str(p) for p in ct_files[:2]])
    page.get_by_test_id("upload-start").click()
    # (The rows' "storing" state is not awaited: with nothing listening the store attempt fails at once.)
    banner = page.get_by_test_id("upload-pacs-down")
    banner.wait_for(timeout=120_000)
    assert "kept on the server" in banner.inner_text() and "do not need to upload them again" in banner.inner_text()
    assert page.locator("[data-testid=file-row][data-state=kept]").count() == 2
    # The history says the upload waits for the PACS; the worker (which reaches the real one) stores it, and
    # the history, polling, says so without a reload.
    page.locator("[data-testid=history-row][data-status=staged]").wait_for(timeout=30_000)
    stored = page.locator("[data-testid=history-row][data-status=stored]")
    stored.wait_for(timeout=90_000)
    assert stored.get_by_role("link").count() == 1


def test_a_series_the_detector_does_not_score_says_so_after_upload(live_server, orthanc, ct_files, user_factory, page,
                                                                   tmp_path):
    from tests.portal.test_scoring import mr_copies

    clinician = user_factory("clinician")
    page.goto(f"{live_server.url}/upload")
    log_in(page, clinician.username)
    page.get_by_test_id("file-input").set_input_files([str(p) for p in mr_copies(ct_files[45:47], tmp_path)])
    page.get_by_test_id("upload-start").click()
    page.get_by_test_id("upload-done").wait_for()
    row = page.get_by_test_id("job-not-scored")
    assert row.count() == 1 and "this series is MR" in row.inner_text()
    assert page.get_by_test_id("job").count() == 0


def test_an_x_ray_upload_says_what_its_copy_move_check_found(live_server, orthanc, ct_files, user_factory, page,
                                                            tmp_path):
    from tests.detection.test_radiographs import x_ray_series

    clinician = user_factory("clinician")
    page.goto(f"{live_server.url}/upload")
    log_in(page, clinician.username)
    page.get_by_test_id("file-input").set_input_files([str(p) for p in x_ray_series(ct_files, tmp_path)])
    page.get_by_test_id("upload-start").click()
    page.get_by_test_id("upload-done").wait_for()
    row = page.get_by_test_id("job-not-scored")
    assert "checked for regions copied inside them instead" in row.inner_text()
    found = row.get_by_test_id("copy-move-found")  # the check ran meanwhile (eager in tests); polled
    found.wait_for(timeout=15_000)
    assert found.count() == 1 and " px at x " in found.inner_text()
