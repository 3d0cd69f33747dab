"""Scoring: queue a job per series, run the detector on the series fetched over WADO-RS, store the scores."""

import json
import logging
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from detection.models import LocationScore, ModelVersion, ScoringJob, SliceScore
from portal.accounts.services import audit
from portal.studies import dicomweb
from portal.studies.models import Series, Study
from portal.studies.signals import series_scored

log = logging.getLogger(__name__)
MAX_LOCATIONS_PER_JOB = 2000  # the strongest patch scores; enough for overlays and queues

_detectors: dict[str, object] = {}


def get_detector(version: ModelVersion):
    """The worker keeps one loaded detector per model version between jobs."""
    key = version.artifact_path or "<default>"
    if key not in _detectors:
        from detection.ml.scoring import Detector

        _detectors[key] = Detector.load(version.artifact_path or None, device=settings.DETECTOR_DEVICE)
    return _detectors[key]


def _single_image_artifact() -> Path | None:
    """The artefact that scores claim images (``DETECTOR_SINGLE_IMAGE_ARTIFACT``, default the shipped one), or
    None for the active series model with its own single-image thresholds (``"series"``, or none shipped)."""
    from detection.ml.scoring import SINGLE_IMAGE_ARTIFACT

    setting = settings.DETECTOR_SINGLE_IMAGE_ARTIFACT
    if setting == "series":
        return None
    path = Path(setting) if setting else SINGLE_IMAGE_ARTIFACT
    if not (path / "config.json").exists():
        if setting:
            raise FileNotFoundError(f"DETECTOR_SINGLE_IMAGE_ARTIFACT: no config.json in {path}")
        return None
    return path


def get_single_image_detector():
    """The detector for an image scored alone (a claim image), or None: use the active series model."""
    path = _single_image_artifact()
    if path is None:
        return None
    key = f"single-image:{path}"
    if key not in _detectors:
        from detection.ml.scoring import Detector

        _detectors[key] = Detector.load(path, device=settings.DETECTOR_DEVICE)
    return _detectors[key]


def single_image_model_info() -> dict:
    """What scores claim images: the model, its input channels, thresholds per path and validation metrics.
    Read from the artefact's files: a web request need not load the model."""
    from detection.ml.single_image import thresholds

    path = _single_image_artifact()
    if path is None:
        version = current_model_version()
        return {"in_use": False, "model_kind": "series", "model": version.name,
                "thresholds": thresholds(version.config)}
    config = json.loads((path / "config.json").read_text())
    calibration = config.get("calibration_single_image") or {}
    metrics = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
    return {
        "in_use": True, "model_kind": "single-image",
        # as a claim result names it: Detector.model_name and SeriesResult.model_version
        "model": f"{config.get('model_name', config['arch'])}:{config.get('model_version', '0')}",
        "arch": config["arch"], "trained": bool(config.get("trained")), "channels": config["channels"],
        "thresholds": thresholds(config),
        "alpha": next((c.get("alpha") for c in calibration.values()), None),
        "metrics": {k: metrics[k] for k in ("n", "accuracy", "macro_roc_auc", "macro_f1") if k in metrics},
        "validation_z": config.get("val_z"), "training_data": config.get("training_data", ""),
    }


def register_default_model_version() -> ModelVersion:
    """Record the shipped (or DETECTOR_ARTIFACT) detector, flagged untrained if it is."""
    from detection.ml.scoring import Detector

    detector = Detector.load(settings.DETECTOR_ARTIFACT, device=settings.DETECTOR_DEVICE)
    key = settings.DETECTOR_ARTIFACT or "<default>"
    _detectors[key] = detector
    config = detector.config
    trained = bool(config.get("trained", False))
    version, _ = ModelVersion.objects.get_or_create(
        name=f"{detector.model_name}:{config.get('model_version', 'default')}",
        defaults={"arch": str(config.get("arch", detector.model_name)), "trained": trained,
                  "status": ModelVersion.Status.ACTIVE if trained else ModelVersion.Status.UNTRAINED,
                  "artifact_path": settings.DETECTOR_ARTIFACT or "", "config": config,
                  "metrics": config.get("metrics", {}), "promoted_at": timezone.now()},
    )
    return version


def current_model_version() -> ModelVersion:
    # An untrained default is used (and labelled so) only while nothing better exists.
    return (ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
            or ModelVersion.objects.filter(status=ModelVersion.Status.UNTRAINED).first()
            or register_default_model_version())


# The detector was trained on CT lungs in Hounsfield units: another modality's pixels mean nothing to it.
SCORED_MODALITIES = frozenset({"CT"})


def modality_not_scored(modality: str, what: str = "series") -> str:
    """Why the detector does not score images of this modality; "" when it does (no modality: tried)."""
    if modality and modality.upper() not in SCORED_MODALITIES:
        return f"not scored: the detector scores CT (lungs in Hounsfield units), and this {what} is {modality}"
    return ""


def not_scored_reason(series: Series) -> str:
    """Why the detector does not score this series; "" when it does."""
    from detection.radiographs import is_projection

    reason = modality_not_scored(series.modality)
    if reason and is_projection(series):
        reason += "; its images are checked for regions copied inside them instead"
    return reason


def enqueue_scoring(*, series: Series, bulk: bool = False) -> ScoringJob | None:
    """The series' queued job, or a new one; None for a series the detector does not score. `bulk` sends
    it to the bulk queue (re-scores of many series), behind nothing a person waits for.

    A large series arrives in several upload requests (the SPA sends 100 files per request); a job that
    has not started yet will fetch the whole series from the PACS, so it serves every later request too.
    A running or finished job may miss the new instances, so then exactly one new job is queued.
    """
    return None if not_scored_reason(series) else _queue_job(series, bulk=bulk)


def _queue_job(series: Series, *, bulk: bool = False) -> ScoringJob:
    """enqueue_scoring for a series the detector scores."""
    with transaction.atomic():
        # Serialise concurrent uploads of one series, so two requests cannot both create a job.
        list(Series.objects.select_for_update().filter(pk=series.pk).values_list("pk", flat=True))
        job = series.scoring_jobs.filter(status=ScoringJob.Status.QUEUED).order_by("created").first()
        if job is not None and not job.error and (bulk or not job.bulk):
            return job  # its task message is already (or about to be) on the broker
        # A queued job whose message never reached the broker is sent again rather than duplicated; a bulk
        # job wanted sooner is sent to the main queue too (the task is idempotent: the later copy finds it done).
        failed_send = job is not None and bool(job.error)
        if job is None:
            job = ScoringJob.objects.create(series=series, bulk=bulk)
        elif job.bulk and not bulk:
            ScoringJob.objects.filter(pk=job.pk).update(bulk=False)
            job.bulk = False

    def send() -> None:
        try:
            _send(job)
            if failed_send:
                ScoringJob.objects.filter(pk=job.pk, status=ScoringJob.Status.QUEUED).update(error="")
        except Exception as exc:  # broker down: the job stays queued and says why
            ScoringJob.objects.filter(pk=job.pk).update(error=f"could not reach the job queue: {exc}; "
                                                              "run `manage.py requeue_jobs` when it is back")

    transaction.on_commit(send)
    return job


def _send(job: ScoringJob) -> None:
    from detection.tasks import score_series_task

    score_series_task.apply_async((job.pk,), queue=settings.CELERY_BULK_QUEUE if job.bulk else None)


class CannotRescore(Exception):
    """Why a re-score request queues nothing."""


class ScoringInProgress(CannotRescore):
    """The series already has a job that will score it."""


def rescore_series(*, series: Series, actor: User, bulk: bool = False) -> ScoringJob:
    """Score the series again with the current model: after a failed job, or when a newer model is active.
    A job already queued or running makes a new one pointless (ScoringInProgress), except a queued job whose
    message never reached the broker, or one waiting on the bulk queue for a person who asks now: that job
    is sent again (_queue_job)."""
    if reason := not_scored_reason(series):
        raise CannotRescore(reason)
    pending = series.scoring_jobs.filter(status__in=[ScoringJob.Status.QUEUED, ScoringJob.Status.RUNNING]).first()
    if pending is not None and not (
        pending.status == ScoringJob.Status.QUEUED and (pending.error or (pending.bulk and not bulk))
    ):
        raise ScoringInProgress(f"this series is already {pending.status} for scoring (job {pending.pk})")
    job = _queue_job(series, bulk=bulk)
    audit(actor, "series.rescore", series, job=job.pk)
    return job


def stale_series() -> QuerySet[Series]:
    """Series whose latest finished job was scored by another model than the current one (e.g. before a
    promotion or a rollback; only the review queue's series are re-scored then)."""
    done = ScoringJob.objects.filter(series=OuterRef("pk"), status=ScoringJob.Status.DONE)
    scored_by = done.order_by("-finished").values("model_version_id")[:1]
    return (Series.objects.annotate(scored=Exists(done), scored_by=Subquery(scored_by)).filter(scored=True)
            .filter(Q(scored_by__isnull=True) | ~Q(scored_by=current_model_version().pk)))  # fmt: skip


def rescore_stale(*, actor: User) -> dict[str, int]:
    """Re-score every stale series with the current model; one already queued or running is left to its job,
    one the detector no longer scores (not CT, scored before that rule) is skipped."""
    counts = {"queued": 0, "already_pending": 0, "not_scored": 0}
    for series in stale_series().select_related("study"):
        try:
            rescore_series(series=series, actor=actor, bulk=True)
            counts["queued"] += 1
        except ScoringInProgress:
            counts["already_pending"] += 1
        except CannotRescore:
            counts["not_scored"] += 1
    return counts


def run_scoring_job(*, job_id: int, from_bulk_queue: bool = False) -> ScoringJob:
    """Idempotent: a finished job is left alone; a job left 'running' by a killed worker is redone. A message
    from the bulk queue for a job since moved to the main queue is ignored: the main queue's message scores it
    (else a bulk worker could run it a second time, while the main worker runs it)."""
    job = ScoringJob.objects.select_related("series__study").get(pk=job_id)
    if job.status == ScoringJob.Status.DONE or (from_bulk_queue and not job.bulk):
        return job
    version = current_model_version()
    ScoringJob.objects.filter(pk=job.pk).update(
        status=ScoringJob.Status.RUNNING, started=timezone.now(), attempts=job.attempts + 1,
        model_version=version, error="",
    )
    started = time.perf_counter()
    series = job.series
    # PacsUnavailable -> retry. The PACS may hold more of this series than the portal indexed (another
    # system's uploads): score exactly the indexed instances, so slice indices match the viewer's.
    indexed = set(series.instances.values_list("sop_instance_uid", flat=True))
    datasets = [ds for ds in dicomweb.retrieve_series(series.study.study_uid, series.series_uid)
                if ds.SOPInstanceUID in indexed]
    try:
        result = get_detector(version).score_series(datasets, top_k=500)  # a wide pool for the AL queues
        sop_by_index = [datasets[i].SOPInstanceUID for i in result.order]  # the detector's z order
    except Exception as exc:
        log.exception("scoring job %s failed", job.pk)
        ScoringJob.objects.filter(pk=job.pk).update(
            status=ScoringJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
        job.refresh_from_db()
        return job
    heatmap_path = _save_heatmaps(job.pk, result.heatmaps)
    with transaction.atomic():
        job = ScoringJob.objects.select_for_update().get(pk=job.pk)
        job.slice_scores.all().delete()
        job.location_scores.all().delete()
        SliceScore.objects.bulk_create([
            SliceScore(job=job, slice_index=i, sop_instance_uid=sop_by_index[i], p_tb=float(p[0]), p_tm=float(p[1]),
                       p_fb=float(p[2]), p_fm=float(p[3]), tamper=float(result.slice_tamper[i]))
            for i, p in enumerate(result.slice_probs)
        ])
        locations = sorted(result.locations, key=lambda loc: loc.tamper, reverse=True)[:MAX_LOCATIONS_PER_JOB]
        LocationScore.objects.bulk_create([
            LocationScore(job=job, slice_index=loc.slice_index, x=loc.x, y=loc.y, p_tb=loc.probs["TB"],
                          p_tm=loc.probs["TM"], p_fb=loc.probs["FB"], p_fm=loc.probs["FM"], tamper=loc.tamper)
            for loc in locations
        ])
        job.status = ScoringJob.Status.DONE
        # A series without lung tissue (an abdominal CT) has nothing to score: no verdict, rather than a
        # genuine one the detector never reached.
        job.scored_locations = result.n_patches
        job.verdict = result.verdict if result.n_patches else ""
        job.verdict_score = float(result.verdict_score) if result.n_patches else None
        job.flag_threshold = float(result.threshold)
        job.flagged_locations = result.n_flagged
        job.edge_flag_threshold = result.edge_threshold
        job.edge_slices = result.edge_slices
        job.heatmap_path = str(heatmap_path)
        job.finished = timezone.now()
        job.duration_s = time.perf_counter() - started
        job.save()
        update_study_verdict(series.study)
    series_scored.send(sender=ScoringJob, job=job)
    return job


def _save_heatmaps(job_id: int, heatmaps: np.ndarray) -> Path:
    path = Path(settings.RESULTS_DIR) / "heatmaps" / f"job-{job_id}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(heatmaps, dtype=np.float16))
    return path


# A tamper verdict outranks any genuine one, whatever the scores: a verdict's score is the probability of
# its own class, so a confident TM series would otherwise hide a tampered series of the same study.
VERDICT_SEVERITY = {"FM": 2, "FB": 2, "TM": 1, "TB": 0}


def update_study_verdict(study: Study) -> None:
    """Study verdict = the most severe verdict among its series' latest finished jobs, the higher score
    breaking ties; none when no series has a verdict (nothing scored, or nothing to score)."""
    done = [job for series in study.series.all() if (job := latest_done_job(series))]
    jobs = [job for job in done if job.verdict]
    if not jobs:  # the model that found nothing to score is kept: the study was scored, without a verdict
        model = next((job.model_version.name for job in done if job.model_version), "")
        Study.objects.filter(pk=study.pk).update(verdict="", verdict_score=None, model_version=model)
        return
    best = max(jobs, key=lambda job: (VERDICT_SEVERITY.get(job.verdict, 0), job.verdict_score or 0.0))
    Study.objects.filter(pk=study.pk).update(
        verdict=best.verdict, verdict_score=best.verdict_score,
        model_version=best.model_version.name if best.model_version else "",
    )


def latest_done_job(series: Series) -> ScoringJob | None:
    return series.scoring_jobs.filter(status=ScoringJob.Status.DONE).order_by("-finished").first()


def heatmap_slice(job: ScoringJob, slice_index: int) -> np.ndarray:
    heatmaps = np.load(job.heatmap_path, mmap_mode="r")
    return np.asarray(heatmaps[slice_index], dtype=np.float32)


def requeue_unfinished() -> int:
    """Re-send queued jobs (e.g. after the broker was down)."""
    jobs = list(ScoringJob.objects.filter(status__in=[ScoringJob.Status.QUEUED, ScoringJob.Status.RUNNING]))
    for job in jobs:
        _send(job)
    return len(jobs)
