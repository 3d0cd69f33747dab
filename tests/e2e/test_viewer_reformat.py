"""The viewer's reading aids in Chromium on real slices from the PACS: the Hounsfield probe, the coronal/sagittal
reformat, and distance measurement."""

import math

import pydicom
import pytest

from tests.conftest import fresh_copies, upload_paths
from tests.e2e.browser import SLICE_INDEX_JS, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_probe_reads_hounsfield_units_and_the_reformat_opens_slices(live_server, orthanc, ct_files, tmp_path,
                                                                    user_factory, page, screenshot):  # fmt: skip
    clinician = user_factory("clinician")
    by_z = sorted(ct_files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    copies = fresh_copies(by_z[60:68], tmp_path)  # eight neighbouring slices
    outcome = upload_paths(clinician, copies)
    assert len(outcome.stored) == 8, outcome.errors
    series = outcome.jobs[0].series
    by_sop = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in copies}

    page.goto(f"{live_server.url}/viewer/{series.study.study_uid}/{series.series_uid}?slice=3")
    log_in(page, clinician.username)
    page.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '3'")

    # The probe names the pixel under the pointer and its value in HU, as the DICOM file gives it.
    box = page.get_by_test_id("cs-viewport").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.45)
    probe = page.get_by_test_id("hu-probe")
    page.wait_for_function("() => document.querySelector('[data-testid=hu-probe]').dataset.value !== undefined")
    x, y, value = int(probe.get_attribute("data-x")), int(probe.get_attribute("data-y")), float(
        probe.get_attribute("data-value"))
    ds = pydicom.dcmread(by_sop[series.instances.get(slice_index=3).sop_instance_uid])
    expected = float(ds.pixel_array[y, x]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert value == pytest.approx(expected), (x, y)
    assert probe.inner_text() == f"HU {round(expected)} at ({x}, {y})"

    # The coronal reformat runs through the pointer's row, one image row per slice; C switches to sagittal.
    canvas = page.get_by_test_id("reformat-canvas")
    canvas.wait_for()
    page.wait_for_function(f"() => document.querySelector('[data-testid=reformat-canvas]').dataset.at === '{y}'")
    assert (canvas.get_attribute("data-plane"), canvas.get_attribute("data-slices")) == ("coronal", "8")
    screenshot("coronal")
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("c")
    page.wait_for_function("() => document.querySelector('[data-testid=reformat-canvas]').dataset.plane === 'sagittal'")
    assert canvas.get_attribute("data-at") == str(x)
    assert page.get_by_test_id("reformat-sagittal").get_attribute("aria-pressed") == "true"

    # Head at the top: a click on the top row opens the most superior slice (highest z), the bottom row the
    # lowest.
    zs = {i.slice_index: i.z for i in series.instances.all()}
    top, bottom = max(zs, key=zs.get), min(zs, key=zs.get)
    canvas.scroll_into_view_if_needed()
    reformat = canvas.bounding_box()
    page.mouse.click(reformat["x"] + reformat["width"] / 2, reformat["y"] + 2)
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '{top}'")
    page.mouse.click(reformat["x"] + reformat["width"] / 2, reformat["y"] + reformat["height"] - 2)
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '{bottom}'")
    screenshot("sagittal")


def _native_point(page, x: float, y: float) -> tuple[int, int]:
    """Move the pointer to a screen point and read the native pixel under it from the probe."""
    page.mouse.move(x, y)
    probe = page.get_by_test_id("hu-probe")
    return int(probe.get_attribute("data-x")), int(probe.get_attribute("data-y"))


def test_a_measured_distance_is_in_millimetres_and_kept_with_the_study(live_server, orthanc, ct_files, tmp_path,
                                                                       user_factory, page):  # fmt: skip
    clinician = user_factory("clinician")
    copies = fresh_copies(ct_files[50:53], tmp_path)
    series = upload_paths(clinician, copies).jobs[0].series
    spacing = [float(v) for v in pydicom.dcmread(copies[0], stop_before_pixels=True).PixelSpacing]  # row, column
    page.goto(f"{live_server.url}/viewer/{series.study.study_uid}/{series.series_uid}?slice=1")
    log_in(page, clinician.username)
    page.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)

    page.get_by_test_id("viewport").focus()
    page.keyboard.press("d")
    assert page.get_by_test_id("tool-measure").get_attribute("aria-pressed") == "true"
    box = page.get_by_test_id("cs-viewport").bounding_box()
    start = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    end = (box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7)
    (x0, y0), (x1, y1) = _native_point(page, *start), _native_point(page, *end)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    expected = math.hypot((x1 - x0) * spacing[1], (y1 - y0) * spacing[0])
    tolerance = 2 * max(spacing)  # the probe's pixels are whole
    # Cornerstone recomputes the length at most every 100 ms while dragging; the last value is the line's.
    page.wait_for_function(
        """([expected, tolerance]) => [...document.querySelectorAll('[data-testid=cs-viewport] svg text')]
             .some((t) => t.textContent.endsWith(' mm')
                          && Math.abs(parseFloat(t.textContent) - expected) <= tolerance)""",
        arg=[expected, tolerance], timeout=5_000)

    # Saved with the study: the portal's length (from the indexed pixel spacing) is the one on screen.
    from annotations.models import Measurement
    from portal.studies.models import StudyAccess

    page.get_by_test_id("measurement-item").wait_for()
    saved = Measurement.objects.get(series=series)
    assert (saved.slice_index, saved.author) == (1, clinician)
    assert saved.length_mm == pytest.approx(expected, abs=tolerance)
    assert page.get_by_test_id("measurement-item").inner_text().startswith(f"slice 2 · {saved.length_mm:.1f} mm")
    page.keyboard.press("r")  # a reset of the view keeps it
    page.reload()
    page.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '1'")
    length_shown = f"""() => [...document.querySelectorAll('[data-testid=cs-viewport] svg text')]
                       .some((t) => t.textContent.endsWith(' mm')
                                    && Math.abs(parseFloat(t.textContent) - {saved.length_mm}) <= 0.5)"""  # rounded
    page.wait_for_function(length_shown, timeout=5_000)

    # Another reader of the study sees it, and cannot delete it.
    annotator = user_factory("annotator")
    StudyAccess.objects.create(study=series.study, user=annotator, kind=StudyAccess.Kind.ASSIGN)
    other = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        theirs = other.new_page()
        theirs.goto(page.url)
        log_in(theirs, annotator.username)
        theirs.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)
        theirs.wait_for_function(length_shown, timeout=5_000)
        assert theirs.get_by_test_id("measurement-item").inner_text().endswith(clinician.username)
        assert theirs.get_by_test_id("measurement-delete").count() == 0
    finally:
        other.close()

    # Its author moves an end point (saved once the drag rests), then selects it and presses Delete.
    drawn_length = saved.length_mm
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("d")
    page.mouse.move(*end)
    page.mouse.down()
    page.mouse.move(end[0] - box["width"] * 0.15, end[1], steps=6)
    page.mouse.up()
    for _ in range(50):
        saved.refresh_from_db()
        if saved.length_mm < expected - 5 * tolerance:
            break
        page.wait_for_timeout(100)
    assert saved.length_mm < expected - 5 * tolerance, (saved.length_mm, expected)
    page.keyboard.press("Delete")
    page.get_by_test_id("measurements-empty").wait_for()
    page.wait_for_function("() => ![...document.querySelectorAll('[data-testid=cs-viewport] svg text')]"
                           ".some((t) => t.textContent.endsWith(' mm'))")
    assert not Measurement.objects.filter(series=series).exists()

    # Ctrl+Z takes all three back, newest first, also after a reload: the delete (saved again, as moved, under a
    # new id), the move (of that new one), and the drawing itself (before the series was reopened above).
    page.reload()
    page.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("Control+z")
    page.get_by_test_id("measurement-item").wait_for()
    assert Measurement.objects.get(series=series).length_mm == pytest.approx(saved.length_mm, abs=0.01)
    page.keyboard.press("Control+z")
    for _ in range(50):
        if Measurement.objects.get(series=series).length_mm == pytest.approx(drawn_length, abs=0.01):
            break
        page.wait_for_timeout(100)
    assert Measurement.objects.get(series=series).length_mm == pytest.approx(drawn_length, abs=0.01)
    page.wait_for_function(length_shown, timeout=5_000)
    page.keyboard.press("Control+z")  # kept since the series was opened the first time: drawing it
    page.get_by_test_id("measurements-empty").wait_for()
    assert not Measurement.objects.filter(series=series).exists()
    page.keyboard.press("Control+z")
    assert page.get_by_test_id("label-error").inner_text() == "Nothing to undo."


def test_the_reformat_marks_findings_near_its_plane(live_server, orthanc, ct_files, tmp_path, user_factory, page,
                                                    screenshot):  # fmt: skip
    """A simulated injected nodule in twelve held-out slices: opening the finding puts the reformat through
    it, with red rings on the slices where the detector flagged it."""
    from pydicom.uid import generate_uid

    from detection.ml.preprocessing import volume_from_datasets, with_hu
    from detection.ml.simulator import simulate_series_tamper

    by_z = sorted((pydicom.dcmread(p) for p in ct_files), key=lambda ds: float(ds.ImagePositionPatient[2]))[66:78]
    vol, spacing, _ = volume_from_datasets(by_z)
    tampered, injected = simulate_series_tamper(vol, spacing, "FM", (3, 9), seed=0, diameter_mm=12.0)
    study, series_uid, paths = generate_uid(), generate_uid(), []
    for i, ds in enumerate(with_hu(by_z, tampered)):
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        paths.append(tmp_path / f"{i:02d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    clinician = user_factory("clinician")
    series = upload_paths(clinician, paths).jobs[0].series
    assert series.scoring_jobs.get().verdict == "FM"

    page.goto(f"{live_server.url}/viewer/{study}/{series_uid}")
    log_in(page, clinician.username)
    page.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)
    finding = page.locator("[data-testid=location-item][data-finding=true]").first
    finding.click()
    canvas = page.get_by_test_id("reformat-canvas")
    page.wait_for_function("() => Number(document.querySelector('[data-testid=reformat-canvas]')"
                           ".dataset.findings) > 0")
    assert abs(int(canvas.get_attribute("data-at")) - injected["y"]) <= 32  # through the nodule's row
    canvas.scroll_into_view_if_needed()
    screenshot("finding")
