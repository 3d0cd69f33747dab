"""Series-level calibration of the tamper threshold on genuine patches.

A series is scored at thousands of locations, so a location threshold that looks strict per patch still
flags almost every genuine series: with a per-patch false-positive rate p and M patches, a genuine
series is flagged with probability 1 - (1 - p)^M. The threshold is therefore set for the *series*: the
expected number of genuine locations above it in a whole series must be at most ``alpha``, i.e. the
per-location exceedance probability must be alpha / M.

That probability is far below what a few thousand calibration patches can resolve, so the upper tail of
the genuine scores is modelled (peaks over threshold): on the logit scale the largest ``tail_fraction``
of the scores minus the smallest of them is fitted with an exponential distribution, and the threshold is
extrapolated from it. It is never set at or below the largest genuine score seen (a location is flagged at
or above the threshold, so that score itself must stay below it).

Calibration patches are the scoring grid of a genuine scan restricted to the training z-region: the
held-out region and the rest of the scan stay untouched for evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .constants import CLASS_INDEX

_FB, _FM = CLASS_INDEX["FB"], CLASS_INDEX["FM"]
_EPS = 1e-7


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def tail_threshold(
    scores: np.ndarray,
    patches_per_series: int,
    alpha: float = 0.05,
    tail_fraction: float = 0.05,
    min_tail: int = 30,
) -> dict:
    """Tamper threshold so that a genuine series of ``patches_per_series`` locations has on average at
    most ``alpha`` locations above it, from genuine location scores (P(FB)+P(FM))."""
    u = np.sort(logit(scores))[::-1]
    n = len(u)
    if n == 0:
        raise ValueError("no calibration scores")
    k = int(min(n, max(min_tail, round(tail_fraction * n))))
    u0 = float(u[k - 1])  # the tail starts at the k-th largest score
    scale = float(max(np.mean(u[: k - 1] - u0) if k > 1 else 0.0, 1e-3))  # exponential mean excess
    target = alpha / max(patches_per_series, 1)  # per-location exceedance probability
    # P(u > t) = (k/n) exp(-(t - u0) / scale)  =>  t = u0 + scale * ln(k / (n * target))
    extrapolated = u0 + scale * math.log(max(k / (n * target), 1.0))
    threshold_logit = max(extrapolated, float(u[0]))
    threshold = 1 / (1 + math.exp(-threshold_logit))
    if extrapolated <= u[0]:  # the next float32 above the largest genuine score (scores are float32)
        largest = np.float32(np.max(scores))
        threshold = float(max(np.nextafter(largest, np.float32(1)), np.float32(threshold)))
    return {
        "tamper_threshold": float(threshold),
        "threshold_logit": threshold_logit,
        "alpha": alpha,
        "patches_per_series": int(patches_per_series),
        "n_calibration": n,
        "max_genuine_tamper": float(1 / (1 + math.exp(-u[0]))),
        "tail": {"k": k, "u0": u0, "scale": scale, "extrapolated_logit": extrapolated},
        "method": "exponential tail of logit(P(FB)+P(FM)) on genuine calibration patches; expected "
        f"genuine locations above the threshold per series <= {alpha}",
    }


def calibration_slices(z_range: tuple[int, int], blocks: dict | None) -> list[int]:
    """Slices of ``z_range`` to calibrate on: all, or with ``blocks`` = {"size": s, "parity": p} only the
    z-blocks ``((z - z0) // s) % 2 == p`` (the others supplied hard negatives to training)."""
    z0, z1 = z_range
    if not blocks:
        return list(range(z0, z1))
    size, parity = int(blocks["size"]), int(blocks["parity"])
    return [z for z in range(z0, z1) if ((z - z0) // size) % 2 == parity]


def calibrate(
    detector,  # noqa: ANN001 - scoring.Detector (import cycle)
    vol: np.ndarray,
    spacing: Sequence[float],
    z_range: tuple[int, int],
    alpha: float = 0.05,
    tail_fraction: float = 0.05,
    blocks: dict | None = None,
) -> dict:
    """Series-level threshold from the genuine scoring grid of ``vol`` inside ``z_range``.

    ``blocks`` = {"size": s, "parity": p}: only z-blocks ``((z - z0) // s) % 2 == p`` of the region (the
    others supplied hard negatives to training, see ``training.mine_hard_negatives``)."""
    all_cells = detector.scoring_cells(np.asarray(vol, np.float32), spacing)
    patches_per_series = len(all_cells)
    cells, prob = detector.cell_probs(vol, spacing, z_range, cells=all_cells)
    if blocks:
        keep = np.isin(cells[:, 0], calibration_slices(z_range, blocks))
        cells, prob = cells[keep], prob[keep]
    tamper = prob[:, _FB] + prob[:, _FM]
    out = tail_threshold(tamper, patches_per_series, alpha, tail_fraction)
    out["z_range"] = [int(z_range[0]), int(z_range[1])]
    out["blocks"] = blocks
    top = []
    for i in np.argsort(-tamper, kind="stable")[:5]:
        x, y = detector.cell_centre(int(cells[i, 1]), int(cells[i, 2]))
        top.append({"slice": int(cells[i, 0]), "x": x, "y": y, "tamper": float(tamper[i])})
    out["top_genuine"] = top
    return out
