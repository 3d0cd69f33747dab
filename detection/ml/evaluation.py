"""Metrics (per class + macro), bootstrap CIs, plots, grouped CV and model comparison tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from .constants import CLASS_INDEX, CLASSES
from .data import PatchSet, grouped_kfold

Metrics = dict[str, Any]
_TAMPER = [CLASS_INDEX["FB"], CLASS_INDEX["FM"]]


def _auc(y_bin: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y_bin, score)) if 0 < y_bin.sum() < len(y_bin) else float("nan")


def compute_metrics(y_true: np.ndarray, prob: np.ndarray) -> Metrics:
    """Accuracy, per-class and macro precision/recall/F1/ROC-AUC (one-vs-rest), tamper AUC, confusion."""
    labels = list(range(len(CLASSES)))
    pred = prob.argmax(1)
    p, r, f, support = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    aucs = [_auc((y_true == i).astype(int), prob[:, i]) for i in labels]
    per_class = {
        c: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "roc_auc": aucs[i],
            "support": int(support[i]),
        }
        for i, c in enumerate(CLASSES)
    }
    is_tamper = np.isin(y_true, _TAMPER).astype(int)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_precision": float(p.mean()),
        "macro_recall": float(r.mean()),
        "macro_f1": float(f.mean()),
        "macro_roc_auc": float(np.nanmean(aucs)),
        "tamper_roc_auc": _auc(is_tamper, prob[:, _TAMPER].sum(1)),
        "tamper_accuracy": float(((prob[:, _TAMPER].sum(1) >= 0.5) == is_tamper).mean()),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
    }


def bootstrap_ci(
    y_true: np.ndarray,
    prob: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    keys: tuple[str, ...] = ("accuracy", "macro_f1", "macro_roc_auc", "tamper_roc_auc"),
) -> dict[str, tuple[float, float]]:
    """Percentile 95% CIs by resampling patches with replacement."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        m = compute_metrics(y_true[idx], prob[idx])
        for k in keys:
            samples[k].append(m[k])
    return {
        k: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) for k, v in samples.items()
    }


def plot_confusion(cm: list[list[int]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=CLASSES).plot(ax=ax, colorbar=False)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(y_true: np.ndarray, prob: np.ndarray, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    for i, c in enumerate(CLASSES):
        if 0 < (y_true == i).sum() < len(y_true):
            fpr, tpr, _ = roc_curve(y_true == i, prob[:, i])
            ax.plot(fpr, tpr, label=f"{c} (AUC {_auc((y_true == i).astype(int), prob[:, i]):.2f})")
    is_t = np.isin(y_true, _TAMPER)
    if 0 < is_t.sum() < len(y_true):
        fpr, tpr, _ = roc_curve(is_t, prob[:, _TAMPER].sum(1))
        ax.plot(
            fpr, tpr, "k--", label=f"tamper FB+FM (AUC {_auc(is_t.astype(int), prob[:, _TAMPER].sum(1)):.2f})"
        )
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def detector_probs(artifact_or_detector: Any, patches: PatchSet, batch: int = 256) -> np.ndarray:
    """Probabilities of a Detector (or artefact dir) on a PatchSet."""
    import torch

    from .scoring import Detector

    det = (
        artifact_or_detector
        if isinstance(artifact_or_detector, Detector)
        else Detector.load(artifact_or_detector)
    )
    out = [
        det.predict(torch.from_numpy(patches.x[i : i + batch].astype(np.float32)))
        for i in range(0, len(patches), batch)
    ]
    return torch.cat(out).numpy()


def evaluate(
    model: Any, patches: PatchSet, out_dir: str | Path | None = None, name: str = "model", n_boot: int = 1000
) -> Metrics:
    """Evaluate a Detector / artefact dir / callable -> probs; writes JSON + PNGs to out_dir."""
    prob = (
        model(patches)
        if callable(model) and not hasattr(model, "predict")
        else detector_probs(model, patches)
    )
    metrics = compute_metrics(patches.y, prob)
    metrics["ci95"] = bootstrap_ci(patches.y, prob, n_boot) if n_boot else {}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"metrics_{name}.json").write_text(json.dumps(metrics, indent=2))
        plot_confusion(metrics["confusion_matrix"], out / f"confusion_{name}.png", name)
        plot_roc(patches.y, prob, out / f"roc_{name}.png", name)
    return metrics


def cross_validate(
    fit_predict: Callable[[PatchSet, PatchSet], np.ndarray], patches: PatchSet, k: int = 5, seed: int = 0
) -> Metrics:
    """Grouped k-fold CV: fit_predict(train, test) -> test probs; returns per-fold and mean +- std."""
    folds = []
    for tr, te in grouped_kfold(patches.y, patches.groups, k, seed):
        assert not set(patches.groups[tr]) & set(patches.groups[te])
        folds.append(compute_metrics(patches.y[te], fit_predict(patches.subset(tr), patches.subset(te))))
    keys = ("accuracy", "macro_f1", "macro_roc_auc", "tamper_roc_auc")
    summary = {
        k_: (float(np.nanmean([f[k_] for f in folds])), float(np.nanstd([f[k_] for f in folds])))
        for k_ in keys
    }
    return {"folds": folds, "mean_std": summary}


def comparison_table(results: dict[str, Metrics]) -> str:
    """Markdown table across models (test-set metrics with bootstrap 95% CI where available)."""

    def cell(m: Metrics, key: str) -> str:
        lo_hi = m.get("ci95", {}).get(key)
        return f"{m[key]:.3f}" + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")

    lines = ["| model | accuracy | macro F1 | macro ROC-AUC | tamper ROC-AUC |", "|---|---|---|---|---|"]
    for name, m in results.items():
        lines.append(
            f"| {name} | "
            + " | ".join(cell(m, k) for k in ("accuracy", "macro_f1", "macro_roc_auc", "tamper_roc_auc"))
            + " |"
        )
    return "\n".join(lines)


# ---- series level ----------------------------------------------------------------------------------------


def _near(loc: Any, params: dict, spacing: Any, stride: int) -> bool:
    """A location counts as finding the tamper when its patch centre lies on the tampered structure:
    within one grid cell (plus the structure's radius) in-plane and within one slice (plus the radius)
    along z."""
    radius_mm = float(params.get("size_mm", 0)) / 2
    dz_ok = abs(loc.slice_index - params["slice"]) <= 1 + int(radius_mm // float(spacing[0]))
    dxy = float(np.hypot(loc.x - params["x"], loc.y - params["y"]))
    return dz_ok and dxy <= stride + radius_mm / float(spacing[1])


def series_evaluation(
    detector: Any,
    vol: np.ndarray,
    spacing: Any,
    z_range: tuple[int, int],
    n_per_class: int = 10,
    seed: int = 0,
    regions: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Whole-series verdicts: the genuine scan, and copies with one simulated tamper each (FM injection,
    FB removal of a genuine dense structure) at sites of ``z_range``; every copy is scored in full."""
    from .simulator import simulate_series_tamper, site_catalogue

    genuine_cells, genuine_prob = detector.cell_probs(vol, spacing)
    genuine = detector._aggregate(vol.shape, genuine_cells, genuine_prob, top_k=5)
    tamper = genuine_prob[:, _TAMPER].sum(1)
    by_region = {}
    for name, (lo, hi) in (regions or {}).items():
        sel = (genuine_cells[:, 0] >= lo) & (genuine_cells[:, 0] < hi)
        by_region[name] = {
            "n_patches": int(sel.sum()),
            "flagged": int((sel & (tamper >= detector.threshold)).sum()),
            "max_tamper": float(tamper[sel].max(initial=0.0)),
        }
    sites = site_catalogue(vol, z_range, pixel_mm=float(spacing[1]))
    cases = []
    for label in ("FM", "FB"):
        for i in range(n_per_class):
            tampered, params = simulate_series_tamper(vol, spacing, label, z_range, seed * 1000 + i, sites)
            res = detector.score_volume(tampered, spacing, top_k=None)
            ranks = [k for k, loc in enumerate(res.locations) if _near(loc, params, spacing, detector.stride)]
            top = res.locations[0] if res.locations else None  # = res.findings[0] when flagged
            flagged = res.verdict in ("FB", "FM")
            cases.append({
                "label": label, "slice": params["slice"], "x": params["x"], "y": params["y"],
                "size_mm": round(float(params["size_mm"]), 1),
                "method": params.get("remove", {}).get("method", "inject"),
                "verdict": res.verdict, "verdict_score": res.verdict_score, "flagged": flagged,
                "top": None if top is None else {"slice": top.slice_index, "x": top.x, "y": top.y,
                                                 "tamper": top.tamper},
                "max_tamper_at_site": max((loc.tamper for loc in res.locations
                                           if _near(loc, params, spacing, detector.stride)), default=0.0),
                "located": bool(flagged and _near(res.findings[0], params, spacing, detector.stride)),
                "best_rank_at_site": ranks[0] if ranks else None, "n_flagged": res.n_flagged,
            })  # fmt: skip

    def rate(label: str, key: str) -> float:
        sel = [c for c in cases if c["label"] == label]
        return float(np.mean([bool(c[key]) for c in sel])) if sel else float("nan")

    return {
        "threshold": detector.threshold,
        "genuine": {
            "verdict": genuine.verdict, "verdict_score": genuine.verdict_score, "n_patches": genuine.n_patches,
            "n_flagged": genuine.n_flagged, "regions": by_region,
            "top": [{"slice": loc.slice_index, "x": loc.x, "y": loc.y, "tamper": loc.tamper, "probs": loc.probs}
                    for loc in genuine.locations],
            "slice_tamper": genuine.slice_tamper.tolist(),
        },
        "z_range": list(z_range),
        "cases": cases,
        "summary": {
            label: {"n": sum(c["label"] == label for c in cases), "flagged": rate(label, "flagged"),
                    "verdict_correct": float(np.mean([c["verdict"] == label for c in cases if c["label"] == label])),
                    "located": rate(label, "located")}
            for label in ("FM", "FB")
        },
    }  # fmt: skip
