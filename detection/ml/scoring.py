"""Batch scoring of a CT series: patches -> slice scores -> series verdict, plus tamper heatmaps.

Usage (the Celery worker keeps one Detector alive between jobs)::

    det = Detector.load()                      # shipped default, or random-weight fallback (trained=False)
    res = det.score_series(list_of_pydicom_datasets)
    res.verdict, res.slice_tamper, res.heatmaps, res.locations

Patches (native resolution, 2.5D channels) on a regular grid inside the body are the scoring unit. A
slice's probabilities are those of its most suspicious patch (max P(FB)+P(FM)); the series verdict is
FB/FM if any patch exceeds ``threshold`` in tamper probability, else TM if any patch is a confident
genuine nodule, else TB.

Uncertainty for active learning: ``Detector.embed_and_probs(patches, mc_samples)`` returns patch
embeddings, MC-dropout mean probabilities and their per-class std (dropout layers alone in train mode).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import torch
import torch.nn.functional as F

from .constants import CLASS_INDEX, CLASSES, DEFAULT_CHANNELS, DEFAULT_PATCH, DEFAULT_STRIDE, HEATMAP_SIZE
from .models import create_detector
from .preprocessing import (
    air_values,
    body_mask,
    grid_mask,
    grid_patches,
    patch_at,
    slice_channels,
    volume_from_datasets,
)

DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "weights" / "default"
MASK_STEP = 4
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
    def __init__(self, model: torch.nn.Module, config: dict, device: str | None = None) -> None:
        self.device = torch.device(device or default_device())
        self.config = config
        self.channels = [tuple(c) for c in config["channels"]]
        self.fill = air_values(self.channels)
        self.patch, self.stride = int(config["patch_size"]), int(config["stride"])
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.batch_size = int(config.get("batch_size_infer", 256))
        self.threshold = float(config.get("threshold", 0.5))

    @classmethod
    def load(cls, artifact_dir: str | Path | None = None, device: str | None = None) -> Detector:
        """Load an artefact dir (config.json + model.pt). None -> shipped default or untrained fallback."""
        path = Path(artifact_dir) if artifact_dir is not None else DEFAULT_ARTIFACT
        if not (path / "config.json").exists():
            if artifact_dir is not None:
                raise FileNotFoundError(path / "config.json")
            torch.manual_seed(0)  # deterministic random fallback
            return cls(build_model(fallback_config()), fallback_config(), device)
        config = json.loads((path / "config.json").read_text())
        model = build_model(config)
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(model, config, device)

    @property
    def model_name(self) -> str:
        return str(self.config.get("model_name", self.config["arch"]))

    # ---- patch level -------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, C, P, P) windowed patches -> (B, 4) probabilities on CPU."""
        x = batch.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = self.model(x.contiguous(memory_format=torch.channels_last))
        else:
            logits = self.model(x)
        return logits.float().softmax(1).cpu()

    def patches(self, vol: np.ndarray, locs: Sequence[tuple[int, int, int]]) -> torch.Tensor:
        """2.5D patches at (slice, x, y) locations of a HU volume."""
        return torch.from_numpy(
            np.stack([patch_at(vol, z, y, x, self.patch, self.channels) for z, x, y in locs])
        )

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
    def score_series(self, datasets: Sequence[pydicom.Dataset], top_k: int | None = 64) -> SeriesResult:
        vol, spacing, order = volume_from_datasets(datasets)
        result = self.score_volume(vol, spacing, top_k=top_k)
        result.order = order
        return result

    def iter_batches(self, vol: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Fixed-size batches of grid patches inside the body; meta rows are (z, iy, ix)."""
        metas, chunks, count = [], [], 0
        for z in range(vol.shape[0]):
            img = torch.from_numpy(slice_channels(vol, z, self.channels))
            view, ny, nx = grid_patches(img, self.patch, self.stride, self.fill)
            iy, ix = np.nonzero(grid_mask(body_mask(vol[z], MASK_STEP), MASK_STEP, self.stride, ny, nx))
            if len(iy) == 0:
                continue
            metas.append(np.stack([np.full_like(iy, z), iy, ix], 1))
            chunks.append(view[torch.from_numpy(iy), torch.from_numpy(ix)])
            count += len(iy)
            while count >= self.batch_size:
                meta, batch = np.concatenate(metas), torch.cat(chunks)
                yield meta[: self.batch_size], batch[: self.batch_size]
                metas, chunks = [meta[self.batch_size :]], [batch[self.batch_size :]]
                count -= self.batch_size
        if count:
            yield np.concatenate(metas), torch.cat(chunks)

    def score_volume(
        self, hu: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0), top_k: int | None = 64
    ) -> SeriesResult:
        """Score a (Z, H, W) HU volume in z order. Patches are native px."""
        vol = np.asarray(hu, dtype=np.float32)
        metas, probs = [], []
        for meta, batch in self.iter_batches(vol):
            metas.append(meta)
            probs.append(self.predict(batch).numpy())
        meta = np.concatenate(metas) if metas else np.zeros((0, 3), int)
        prob = np.concatenate(probs) if probs else np.zeros((0, len(CLASSES)), np.float32)
        return self._aggregate(vol.shape, meta, prob, top_k)

    def _aggregate(
        self, shape: tuple[int, ...], meta: np.ndarray, prob: np.ndarray, top_k: int | None
    ) -> SeriesResult:
        n, h, w = shape
        ny, nx = -(-h // self.stride), -(-w // self.stride)
        tamper = prob[:, _FB] + prob[:, _FM]
        grid = np.zeros((n, ny, nx), np.float32)
        grid[meta[:, 0], meta[:, 1], meta[:, 2]] = tamper
        slice_probs = np.tile(np.eye(len(CLASSES), dtype=np.float32)[0], (n, 1))  # empty slice -> TB
        slice_tamper = np.zeros(n, np.float32)
        best = np.full(n, -1.0)
        for i, z in enumerate(meta[:, 0]):  # most suspicious patch per slice
            if tamper[i] > best[z]:
                best[z], slice_probs[z], slice_tamper[z] = tamper[i], prob[i], tamper[i]
        out_h = HEATMAP_SIZE if h >= w else max(1, round(HEATMAP_SIZE * h / w))
        out_w = HEATMAP_SIZE if w >= h else max(1, round(HEATMAP_SIZE * w / h))
        # Grid cell centres sit at cell centres, so align_corners=False upsampling is pixel-aligned.
        heat = F.interpolate(
            torch.from_numpy(grid)[:, None], size=(out_h, out_w), mode="bilinear", align_corners=False
        )
        order = np.argsort(-tamper, kind="stable")[: top_k if top_k is not None else None]
        locations = [self._location(meta[i], prob[i], float(tamper[i])) for i in order]
        verdict, score = self._verdict(prob, tamper)
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

    def _verdict(self, prob: np.ndarray, tamper: np.ndarray) -> tuple[str, float]:
        if len(prob) == 0:
            return "TB", 0.0
        i = int(np.argmax(tamper))
        if tamper[i] >= self.threshold:
            return (
                ("FM", float(prob[i, _FM])) if prob[i, _FM] >= prob[i, _FB] else ("FB", float(prob[i, _FB]))
            )
        j = int(np.argmax(prob[:, _TM]))
        if prob[j, _TM] >= self.threshold:
            return "TM", float(prob[j, _TM])
        return "TB", float(1.0 - tamper[i])
