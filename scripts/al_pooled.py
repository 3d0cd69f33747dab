"""Pool several runs of scripts/bench_active_learning.py (one per simulated draw, same strategies) into one
labels-to-reach figure: every strategy's curves of all draws and seeds averaged with equal weight per draw,
the target is random's pooled accuracy at the budget, and the 90 % interval comes from resampling seeds within
each draw. Reads the JSON files the benchmark writes next to its PNG.

    .venv/bin/python scripts/al_pooled.py /tmp/al7/al_density_d*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def reach(curve: np.ndarray, counts: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(curve >= target - 1e-9)
    return int(counts[hit[0]]) if len(hit) else None


def pooled_mean(draws: list[np.ndarray], pick: list[np.ndarray] | None = None) -> np.ndarray:
    """Mean curve with every draw weighted equally (the seeds of draw i resampled by ``pick[i]``)."""
    if pick is None:
        return np.mean([d.mean(0) for d in draws], 0)
    return np.mean([d[p].mean(0) for d, p in zip(draws, pick, strict=True)], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="JSON files of bench_active_learning.py, one per draw")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    runs = [json.loads(Path(path).read_text()) for path in args.runs]
    counts = np.asarray(runs[0]["counts"])
    if any(r["counts"] != runs[0]["counts"] for r in runs):
        raise SystemExit("the runs use different label counts; pool only runs of one protocol")
    names = sorted(set.intersection(*(set(r["curves"]) for r in runs)))
    curves = {n: [np.asarray(r["curves"][n]) for r in runs] for n in names}
    target = float(pooled_mean(curves["random"])[-1])
    budget, miss = int(counts[-1]), int(2 * counts[-1] - counts[-2])
    rng = np.random.default_rng(0)
    picks = [[rng.integers(len(d), size=len(d)) for d in curves["random"]] for _ in range(args.resamples)]
    print(f"{len(runs)} draws: {', '.join(args.runs)}")
    print(f"random's pooled accuracy at {budget} labels (target) = {target:.3f}")
    print(f"| strategy | acc@40 | acc@80 | acc@120 | acc@{budget} | labels to reach {target:.3f} | 90% CI "
          f"| of random's {budget} |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        mean = pooled_mean(curves[name])
        need = reach(mean, counts, target)
        # the same seed resample for a strategy and for random: their seeds share the warm start
        boot = [reach(pooled_mean(curves[name], p), counts, float(pooled_mean(curves["random"], p)[-1])) for p in picks]
        lo, hi = np.percentile([miss if b is None else b for b in boot], [5, 95])
        acc = " | ".join(f"{mean[list(counts).index(n)]:.3f}" for n in (40, 80, 120, budget))
        ci = f"{lo:.0f}-{hi:.0f}" if hi <= budget else f"{lo:.0f} to >{budget}"
        print(f"| {name} | {acc} | {need or 'not reached'} | {ci} | {f'{need / budget:.0%}' if need else '-'} |")


if __name__ == "__main__":
    main()
