"""An X-ray series on the study page: not scored by the CT detector, but checked for a copied region, which is
named with its image (linked to the viewer) and both places, and makes the study's verdict; in the viewer both
places are boxed over the image, and the window presets are the image's own, not CT ones."""

import pydicom
import pytest

from tests.conftest import upload_paths
from tests.detection.test_radiographs import x_ray_series
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_study_page_names_a_copied_region_in_an_x_ray(live_server, orthanc, ct_files, tmp_path, user_factory, page):
    paths = x_ray_series(ct_files, tmp_path)
    clinician = user_factory("clinician")
    study_uid = upload_paths(clinician, paths).stored[0]["study_uid"]  # checked at once (eager, autocommit)
    page.goto(f"{live_server.url}/studies/{study_uid}")
    log_in(page, clinician.username)
    from portal.studies.models import Instance

    cloned = Instance.objects.get(sop_instance_uid=pydicom.dcmread(paths[0], stop_before_pixels=True).SOPInstanceUID)
    found = page.get_by_test_id("copy-move-found")
    assert " px at x " in found.first.inner_text(timeout=15_000)
    link = found.first.get_by_role("link")
    assert link.inner_text() == f"image {cloned.slice_index + 1}"
    assert link.get_attribute("href").endswith(f"?slice={cloned.slice_index}")
    assert page.get_by_test_id("copy-move-check").get_attribute("data-status") == "done"
    assert page.get_by_test_id("verdict-copy-move").inner_text() == "Tampering suspected · copy-move in 1 image"
    assert page.get_by_test_id("verdict").count() == 0  # not "Not scored": the CT detector has nothing to read

    # The viewer: both places boxed on that image only; H hides them; the presets are the image's own.
    link.click()
    boxes = page.get_by_test_id("copy-move-box")
    boxes.wait_for(timeout=20_000)
    assert boxes.count() == 1 and boxes.locator("rect").count() == 2
    assert page.get_by_test_id("preset-lung").count() == 0 and page.get_by_test_id("preset-full").is_visible()
    assert not page.get_by_test_id("overlay-section").is_visible()  # no heatmap, locations or reformat to show
    assert not page.get_by_test_id("reformat").is_visible()
    viewport = page.get_by_test_id("viewport")
    viewport.focus()
    page.keyboard.press("f")
    image = pydicom.dcmread(paths[0])
    full = f"{int(image.pixel_array.min())},{int(image.pixel_array.max())}"
    page.wait_for_function("([el, want]) => el.dataset.voi === want", arg=[viewport.element_handle(), full])
    page.keyboard.press("h")
    boxes.wait_for(state="detached")
    page.keyboard.press("h")
    boxes.wait_for()
    page.keyboard.press("ArrowDown" if cloned.slice_index == 0 else "ArrowUp")  # the clean image
    boxes.wait_for(state="detached")


def test_an_expert_dismisses_a_copy_from_the_findings_list_and_the_verdict_follows(live_server, orthanc, ct_files,
                                                                                  tmp_path, user_factory, page):
    owner, expert = user_factory("clinician"), user_factory("expert")
    study_uid = upload_paths(owner, x_ray_series(ct_files, tmp_path)).stored[0]["study_uid"]
    (tmp_path / "later").mkdir()
    later_uid = upload_paths(owner, x_ray_series(ct_files, tmp_path / "later")).stored[0]["study_uid"]
    page.goto(f"{live_server.url}/queue?mode=copy-move")
    log_in(page, expert.username)
    finding = page.get_by_test_id("copy-move-finding")
    finding.first.wait_for()
    assert finding.count() == 2 and finding.first.get_attribute("data-review") == "none"
    page.get_by_test_id("queue-mode-copy-move").filter(has_text="Copy-move findings (2 to review)").wait_for()
    finding.first.get_by_test_id("copy-move-finding-open").click()  # the longest waiting: the first upload
    page.wait_for_url(f"**/viewer/{study_uid}/**")

    # The viewer opens on the image; the expert says it is no copy, and why.
    image = page.get_by_test_id("copy-move-image")
    page.get_by_test_id("copy-move-box").wait_for(timeout=20_000)
    # TB/TM/FB/FM labels train the CT detector: none on a radiograph, so no label tools or label review here.
    assert "a CR series takes none" in page.get_by_test_id("labels-not-here").inner_text()
    assert not page.get_by_text("Expert review: labels on this slice").is_visible()
    assert not page.get_by_test_id("tool-annotate").is_visible()  # the left button windows instead
    assert page.get_by_test_id("tool-windowLevel").get_attribute("aria-pressed") == "true"
    image.get_by_test_id("copy-move-not-a-copy").click()
    image.get_by_test_id("copy-move-dismiss").click()  # no reason yet: refused in the page
    assert "Say why" in image.get_by_role("alert").inner_text()
    image.get_by_test_id("copy-move-reason").fill("two ribs alike")
    image.get_by_test_id("copy-move-reason").press("Enter")
    review = page.get_by_test_id("copy-move-review")
    review.wait_for()
    assert f"Dismissed by {expert.username}" in review.inner_text() and "two ribs alike" in review.inner_text()
    assert page.get_by_test_id("copy-move-image").get_attribute("data-review") == "dismissed"

    # On to the next image waiting for a review (the later upload); confirmed there, none is left.
    page.get_by_test_id("copy-move-next").get_by_role("link").click()
    page.wait_for_url(f"**/viewer/{later_uid}/**")
    page.get_by_test_id("copy-move-box").wait_for(timeout=20_000)
    page.get_by_test_id("copy-move-confirm").click()
    assert "Confirmed as a copy by" in page.get_by_test_id("copy-move-review").inner_text()
    assert "No other copy-move finding" in page.get_by_test_id("copy-move-next").inner_text()

    # The study no longer counts as tampered; its uploader reads the expert's word and has no buttons.
    page.goto(f"{live_server.url}/queue?mode=copy-move")
    page.get_by_test_id("copy-move-findings-status").filter(has_text="Nothing to review").wait_for()
    assert page.get_by_test_id("queue-mode-copy-move").inner_text() == "Copy-move findings"  # none waits
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/studies/{study_uid}")
    log_in(page, owner.username)
    verdict = page.get_by_test_id("verdict-copy-move")
    assert verdict.inner_text() == "No copy-move left · 1 image dismissed by an expert"
    assert "two ribs alike" in page.get_by_test_id("copy-move-review").inner_text()
    assert page.get_by_test_id("copy-move-not-a-copy").count() == 0
    page.goto(f"{live_server.url}/studies")
    row = page.locator(f"[data-testid=study-row][data-study-uid='{study_uid}']")
    assert row.get_by_test_id("verdict-source").inner_text() == "copy-move check"  # no model gave this verdict
    later = page.locator(f"[data-testid=study-row][data-study-uid='{later_uid}']")
    assert later.get_by_test_id("verdict-copy-move").inner_text() == (
        "Tampering confirmed by an expert · copy-move in 1 image")
