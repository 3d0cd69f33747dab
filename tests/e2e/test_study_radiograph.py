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
