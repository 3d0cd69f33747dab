"""A series whose scoring job is queued while no worker consumes the queue: the viewer says why it waits."""

import pytest

from tests.conftest import upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_viewer_says_no_worker_is_running_for_a_queued_job(live_server, orthanc, ct_files, user_factory, page):
    from detection.models import ScoringJob

    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, ct_files[45:50])
    series = outcome.jobs[0].series
    series.scoring_jobs.all().delete()  # as if the upload had just queued it: nothing scored yet
    job = ScoringJob.objects.create(series=series)  # queued; this run's private queue has no worker

    page.goto(f"{live_server.url}/viewer/{series.study.study_uid}/{series.series_uid}")
    log_in(page, clinician.username)
    page.get_by_test_id("score-status").get_by_text("Scoring queued").wait_for()
    assert "No scoring worker is running" in page.get_by_test_id("no-worker").inner_text(timeout=15_000)

    # Waiting on the bulk queue instead, with no bulk worker: the viewer says how to get it scored now.
    ScoringJob.objects.filter(pk=job.pk).update(bulk=True)
    page.reload()
    assert "no bulk worker is running: re-score it" in page.get_by_test_id("no-worker").inner_text(timeout=15_000)
