"""End to end on the real CT in a real Orthanc: scoring fills the queue, strategies re-rank it with patch
embeddings / MC-dropout fetched from the PACS, labels answer leases, a retrain run fine-tunes and gates."""

import pytest

from annotations.models import QueueItem, RetrainRun
from annotations.services import label_create, queue_build, retrain_request
from detection.models import ModelVersion
from detection.services import run_scoring_job

pytestmark = pytest.mark.slow


@pytest.mark.django_db
def test_scored_series_gets_a_queue_and_a_retrain_run_closes_the_loop(
    uploaded_ct, user_factory, settings, django_capture_on_commit_callbacks
):
    settings.ACTIVE_LEARNING_BATCH = 10
    settings.PROMOTION_HELDOUT_N = 48
    settings.RETRAIN_EPOCHS = 1
    annotator, admin = user_factory("annotator"), user_factory("admin")
    study = uploaded_ct()
    series = study.series.get()
    from portal.studies.services import study_share

    study_share(actor=admin, study=study, user=annotator, kind="assign")
    from detection.models import ScoringJob

    job = ScoringJob.objects.create(series=series)
    with django_capture_on_commit_callbacks(execute=True):
        job = run_scoring_job(job_id=job.pk)  # sends series_scored -> queue build task (eager)
    assert job.status == ScoringJob.Status.DONE
    default_items = list(QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN))
    assert len(default_items) == 10 and {i.strategy for i in default_items} == {"typiclust_bald"}
    assert all(i.sop_instance_uid for i in default_items)
    assert len({i.slice_index for i in default_items}) >= 5  # typical members of 10 k-means cells: spread over the scan

    # Diversity-aware batch mode on real patch embeddings: the batch spreads over the scan.
    diverse = queue_build(job=job, strategy="diverse_entropy", batch_size=10)
    assert len(diverse) == 10 and len({i.slice_index for i in diverse}) >= 5
    diverse_mc = queue_build(job=job, strategy="diverse_mc_dropout", batch_size=10)
    assert len(diverse_mc) == 10 and len({i.slice_index for i in diverse_mc}) >= 5
    mc = queue_build(job=job, strategy="mc_dropout", batch_size=10)
    assert len(mc) == 10 and QueueItem.objects.filter(series=series, status="open").count() == 10

    # Label outside the held-out z-region (labels inside it never train: see detection.promotion).
    for (z, x, y), cls in zip(((10, 256, 300), (20, 150, 250), (30, 360, 250), (40, 256, 200)),
                              ("TB", "TM", "TB", "FM"), strict=True):  # fmt: skip
        label_create(user=annotator, series=series, slice_index=z, x=x, y=y, label_class=cls)
    label_create(user=annotator, series=series, slice_index=80, x=256, y=256, label_class="TB")  # held out

    with django_capture_on_commit_callbacks(execute=True):
        run = retrain_request(actor=admin)
    run.refresh_from_db()
    assert run.status in (RetrainRun.Status.PROMOTED, RetrainRun.Status.REJECTED), run.error
    assert run.n_labels == 4 and {r["label"] for r in run.snapshot} == {"TB", "TM", "FM"}
    candidate = run.candidate_version
    assert candidate.parent == run.base_version and candidate.trained
    assert candidate.metrics["gate"]["metric"] == "macro_roc_auc" and candidate.metrics["heldout"]["n"] == 48
    expected = ModelVersion.Status.ACTIVE if run.status == "promoted" else ModelVersion.Status.REJECTED
    assert candidate.status == expected
