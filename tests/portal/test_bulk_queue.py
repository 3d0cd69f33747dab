"""Bulk work (retraining, re-scoring every stale series) goes to its own queue, on the real RabbitMQ: a
worker on the main queue scores new uploads while it waits; a person re-scoring a series whose bulk job
waits moves it to the main queue; a bulk worker then ignores that job's older message and runs the retraining."""

import pytest
from django.conf import settings

from annotations.models import RetrainRun
from detection.models import ModelVersion, ScoringJob
from portal.celery import app
from tests.conftest import WorkerProcess, fresh_copies, upload_paths, wait_for, worker_database_url


def waiting_messages(queue: str) -> int:
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count


def status_of(job_id: int) -> str:
    return ScoringJob.objects.get(pk=job_id).status


@pytest.mark.slow
def test_bulk_work_waits_on_its_own_queue_and_a_person_can_move_a_job_forward(
        orthanc, ct_files, tmp_path, user_factory, api_client, scoring_worker):
    clinician, admin = user_factory("clinician"), api_client(user_factory("admin"))
    first = upload_paths(clinician, fresh_copies(ct_files[45:48], tmp_path)).jobs[0]
    wait_for(lambda: status_of(first.pk) == ScoringJob.Status.DONE, 120, 0.5, scoring_worker.log)
    retired = ModelVersion.objects.create(name="m:old", arch="smallcnn", trained=True, status="retired")
    ScoringJob.objects.filter(pk=first.pk).update(model_version=retired)  # scored by a model no longer active

    assert admin.post("/api/models/stale-series").json()["queued"] == 1
    rescore = ScoringJob.objects.get(series=first.series, status=ScoringJob.Status.QUEUED)
    run_id = admin.post("/api/retrain").json()["id"]
    assert rescore.bulk and waiting_messages(settings.CELERY_BULK_QUEUE) == 2

    # A new upload is scored by the main worker; the bulk work is still waiting, untouched.
    second = upload_paths(clinician, fresh_copies(ct_files[60:63], tmp_path)).jobs[0]
    wait_for(lambda: status_of(second.pk) == ScoringJob.Status.DONE, 120, 0.5, scoring_worker.log)
    assert status_of(rescore.pk) == ScoringJob.Status.QUEUED and waiting_messages(settings.CELERY_BULK_QUEUE) == 2
    assert RetrainRun.objects.get(pk=run_id).status == RetrainRun.Status.QUEUED

    # The clinician re-scores the waiting series: the same job, sent to the main queue too. (The main worker
    # is stopped for a moment, so that the bulk worker meets the job's older message while it is not done.)
    scoring_worker.stop()
    moved = api_client(clinician).post(f"/api/series/{first.series.series_uid}/rescore")
    assert moved.status_code == 202 and moved.json()["id"] == rescore.pk
    assert not ScoringJob.objects.get(pk=rescore.pk).bulk

    # A bulk worker: it ignores the moved job's older message (the main queue's scores it) and runs the
    # retraining (which fails: there are no labels).
    bulk_worker = WorkerProcess(worker_database_url(), tmp_path / "bulk.log", settings.CELERY_BULK_QUEUE).start()
    try:
        wait_for(lambda: RetrainRun.objects.get(pk=run_id).status == RetrainRun.Status.FAILED, 120, 0.5,
                 bulk_worker.log)
        wait_for(lambda: waiting_messages(settings.CELERY_BULK_QUEUE) == 0, 60, 0.5, bulk_worker.log)
        assert (api_client(clinician).get("/readyz").json() or {}).get("bulk_workers") == 1
    finally:
        bulk_worker.stop()
    assert "need at least 2 settled labels" in RetrainRun.objects.get(pk=run_id).error
    job = ScoringJob.objects.get(pk=rescore.pk)
    assert (job.status, job.attempts) == (ScoringJob.Status.QUEUED, 0), bulk_worker.log()  # left to the main queue

    scoring_worker.start()
    wait_for(lambda: status_of(rescore.pk) == ScoringJob.Status.DONE, 120, 0.5, scoring_worker.log)
    assert ScoringJob.objects.get(pk=rescore.pk).attempts == 1  # scored once
