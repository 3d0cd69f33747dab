"""A series without lung tissue: scored, but the detector has nothing to score, and every page says so
instead of showing a genuine verdict it never reached."""

import pytest

from detection.models import ModelVersion, ScoringJob
from detection.services import run_scoring_job
from tests.conftest import fresh_copies, pdf_text, upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_abdominal_slice_shows_no_verdict(live_server, orthanc, shared_data, user_factory, page, tmp_path, screenshot):
    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, fresh_copies([shared_data / "lidc-idri-0002-single-slice" / "ref_scan.dcm"],
                                                   tmp_path))
    job = run_scoring_job(job_id=outcome.jobs[0].pk)
    assert job.scored_locations == 0, job.error
    study_uid, series_uid = job.series.study.study_uid, job.series.series_uid

    page.goto(f"{live_server.url}/viewer/{study_uid}/{series_uid}")
    log_in(page, clinician.username)
    badge = page.get_by_test_id("series-verdict")
    badge.wait_for(timeout=30_000)
    assert badge.get_attribute("data-verdict") == "none" and badge.inner_text() == "No verdict · no lung tissue"
    assert "no lung tissue to score" in page.get_by_test_id("score-info").inner_text()
    assert page.get_by_test_id("locations-empty").inner_text() == "No locations: no lung tissue to score."
    screenshot("viewer-nothing-to-score")

    # As if a newer model had since been promoted: the study page says the scores are a retired model's.
    active = job.model_version
    job.model_version = ModelVersion.objects.create(name="smallcnn:old", arch="smallcnn", trained=True,
                                                    status=ModelVersion.Status.RETIRED)
    job.save(update_fields=["model_version"])
    page.goto(f"{live_server.url}/studies/{study_uid}")
    assert "(retired: re-score to use the active model)" in page.get_by_test_id("series-model").inner_text()
    # The uploader reads who opened the study: themselves, a moment ago in the viewer.
    opened = page.locator("[data-testid=access-row][data-action='study.view']")
    opened.first.wait_for()
    row = opened.first.inner_text()
    assert f"{clinician.username} · clinician" in row and "opened it (viewer)" in row
    assert page.get_by_test_id("verdict").inner_text() == "No verdict · no lung tissue"
    assert page.get_by_test_id("series-nothing-to-score").is_visible()
    with page.expect_download() as download:
        page.get_by_test_id("study-report").click()
    report = download.value.path().read_bytes()
    assert report.startswith(b"%PDF") and b"no lung tissue to score" in pdf_text(report)
    # Re-score: a new job, scored by the current model, with the same outcome.
    page.get_by_test_id("series-rescore").click()
    status = page.locator(f"[data-testid=series-job-status]:not([data-job-id='{job.pk}'])")
    status.get_by_text("scoring done").wait_for()
    page.get_by_test_id("series-nothing-to-score").wait_for()
    assert page.get_by_test_id("series-model").inner_text().strip() == f"model {active.name}"
    assert ScoringJob.objects.filter(series=job.series, status="done").count() == 2
    # A job waiting on the bulk queue (re-scores after a promotion): "Score now" moves it forward.
    waiting = ScoringJob.objects.create(series=job.series, bulk=True)
    page.reload()
    assert page.get_by_test_id("series-bulk-note").inner_text() == "behind the re-scores of other series"
    page.get_by_test_id("series-rescore").get_by_text("Score now").click()
    page.locator(f"[data-testid=series-job-status][data-job-id='{waiting.pk}']").get_by_text("scoring done").wait_for()
    assert page.get_by_test_id("series-bulk-note").count() == 0
    page.goto(f"{live_server.url}/studies?verdict=nothing_to_score")
    page.get_by_test_id("study-row").first.wait_for(timeout=10_000)
    assert page.get_by_test_id("study-row").count() == 1
    assert page.get_by_test_id("filter-verdict").input_value() == "nothing_to_score"
    page.get_by_test_id("filter-verdict").select_option("genuine")
    page.get_by_test_id("study-row").first.wait_for(state="detached", timeout=10_000)


def test_a_series_of_another_modality_says_it_is_not_scored(live_server, orthanc, ct_files, user_factory, page,
                                                            tmp_path):
    from tests.portal.test_scoring import mr_copies

    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, mr_copies(ct_files[45:47], tmp_path))
    study_uid, series_uid = outcome.stored[0]["study_uid"], outcome.stored[0]["series_uid"]
    page.goto(f"{live_server.url}/viewer/{study_uid}/{series_uid}")
    log_in(page, clinician.username)
    page.get_by_test_id("not-scored-reason").wait_for(timeout=30_000)
    assert page.get_by_test_id("score-status").inner_text() == "Not scored"
    assert page.get_by_test_id("not-scored-reason").inner_text().endswith("this series is MR")
    page.goto(f"{live_server.url}/studies/{study_uid}")
    assert "this series is MR" in page.get_by_test_id("series-not-scored").inner_text()
    assert page.get_by_test_id("series-rescore").count() == 0
