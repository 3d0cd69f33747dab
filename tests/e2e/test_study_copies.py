"""The study page names another study holding the same images and links the slices where they differ."""

import pydicom
import pytest

from tests.claims.test_provenance_mismatch import _tampered
from tests.conftest import fresh_copies, upload_paths
from tests.e2e.browser import SLICE_INDEX_JS, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_study_page_shows_the_earlier_upload_of_the_same_images(live_server, orthanc, ct_files, tmp_path,
                                                                 user_factory, page, screenshot):  # fmt: skip
    by_z = sorted(ct_files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    clinician = user_factory("clinician")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    original = upload_paths(clinician, fresh_copies(by_z[50:55], tmp_path / "a", patient_id="FIRST-PATIENT"))
    reused = fresh_copies(by_z[50:55], tmp_path / "b", patient_id="SECOND-PATIENT")
    _tampered(reused[3]).save_as(reused[3], enforce_file_format=True)
    copy = upload_paths(clinician, reused).jobs[0].series

    page.goto(f"{live_server.url}/studies/{copy.study.study_uid}")
    log_in(page, clinician.username)
    item = page.get_by_test_id("copy")
    item.wait_for()
    assert item.get_attribute("data-study-uid") == original.stored[0]["study_uid"]
    assert item.inner_text().startswith("FIRST-PATIENT")
    assert "4 of 5 images identical; differ at slice 4." in item.inner_text()
    screenshot("copies")
    item.get_by_test_id("copy-differs").click()
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '3'")
    assert f"/viewer/{copy.study.study_uid}/{copy.series_uid}" in page.url
    # The viewer says it too, beside the series, with a link to the changed slice.
    note = page.get_by_test_id("copy-note")
    note.wait_for()
    assert note.inner_text() == ("Same images as study of FIRST-PATIENT (4 of 5) except slice 4: one of the two "
                                 "copies was changed there. Compare")  # fmt: skip
    page.keyboard.press("Home")
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '0'")
    note.get_by_test_id("copy-slices").click()
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '3'")

    # Compare: the difference from the copy over the image, counted as pydicom counts it.
    import numpy as np

    def hu(path) -> np.ndarray:
        ds = pydicom.dcmread(path)
        return ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)

    expected = int((np.abs(hu(reused[3]) - hu(tmp_path / "a" / reused[3].name)) >= 10).sum())
    assert expected > 0
    note.get_by_test_id("copy-compare").click()
    status = page.get_by_test_id("compare-status")
    page.wait_for_function("() => document.querySelector('[data-testid=compare-layer]').dataset.differing > 0")
    assert page.get_by_test_id("compare-layer").get_attribute("data-differing") == str(expected)
    assert status.inner_text() == f"Copy differs in {expected:,} pixels"
    assert note.get_by_test_id("copy-compare").get_attribute("aria-pressed") == "true"
    screenshot("compare")
    page.keyboard.press("Home")
    page.wait_for_function("() => document.querySelector('[data-testid=compare-status]').textContent"
                           " === 'Copy: identical here'")
    page.keyboard.press("x")  # off
    page.wait_for_function("() => document.querySelector('[data-testid=compare-status]').hidden")
    assert note.get_by_test_id("copy-compare").get_attribute("aria-pressed") == "false"
