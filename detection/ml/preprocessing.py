"""DICOM -> Hounsfield units, z ordering, body/lung masks, 2.5D channels and native-resolution patches."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path

import numpy as np
import pydicom
import torch
from pydicom.pixels import apply_rescale
from scipy import ndimage as ndi

from .constants import AIR_HU, DEFAULT_CHANNELS, WINDOWS
from .geometry import slice_gaps

Channels = Sequence[tuple[str, int]]


_NATIVE_LE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")  # implicit / explicit VR little endian


def _native_pixels(ds: pydicom.Dataset) -> np.ndarray | None:
    """Uncompressed single-frame 16-bit greyscale pixel data as a read-only view of PixelData, or None.

    This is what pydicom's decoder returns for such data, without its copies; it is used only when no
    value lies outside BitsStored (otherwise pydicom masks or sign-extends the unused high bits).
    """
    meta = getattr(ds, "file_meta", None)
    if (
        meta is None
        or str(meta.get("TransferSyntaxUID", "")) not in _NATIVE_LE
        or ds.get("BitsAllocated") != 16
        or int(ds.get("SamplesPerPixel", 1) or 1) != 1
        or int(ds.get("NumberOfFrames", 1) or 1) != 1
        or "PixelData" not in ds
    ):
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    raw = ds.PixelData
    if len(raw) < 2 * rows * cols:
        return None
    arr = np.frombuffer(raw, "<i2" if signed else "<u2", rows * cols).reshape(rows, cols)
    bits = int(ds.get("BitsStored", 16) or 16)
    if bits < 16:
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if arr.min() < lo or arr.max() > hi:
            return None
    return arr


def dicom_to_hu(ds: pydicom.Dataset, out: np.ndarray | None = None) -> np.ndarray:
    """Pixel data -> HU through RescaleSlope/Intercept, as float32 (into ``out`` when given).

    The linear rescale is done in float32 in place (pydicom's modality LUT works in float64, two extra
    passes over every slice); a Modality LUT Sequence, rare in CT, goes through pydicom.
    """
    pixels = _native_pixels(ds)
    if pixels is None:
        pixels = ds.pixel_array
    if out is None:
        out = np.empty(pixels.shape, np.float32)
    if "ModalityLUTSequence" in ds and "RescaleSlope" not in ds:
        out[...] = apply_rescale(pixels, ds)
        return out
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    np.copyto(out, pixels, casting="unsafe")
    if slope != 1.0:
        out *= np.float32(slope)
    if intercept != 0.0:
        out += np.float32(intercept)
    return out


def with_hu(datasets: Sequence[pydicom.Dataset], hu: Sequence[np.ndarray]) -> list[pydicom.Dataset]:
    """Copies of ``datasets`` whose pixel data encode ``hu`` (the inverse of dicom_to_hu for uncompressed
    slices, clipped to the stored type): what a tampered copy of a series holds."""
    out = []
    for ds, img in zip(datasets, hu, strict=True):
        copy = deepcopy(ds)  # pydicom.Dataset(ds) would share (and change) the original's elements
        dtype = ds.pixel_array.dtype
        slope, intercept = float(ds.get("RescaleSlope", 1.0) or 1.0), float(ds.get("RescaleIntercept", 0.0) or 0.0)
        stored = np.round((img - intercept) / slope)
        info = np.iinfo(dtype)
        copy.PixelData = np.clip(stored, info.min, info.max).astype(dtype).tobytes()
        out.append(copy)
    return out


def slice_position(ds: pydicom.Dataset) -> float:
    """Position along the slice normal; robust to tilted/reversed series unlike InstanceNumber."""
    if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return float(getattr(ds, "InstanceNumber", 0) or 0)
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float)))


def z_order(datasets: Sequence[pydicom.Dataset]) -> list[int]:
    """Indices of `datasets` sorted by ascending position along the slice normal."""
    positions = [slice_position(ds) for ds in datasets]
    return sorted(range(len(datasets)), key=positions.__getitem__)


def volume_from_datasets(
    datasets: Sequence[pydicom.Dataset],
) -> tuple[np.ndarray, tuple[float, float, float], list[int]]:
    """Assemble a (Z, H, W) float32 HU volume in z order; returns (volume, (dz, dy, dx) mm, order)."""
    order = z_order(datasets)
    first = datasets[order[0]]
    vol = np.empty((len(order), int(first.Rows), int(first.Columns)), np.float32)
    for k, i in enumerate(order):
        dicom_to_hu(datasets[i], vol[k])  # a slice of another size fails here, as np.stack would
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


# Morphology on a (Z, h, w) stack, slice by slice in one call: min/max filters over (1, k, k) squares are
# separable and several times faster than iterated binary erosion.
_CROSS = np.zeros((3, 3, 3), bool)
_CROSS[1] = ndi.generate_binary_structure(2, 1)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    return ndi.maximum_filter(mask, size=(1, 2 * r + 1, 2 * r + 1)) if r > 0 else mask


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    return ndi.minimum_filter(mask, size=(1, 2 * r + 1, 2 * r + 1), mode="constant", cval=0) if r > 0 else mask


def _fill_holes_2d(mask: np.ndarray) -> np.ndarray:
    """Per-slice hole filling of a (Z, h, w) stack: background not connected to the slice's edge."""
    labels, _ = ndi.label(~mask, _CROSS)
    edge = np.unique(np.concatenate([labels[:, 0], labels[:, -1], labels[:, :, 0].T, labels[:, :, -1].T], None))
    return mask | ~np.isin(labels, edge)


def _largest_per_slice(mask: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask, _CROSS)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    z_of = np.zeros(n + 1, int)
    for lab, sl in enumerate(ndi.find_objects(labels), start=1):
        z_of[lab] = sl[0].start
    keep = np.zeros(n + 1, bool)
    best = np.full(mask.shape[0], 0)
    for lab in range(1, n + 1):  # n is small after the opening: a few components per slice
        if sizes[lab] > sizes[best[z_of[lab]]]:
            best[z_of[lab]] = lab
    keep[best[best > 0]] = True
    return keep[labels]


def scoring_masks(
    vol: np.ndarray,
    pixel_mm: float,
    step: int = 4,
    lung_margin_mm: float = 8.0,
    skin_mm: float = 15.0,
    min_lung_fraction: float = 0.2,
) -> dict[str, np.ndarray]:
    """Where tampering is looked for, at 1/step resolution, for a whole (Z, H, W) HU volume.

    CT-GAN tampers lung nodules, so scoring covers the lungs plus ``lung_margin_mm`` (juxtapleural and
    hilar nodules), and never comes closer than ``skin_mm`` to the body's outline: the skin edge, the air
    outside and a body cut by the field of view are where a patch classifier makes its false positives.
    Lungs are the air-filled regions inside the body whose 3-D connected component holds at least
    ``min_lung_fraction`` of the largest one (bowel gas and small pockets are left out).

    Returns ``body``, ``lung`` and ``score`` (Z, ceil(H/step), ceil(W/step)) bool stacks.
    """
    small = np.asarray(vol[:, ::step, ::step])

    def cells(px: int) -> int:  # radii as in body_mask / lung_mask at 1/4 resolution, whatever the step
        return max(1, round(px / step))

    body = _dilate(_erode(small > -500, cells(8)), cells(8))
    body = _fill_holes_2d(_largest_per_slice(body))
    air = _dilate(_erode((small < -400) & body, cells(4)), cells(4))
    air = _fill_holes_2d(_erode(_dilate(air, cells(12)), cells(12))) & body
    labels, n = ndi.label(air)  # 3-D: the lungs are one or two big components along z
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        keep = np.concatenate([[False], sizes >= min_lung_fraction * sizes.max()])
        lung = keep[labels]
    else:
        lung = air
    px = step * pixel_mm
    margin, skin = max(1, round(lung_margin_mm / px)), max(1, round(skin_mm / px))
    return {"body": body, "lung": lung, "score": _dilate(lung, margin) & _erode(body, skin)}


def slice_channels(vol: np.ndarray, z: int, channels: Channels = DEFAULT_CHANNELS) -> np.ndarray:
    """(C, H, W) float32 2.5D stack for slice z; neighbours are clamped at the volume ends."""
    out = []
    for name, dz in channels:
        zz = min(max(z + dz, 0), vol.shape[0] - 1)
        out.append(window(vol[zz], name))
    return np.stack(out).astype(np.float32, copy=False)


def patch_at(
    vol: np.ndarray, z: int, y: int, x: int, size: int, channels: Channels = DEFAULT_CHANNELS,
    bounds: tuple[int, int] | None = None,
) -> np.ndarray:
    """(C, size, size) 2.5D patch centred on (y, x); outside the image counts as air. Neighbouring slices are
    clamped to ``bounds`` (first, last: the run of contiguous slices holding z), by default the volume."""
    half = size // 2
    first, last = bounds if bounds is not None else (0, vol.shape[0] - 1)
    zs = [min(max(z + dz, first), last) for _, dz in channels]
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


def grid_cells(mask: np.ndarray, step: int, stride: int, ny: int, nx: int) -> np.ndarray:
    """(N, 3) rows (z, iy, ix), z-major, of the grid cells whose centre lies in a (Z, h, w) 1/step mask."""
    ys = np.minimum((np.arange(ny) * stride + stride // 2) // step, mask.shape[1] - 1)
    xs = np.minimum((np.arange(nx) * stride + stride // 2) // step, mask.shape[2] - 1)
    return np.argwhere(mask[:, ys][:, :, xs])


class PatchGrid:
    """2.5D patches of a (Z, H, W) HU volume on the scoring grid, gathered through strided views.

    Grid cell (iy, ix) is centred on pixel (iy*stride + stride//2, ix*stride + stride//2), so bilinear
    upsampling of a per-cell score map is pixel-aligned. Each window of the channel spec is applied once
    per slice, in float32, into an air-padded (Hp, Wp) slot laid out so that the patch of cell (iy, ix) is
    ``slot[iy*stride : iy*stride + size, ix*stride : ix*stride + size]``. A run of neighbouring cells
    along x is then one (m, size, size) strided view, copied into a batch buffer by one assignment: no
    per-patch Python work, no temporary copies. Patches equal ``patch_at`` (training): outside the image
    is air, neighbouring slices are clamped at the volume ends.

    Slices must be requested in non-decreasing z order (cells are z-major): the windowed slices live in a
    small ring of slots (the channels' z span + 1), which stays in cache and needs no fresh memory per
    series. Given the ``cells`` to be scored, only the box of a slice that their patches read is windowed.
    """

    def __init__(
        self,
        vol: np.ndarray,
        size: int,
        stride: int,
        channels: Channels = DEFAULT_CHANNELS,
        cells: np.ndarray | None = None,
        breaks: Sequence[int] = (),
    ) -> None:
        self.vol = vol
        self.size, self.stride = size, stride
        self.channels = [(name, int(dz)) for name, dz in channels]
        z, h, w = vol.shape
        # Neighbours are clamped to the run of contiguous slices: at the ends and at each gap (``breaks``: the
        # slices after which one lies), as if each run were a volume of its own.
        self._lo, self._hi = run_bounds(z, breaks)
        self.ny, self.nx = -(-h // stride), -(-w // stride)
        self.off = size // 2 - stride // 2  # padded coordinate = image coordinate + off
        hp, wp = (self.ny - 1) * stride + size, (self.nx - 1) * stride + size
        self._dz = sorted({dz for _, dz in self.channels})
        self.n_slots = self._dz[-1] - self._dz[0] + 2
        self._slot_z = np.full(self.n_slots, -1)  # which slice each slot holds
        self.padded = {name: np.empty((self.n_slots, hp, wp), np.float32) for name, _ in self.channels}
        item = np.dtype(np.float32).itemsize
        self.views = {
            name: np.lib.stride_tricks.as_strided(
                arr,
                (self.n_slots, self.ny, self.nx, size, size),
                (hp * wp * item, stride * wp * item, stride * item, wp * item, item),
                writeable=False,
            )
            for name, arr in self.padded.items()
        }
        # Box (row0, row1, col0, col1) of each padded slice that some patch reads; everything by default.
        self._box = np.tile(np.array([0, hp, 0, wp]), (z, 1))
        if cells is not None:
            self._box[:] = [hp, 0, wp, 0]
            cz, iy, ix = (np.asarray(a) for a in np.asarray(cells).reshape(-1, 3).T)
            for dz in self._dz:
                zz = np.clip(cz + dz, self._lo[cz], self._hi[cz])
                np.minimum.at(self._box[:, 0], zz, iy * stride)
                np.maximum.at(self._box[:, 1], zz, iy * stride + size)
                np.minimum.at(self._box[:, 2], zz, ix * stride)
                np.maximum.at(self._box[:, 3], zz, ix * stride + size)
        self._air = {name: float(window(np.float32(AIR_HU), name)) for name in self.padded}

    def prepare(self, z: int) -> None:
        """Window (the needed box of) the slices that the channels of slice z read, unless already there."""
        for dz in self._dz:
            zz = self._neighbour(z, dz)
            slot = zz % self.n_slots
            if self._slot_z[slot] == zz:
                continue
            self._slot_z[slot] = zz
            r0, r1, c0, c1 = (int(v) for v in self._box[zz])
            if r0 >= r1 or c0 >= c1:
                continue
            # The image part of the box; the rest of the box is padding (air).
            h, w = self.vol.shape[1:]
            i0, i1 = max(r0, self.off), min(r1, h + self.off)
            j0, j1 = max(c0, self.off), min(c1, w + self.off)
            for name, arr in self.padded.items():
                lo, hi = WINDOWS[name]
                box = arr[slot, r0:r1, c0:c1]
                if (i0, i1, j0, j1) != (r0, r1, c0, c1):
                    box[...] = self._air[name]
                if i0 >= i1 or j0 >= j1:
                    continue
                inner = arr[slot, i0:i1, j0:j1]
                np.subtract(self.vol[zz, i0 - self.off : i1 - self.off, j0 - self.off : j1 - self.off], lo, out=inner)
                np.divide(inner, hi - lo, out=inner)
                np.clip(inner, 0, 1, out=inner)

    def copy_run(self, out: np.ndarray, k: int, z: int, iy: int, ix: int, m: int) -> None:
        """out[k:k+m] = the (C, size, size) patches of cells (z, iy, ix .. ix+m-1), after ``prepare(z)``."""
        for c, (name, dz) in enumerate(self.channels):
            out[k : k + m, c] = self.views[name][self._neighbour(z, dz) % self.n_slots, iy, ix : ix + m]

    def _neighbour(self, z: int, dz: int) -> int:
        return min(max(z + dz, int(self._lo[z])), int(self._hi[z]))


def series_breaks(datasets: Sequence[pydicom.Dataset], order: Sequence[int]) -> list[int]:
    """The slices (in z order) after which slices are missing: gaps in the positions (geometry.slice_gaps).
    Empty for a series whose slices are not all positioned (no position, no claim of a gap)."""
    positioned = all("ImagePositionPatient" in datasets[i] for i in order)
    _, gaps = slice_gaps([slice_position(datasets[i]) if positioned else None for i in order])
    return [gap.after_index for gap in gaps]


def run_bounds(n_slices: int, breaks: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) slice of the contiguous run holding each slice; ``breaks``: slices after which a gap lies."""
    starts = np.zeros(n_slices, np.int64)
    ends = np.full(n_slices, n_slices - 1, np.int64)
    for b in sorted(b for b in breaks if 0 <= b < n_slices - 1):
        starts[b + 1 :] = b + 1
        ends[: b + 1] = np.minimum(ends[: b + 1], b)
    return starts, ends
