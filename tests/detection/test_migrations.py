"""Data migration 0003 on a database as 0002 left it: old jobs get their flag threshold back, and study
verdicts follow the severity rule."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("detection", "0002_scoring_flag_threshold")]
AFTER = [("detection", "0003_backfill_flags_and_study_verdicts")]


@pytest.fixture
def latest_schema_afterwards():
    yield
    executor = MigrationExecutor(connection)  # the tests after this one need every migration applied
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate_to(target: list[tuple[str, str]], studies: str = "0001_initial"):
    """Migrate the test database to ``target``, with the studies tables as these detection migrations knew them
    (their historical Study has no later column); the historical models (apps) as they were there."""
    target = [*target, ("studies", studies)]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def historical_models(apps) -> tuple:
    """Patient, Study, Series, ModelVersion, ScoringJob, LocationScore at a migration state."""
    return (*(apps.get_model("studies", m) for m in ("Patient", "Study", "Series")),
            *(apps.get_model("detection", m) for m in ("ModelVersion", "ScoringJob", "LocationScore")))


@pytest.mark.django_db(transaction=True)
def test_backfill_restores_flag_threshold_and_recomputes_study_verdicts(latest_schema_afterwards):
    Patient, Study, Series, ModelVersion, ScoringJob, LocationScore = historical_models(migrate_to(BEFORE))

    version = ModelVersion.objects.create(name="m:1", arch="smallcnn", status="active", trained=True,
                                          config={"calibration": {"tamper_threshold": 0.99}})
    study = Study.objects.create(study_uid="1.2.3", patient=Patient.objects.create(patient_id="p"),
                                 verdict="TM", verdict_score=0.98)  # what the old rule chose
    genuine, tampered = (Series.objects.create(series_uid=f"1.2.3.{n}", study=study) for n in (1, 2))
    ScoringJob.objects.create(series=genuine, model_version=version, status="done", verdict="TM",
                              verdict_score=0.98, finished=timezone.now())
    job = ScoringJob.objects.create(series=tampered, model_version=version, status="done", verdict="FM",
                                    verdict_score=0.6, finished=timezone.now())
    for tamper in (0.995, 0.991, 0.95):
        LocationScore.objects.create(job=job, slice_index=0, x=16, y=16, p_tb=1 - tamper, p_tm=0, p_fb=0,
                                     p_fm=tamper, tamper=tamper)

    new = migrate_to(AFTER)
    job = new.get_model("detection", "ScoringJob").objects.get(pk=job.pk)
    assert (job.flag_threshold, job.flagged_locations) == (0.99, 2)
    study = new.get_model("studies", "Study").objects.get(pk=study.pk)
    assert (study.verdict, study.verdict_score, study.model_version) == ("FM", 0.6, "m:1")


@pytest.mark.django_db(transaction=True)
def test_backfill_takes_the_verdict_from_jobs_that_scored_nothing(latest_schema_afterwards):
    """0005: a job that stored no location had no lung tissue to score, so its genuine verdict goes; a job
    that stored locations keeps its verdict and gets no count (unknown)."""
    before, after = [("detection", "0004_scoring_edge_threshold")], [("detection", "0005_scoring_scored_locations")]
    Patient, Study, Series, ModelVersion, ScoringJob, LocationScore = historical_models(migrate_to(before))
    version = ModelVersion.objects.create(name="m:1", arch="smallcnn", status="active", trained=True, config={})
    patient = Patient.objects.create(patient_id="p")
    abdomen = Study.objects.create(study_uid="1.2.4", patient=patient, verdict="TB", verdict_score=0.0,
                                   model_version="m:1")
    mixed = Study.objects.create(study_uid="1.2.5", patient=patient, verdict="TB", verdict_score=0.0,
                                 model_version="m:1")
    empty_jobs = [
        ScoringJob.objects.create(series=Series.objects.create(series_uid=f"{study.study_uid}.1", study=study),
                                  model_version=version, status="done", verdict="TB", verdict_score=0.0,
                                  finished=timezone.now())
        for study in (abdomen, mixed)
    ]
    chest = ScoringJob.objects.create(series=Series.objects.create(series_uid="1.2.5.2", study=mixed),
                                      model_version=version, status="done", verdict="TM", verdict_score=0.7,
                                      finished=timezone.now())
    LocationScore.objects.create(job=chest, slice_index=0, x=16, y=16, p_tb=0.3, p_tm=0.7, p_fb=0, p_fm=0,
                                 tamper=0.0)

    new = migrate_to(after)
    jobs = new.get_model("detection", "ScoringJob").objects
    assert all((jobs.get(pk=j.pk).scored_locations, jobs.get(pk=j.pk).verdict, jobs.get(pk=j.pk).verdict_score)
               == (0, "", None) for j in empty_jobs)
    chest = jobs.get(pk=chest.pk)
    assert (chest.scored_locations, chest.verdict) == (None, "TM")
    studies = new.get_model("studies", "Study").objects
    rows = [studies.get(pk=abdomen.pk), studies.get(pk=mixed.pk)]
    assert [(s.verdict, s.verdict_score, s.model_version) for s in rows] == [("", None, "m:1"), ("TM", 0.7, "m:1")]


@pytest.mark.django_db(transaction=True)
def test_studies_whose_radiographs_were_checked_before_get_their_copy_move_count(latest_schema_afterwards):
    """studies 0004: the newest finished check of each radiograph series counts (an older one does not);
    a study without a finished check stays null (not checked)."""
    old = migrate_to([("detection", "0008_copy_move_check")], studies="0003_upload_batch_studies")
    Patient, Study, Series = (old.get_model("studies", m) for m in ("Patient", "Study", "Series"))
    CopyMoveCheck = old.get_model("detection", "CopyMoveCheck")
    patient = Patient.objects.create(patient_id="p")
    checked, waiting = (Study.objects.create(study_uid=uid, patient=patient) for uid in ("1.2.6", "1.2.7"))
    first, second = (Series.objects.create(series_uid=f"1.2.6.{n}", study=checked, modality="CR") for n in (1, 2))
    image = {"slice_index": 0, "sop_instance_uid": "1.2.6.1.1", "regions": []}
    CopyMoveCheck.objects.create(series=first, status="done", found=[image, image])  # older
    CopyMoveCheck.objects.create(series=first, status="done", found=[image])
    CopyMoveCheck.objects.create(series=second, status="done", found=[])
    CopyMoveCheck.objects.create(series=second, status="failed")
    CopyMoveCheck.objects.create(series=Series.objects.create(series_uid="1.2.7.1", study=waiting), status="queued")

    studies = migrate_to([("detection", "0008_copy_move_check")], studies="0004_study_copy_move_images") \
        .get_model("studies", "Study").objects
    assert (studies.get(pk=checked.pk).copy_move_images, studies.get(pk=waiting.pk).copy_move_images) == (1, None)
