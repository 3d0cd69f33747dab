"""Copy-move forgery detection in a single image: a region cloned onto another place of the same image (to hide
a finding under healthy tissue, or to double one). Block matching after Fridrich, Soukal and Lukas (2003):
every textured block is described by its quantised low-frequency DCT coefficients; identical descriptors at
the same shift, many of them and side by side, are a cloned region. No original is needed, which is what an
insurer has for most claim photos and X-ray exports.

Flat blocks (air, background, saturated bone) match everywhere and are skipped; so are shifts shorter than
MIN_SHIFT (a block and its neighbour look alike in any smooth image).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage as ndi

# Chosen on simulated clones in every sixth slice of the shared CT (z 0, 6, ...), rendered in the lung window,
# as PNG and as JPEG at quality 90 and 75; scripts/eval_copy_move.py measures the others (z 3, 9, ...).
BLOCK = 12
COEFFICIENTS = 3  # the 3 x 3 lowest-frequency DCT coefficients of a block
QUANT = 12.0  # coarse enough that JPEG (quality 75) keeps many blocks of a clone equal to their source
MIN_STD = 5.0  # grey levels: flatter blocks are skipped
MAX_FLAT_SHARE = 0.5  # blocks where more neighbouring pixels are equal are skipped (text, saturation)
MIN_SHIFT = 24  # pixels
MIN_BLOCKS = 32  # matched blocks at one shift in one region (a block starts at every pixel)
MIN_SIDE = 24  # pixels: a smaller region is a repeated letter or mark more often than a hidden finding
MAX_BUCKET = 6  # descriptors shared by more blocks are repetitive texture, not a clone
GAP = 3  # pixels: matched blocks this close belong to one region


@dataclass(frozen=True)
class CopyMove:
    """Two places of one image with the same content: one is a copy of the other (which one, blocks cannot
    tell). Boxes are x, y, width, height; ``second`` is ``first`` moved by ``shift`` (dy, dx)."""

    shift: tuple[int, int]
    first: tuple[int, int, int, int]
    second: tuple[int, int, int, int]
    blocks: int  # matched blocks (one starting at each pixel)

    def as_dict(self) -> dict:
        return {"shift": list(self.shift), "first": list(self.first), "second": list(self.second),
                "blocks": self.blocks}  # fmt: skip


def scaled(region: dict, factor: float) -> dict:
    """A found region (``as_dict``) with its shift and boxes in the pixels of an image ``factor`` times larger
    (it was found in a shrunk copy)."""
    return {**region, **{key: [round(v * factor) for v in region[key]] for key in ("shift", "first", "second")}}


def _dct_basis() -> np.ndarray:
    """(COEFFICIENTS, BLOCK): the orthonormal DCT-II basis vectors of the lowest frequencies."""
    x, k = np.arange(BLOCK), np.arange(COEFFICIENTS)[:, None]
    basis = np.cos(np.pi * (2 * x + 1) * k / (2 * BLOCK)) * np.sqrt(2 / BLOCK)
    basis[0] /= np.sqrt(2)
    return basis.astype(np.float32)


def _descriptors(grey: np.ndarray, band: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(positions (n, 2) as y, x; quantised descriptors (n, COEFFICIENTS**2)) of the textured blocks, a block
    starting at every pixel (a clone can be moved by any number of pixels). The DCT is separable, so each
    coefficient of every block is two passes of 1D windows instead of one transform per block. Computed in
    bands of block rows, so that a radiograph's millions of blocks never hold their float transforms at once."""
    image = grey.astype(np.float32)
    positions, descriptors = [], []
    for y0 in range(0, image.shape[0] - BLOCK + 1, band):
        ys, xs, quantised = _band_descriptors(image[y0:y0 + band + BLOCK - 1])
        positions.append(np.stack([ys + y0, xs], axis=1).astype(np.int32))
        descriptors.append(quantised)
    if not positions:
        return np.zeros((0, 2), np.int32), np.zeros((0, COEFFICIENTS**2), np.int16)
    return np.concatenate(positions), np.concatenate(descriptors)


def _band_descriptors(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    basis = _dct_basis()
    across = sliding_window_view(image, BLOCK, axis=1) @ basis.T  # (H, W-B+1, C): rows transformed
    coeffs = np.einsum("ywcb,vb->ywvc", sliding_window_view(across, BLOCK, axis=0), basis)  # (H', W', C, C)
    total = sliding_window_view(image, (BLOCK, BLOCK)).sum(axis=(2, 3))
    squares = sliding_window_view(image * image, (BLOCK, BLOCK)).sum(axis=(2, 3))
    variance = squares / BLOCK**2 - (total / BLOCK**2) ** 2
    # Repeated letters of burned-in text (a date, "R ... R") are the same content twice, on a flat background:
    # blocks where most neighbouring pixels are equal are not tissue, and are skipped like flat ones.
    equal = np.zeros(image.shape, np.float32)
    equal[:, :-1] = image[:, 1:] == image[:, :-1]
    flat_share = sliding_window_view(equal, (BLOCK, BLOCK)).sum(axis=(2, 3)) / BLOCK**2
    textured = (variance >= MIN_STD**2) & (flat_share <= MAX_FLAT_SHARE)
    ys, xs = np.nonzero(textured)
    descriptors = coeffs[textured].reshape(len(ys), COEFFICIENTS**2)  # explicit: no textured block at all is fine
    # Small types: a radiograph has millions of blocks (|coefficient| / QUANT <= 255 for 8-bit images).
    return ys, xs, np.rint(descriptors / QUANT).astype(np.int16)


def find_copy_moves(grey: np.ndarray, min_blocks: int = MIN_BLOCKS) -> list[CopyMove]:
    """Cloned regions in a 2D greyscale image (any numeric dtype; an 8-bit rendering is what claims have),
    largest first."""
    if grey.ndim != 2 or min(grey.shape) < BLOCK + MIN_SHIFT:
        return []
    positions, descriptors = _descriptors(grey)
    if len(positions) < 2:
        return []
    order = np.lexsort(descriptors.T[::-1])
    descriptors, positions = descriptors[order], positions[order]
    starts = np.flatnonzero(np.r_[True, np.any(descriptors[1:] != descriptors[:-1], axis=1)])
    ends = np.r_[starts[1:], len(descriptors)]
    by_shift: dict[tuple[int, int], list[tuple[int, int, int, int]]] = defaultdict(list)
    for start, end in zip(starts, ends, strict=True):
        if end - start < 2 or end - start > MAX_BUCKET:
            continue
        group = positions[start:end]
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                (y0, x0), (y1, x1) = sorted((tuple(group[i]), tuple(group[j])))
                if abs(y1 - y0) + abs(x1 - x0) >= MIN_SHIFT:
                    by_shift[(y1 - y0, x1 - x0)].append((y0, x0, y1, x1))
    found = []
    for shift, pairs in by_shift.items():
        if len(pairs) < min_blocks:
            continue
        found += _regions(grey.shape, shift, np.array(pairs), min_blocks)
    return sorted(found, key=lambda c: -c.blocks)


def _regions(shape: tuple[int, int], shift: tuple[int, int], pairs: np.ndarray, min_blocks: int) -> list[CopyMove]:
    """Connected groups of matched source blocks at one shift, each with enough blocks: one clone each."""
    grid = np.zeros(shape, bool)
    grid[pairs[:, 0], pairs[:, 1]] = True
    # Matches a few pixels apart are one region: after compression only some blocks of a clone match exactly.
    labels, _ = ndi.label(ndi.binary_dilation(grid, iterations=GAP), structure=np.ones((3, 3)))
    labels[~grid] = 0
    out = []
    for index, found in enumerate(ndi.find_objects(labels), start=1):
        if found is None or (size := int((labels[found] == index).sum())) < min_blocks:
            continue
        y0, x0 = found[0].start, found[1].start
        height, width = found[0].stop - 1 + BLOCK - y0, found[1].stop - 1 + BLOCK - x0
        if min(height, width) < MIN_SIDE:
            continue
        dy, dx = int(shift[0]), int(shift[1])
        out.append(CopyMove(shift=(dy, dx), first=(int(x0), int(y0), int(width), int(height)),
                            second=(int(x0 + dx), int(y0 + dy), int(width), int(height)), blocks=size))  # fmt: skip
    return out
