"""Evaluation report for an artefact: held-out z-region test set, baselines, CV, plots, README.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .baselines import BASELINES, fit_predict
from .data import load_scan, simulate_patchset
from .evaluation import (
    bootstrap_ci,
    comparison_table,
    compute_metrics,
    cross_validate,
    detector_probs,
    evaluate,
)
from .scoring import Detector


def _baseline_results(train, test, out: Path, n_boot: int) -> tuple[dict, dict]:  # noqa: ANN001
    results, cv = {}, {}
    for name in BASELINES:
        prob = fit_predict(name, train, test)
        m = compute_metrics(test.y, prob)
        m["ci95"] = bootstrap_ci(test.y, prob, n_boot)
        results[name] = m
        cv[name] = cross_validate(lambda tr, te, n=name: fit_predict(n, tr, te), train, k=5)["mean_std"]
    return results, cv


def write_report(
    artifact: str | Path | None, out_dir: str | Path, n_test: int = 1200, n_boot: int = 500
) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    det = Detector.load(artifact, "cpu")
    cfg = det.config
    vol, spacing = load_scan(cfg.get("scan_dir") or None)
    test = simulate_patchset(
        vol, spacing, n_test, tuple(cfg["val_z"]), 1000 + cfg["seed"], det.patch, det.channels
    )
    train = simulate_patchset(
        vol, spacing, 2000, tuple(cfg["train_z"]), 2000 + cfg["seed"], det.patch, det.channels
    )
    results = {cfg["model_name"]: evaluate(det, test, out, "default", n_boot)}
    base, cv = _baseline_results(train, test, out, n_boot)
    for name, m in base.items():
        results[name] = m
    series = _series_demo(det, vol, spacing, tuple(cfg["val_z"]), out)
    if artifact is None:
        artifact = Path(__file__).resolve().parents[1] / "weights" / "default"
    if (Path(artifact) / "curves.png").exists():
        shutil.copy(Path(artifact) / "curves.png", out / "training_curves.png")
    summary = {
        "results": results,
        "baseline_cv_train_region": cv,
        "series_demo": series,
        "n_test": n_test,
        "model_version": cfg.get("model_version"),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "comparison_table.md").write_text(comparison_table(results) + "\n")
    _ = detector_probs  # re-exported for callers that want raw probabilities
    return summary


def _series_demo(det: Detector, vol: np.ndarray, spacing, z_range: tuple[int, int], out: Path) -> dict:  # noqa: ANN001
    """Inject one nodule into the held-out region of the full volume and score the whole series."""
    from .simulator import inject_nodule, site_catalogue

    rng = np.random.default_rng(123)
    sites = site_catalogue(vol, z_range)["lung"]
    z, y, x = (int(v) for v in sites[rng.integers(len(sites))])
    tampered = vol.copy()
    z0, z1, y0, x0 = max(z - 7, 0), min(z + 8, len(vol)), max(y - 80, 0), max(x - 80, 0)
    sub = tampered[z0:z1, y0 : y + 80, x0 : x + 80]
    tampered[z0:z1, y0 : y + 80, x0 : x + 80], params = inject_nodule(
        sub, (z - z0, y - y0, x - x0), spacing, rng
    )
    clean, fake = det.score_volume(vol, spacing), det.score_volume(tampered, spacing, top_k=None)
    ranks = [
        i
        for i, loc in enumerate(fake.locations)
        if abs(loc.slice_index - z) <= 1 and abs(loc.x - x) <= det.stride and abs(loc.y - y) <= det.stride
    ]
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(8, 4))
    ax[0].imshow(np.clip((tampered[z] + 1350) / 1500, 0, 1), cmap="gray")
    ax[0].plot([x], [y], "r+", ms=14)
    ax[0].set_title(f"injected {params['diameter_mm']:.0f} mm nodule, slice {z}")
    ax[1].imshow(fake.heatmaps[z].astype(np.float32), vmin=0, vmax=1, cmap="magma")
    ax[1].set_title("patch tamper map P(FB)+P(FM)")
    for a in ax:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(out / "series_demo_heatmap.png", dpi=90)
    plt.close(fig)
    return {
        "injected": {"slice": z, "x": x, "y": y, **params},
        "clean_verdict": clean.verdict,
        "clean_verdict_score": clean.verdict_score,
        "clean_max_slice_tamper": float(clean.slice_tamper.max()),
        "tampered_verdict": fake.verdict,
        "tampered_verdict_score": fake.verdict_score,
        "tampered_slice_tamper_at_injection": float(fake.slice_tamper[z]),
        "best_rank_of_injected_location": ranks[0] if ranks else None,
        "n_patches": fake.n_patches,
    }
