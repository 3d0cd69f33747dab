"""The scoring pipeline on real services: a job per uploaded series, a real worker, kills and outages."""

import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from detection.models import ScoringJob
from detection.services import get_detector, run_scoring_job, update_study_verdict
from portal.studies.models import Instance, Patient, Series, Study, UploadBatch
from tests.conftest import fresh_copies, upload_paths, wait_for

CLASSES = {"TB", "TM", "FB", "FM"}


@pytest.mark.django_db
def test_scoring_job_stores_per_slice_scores_and_marks_model_version(uploaded_ct, user_factory, api_client):
    clinician = user_factory("clinician")
    study = uploaded_ct(clinician)
    series = study.series.get()
    job = ScoringJob.objects.get(series=series)
    assert job.status == ScoringJob.Status.QUEUED  # queued on upload; run here in-process

    job = run_scoring_job(job_id=job.pk)
    assert job.status == ScoringJob.Status.DONE, job.error
    client = api_client(clinician)
    scores = client.get(f"/api/series/{series.series_uid}/scores").json()
    assert len(scores["slices"]) == 99
    assert scores["model_version"]["trained"] in (True, False)
    assert scores["model_version"]["status"] == ("active" if scores["model_version"]["trained"] else "untrained")
    for row in scores["slices"]:
        assert set(row["probs"]) == CLASSES
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    # Scores are keyed to the instance at that z rank, so the viewer overlays the right slice.
    by_index = dict(Instance.objects.filter(series=series).values_list("slice_index", "sop_instance_uid"))
    assert all(row["sop_instance_uid"] == by_index[row["slice_index"]] for row in scores["slices"])
    assert client.get(f"/api/series/{series.series_uid}/heatmap/50.png")["Content-Type"] == "image/png"
    # The calibrated threshold comes with the scores, so a client can tell a finding from a high score
    # below it; the verdict is a tamper class exactly when some location reached it.
    threshold, flagged = scores["flag_threshold"], scores["flagged_locations"]
    assert threshold == pytest.approx(get_detector(job.model_version).threshold)
    assert flagged == sum(loc["tamper"] >= threshold for loc in scores["locations"]) or flagged > 200
    assert (scores["verdict"] in {"FB", "FM"}) == (flagged > 0)
    listed = client.get("/api/studies").json()["results"][0]
    assert listed["verdict"] in CLASSES and listed["model_version"]

    # Idempotent: running a finished job again changes nothing.
    again = run_scoring_job(job_id=job.pk)
    assert again.attempts == job.attempts and again.slice_scores.count() == 99


def _study_of_two_series(n: int) -> tuple[Study, list[Series]]:
    """A study (index only, nothing in the PACS) with two series, for the study-verdict rule."""
    study = Study.objects.create(study_uid=f"1.2.826.0.1.3680043.10.5.{n}",
                                 patient=Patient.objects.create(patient_id=f"v{n}"))
    return study, [Series.objects.create(series_uid=f"{study.study_uid}.{i}", study=study) for i in (1, 2)]


@pytest.mark.django_db
def test_study_verdict_is_the_most_severe_series_verdict_not_the_highest_score(user_factory, api_client):
    """A verdict's score is its own class's probability: a confident genuine series (TM 0.98) must not hide a
    tampered one (FM 0.60) of the same study, and a later genuine re-score of that series clears it."""
    study, (genuine, tampered) = _study_of_two_series(1)
    ScoringJob.objects.create(series=genuine, status=ScoringJob.Status.DONE, verdict="TM", verdict_score=0.98,
                              finished=timezone.now())
    ScoringJob.objects.create(series=tampered, status=ScoringJob.Status.DONE, verdict="FM", verdict_score=0.60,
                              finished=timezone.now())
    update_study_verdict(study)
    study.refresh_from_db()
    assert (study.verdict, study.verdict_score) == ("FM", 0.60)
    admin = api_client(user_factory("admin"))

    def listed(verdict: str) -> list[str]:
        return [s["study_uid"] for s in admin.get(f"/api/studies?verdict={verdict}").json()["results"]]

    assert listed("tampered") == listed("FM") == [study.study_uid] and listed("genuine") == []
    assert admin.get("/api/studies?verdict=fake").status_code == 400

    ScoringJob.objects.create(series=tampered, status=ScoringJob.Status.DONE, verdict="TB", verdict_score=0.99,
                              finished=timezone.now() + timedelta(seconds=1))
    update_study_verdict(study)
    study.refresh_from_db()
    assert (study.verdict, study.verdict_score) == ("TM", 0.98)
    assert listed("tampered") == [] and listed("genuine") == [study.study_uid]


@pytest.mark.django_db
def test_a_series_without_lungs_is_scored_without_a_verdict(orthanc, shared_data, tmp_path, user_factory, api_client):
    """The LIDC-IDRI slice is abdominal (kidneys, no lung): the detector finds nothing to score, and the job,
    the study and the API say so instead of a genuine verdict it never reached."""
    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, fresh_copies([shared_data / "lidc-idri-0002-single-slice" / "ref_scan.dcm"],
                                                   tmp_path))
    job = run_scoring_job(job_id=outcome.jobs[0].pk)
    assert job.status == ScoringJob.Status.DONE, job.error
    assert (job.scored_locations, job.verdict, job.verdict_score) == (0, "", None)
    client = api_client(clinician)
    scores = client.get(f"/api/series/{job.series.series_uid}/scores").json()
    assert scores["verdict"] is None and scores["scored_locations"] == 0 and scores["locations"] == []
    study_uid = job.series.study.study_uid
    study = client.get(f"/api/studies/{study_uid}").json()
    assert study["verdict"] is None and study["nothing_to_score"] is True and study["model_version"]
    assert study["series"][0]["job"]["scored_locations"] == 0

    def listed(verdict: str) -> list[str]:
        return [s["study_uid"] for s in client.get(f"/api/studies?verdict={verdict}").json()["results"]]

    assert listed("nothing_to_score") == [study_uid] and listed("unscored") == listed("genuine") == []


@pytest.mark.django_db
def test_a_series_with_nothing_to_score_leaves_the_study_verdict_to_the_others(user_factory):
    study, (chest, abdomen) = _study_of_two_series(2)
    ScoringJob.objects.create(series=abdomen, status=ScoringJob.Status.DONE, verdict="", scored_locations=0,
                              finished=timezone.now())
    ScoringJob.objects.create(series=chest, status=ScoringJob.Status.DONE, verdict="TB", verdict_score=0.9,
                              scored_locations=1200, finished=timezone.now())
    update_study_verdict(study)
    study.refresh_from_db()
    assert (study.verdict, study.verdict_score) == ("TB", 0.9)


def mr_copies(paths, tmp_path):
    """CT slices relabelled MR: pixels the CT detector would misread as Hounsfield units."""
    import pydicom

    copies = fresh_copies(paths, tmp_path)
    for path in copies:
        ds = pydicom.dcmread(path)
        ds.Modality = "MR"
        ds.save_as(path, enforce_file_format=True)
    return copies


@pytest.mark.django_db
def test_a_series_of_another_modality_is_stored_but_not_scored(orthanc, ct_files, tmp_path, user_factory,
                                                               api_client):
    owner = user_factory("clinician")
    outcome = upload_paths(owner, mr_copies(ct_files[45:47], tmp_path))
    assert len(outcome.stored) == 2 and outcome.jobs == []
    series_uid = outcome.stored[0]["series_uid"]
    [not_scored] = outcome.not_scored  # the upload's answer says so at once
    assert not_scored["series_uid"] == series_uid and not_scored["reason"].endswith("this series is MR")
    assert not_scored["copy_move_check"] is False  # MR is not a projection radiograph
    client = api_client(owner)
    reason = client.get(f"/api/series/{series_uid}").json()["not_scored_reason"]
    assert "detector scores CT" in reason and reason.endswith("this series is MR")
    refused = client.post(f"/api/series/{series_uid}/rescore")
    assert refused.status_code == 409 and refused.json()["detail"] == reason
    assert not ScoringJob.objects.filter(series__series_uid=series_uid).exists()


@pytest.mark.django_db
def test_rescore_runs_a_new_job_only_when_none_is_pending(orthanc, ct_files, tmp_path, user_factory, api_client):
    """A clinician re-scores their series (after a failure, or for a newer model): refused while a job is
    queued or running, a new job once the last one finished or failed; the old job's results are kept."""
    owner = user_factory("clinician")
    outcome = upload_paths(owner, fresh_copies(ct_files[45:48], tmp_path))
    series, first = outcome.jobs[0].series, outcome.jobs[0]
    client = api_client(owner)
    url = f"/api/series/{series.series_uid}/rescore"
    refused = client.post(url)
    assert refused.status_code == 409 and f"already queued for scoring (job {first.pk})" in refused.json()["detail"]

    run_scoring_job(job_id=first.pk)
    again = client.post(url)
    assert again.status_code == 202 and again.json()["status"] == "queued" and again.json()["id"] != first.pk
    assert client.post(url).status_code == 409  # the new job is pending
    second = run_scoring_job(job_id=again.json()["id"])
    assert second.status == ScoringJob.Status.DONE and ScoringJob.objects.get(pk=first.pk).slice_scores.count() == 3
    assert client.get(f"/api/series/{series.series_uid}/scores").json()["job"] == second.pk

    ScoringJob.objects.filter(pk=second.pk).update(status=ScoringJob.Status.FAILED, error="decoder crashed")
    assert client.post(url).status_code == 202  # a failed job can be retried
    assert api_client(user_factory("clinician")).post(url).status_code == 404  # not their study
    for role in ("annotator", "insurer"):
        assert api_client(user_factory(role)).post(url).status_code == 403
    assert api_client(user_factory("expert")).post(url).status_code == 409  # queued by the owner just now


@pytest.mark.django_db
def test_series_scored_by_an_older_model_are_listed_and_rescored_by_an_admin(user_factory, api_client):
    from detection.models import ModelVersion

    active = ModelVersion.objects.create(name="m:new", arch="smallcnn", trained=True, status="active")
    retired = ModelVersion.objects.create(name="m:old", arch="smallcnn", trained=True, status="retired")
    _, (current, stale) = _study_of_two_series(3)
    _, (pending, unscored) = _study_of_two_series(4)
    for series, version in ((current, active), (stale, retired), (pending, retired)):
        ScoringJob.objects.create(series=series, model_version=version, status=ScoringJob.Status.DONE,
                                  finished=timezone.now())
    ScoringJob.objects.create(series=pending, status=ScoringJob.Status.RUNNING)
    ScoringJob.objects.create(series=unscored, status=ScoringJob.Status.QUEUED)
    expert, admin = api_client(user_factory("expert")), api_client(user_factory("admin"))

    assert expert.get("/api/models/stale-series").json() == {"model": "m:new", "stale_series": 2}
    assert expert.post("/api/models/stale-series").status_code == 403
    answer = admin.post("/api/models/stale-series")
    assert answer.status_code == 202 and answer.json() == {"queued": 1, "already_pending": 1, "not_scored": 0}
    assert stale.scoring_jobs.filter(status=ScoringJob.Status.QUEUED).count() == 1
    assert not current.scoring_jobs.exclude(status=ScoringJob.Status.DONE).exists()


@pytest.mark.slow
def test_killed_worker_job_completes_after_restart(orthanc, ct_files, user_factory, scoring_worker):
    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, ct_files)  # transactional test: on_commit sends the job to the broker
    job_id = outcome.jobs[0].pk

    def job():
        return ScoringJob.objects.get(pk=job_id)

    wait_for(lambda: job().status == ScoringJob.Status.RUNNING, 120, 0.05, "the worker to start the job")
    scoring_worker.kill()
    assert job().status == ScoringJob.Status.RUNNING  # died mid-job: nothing acknowledged

    scoring_worker.start()
    try:
        wait_for(lambda: job().status == ScoringJob.Status.DONE, 300, 1, "the job to finish after restart")
    except AssertionError:
        raise AssertionError(scoring_worker.log()) from None
    finished = job()
    assert finished.attempts >= 2 and finished.slice_scores.count() == 99


@pytest.mark.slow
def test_orthanc_down_during_upload_loses_nothing(orthanc, ct_files, user_factory, api_client, scoring_worker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    clinician = user_factory("clinician")
    files = ct_files[:5]
    orthanc.stop()
    try:
        response = api_client(clinician).post(
            "/api/studies/upload", {"files": [SimpleUploadedFile(p.name, p.read_bytes()) for p in files]},
            format="multipart")
    finally:
        time.sleep(1)
        orthanc.start()
    assert response.status_code == 503
    body = response.json()
    assert body["retry"] is True and "unreachable" in body["detail"]
    batch = UploadBatch.objects.get(pk=body["batch"])
    assert batch.status == UploadBatch.Status.STAGED and len(list(batch.staging_dir.glob("*.dcm"))) == 5

    def stored():
        batch.refresh_from_db()
        return batch.status == UploadBatch.Status.STORED

    try:
        wait_for(stored, 120, 1, "the retry task to store the staged batch")
    except AssertionError:
        raise AssertionError(scoring_worker.log()) from None
    assert batch.instances_stored == 5 and not batch.staging_dir.exists()
    history = api_client(clinician).get(f"/api/uploads/{batch.pk}").json()  # where the uploader sees it
    assert history["status"] == "stored" and history["instances_stored"] == 5 and history["attempts"] >= 2
    assert [s["study_uid"] for s in history["studies"]] == [Instance.objects.first().series.study.study_uid]
    series_uid = Instance.objects.first().series.series_uid
    study_uid = Instance.objects.first().series.study.study_uid
    found = requests.get(f"{orthanc.dicomweb_url}/studies/{study_uid}/series/{series_uid}/instances",
                         headers={"Accept": "application/dicom+json"}, timeout=30).json()
    assert {i["00080018"]["Value"][0] for i in found} >= set(
        Instance.objects.values_list("sop_instance_uid", flat=True))


@pytest.mark.django_db
def test_series_uploaded_in_several_requests_gets_one_queued_job(orthanc, ct_files, user_factory):
    clinician = user_factory("clinician")
    first = upload_paths(clinician, ct_files[:3])
    second = upload_paths(clinician, ct_files[3:6])  # the SPA sends a big series 100 files per request
    series = Instance.objects.first().series
    assert first.jobs[0].pk == second.jobs[0].pk
    assert list(ScoringJob.objects.filter(series=series).values_list("status", flat=True)) == ["queued"]

    # A job already running may have fetched the series before the next request's files were stored:
    # exactly one new queued job follows it, and later requests reuse that one.
    ScoringJob.objects.filter(pk=first.jobs[0].pk).update(status=ScoringJob.Status.RUNNING)
    third = upload_paths(clinician, ct_files[6:8])
    fourth = upload_paths(clinician, ct_files[8:10])
    assert third.jobs[0].pk == fourth.jobs[0].pk != first.jobs[0].pk
    assert sorted(ScoringJob.objects.filter(series=series).values_list("status", flat=True)) == [
        "queued", "running"]
    assert Instance.objects.filter(series=series).count() == 10


@pytest.mark.django_db
def test_scoring_covers_exactly_the_indexed_instances_even_if_the_pacs_holds_more(orthanc, ct_files, user_factory):
    from portal.studies.dicomweb import PortalDICOMwebClient

    PortalDICOMwebClient(orthanc.dicomweb_url).store_files([p.read_bytes() for p in ct_files[:20]])  # not via portal
    outcome = upload_paths(user_factory("clinician"), ct_files[:4])
    job = run_scoring_job(job_id=outcome.jobs[0].pk)
    assert job.status == ScoringJob.Status.DONE, job.error
    indexed = dict(Instance.objects.filter(series=job.series).values_list("slice_index", "sop_instance_uid"))
    assert len(indexed) == 4
    assert dict(job.slice_scores.values_list("slice_index", "sop_instance_uid")) == indexed
