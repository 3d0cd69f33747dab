"""Benchmark: end-to-end series scoring vs bare model forward on the same batch size and machine.

    .venv/bin/python scripts/bench_detection.py [--series DIR] [--artifact DIR] [--repeat 2]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.ml.data import default_scan_dir  # noqa: E402
from detection.ml.preprocessing import read_series  # noqa: E402
from detection.ml.scoring import Detector  # noqa: E402


def bare_forward(det: Detector, n_patches: int) -> float:
    """Seconds for the model alone on ceil(n/B) batches of the same shape the scorer uses."""
    c, p, b = len(det.channels), det.patch, det.batch_size
    batch = torch.rand(b, c, p, p)
    det.predict(batch)  # warm-up (allocator, oneDNN kernels, CUDA context)
    t0 = time.perf_counter()
    full, rest = divmod(n_patches, b)
    for _ in range(full):
        det.predict(batch)
    if rest:
        det.predict(batch[:rest])
    if det.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", default=str(default_scan_dir()))
    ap.add_argument("--artifact", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    det = Detector.load(args.artifact, args.device)
    datasets = read_series(args.series)
    det.score_series(datasets[:5])  # warm-up
    best_e2e, n = math.inf, 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = det.score_series(datasets)
        best_e2e, n = min(best_e2e, time.perf_counter() - t0), res.n_patches
    best_bare = min(bare_forward(det, n) for _ in range(args.repeat))
    e2e, bare = n / best_e2e, n / best_bare
    print(f"device: {det.device}  torch threads: {torch.get_num_threads()}  model: {res.model_version}")
    print(f"series: {len(datasets)} slices, {n} patches of {det.patch}px, batch {det.batch_size}")
    print(f"end-to-end scoring : {best_e2e:6.2f} s  {e2e:8.1f} patches/s  {len(datasets) / best_e2e:6.2f} slices/s")
    print(f"bare model forward : {best_bare:6.2f} s  {bare:8.1f} patches/s")
    print(f"ratio end-to-end / bare forward: {e2e / bare:.3f} (target >= 0.85)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if torch.cuda.is_available():
        print(f"peak CUDA allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
