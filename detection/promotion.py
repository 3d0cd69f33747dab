"""Retrain -> evaluate -> promote (or reject) -> re-score, and rollback. Django side of the ML core.

The gate compares candidate and current model on one fixed, scan-level held-out set: simulated
CT-GAN-style tampering (detection.ml.simulator) at sites drawn only from a z-region of the shared chest CT
that no training data may come from (labels on that series in that region are left out of every snapshot).
The set is simulated once with a fixed seed and cached, so every candidate is measured on the same patches.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotations.models import Label, QueueItem, RetrainRun
from detection.models import ModelVersion
from detection.services import SCORED_MODALITIES
from portal.accounts.services import audit

log = logging.getLogger(__name__)


def gate_settings() -> dict:
    return {
        "metric": getattr(settings, "PROMOTION_METRIC", "macro_roc_auc"),
        "tolerance": float(getattr(settings, "PROMOTION_TOLERANCE", 0.0)),
        "heldout_z": tuple(getattr(settings, "PROMOTION_HELDOUT_Z", (64, 92))),
        "heldout_n": int(getattr(settings, "PROMOTION_HELDOUT_N", 400)),
        "heldout_seed": int(getattr(settings, "PROMOTION_HELDOUT_SEED", 12345)),
        "epochs": int(getattr(settings, "RETRAIN_EPOCHS", 3)),
    }


def models_dir() -> Path:
    return Path(settings.VAR_DIR) / "models"


# ---- held-out set -----------------------------------------------------------------------------------------
def heldout_patchset(patch_size: int, channels) -> object:
    """The fixed held-out PatchSet for this patch geometry (cached under VAR_DIR)."""
    from detection.ml.data import PatchSet, load_scan, simulate_patchset

    g = gate_settings()
    chan_key = "-".join(f"{n}{dz}" for n, dz in channels)
    z0, z1 = g["heldout_z"]
    name = f"z{z0}-{z1}_n{g['heldout_n']}_s{g['heldout_seed']}_p{patch_size}_{chan_key}.npz"
    path = models_dir() / "heldout" / name
    if path.exists():
        return PatchSet.load(path)
    vol, spacing = load_scan()
    ps = simulate_patchset(vol, spacing, g["heldout_n"], g["heldout_z"], seed=g["heldout_seed"], patch=patch_size,
                           channels=[tuple(c) for c in channels], scan_id="heldout")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    ps.save(path)
    return ps


def heldout_series_uid() -> str:
    """Series UID of the shared chest CT: labels on it inside the held-out z-region never train a model."""
    import pydicom

    from detection.ml.data import default_scan_dir

    first = next(iter(sorted(default_scan_dir().glob("*.dcm"))), None)
    return str(pydicom.dcmread(first, stop_before_pixels=True).SeriesInstanceUID) if first else ""


def evaluate_artifact(artifact_dir: str | Path | None) -> dict:
    """Metrics of an artefact (None: the shipped default / untrained fallback) on the fixed held-out set."""
    from detection.ml.evaluation import evaluate
    from detection.ml.scoring import Detector

    det = Detector.load(artifact_dir or None, device="cpu")
    ps = heldout_patchset(det.patch, det.channels)
    metrics = evaluate(det, ps, n_boot=0)
    metrics.pop("ci95", None)
    metrics["heldout"] = {"n": len(ps), "z": list(gate_settings()["heldout_z"]), "snapshot": ps.snapshot_id()}
    return metrics


@dataclass
class GateDecision:
    promote: bool
    metric: str
    candidate: float
    baseline: float
    tolerance: float

    @property
    def reason(self) -> str:
        verb = "promoted" if self.promote else "rejected"
        return (f"{verb}: {self.metric} {self.candidate:.4f} vs current {self.baseline:.4f} "
                f"(tolerance {self.tolerance:.4f})")  # fmt: skip


def gate(candidate: dict, baseline: dict, *, metric: str | None = None, tolerance: float | None = None) -> GateDecision:
    """Promote only if the candidate is not worse than the current model by more than the tolerance."""
    g = gate_settings()
    metric = metric or g["metric"]
    tol = g["tolerance"] if tolerance is None else tolerance
    cand, base = float(candidate[metric]), float(baseline[metric])
    return GateDecision(promote=cand >= base - tol, metric=metric, candidate=cand, baseline=base, tolerance=tol)


# ---- version bookkeeping -------------------------------------------------------------------------------------
def current_version() -> ModelVersion:
    from detection.services import current_model_version

    return current_model_version()


def _materialise(version: ModelVersion) -> Path:
    """fine_tune needs an artefact dir; the untrained fallback has none, so write it out once."""
    if version.artifact_path and (Path(version.artifact_path) / "config.json").exists():
        return Path(version.artifact_path)
    import torch

    from detection.ml.scoring import Detector

    det = Detector.load(None, device="cpu")
    out = models_dir() / f"base-{version.pk}"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(det.model.state_dict(), out / "model.pt")
    (out / "config.json").write_text(json.dumps(det.config, indent=2))
    return out


@transaction.atomic
def promote(*, version: ModelVersion, actor: User | None, reason: str = "") -> ModelVersion:
    """Make ``version`` the only ACTIVE model; the previous one is retired (and can be rolled back to)."""
    previous = list(ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE))
    for old in previous:
        if old.pk != version.pk:
            old.status = ModelVersion.Status.RETIRED
            old.save(update_fields=["status"])
    version.status = ModelVersion.Status.ACTIVE
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "promoted_at"])
    audit(actor, "model.promote", version, previous=[o.name for o in previous], reason=reason)
    return version


def rollback(*, actor: User | None, to: ModelVersion | None = None) -> ModelVersion:
    """Re-activate ``to`` (default: the most recently promoted retired version)."""
    if to is None:
        to = (
            ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, promoted_at__isnull=False)
            .order_by("-promoted_at").first()
        )  # fmt: skip
        if to is None:
            raise ValueError("no earlier promoted version to roll back to")
    if to.status == ModelVersion.Status.UNTRAINED or not to.trained:
        raise ValueError("refusing to activate an untrained model")
    current = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    version = promote(version=to, actor=actor, reason=f"rollback from {current.name if current else 'none'}")
    audit(actor, "model.rollback", version, previous=current.name if current else None)
    return version


# ---- the retrain run -----------------------------------------------------------------------------------------
def label_snapshot() -> list[dict]:
    """Training labels: current (non-deleted) labels of studies not withdrawn; on settled queue items only the
    consensus/adjudication."""
    g = gate_settings()
    held_uid = heldout_series_uid()
    rows = []
    # A withdrawn study's labels do not train (uploaded in error, or consent withdrawn), nor labels of a series
    # the detector does not read (refused since; one from before would train on non-Hounsfield pixels).
    labels = Label.objects.filter(is_deleted=False, study__withdrawn_at__isnull=True,
                                  series__modality__in=["", *SCORED_MODALITIES]).select_related(
        "series__study", "queue_item")
    for lab in labels:
        item = lab.queue_item
        if item is not None:
            if item.status not in (QueueItem.Status.DONE,):
                continue  # undecided: open or disputed items do not train
            if lab.label_class != item.consensus_class:
                continue
        if lab.series.series_uid == held_uid and g["heldout_z"][0] <= lab.slice_index < g["heldout_z"][1]:
            continue  # the held-out region stays unseen
        rows.append({"id": lab.pk, "version": lab.version, "series": lab.series.series_uid,
                     "study": lab.series.study.study_uid, "slice": lab.slice_index, "x": lab.x, "y": lab.y,
                     "label": lab.label_class})  # fmt: skip
    # Two agreeing annotators on one item make one training sample, not two.
    seen, unique = set(), []
    for r in rows:
        key = (r["series"], r["slice"], r["x"], r["y"])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def _samples(snapshot: list[dict]) -> list[tuple]:
    from detection.ml.preprocessing import volume_from_datasets
    from portal.studies import dicomweb

    by_series: dict[tuple[str, str], list[dict]] = {}
    for r in snapshot:
        by_series.setdefault((r["study"], r["series"]), []).append(r)
    samples = []
    for (study_uid, series_uid), rows in by_series.items():
        vol, _, _ = volume_from_datasets(dicomweb.retrieve_series(study_uid, series_uid))
        samples += [(vol, r["slice"], r["x"], r["y"], r["label"]) for r in rows if r["slice"] < vol.shape[0]]
    return samples


def train_candidate(*, base: ModelVersion, samples: list[tuple], out_dir: Path, epochs: int | None = None) -> Path:
    from detection.ml.training import fine_tune

    out_dir.mkdir(parents=True, exist_ok=True)
    return fine_tune(_materialise(base), samples, epochs=epochs or gate_settings()["epochs"], out_dir=out_dir)


def register_candidate(*, artifact: Path, base: ModelVersion, metrics: dict, notes: str = "") -> ModelVersion:
    config = json.loads((artifact / "config.json").read_text())
    config.pop("history", None)
    return ModelVersion.objects.create(
        name=f"{config.get('model_name', config.get('arch'))}:{config.get('model_version', artifact.name)}",
        arch=config.get("arch", ""), status=ModelVersion.Status.CANDIDATE, trained=True,
        artifact_path=str(artifact), parent=base, config=config, metrics=metrics, notes=notes,
    )  # fmt: skip


def evaluate_and_gate(*, candidate: ModelVersion, base: ModelVersion, actor: User | None) -> GateDecision:
    """Measure both on the held-out set now (not trusting stored numbers), then promote or reject."""
    base_metrics = evaluate_artifact(base.artifact_path or None)
    cand_metrics = evaluate_artifact(candidate.artifact_path)
    decision = gate(cand_metrics, base_metrics)
    candidate.metrics = {**cand_metrics, "gate": {**decision.__dict__, "baseline_metrics_of": base.name}}
    candidate.notes = decision.reason
    candidate.save(update_fields=["metrics", "notes"])
    if not base.metrics:
        ModelVersion.objects.filter(pk=base.pk).update(metrics=base_metrics)
    if decision.promote:
        promote(version=candidate, actor=actor, reason=decision.reason)
    else:
        candidate.status = ModelVersion.Status.REJECTED
        candidate.save(update_fields=["status"])
        audit(actor, "model.reject", candidate, reason=decision.reason)
    return decision


def rescore_queue() -> int:
    """Re-score every series with open queue items so the queue is ranked by the new model."""
    from detection.services import enqueue_scoring
    from portal.studies.models import Series

    series = Series.objects.filter(queue_items__status=QueueItem.Status.OPEN).distinct()
    n = 0
    for s in series:
        enqueue_scoring(series=s, bulk=True)
        n += 1
    return n


def run_retrain(*, run_id: int) -> RetrainRun:
    """Idempotent per run: a finished run is left alone."""
    run = RetrainRun.objects.get(pk=run_id)
    if run.status in (RetrainRun.Status.PROMOTED, RetrainRun.Status.REJECTED):
        return run
    base = current_version()
    snapshot = label_snapshot()
    RetrainRun.objects.filter(pk=run.pk).update(
        status=RetrainRun.Status.RUNNING, base_version=base, n_labels=len(snapshot), snapshot=snapshot
    )
    run.refresh_from_db()
    if len(snapshot) < 2:
        return _finish(run, RetrainRun.Status.FAILED, error="need at least 2 settled labels to retrain")
    out = models_dir() / f"run-{run.pk}"
    shutil.rmtree(out, ignore_errors=True)  # a redelivered task starts the run afresh
    try:
        artifact = train_candidate(base=base, samples=_samples(snapshot), out_dir=out)
        candidate = register_candidate(artifact=artifact, base=base, metrics={},
                                       notes=f"retrain run {run.pk}: {len(snapshot)} labels")  # fmt: skip
        run.candidate_version = candidate
        run.save(update_fields=["candidate_version"])
        decision = evaluate_and_gate(candidate=candidate, base=base, actor=run.requested_by)
    except Exception as exc:
        log.exception("retrain run %s failed", run.pk)
        if type(exc).__name__ == "PacsUnavailable":
            raise  # the task retries with backoff
        return _finish(run, RetrainRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    run.metrics = {"gate": decision.__dict__, "reason": decision.reason}
    status = RetrainRun.Status.PROMOTED if decision.promote else RetrainRun.Status.REJECTED
    run = _finish(run, status)
    if decision.promote:
        transaction.on_commit(rescore_queue)
    return run


def _finish(run: RetrainRun, status: str, error: str = "") -> RetrainRun:
    run.status, run.error, run.finished = status, error, timezone.now()
    run.save(update_fields=["status", "error", "finished", "metrics"])
    audit(run.requested_by, f"model.retrain_{status}", run, error=error, metrics=run.metrics)
    return run


