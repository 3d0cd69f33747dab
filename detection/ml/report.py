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

SERIES_SEED = 2026


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
    artifact: str | Path | None, out_dir: str | Path, n_test: int = 1200, n_boot: int = 500, n_series: int = 10
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
    series = _series_report(det, vol, spacing, out, n_series)
    if artifact is None:
        artifact = Path(__file__).resolve().parents[1] / "weights" / "default"
    if (Path(artifact) / "curves.png").exists():
        shutil.copy(Path(artifact) / "curves.png", out / "training_curves.png")
    summary = {
        "results": results,
        "baseline_cv_train_region": cv,
        "series": series,
        "calibration": cfg.get("calibration"),
        "n_test": n_test,
        "model_version": cfg.get("model_version"),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "comparison_table.md").write_text(comparison_table(results) + "\n")
    (out / "series_table.md").write_text(series_table(series) + "\n")
    _ = detector_probs  # re-exported for callers that want raw probabilities
    return summary


def _regions(det: Detector, n_slices: int) -> dict[str, tuple[int, int]]:
    (t0, t1), (v0, v1) = det.config["train_z"], det.config["val_z"]
    return {
        f"below training z<{t0}": (0, t0),
        f"training (calibration) z {t0}-{t1 - 1}": (t0, t1),
        f"gap z {t1}-{v0 - 1}": (t1, v0),
        f"held-out z {v0}-{v1 - 1}": (v0, v1),
        f"above held-out z>={v1}": (v1, n_slices),
    }


def _series_report(det: Detector, vol: np.ndarray, spacing, out: Path, n_series: int) -> dict:  # noqa: ANN001
    """Whole-series verdicts on the genuine scan and on copies with one simulated tamper in the held-out
    region (``evaluation.series_evaluation``), plus two plots."""
    from .evaluation import series_evaluation
    from .simulator import simulate_series_tamper

    regions = _regions(det, len(vol))
    z_range = tuple(det.config["val_z"])
    # Seed 2026: fresh cases, not the ones looked at while the aggregation was developed (seed 7).
    res = series_evaluation(det, vol, spacing, z_range, n_series, seed=SERIES_SEED, regions=regions)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    # Genuine scan: the most suspicious location of every slice against the calibrated threshold.
    fig, ax = plt.subplots(figsize=(8, 3.4))
    g = res["genuine"]
    st = np.asarray(g["slice_tamper"])
    ax.plot(np.arange(len(st)), st, ".-", lw=1, label="max P(FB)+P(FM) per slice")
    ax.axhline(det.threshold, color="r", ls="--", lw=1, label=f"calibrated threshold {det.threshold:.4f}")
    (t0, t1), (v0, v1) = det.config["train_z"], det.config["val_z"]
    ax.axvspan(t0, t1 - 0.5, color="tab:green", alpha=0.12, label="training / calibration region")
    ax.axvspan(v0, v1 - 0.5, color="tab:orange", alpha=0.15, label="held-out region")
    ax.set(xlabel="slice (z-sorted)", ylabel="P(FB)+P(FM)", ylim=(0, 1.02),
           title=f"genuine CT, every slice scored: verdict {g['verdict']}, {g['n_flagged']} locations flagged")
    ax.legend(fontsize=7, loc="lower center")
    fig.tight_layout()
    fig.savefig(out / "series_genuine.png", dpi=90)
    plt.close(fig)

    # One simulated injection: the slice, its tamper map, and the genuine slice's map.
    case = next((c for c in res["cases"] if c["label"] == "FM"), None)
    if case is not None:
        i = [c for c in res["cases"] if c["label"] == "FM"].index(case)
        tampered, params = simulate_series_tamper(vol, spacing, "FM", z_range, SERIES_SEED * 1000 + i)
        fake = det.score_volume(tampered, spacing, top_k=1)
        clean = det.score_volume(vol, spacing, top_k=1)
        z = params["slice"]
        fig, ax = plt.subplots(1, 3, figsize=(11, 4))
        ax[0].imshow(np.clip((tampered[z] + 1350) / 1500, 0, 1), cmap="gray")
        ax[0].plot([params["x"]], [params["y"]], "r+", ms=14)
        ax[0].set_title(f"injected {params['size_mm']:.0f} mm nodule, slice {z}", fontsize=9)
        for a, r, title in ((ax[1], fake, f"tampered: verdict {fake.verdict}"),
                            (ax[2], clean, f"genuine: verdict {clean.verdict}")):  # fmt: skip
            a.imshow(r.heatmaps[z].astype(np.float32), vmin=0, vmax=1, cmap="magma")
            a.set_title(f"{title}; P(FB)+P(FM) map", fontsize=9)
        for a in ax:
            a.axis("off")
        fig.tight_layout()
        fig.savefig(out / "series_tamper_example.png", dpi=80)
        plt.close(fig)
    return res


def series_table(series: dict) -> str:
    """Markdown: the genuine scan's verdict and the simulated-tamper series verdicts."""
    g = series["genuine"]
    lines = [
        f"Location flagged when P(FB)+P(FM) >= {series['threshold']:.4f} (calibrated, see calibration.py).",
        "",
        f"Genuine scan (every slice scored): verdict **{g['verdict']}** (score {g['verdict_score']:.3f}), "
        f"{g['n_flagged']} of {g['n_patches']} locations flagged.",
        "",
        "| genuine scan region | locations scored | flagged | max P(FB)+P(FM) |",
        "|---|---|---|---|",
        *[
            f"| {name} | {r['n_patches']} | {r['flagged']} | {r['max_tamper']:.3f} |"
            for name, r in g["regions"].items()
        ],
        "",
        f"Simulated tampers in z {series['z_range'][0]}-{series['z_range'][1] - 1}, one per copy of the scan, "
        "every slice scored:",
        "",
        "| tamper | series | flagged (FB/FM verdict) | verdict = true class | top location on the tamper |",
        "|---|---|---|---|---|",
        *[
            f"| {label} | {s['n']} | {s['flagged']:.2f} | {s['verdict_correct']:.2f} | {s['located']:.2f} |"
            for label, s in series["summary"].items()
        ],
        "",
        "| # | tamper | slice | x, y | size mm | method | verdict | top location: slice x, y, P(FB)+P(FM) | "
        "max P(FB)+P(FM) at the site | rank of the site |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(series["cases"]):
        top = c["top"]
        top_s = f"{top['slice']} {top['x']}, {top['y']}, {top['tamper']:.3f}" if top else "-"
        lines.append(
            f"| {i} | {c['label']} | {c['slice']} | {c['x']}, {c['y']} | {c['size_mm']} | {c['method']} | "
            f"{c['verdict']} | {top_s} | {c['max_tamper_at_site']:.3f} | {c['best_rank_at_site']} |"
        )
    return "\n".join(lines)
