"""Benchmark: end-to-end series scoring vs bare model forward on the same batch size and machine.

    .venv/bin/python scripts/bench_detection.py [--series DIR] [--artifact DIR] [--repeat 3] [--device cuda]

End-to-end = ``Detector.score_series`` on freshly parsed datasets (pixel decoding, HU conversion, scoring
masks, windowing, patch gathering, the model, aggregation, heatmaps). Bare forward = ``Detector.predict``
on the same number of patches in batches of the same size, fed from the same kind of input buffer
(pinned on CUDA) holding random data: same model, same precision, same threads. Runs alternate so that
load from other processes hits both sides alike; the best of ``--repeat`` is kept for each.
"""

from __future__ import annotations

import argparse
import io
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import pydicom
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.ml.data import default_scan_dir  # noqa: E402
from detection.ml.scoring import Detector  # noqa: E402


def bare_forward(det: Detector, n_patches: int) -> float:
    """Seconds for the model alone on ceil(n/B) batches of the shape the scorer uses."""
    buf = det.batch_buffer()
    buf.copy_(torch.rand(buf.shape))
    b = det.batch_size
    det.predict(buf)  # warm-up (allocator, oneDNN kernels, CUDA context)
    if det.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    full, rest = divmod(n_patches, b)
    for _ in range(full):
        det.predict(buf)
    if rest:
        det.predict(buf[:rest])
    if det.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def end_to_end(det: Detector, blobs: list[bytes]) -> tuple[float, int, float]:
    """(seconds, patches, seconds spent inside the model's forward during the run)."""
    datasets = [pydicom.dcmread(io.BytesIO(b)) for b in blobs]  # parsed, pixels not yet decoded
    model_seconds = 0.0
    predict = det.predict

    def timed_predict(batch: torch.Tensor) -> torch.Tensor:
        nonlocal model_seconds
        start = time.perf_counter()
        out = predict(batch)  # returns CPU tensors: on CUDA the copy back synchronises
        model_seconds += time.perf_counter() - start
        return out

    det.predict = timed_predict  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        res = det.score_series(datasets)
        if det.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, res.n_patches, model_seconds
    finally:
        del det.predict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", default=str(default_scan_dir()))
    ap.add_argument("--artifact", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    blobs = [p.read_bytes() for p in sorted(Path(args.series).glob("*.dcm"))]
    det = Detector.load(args.artifact, args.device)
    other = Detector.load(args.artifact, args.device, prefetch=not det.prefetch)
    end_to_end(det, blobs[:5])  # warm-up
    end_to_end(other, blobs[:5])
    e2e, e2e_other, bare, n = math.inf, math.inf, math.inf, 0
    inside_shares = []
    for _ in range(args.repeat):  # alternate, so background load hits every variant alike
        seconds, n, inside = end_to_end(det, blobs)
        e2e = min(e2e, seconds)
        inside_shares.append(inside / seconds)
        bare = min(bare, bare_forward(det, n))
        e2e_other = min(e2e_other, end_to_end(other, blobs)[0])
    mode = "prefetch thread" if det.prefetch else "no prefetch thread"
    other_mode = "prefetch thread" if other.prefetch else "no prefetch thread"
    amp = str(det.amp_dtype).removeprefix("torch.") if det.device.type == "cuda" and det.amp_dtype else "fp32"
    print(f"device: {det.device}  torch threads: {torch.get_num_threads()}  precision: {amp}  "
          f"model: {det.config.get('model_version')}")
    print(f"series: {len(blobs)} slices, {n} patches of {det.patch}px in the scoring mask, batch {det.batch_size}")
    print(f"end-to-end scoring ({mode}, default): {e2e:6.2f} s  {n / e2e:8.1f} patches/s  "
          f"{len(blobs) / e2e:6.2f} slices/s")
    print(f"end-to-end scoring ({other_mode}):{' ' * (9 - len(other_mode) + len(mode))}{e2e_other:6.2f} s  "
          f"{n / e2e_other:8.1f} patches/s  {len(blobs) / e2e_other:6.2f} slices/s")
    print(f"bare model forward: {bare:6.2f} s  {n / bare:8.1f} patches/s")
    print(f"ratio end-to-end / bare forward: {bare / e2e:.3f} (target >= 0.85); "
          f"{other_mode}: {bare / e2e_other:.3f}")
    print(f"share of end-to-end time spent in the model's forward, same run (median of {args.repeat}): "
          f"{statistics.median(inside_shares):.3f}  (load-independent view of the same ratio; with a prefetch "
          f"thread the preparation overlaps the forward)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    if det.device.type == "cuda":
        print(f"peak CUDA allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
