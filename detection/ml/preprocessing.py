"""DICOM -> Hounsfield units, z ordering, body/lung masks, 2.5D channels and native-resolution patches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import torch
from pydicom.pixels import apply_rescale
from scipy import ndimage as ndi

from .constants import AIR_HU, DEFAULT_CHANNELS, WINDOWS

Channels = Sequence[tuple[str, int]]


def dicom_to_hu(ds: pydicom.Dataset) -> np.ndarray:
    """Pixel data -> HU through RescaleSlope/Intercept (pydicom's modality LUT handles both)."""
    return np.asarray(apply_rescale(ds.pixel_array, ds), dtype=np.float32)


def slice_position(ds: pydicom.Dataset) -> float:
    """Position along the slice normal; robust to tilted/reversed series unlike InstanceNumber."""
    if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return float(getattr(ds, "InstanceNumber", 0) or 0)
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float)))


def z_order(datasets: Sequence[pydicom.Dataset]) -> list[int]:
    """Indices of `datasets` sorted by ascending position along the slice normal."""
    return sorted(range(len(datasets)), key=lambda i: slice_position(datasets[i]))


def volume_from_datasets(
    datasets: Sequence[pydicom.Dataset],
) -> tuple[np.ndarray, tuple[float, float, float], list[int]]:
    """Assemble a (Z, H, W) float32 HU volume in z order; returns (volume, (dz, dy, dx) mm, order)."""
    order = z_order(datasets)
    vol = np.stack([dicom_to_hu(datasets[i]) for i in order])
    first = datasets[order[0]]
    dy, dx = (float(v) for v in getattr(first, "PixelSpacing", (1.0, 1.0)))
    if len(order) > 1:
        dz = abs(slice_position(datasets[order[1]]) - slice_position(first))
    else:
        dz = float(getattr(first, "SliceThickness", 1.0) or 1.0)
    return vol, (dz or 1.0, dy, dx), order


def read_series(folder: str | Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(Path(folder).glob("*.dcm"))]


def load_volume(folder: str | Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    vol, spacing, _ = volume_from_datasets(read_series(folder))
    return vol, spacing


def window(hu: np.ndarray | torch.Tensor, name: str) -> np.ndarray | torch.Tensor:
    """Map HU to [0, 1] with a named window."""
    lo, hi = WINDOWS[name]
    scaled = (hu - lo) / (hi - lo)
    return scaled.clamp(0, 1) if isinstance(scaled, torch.Tensor) else np.clip(scaled, 0, 1)


def body_mask(hu_slice: np.ndarray, step: int = 4) -> np.ndarray:
    """Body mask at 1/step resolution: negative-space reduction (table, air outside the patient)."""
    small = hu_slice[::step, ::step] > -500
    small = ndi.binary_opening(small, iterations=2)
    labels, n = ndi.label(small)
    if n == 0:
        return np.zeros_like(small)
    sizes = ndi.sum(small, labels, range(1, n + 1))
    return ndi.binary_fill_holes(labels == (int(np.argmax(sizes)) + 1))


def lung_mask(hu_slice: np.ndarray, step: int = 4) -> np.ndarray:
    """Lung (air inside the body, vessels included) at 1/step resolution."""
    body = body_mask(hu_slice, step)
    air = (hu_slice[::step, ::step] < -400) & body
    air = ndi.binary_opening(air, iterations=1)
    return ndi.binary_fill_holes(ndi.binary_closing(air, iterations=3)) & body


def slice_channels(vol: np.ndarray, z: int, channels: Channels = DEFAULT_CHANNELS) -> np.ndarray:
    """(C, H, W) float32 2.5D stack for slice z; neighbours are clamped at the volume ends."""
    out = []
    for name, dz in channels:
        zz = min(max(z + dz, 0), vol.shape[0] - 1)
        out.append(window(vol[zz], name))
    return np.stack(out).astype(np.float32, copy=False)


def patch_at(
    vol: np.ndarray, z: int, y: int, x: int, size: int, channels: Channels = DEFAULT_CHANNELS
) -> np.ndarray:
    """(C, size, size) 2.5D patch centred on (y, x); outside the image counts as air."""
    half = size // 2
    zs = [min(max(z + dz, 0), vol.shape[0] - 1) for _, dz in channels]
    crop = np.full((len(channels), size, size), AIR_HU, dtype=np.float32)
    h, w = vol.shape[1:]
    y0, x0 = y - half, x - half
    sy, sx = slice(max(y0, 0), min(y0 + size, h)), slice(max(x0, 0), min(x0 + size, w))
    dy, dx = slice(sy.start - y0, sy.stop - y0), slice(sx.start - x0, sx.stop - x0)
    for c, zz in enumerate(zs):
        crop[c, dy, dx] = vol[zz, sy, sx]
    return np.stack([window(crop[c], name) for c, (name, _) in enumerate(channels)]).astype(np.float32)


def air_values(channels: Channels) -> torch.Tensor:
    """Windowed value of air per channel: what padding outside the image must look like."""
    return torch.tensor([float(window(np.float32(AIR_HU), name)) for name, _ in channels])


def grid_patches(
    img: torch.Tensor, size: int, stride: int, fill: torch.Tensor | None = None
) -> tuple[torch.Tensor, int, int]:
    """All grid patches of a (C, H, W) image as a (ny, nx, C, size, size) view.

    Patch (i, j) is centred on pixel (i*stride + stride//2, j*stride + stride//2), i.e. the centre of
    grid cell (i, j); this makes bilinear upsampling of the per-patch score map pixel-aligned.
    ``fill`` (C,) pads outside the image (air), matching ``patch_at`` used for training.
    """
    pad = size // 2
    shift = fill.to(img)[:, None, None] if fill is not None else 0.0
    padded = torch.nn.functional.pad(img - shift, (pad, pad, pad, pad)) + shift
    off = stride // 2
    view = padded[:, off:, off:].unfold(1, size, stride).unfold(2, size, stride)
    ny, nx = -(-img.shape[1] // stride), -(-img.shape[2] // stride)
    return view.permute(1, 2, 0, 3, 4)[:ny, :nx], ny, nx


def grid_mask(body_small: np.ndarray, step: int, stride: int, ny: int, nx: int) -> np.ndarray:
    """Which grid cells to score: cells whose centre lies in (dilated) body."""
    dil = ndi.binary_dilation(body_small, iterations=max(1, stride // (2 * step)))
    ys = np.minimum((np.arange(ny) * stride + stride // 2) // step, dil.shape[0] - 1)
    xs = np.minimum((np.arange(nx) * stride + stride // 2) // step, dil.shape[1] - 1)
    return dil[np.ix_(ys, xs)]
