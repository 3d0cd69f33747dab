"""The whole browser flow against the real portal: live Django, real Orthanc, real Celery worker."""

import re
from urllib.parse import urlparse

import pytest

from tests.e2e.browser import SLICE_INDEX_JS, current_slice, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_upload_view_and_label_persist(live_server, orthanc, scoring_worker, user_factory, ct_files, page, screenshot):
    from annotations.models import Label
    from detection.models import ScoringJob

    clinician = user_factory("clinician")
    expert = user_factory("expert")  # experts see every study; annotators only assigned ones

    # Log in as a clinician: the SPA shows the clinician's navigation.
    page.goto(f"{live_server.url}/upload")
    log_in(page, clinician.username)
    assert urlparse(page.url).path == "/upload"
    page.get_by_test_id("drop-zone").wait_for()
    assert page.get_by_test_id("nav-upload").is_visible()
    assert page.get_by_test_id("nav-queue").count() == 0

    # Upload the 99-slice CT and watch progress reach 100%.
    page.get_by_test_id("file-input").set_input_files([str(p) for p in ct_files])
    assert page.get_by_test_id("upload-summary").inner_text().startswith("99 file(s)")
    page.get_by_test_id("upload-start").click()
    page.get_by_test_id("upload-done").wait_for(timeout=180_000)
    assert page.get_by_test_id("upload-total-progress").inner_text() == "100%"
    assert page.locator("[data-testid=file-row][data-state=stored]").count() == 99
    assert page.locator("[data-testid=file-row][data-state=error]").count() == 0
    job = page.get_by_test_id("job").first
    job.wait_for()
    assert job.get_attribute("data-status") in {"queued", "running", "done"}
    screenshot("upload-done")
    # Scoring status updates without a reload (the worker picks the job up).
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=job]')].some(j => j.dataset.status !== 'queued')",
        timeout=120_000,
    )
    viewer_path = page.get_by_test_id("job-open-viewer").first.get_attribute("href")
    assert viewer_path.startswith("/viewer/")
    # Once done, the series' verdict is shown where the upload was made.
    page.locator("[data-testid=job][data-status=done]").wait_for(timeout=180_000)
    verdict = ScoringJob.objects.get(status="done").verdict
    assert page.get_by_test_id("job-verdict").get_attribute("data-verdict") == verdict

    # Log out; an expert opens the viewer (login redirect keeps the target).
    page.get_by_test_id("logout").click()
    page.goto(f"{live_server.url}{viewer_path}")
    log_in(page, expert.username)
    page.get_by_test_id("nav-queue").wait_for()
    page.get_by_test_id("viewer").wait_for()
    page.wait_for_function("() => window.__viewerStats && window.__viewerStats.firstRenderMs !== null", timeout=60_000)
    page.wait_for_function("() => window.__viewerStats.allLoadedMs !== null", timeout=60_000)
    stats = page.evaluate("window.__viewerStats")
    assert stats["slices"] == 99 and stats["failedSlices"] == 0, stats
    screenshot("viewer-first")

    # Scroll to slice 50: the wheel moves through the stack, the keyboard finishes the job.
    viewport = page.get_by_test_id("viewport")
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before = current_slice(page)
    page.mouse.wheel(0, 300)
    page.wait_for_function(f"() => {SLICE_INDEX_JS} !== '{before}'")
    for _ in range(120):
        index = current_slice(page)
        if index == 50:
            break
        page.keyboard.press("ArrowDown" if index < 50 else "ArrowUp")
    assert current_slice(page) == 50
    assert page.get_by_test_id("slice-index").inner_text() == "Slice 51 / 99"
    assert re.match(r"z -?\d+\.\d mm", page.get_by_test_id("slice-z").inner_text())

    # Place an FM label with the keyboard at the point under the mouse.
    page.mouse.move(box["x"] + box["width"] / 2 + 20, box["y"] + box["height"] / 2 - 10)
    page.keyboard.press("4")
    saved = page.locator("[data-testid=label-item][data-label-class=FM][data-slice-index='50']")
    saved.wait_for()
    assert page.locator("[data-testid=label-marker][data-label-class=FM]").count() == 1
    screenshot("label-placed")
    label = Label.objects.get(label_class="FM")
    assert label.slice_index == 50 and label.annotator.username == expert.username

    # Reload: the label comes back from the API, on the same slice.
    page.reload()
    page.get_by_test_id("viewer").wait_for()
    saved.wait_for()
    page.locator("[data-testid=label-marker][data-label-class=FM]").wait_for()
    assert current_slice(page) == 50
    screenshot("label-after-reload")

    # The help panel lists the shortcuts.
    page.keyboard.press("?")
    assert page.get_by_test_id("help-panel").is_visible()
    assert "FM" in page.get_by_test_id("help-panel").inner_text()
    # Chrome logs expected 404s (scores not ready yet) as "Failed to load resource"; anything else is a bug.
    errors = [
        m for m in page.console_messages if m.startswith(("error", "pageerror")) and "Failed to load resource" not in m
    ]
    assert not errors, errors
