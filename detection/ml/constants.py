"""Shared constants of the tamper-detection core (no Django, no torch import)."""

from __future__ import annotations

# CT-GAN label vocabulary: True/False x Benign/Malign.
# TB = genuine, no nodule; TM = genuine nodule; FB = nodule removed (fake benign); FM = nodule injected.
CLASSES: tuple[str, ...] = ("TB", "TM", "FB", "FM")
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES)}
TAMPER_CLASSES: tuple[str, ...] = ("FB", "FM")

# Hounsfield windows (low, high) used to build input channels.
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-1350.0, 150.0),  # level -600 / width 1500: nodules and vessels contrast against air
    "full": (-1024.0, 3071.0),  # full 12-bit CT range keeps bone/metal and raw intensity statistics
    "mediastinum": (-160.0, 240.0),
}
AIR_HU = -1024.0

# Default 2.5D channel spec: (window, z offset). Neighbouring slices give the model 3D context, which
# matters because CT-GAN tampers a 3D cube and in-painting leaves discontinuities along z.
DEFAULT_CHANNELS: tuple[tuple[str, int], ...] = (("lung", -1), ("lung", 0), ("lung", 1), ("full", 0))
DEFAULT_PATCH = 64  # px at native resolution (~36 mm at 0.56 mm/px: holds a 32 mm CT-GAN cube)
DEFAULT_STRIDE = 32
SCORING_MASK_STEP = 8  # px: resolution of the lung scoring mask (the grid stride is a multiple of it)
HEATMAP_SIZE = 128
