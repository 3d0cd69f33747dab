"""One image scored on its own (a claim image), and the tamper threshold calibrated for that.

A claim image is a single slice, so the detector's 2.5D channels (z-1, z, z+1) see the same slice three
times: no training patch looked like that, and the scores run higher than in a series. With the series
threshold, 44 of the 99 genuine slices of the demo CT scored alone would be called tampered. Single images
therefore get their own threshold, set the way the series one is (``calibration.tail_threshold``: at most
``alpha`` genuine locations above it per image, on average) on genuine slices of the training region's
calibration blocks, each scored alone, for each way a claim image reaches the detector:

* ``dicom``: the slice's HU at its own pixel spacing (a DICOM claim image);
* ``lung_png``: the portal's 8-bit lung-window export of the slice (values outside the window clipped),
  mapped back to HU at 1 mm pixels, since a PNG/JPEG does not say its spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .calibration import calibration_slices, tail_threshold
from .constants import CLASS_INDEX, WINDOWS

PATHS = ("dicom", "lung_png")
PNG_SPACING = (1.0, 1.0, 1.0)
_TAMPER = [CLASS_INDEX["FB"], CLASS_INDEX["FM"]]


def thresholds(config: dict) -> dict[str, float]:
    """An artefact config's single-image threshold per path; none when it was not calibrated for them."""
    return {path: float(c["tamper_threshold"]) for path, c in (config.get("calibration_single_image") or {}).items()}


def lung_grey(hu: np.ndarray) -> np.ndarray:
    """The lung-window export of a HU slice (as ``portal.claims.imaging.render_lung``)."""
    lo, hi = WINDOWS["lung"]
    return np.rint(np.clip((np.asarray(hu, np.float64) - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def grey_to_hu(grey: np.ndarray) -> np.ndarray:
    """An 8-bit lung-window image mapped back to HU (values outside the window stay clipped)."""
    lo, hi = WINDOWS["lung"]
    return (np.asarray(grey, np.float32) / 255.0 * (hi - lo) + lo).astype(np.float32)


def as_single_image(slice_hu: np.ndarray, spacing: Sequence[float], path: str) -> tuple[np.ndarray, tuple]:
    """A (1, H, W) volume and its spacing, as a claim image of ``path`` reaches the detector."""
    if path == "dicom":
        return np.asarray(slice_hu, np.float32)[None], tuple(float(s) for s in spacing)
    if path == "lung_png":
        return grey_to_hu(lung_grey(slice_hu))[None], PNG_SPACING
    raise ValueError(f"unknown single-image path {path!r}; expected one of {PATHS}")


def _single_slice_scores(detector, vol: np.ndarray, spacing, zs, path: str) -> tuple[np.ndarray, list[int]]:  # noqa: ANN001
    """Tamper scores of every scored location of each slice in ``zs`` scored alone; locations per slice."""
    scores, counts = [], []
    for z in zs:
        image, image_spacing = as_single_image(vol[z], spacing, path)
        _, prob = detector.cell_probs(image, image_spacing)
        scores.append(prob[:, _TAMPER].sum(1))
        counts.append(len(prob))
    return np.concatenate(scores), counts


def calibrate(
    detector,  # noqa: ANN001 - scoring.Detector (import cycle)
    vol: np.ndarray,
    spacing: Sequence[float],
    z_range: tuple[int, int],
    alpha: float = 0.05,
    blocks: dict | None = None,
    tail_fraction: float = 0.05,
) -> dict[str, Any]:
    """Per path, the threshold at which a genuine single image has on average at most ``alpha`` locations
    above it, from the genuine slices of ``z_range`` (only the ``blocks`` that gave no hard negatives)."""
    zs = calibration_slices(z_range, blocks)
    out = {}
    for path in PATHS:
        tamper, counts = _single_slice_scores(detector, vol, spacing, zs, path)
        result = tail_threshold(tamper, int(np.median(counts)), alpha, tail_fraction)
        result.update(z_range=[int(z_range[0]), int(z_range[1])], blocks=blocks, n_slices=len(zs))
        result["method"] = result["method"].replace("per series", "per single image")
        out[path] = result
    return out


def evaluate(
    detector,  # noqa: ANN001 - scoring.Detector
    vol: np.ndarray,
    spacing: Sequence[float],
    z_range: tuple[int, int],
    n_per_class: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """Single-image verdicts on held-out slices: every genuine slice of ``z_range`` alone, and the tampered
    slice of ``n_per_class`` simulated FM injections and FB removals there, through each path; with the
    single-image threshold and, for comparison, the series threshold. An image is flagged (FB/FM verdict)
    exactly when its most suspicious location reaches the threshold, so its maximum score decides."""
    from .simulator import simulate_series_tamper, site_catalogue

    sites = site_catalogue(vol, z_range, pixel_mm=float(spacing[1]))
    images = {"genuine": [vol[z] for z in range(*z_range)], "FM": [], "FB": []}
    for label in ("FM", "FB"):
        for i in range(n_per_class):
            copy, params = simulate_series_tamper(vol, spacing, label, z_range, seed * 1000 + i, sites)
            images[label].append(copy[params["slice"]])

    def max_tamper(slice_hu: np.ndarray, path: str) -> float:
        _, prob = detector.cell_probs(*as_single_image(slice_hu, spacing, path))
        return float(prob[:, _TAMPER].sum(1).max(initial=0.0))

    out: dict[str, Any] = {"z_range": list(z_range), "seed": seed, "n_per_class": n_per_class, "paths": {}}
    for path in PATHS:
        scores = {kind: [max_tamper(s, path) for s in slices] for kind, slices in images.items()}
        thresholds = {"single_image": detector.single_image_thresholds.get(path), "series": detector.threshold}
        out["paths"][path] = {
            "n": {kind: len(v) for kind, v in scores.items()},
            "flagged": {name: {kind: int(sum(v >= t for v in vals)) for kind, vals in scores.items()}
                        for name, t in thresholds.items() if t is not None},
            "thresholds": thresholds,
            "max_tamper": scores,
        }
    return out
