"""Copy-move checks on projection radiographs (X-ray, mammography, fluoroscopy) stored in the PACS.

The CT detector cannot read them (no Hounsfield units, one image instead of a volume), but a region cloned onto
another place of the same image (a nodule hidden under healthy lung, a fracture line doubled) is found without
an original by block matching (detection.ml.copy_move), and a copy that was also turned or resized by matching
keypoints (detection.ml.copy_move_keypoints). Each image is rendered as a reader sees it (the
header's modality and VOI LUT or window; MONOCHROME1 inverted) in 8 bits and, when large, shrunk by a whole
factor so that no image costs more than a MAX_SIDE-square one; boxes are reported in the image's own pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from scipy import ndimage as ndi

from detection.ml.copy_move import CopyMove, find_copy_moves, scaled
from detection.ml.copy_move_keypoints import with_transformed_copies

# Modalities whose images are single projections: the copy-move check reads them instead of the CT detector.
PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "PX", "IO"})
# The block matcher at full resolution takes about 11 s and 0.5 GB for 3000 x 2500 pixels (2-core VM), so CR,
# DX and most mammograms are read whole; larger images at half size or less, which misses more copies
# (resampling splits the two places' blocks differently): scripts/eval_radiograph_copy_move.py measures both.
MAX_SIDE = 4096
MAX_REGIONS = 5  # per image: more are texture, and a reader needs the largest


def display_grey(ds: pydicom.Dataset) -> tuple[np.ndarray, int]:
    """(8-bit image as displayed, the factor it was shrunk by). The first frame of a multi-frame image."""
    pixels = ds.pixel_array
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[0]
    values = apply_voi_lut(apply_modality_lut(pixels, ds), ds).astype(np.float32)
    windowed = "WindowWidth" in ds or "VOILUTSequence" in ds
    lo, hi = (values.min(), values.max()) if windowed else np.percentile(values, [0.5, 99.5])
    grey = np.clip((values - lo) / max(float(hi - lo), 1e-6) * 255.0, 0, 255)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        grey = 255.0 - grey  # low values are white
    factor = max(1, math.ceil(max(grey.shape) / MAX_SIDE))
    if factor > 1:  # low-pass, then every factor-th pixel (found more copies than block means or Lanczos)
        grey = ndi.gaussian_filter(grey, factor / 2)[::factor, ::factor]
    return np.rint(grey).astype(np.uint8), factor


def _echo(clone: CopyMove, of: CopyMove) -> bool:
    """A shrunk copy also matches one pixel off its shift, over part of the same place: not a second copy."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = clone.first, of.first
    near = all(abs(a - b) <= 1 for a, b in zip(clone.shift, of.shift, strict=True))
    return near and ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def check_image(ds: pydicom.Dataset) -> list[dict]:
    """The cloned regions of one image, boxes (x, y, width, height) in its own pixels: the block matcher's,
    largest first, then copies that were also turned or resized (with ``rotation`` in degrees and ``scale``)."""
    grey, factor = display_grey(ds)
    kept: list[CopyMove] = []
    for clone in find_copy_moves(grey):  # largest first
        if not any(_echo(clone, larger) for larger in kept):
            kept.append(clone)
    regions = [scaled(clone.as_dict(), factor) for clone in kept[:MAX_REGIONS]]
    return with_transformed_copies(regions, grey, factor)[:MAX_REGIONS]


def check_images(datasets: Iterable[tuple[int, pydicom.Dataset]]) -> tuple[int, list[dict]]:
    """(images checked, [{slice_index, sop_instance_uid, regions}] for each image with a clone)."""
    checked, found = 0, []
    for slice_index, ds in datasets:
        checked += 1
        if regions := check_image(ds):
            found.append({"slice_index": slice_index, "sop_instance_uid": str(ds.SOPInstanceUID),
                          "regions": regions})  # fmt: skip
    return checked, found


CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def as_cr(ds: pydicom.Dataset, pixels: np.ndarray) -> pydicom.Dataset:
    """``ds`` (a CT slice's header: patient, study, UIDs) made a 12-bit CR image holding ``pixels``, windowed
    over its full range: how the demo and the evaluation make radiographs from the shared CT."""
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "ImagePositionPatient",
                    "ImageOrientationPatient", "SliceThickness", "SliceLocation"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.Modality, ds.SOPClassUID = "CR", CR_IMAGE_STORAGE
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPClassUID = CR_IMAGE_STORAGE
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    return ds
