"""Slices missing from a series: the study page says how many, the viewer where, and jumps there."""

import pydicom
import pytest

from tests.conftest import fresh_copies, upload_paths
from tests.e2e.browser import SLICE_INDEX_JS, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_gaps_in_the_slice_positions_are_shown_and_linked(live_server, orthanc, ct_files, tmp_path, user_factory,
                                                          page, screenshot):  # fmt: skip
    by_z = sorted(ct_files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, fresh_copies(by_z[60:64] + by_z[70:74], tmp_path))  # six slices left out
    series = outcome.jobs[0].series
    # The detector reads the two runs on their own: no false alarm beside the gap (it used to say FB 100 %).
    job = series.scoring_jobs.get()
    assert (job.status, job.verdict, job.flagged_locations, job.edge_slices) == ("done", "TM", 0, [0, 3, 4, 7])

    page.goto(f"{live_server.url}/studies/{series.study.study_uid}")
    log_in(page, clinician.username)
    assert page.get_by_test_id("missing-slices").inner_text().strip() == "· about 6 slices missing"

    page.get_by_test_id("open-series").click()
    note = page.get_by_test_id("slice-gaps")
    note.wait_for()
    assert note.inner_text().startswith("About 6 slices missing in 1 gap (the usual step is 3 mm).")
    [gap] = note.get_by_test_id("slice-gap").all()
    assert gap.inner_text().startswith("after slice 4: z ") and gap.inner_text().endswith("~6 missing")
    page.wait_for_function(f"() => {SLICE_INDEX_JS} !== undefined")
    gap.click()
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '3'")
    page.get_by_test_id("series-verdict").wait_for()
    assert page.get_by_test_id("series-verdict").inner_text().startswith("No tampering found")
    scores = page.request.get(f"{live_server.url}/api/series/{series.series_uid}/scores").json()
    assert scores["edge_slices"] == [0, 3, 4, 7]
    screenshot("gap")
