"""Batch scoring of a CT series: patches -> slice scores -> series verdict, plus tamper heatmaps.

Usage (the Celery worker keeps one Detector alive between jobs)::

    det = Detector.load()                      # shipped default, or random-weight fallback (trained=False)
    res = det.score_series(list_of_pydicom_datasets)
    res.verdict, res.slice_tamper, res.heatmaps, res.locations

Patches (native resolution, 2.5D channels) on a regular grid are the scoring unit; only cells whose
centre lies in the lungs (plus a margin, away from the skin: ``preprocessing.scoring_masks``) are scored.
A slice's probabilities are those of its most suspicious patch (max P(FB)+P(FM)). A location is flagged
when P(FB)+P(FM) reaches ``threshold``; the series verdict is FB or FM (whichever is larger there) of the
most suspicious flagged location (``SeriesResult.findings``), else TM if any patch is a confident genuine
nodule, else TB. Trained artefacts carry a threshold calibrated for the whole series on genuine patches of
their training region (``calibration.py``), so the false positives of thousands of locations do not add
up to a tampered verdict; an uncalibrated artefact falls back to 0.5.

Uncertainty for active learning: ``Detector.embed_and_probs(patches, mc_samples)`` returns patch
embeddings, MC-dropout mean probabilities and their per-class std (dropout layers alone in train mode).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import torch
import torch.nn.functional as F

from . import single_image
from .constants import (
    CLASS_INDEX,
    CLASSES,
    DEFAULT_CHANNELS,
    DEFAULT_PATCH,
    DEFAULT_STRIDE,
    HEATMAP_SIZE,
    SCORING_MASK_STEP,
)
from .geometry import edge_slices
from .models import create_detector
from .preprocessing import (
    PatchGrid,
    air_values,
    grid_cells,
    patch_at,
    run_bounds,
    scoring_masks,
    series_breaks,
    volume_from_datasets,
)

DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "weights" / "default"
# Claim images are single slices: a model trained on one slice per patch (channels at z offset 0 only)
# scores them better than the 2.5D series model fed three copies of it (docs/claims.md, "Detector").
SINGLE_IMAGE_ARTIFACT = Path(__file__).resolve().parents[1] / "weights" / "single_image"
MASK_STEP = SCORING_MASK_STEP
_FB, _FM, _TM = CLASS_INDEX["FB"], CLASS_INDEX["FM"], CLASS_INDEX["TM"]


@dataclass
class LocationScore:
    slice_index: int
    x: int  # column, native pixels
    y: int  # row, native pixels
    probs: dict[str, float]
    tamper: float


@dataclass
class SeriesResult:
    slice_probs: np.ndarray  # (n_slices, 4) float32, CLASSES order, z-sorted
    slice_tamper: np.ndarray  # (n_slices,) float32
    locations: list[LocationScore]
    heatmaps: np.ndarray  # (n_slices, h, w) float16 in [0, 1]
    verdict: str
    verdict_score: float
    model_name: str
    model_version: str
    trained: bool
    order: list[int] = field(default_factory=list)  # z-sorted position -> index into the input datasets
    n_patches: int = 0
    threshold: float = 0.5  # location threshold on P(FB)+P(FM), calibrated for the series (calibration.py)
    edge_threshold: float | None = None  # the edge slices', when the single-image one is higher
    edge_slices: list[int] = field(default_factory=list)  # first, last, and both sides of each gap (geometry.py)
    n_flagged: int = 0  # locations at or above the threshold
    findings: list[LocationScore] = field(default_factory=list)  # flagged locations, most suspicious first


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def fallback_config() -> dict:
    return {
        "arch": "smallcnn",
        "arch_kwargs": {},
        "channels": [list(c) for c in DEFAULT_CHANNELS],
        "patch_size": DEFAULT_PATCH,
        "stride": DEFAULT_STRIDE,
        "classes": list(CLASSES),
        "model_name": "smallcnn",
        "model_version": "untrained-0",
        "trained": False,
    }


def build_model(config: dict) -> torch.nn.Module:
    return create_detector(config["arch"], in_chans=len(config["channels"]), **config.get("arch_kwargs", {}))


class Detector:
    def __init__(
        self,
        model: torch.nn.Module,
        config: dict,
        device: str | None = None,
        amp: str | None = None,
        prefetch: bool | None = None,
    ) -> None:
        self.device = torch.device(device or default_device())
        self.config = config
        self.channels = [tuple(c) for c in config["channels"]]
        self.fill = air_values(self.channels)
        self.patch, self.stride = int(config["patch_size"]), int(config["stride"])
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.batch_size = int(config.get("batch_size_infer", 256))
        # Mixed precision on CUDA only: "bf16" (default), "fp16" or "none" (DETECTOR_AMP overrides).
        amp = (amp or os.environ.get("DETECTOR_AMP") or str(config.get("amp", "bf16"))).lower()
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        # Preparing batch i+1 in a thread while the model runs batch i pays off where the forward pass does
        # not occupy every core (a GPU); on a 2-core CPU both compete for the same cores. See bench_detection.
        env = os.environ.get("DETECTOR_PREFETCH")
        self.prefetch = (
            prefetch
            if prefetch is not None
            else (env == "1" if env in ("0", "1") else self.device.type == "cuda" or (os.cpu_count() or 1) > 4)
        )
        calib = config.get("calibration") or {}
        # A location is flagged as tampered when P(FB)+P(FM) reaches this. Calibrated artefacts carry a
        # threshold set on genuine patches of their training region for the whole series (calibration.py);
        # otherwise 0.5, as before calibration existed.
        self.threshold = float(calib.get("tamper_threshold", config.get("threshold", 0.5)))
        # One image scored alone (a claim image) has its own threshold per input path (single_image.py);
        # an artefact without that calibration has none, and its single-image verdicts are not calibrated.
        self.single_image_thresholds = single_image.thresholds(config)
        self.tm_threshold = float(config.get("tm_threshold", 0.5))
        self.mask_params = dict(config.get("scoring_mask", {}))

    @classmethod
    def load(
        cls, artifact_dir: str | Path | None = None, device: str | None = None, **options: object
    ) -> Detector:
        """Load an artefact dir (config.json + model.pt). None -> shipped default or untrained fallback.

        ``options`` go to the constructor (``amp``, ``prefetch``)."""
        path = Path(artifact_dir) if artifact_dir is not None else DEFAULT_ARTIFACT
        if not (path / "config.json").exists():
            if artifact_dir is not None:
                raise FileNotFoundError(path / "config.json")
            torch.manual_seed(0)  # deterministic random fallback
            return cls(build_model(fallback_config()), fallback_config(), device, **options)
        config = json.loads((path / "config.json").read_text())
        model = build_model(config)
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(model, config, device, **options)

    @property
    def model_name(self) -> str:
        return str(self.config.get("model_name", self.config["arch"]))

    # ---- patch level -------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, C, P, P) windowed patches -> (B, 4) probabilities on CPU."""
        x = batch.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
                logits = self.model(x)
        else:
            logits = self.model(x)
        return logits.float().softmax(1).cpu()

    def batch_buffer(self) -> torch.Tensor:
        """A (batch, C, P, P) float32 input buffer, pinned when the model is on CUDA (async copies)."""
        shape = (self.batch_size, len(self.channels), self.patch, self.patch)
        return torch.empty(shape, dtype=torch.float32, pin_memory=self.device.type == "cuda")

    def patches(
        self, vol: np.ndarray, locs: Sequence[tuple[int, int, int]], breaks: Sequence[int] = ()
    ) -> torch.Tensor:
        """2.5D patches at (slice, x, y) locations of a HU volume (``breaks``: as in ``score_volume``)."""
        first, last = run_bounds(vol.shape[0], breaks)
        return torch.from_numpy(np.stack([
            patch_at(vol, z, y, x, self.patch, self.channels, (int(first[z]), int(last[z]))) for z, x, y in locs
        ]))  # fmt: skip

    def embed_and_probs(self, patches: torch.Tensor, mc_samples: int = 20) -> dict[str, np.ndarray]:
        """Embeddings, MC-dropout mean probs and std for uncertainty sampling."""
        model = self.model
        with torch.inference_mode():
            x = patches.to(self.device)
            emb = model.embed(x)
            deterministic = model.head(emb).softmax(1)
            drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
            for m in drops:
                m.train()  # dropout only: BatchNorm must keep its running statistics
            try:
                runs = torch.stack([model(x).softmax(1) for _ in range(mc_samples)])
            finally:
                for m in drops:
                    m.eval()
        return {
            "embeddings": emb.float().cpu().numpy(),
            "probs": deterministic.float().cpu().numpy(),
            "mc_mean": runs.mean(0).float().cpu().numpy(),
            "mc_std": runs.std(0).float().cpu().numpy(),
        }

    # ---- series level ------------------------------------------------------------------------------
    def score_series(
        self, datasets: Sequence[pydicom.Dataset], top_k: int | None = 64, threshold: float | None = None
    ) -> SeriesResult:
        vol, spacing, order = volume_from_datasets(datasets)
        result = self.score_volume(vol, spacing, top_k=top_k, threshold=threshold,
                                   breaks=series_breaks(datasets, order))  # fmt: skip
        result.order = order
        return result

    def scoring_cells(self, vol: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
        """(N, 3) grid cells (z, iy, ix) to score: centres inside the lung scoring mask, z-major."""
        masks = scoring_masks(vol, float(spacing[1]), MASK_STEP, **self.mask_params)
        ny, nx = -(-vol.shape[1] // self.stride), -(-vol.shape[2] // self.stride)
        return grid_cells(masks["score"], MASK_STEP, self.stride, ny, nx)

    def score_volume(
        self, hu: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0), top_k: int | None = 64,
        threshold: float | None = None, breaks: Sequence[int] = (),
    ) -> SeriesResult:
        """Score a (Z, H, W) HU volume in z order. Patches are native px. ``threshold``: the location
        threshold to use instead of the series one (e.g. ``single_image_thresholds[path]``). ``breaks``: the
        slices after which slices are missing; each run between them is read as a volume of its own."""
        vol = np.asarray(hu, dtype=np.float32)
        cells, prob = self.cell_probs(vol, spacing, breaks=breaks)
        return self._aggregate(vol.shape, cells, prob, top_k, threshold, breaks)

    def cell_probs(
        self, vol: np.ndarray, spacing: Sequence[float], z_range: tuple[int, int] | None = None,
        cells: np.ndarray | None = None, breaks: Sequence[int] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """(cells (N, 3) z/iy/ix, probabilities (N, 4)) of the scoring grid, optionally of z_range only.
        ``cells``: the grid from ``scoring_cells`` when the caller has it already (no second lung mask)."""
        vol = np.asarray(vol, dtype=np.float32)
        cells = self.scoring_cells(vol, spacing) if cells is None else cells
        if z_range is not None:
            cells = cells[(cells[:, 0] >= z_range[0]) & (cells[:, 0] < z_range[1])]
        grid = PatchGrid(vol, self.patch, self.stride, self.channels, cells, breaks)
        return cells, self._score_cells(grid, cells)

    def cell_centre(self, iy: int, ix: int) -> tuple[int, int]:
        """(x, y) native pixel centre of grid cell (iy, ix)."""
        half = self.stride // 2
        return ix * self.stride + half, iy * self.stride + half

    def _score_cells(self, grid: PatchGrid, cells: np.ndarray) -> np.ndarray:
        """Model probabilities for every cell, in fixed-size batches filled from strided views.

        Runs of neighbouring cells along x are copied into a reused buffer in one assignment each; with
        ``prefetch`` a background thread fills buffer i+1 (numpy releases the GIL while copying) while
        the model runs on buffer i.
        """
        n, b = len(cells), self.batch_size
        prob = np.zeros((n, len(CLASSES)), np.float32)
        if n == 0:
            return prob
        # Runs: consecutive ix in one (z, iy) row, split at batch boundaries.
        z, iy, ix = cells.T
        brk = np.ones(n, bool)
        brk[1:] = (z[1:] != z[:-1]) | (iy[1:] != iy[:-1]) | (ix[1:] != ix[:-1] + 1)
        brk[::b] = True
        starts = np.flatnonzero(brk)
        lengths = np.diff(np.append(starts, n))
        runs = list(zip(starts.tolist(), z[starts].tolist(), iy[starts].tolist(), ix[starts].tolist(),
                        lengths.tolist(), strict=True))  # fmt: skip
        first_run = np.searchsorted(starts, np.arange(0, n, b)).tolist() + [len(runs)]
        n_batches = len(first_run) - 1

        def fill(i: int, buf: np.ndarray) -> None:
            for k, zz, yy, xx, m in runs[first_run[i] : first_run[i + 1]]:
                grid.prepare(zz)
                grid.copy_run(buf, k - i * b, zz, yy, xx, m)

        n_buf = 2 if self.prefetch and n_batches > 1 else 1
        bufs = [self.batch_buffer() for _ in range(n_buf)]
        arrays = [t.numpy() for t in bufs]
        if n_buf == 1:
            for i in range(n_batches):
                fill(i, arrays[0])
                rows = min(b, n - i * b)
                prob[i * b : i * b + rows] = self.predict(bufs[0][:rows]).numpy()
            return prob

        free: queue.Queue = queue.Queue()
        ready: queue.Queue = queue.Queue()
        for j in range(n_buf):
            free.put(j)

        def producer() -> None:
            try:
                for i in range(n_batches):
                    j = free.get()
                    if j is None:  # the consumer gave up
                        return
                    fill(i, arrays[j])
                    ready.put(j)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the scoring thread
                ready.put(exc)

        thread = threading.Thread(target=producer, name="detector-prefetch", daemon=True)
        thread.start()
        try:
            for i in range(n_batches):
                j = ready.get()
                if isinstance(j, BaseException):
                    raise j
                rows = min(b, n - i * b)
                prob[i * b : i * b + rows] = self.predict(bufs[j][:rows]).numpy()
                free.put(j)
        finally:
            free.put(None)
            thread.join()
        return prob

    def _aggregate(
        self, shape: tuple[int, ...], meta: np.ndarray, prob: np.ndarray, top_k: int | None,
        threshold: float | None = None, breaks: Sequence[int] = (),
    ) -> SeriesResult:
        # An edge slice of a series (or one beside a gap) lacks a neighbour, so its 2.5D input is part single
        # image: in a series (no explicit threshold) it gets the single-image threshold where that is higher.
        # Genuine 5-slice slabs of the held-out region were flagged 2 of 28 times, each time at an edge slice.
        edge_threshold = self.single_image_thresholds.get("dicom") if threshold is None else None
        threshold = self.threshold if threshold is None else threshold
        n, h, w = shape
        ny, nx = -(-h // self.stride), -(-w // self.stride)
        tamper = prob[:, _FB] + prob[:, _FM]
        grid = np.zeros((n, ny, nx), np.float32)
        grid[meta[:, 0], meta[:, 1], meta[:, 2]] = tamper
        slice_probs = np.tile(np.eye(len(CLASSES), dtype=np.float32)[0], (n, 1))  # empty slice -> TB
        slice_tamper = np.zeros(n, np.float32)
        by_tamper = np.argsort(-tamper, kind="stable")
        zs, first = np.unique(meta[by_tamper, 0], return_index=True)  # most suspicious patch per slice
        slice_probs[zs], slice_tamper[zs] = prob[by_tamper[first]], tamper[by_tamper[first]]
        out_h = HEATMAP_SIZE if h >= w else max(1, round(HEATMAP_SIZE * h / w))
        out_w = HEATMAP_SIZE if w >= h else max(1, round(HEATMAP_SIZE * w / h))
        # Grid cell centres sit at cell centres, so align_corners=False upsampling is pixel-aligned.
        heat = F.interpolate(
            torch.from_numpy(grid)[:, None], size=(out_h, out_w), mode="bilinear", align_corners=False
        )
        locations = [
            self._location(meta[i], prob[i], float(tamper[i]))
            for i in by_tamper[: top_k if top_k is not None else None]
        ]
        cell_threshold = np.full(len(tamper), threshold, np.float64)
        edges = edge_slices(n, breaks)
        if edge_threshold is not None:
            cell_threshold[np.isin(meta[:, 0], edges)] = max(threshold, edge_threshold)
        is_flagged = tamper >= cell_threshold
        flagged = by_tamper[is_flagged[by_tamper]]
        verdict, score = self._verdict(prob, tamper, is_flagged)
        return SeriesResult(
            slice_probs=slice_probs,
            slice_tamper=slice_tamper,
            locations=locations,
            heatmaps=heat[:, 0].clamp(0, 1).numpy().astype(np.float16),
            verdict=verdict,
            verdict_score=score,
            model_name=self.model_name,
            model_version=str(self.config.get("model_version", "0")),
            trained=bool(self.config.get("trained", False)),
            n_patches=len(prob),
            threshold=threshold,
            edge_threshold=None if edge_threshold is None else max(threshold, edge_threshold),
            edge_slices=edges,
            n_flagged=len(flagged),
            findings=[self._location(meta[i], prob[i], float(tamper[i])) for i in flagged[:64]],
        )

    def _location(self, meta: np.ndarray, prob: np.ndarray, tamper: float) -> LocationScore:
        z, iy, ix = (int(v) for v in meta)
        half = self.stride // 2
        return LocationScore(
            z,
            ix * self.stride + half,
            iy * self.stride + half,
            {c: float(p) for c, p in zip(CLASSES, prob, strict=True)},
            tamper,
        )

    def _verdict(self, prob: np.ndarray, tamper: np.ndarray, is_flagged: np.ndarray) -> tuple[str, float]:
        if len(prob) == 0:
            return "TB", 0.0
        i = int(np.argmax(tamper))
        if is_flagged.any():  # the most suspicious flagged location decides FB or FM
            i = int(np.argmax(np.where(is_flagged, tamper, -1.0)))
            return ("FM", float(prob[i, _FM])) if prob[i, _FM] >= prob[i, _FB] else ("FB", float(prob[i, _FB]))
        j = int(np.argmax(prob[:, _TM]))
        if prob[j, _TM] >= self.tm_threshold:
            return "TM", float(prob[j, _TM])
        return "TB", float(1.0 - tamper[i])
