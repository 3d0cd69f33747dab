"""Tamper simulator: labelled CT-GAN-style training data from genuine scans.

FM: inject a synthetic nodule (4-30 mm, lobulated ellipsoid, HU texture, soft blending, noise
re-injection, optional boundary touch-up as CT-GAN does after its GAN in-painting).
FB: remove a dense structure (vessel/nodule, or a nodule first injected then removed) by biharmonic
in-painting (skimage), copy-move of healthy lung from the same slice, or diffusion fill.
TM / TB: genuine patches centred on / away from dense nodule-like structure.
2D forgeries (X-ray / claim photos): copy-move, splicing, retouching.

Every function takes a ``np.random.Generator`` and returns the parameters it drew, so a sample is
reproducible from its recorded seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.restoration import inpaint_biharmonic

from .constants import AIR_HU, DEFAULT_CHANNELS, SCORING_MASK_STEP
from .preprocessing import body_mask, lung_mask, patch_at, scoring_masks, window

Params = dict[str, Any]
REMOVAL_METHODS = ("biharmonic", "copy_move", "diffusion")
# Where genuine TB patches come from. Half are drawn where the scorer looks (``scoring_masks``), with
# extra weight on its borders (pleura, mediastinum, chest wall): the genuine anatomy a patch classifier
# most often mistakes for tampering. The rest is clear lung and any body tissue.
TB_SITE_MIX = (("clear", 0.3), ("scored", 0.25), ("edge", 0.3), ("body", 0.15))


def noise_std(sub: np.ndarray) -> float:
    """CT noise level: robust std of the high-pass residual (what CT-GAN re-injects after blending)."""
    resid = sub - ndi.gaussian_filter(sub, (0, 1.5, 1.5))
    return float(1.4826 * np.median(np.abs(resid - np.median(resid))))


def inject_nodule(
    sub: np.ndarray,
    centre: tuple[int, int, int],
    spacing: Sequence[float],
    rng: np.random.Generator,
    diameter_mm: float | None = None,
) -> tuple[np.ndarray, Params]:
    """Blend a synthetic nodule into a HU sub-volume around centre=(z, y, x) (``diameter_mm``: fixed
    size instead of a random 4-30 mm)."""
    p: Params = {
        "diameter_mm": float(rng.uniform(4, 30)),
        "axes": rng.uniform(0.75, 1.25, 3).round(3).tolist(),
        "angle": float(rng.uniform(0, np.pi)),
        "lobulation": float(rng.uniform(0, 0.35)),
        "mean_hu": float(rng.uniform(-150, 80)),
        "texture_std": float(rng.uniform(5, 60)),
        "edge_px": float(rng.uniform(0.4, 2.0)),
        "noise_gain": float(rng.uniform(0.5, 1.2)),
        "touch_up": bool(rng.random() < 0.5),
    }
    if diameter_mm is not None:
        p["diameter_mm"] = float(diameter_mm)
    zz, yy, xx = (np.arange(n, dtype=np.float32) - c for n, c in zip(sub.shape, centre, strict=True))
    zz, yy, xx = np.meshgrid(zz * spacing[0], yy * spacing[1], xx * spacing[2], indexing="ij")
    ca, sa = np.cos(p["angle"]), np.sin(p["angle"])
    yr, xr = ca * yy - sa * xx, sa * yy + ca * xx
    radius = p["diameter_mm"] / 2
    r = np.sqrt((zz / p["axes"][0]) ** 2 + (yr / p["axes"][1]) ** 2 + (xr / p["axes"][2]) ** 2) / radius
    lob = ndi.gaussian_filter(rng.normal(size=sub.shape), (0.7, 4, 4))
    r = r + p["lobulation"] * lob / (lob.std() + 1e-6) * 0.5
    # Soft edge width in radius units, so blending is ~edge_px pixels wide whatever the size.
    alpha = 1 / (1 + np.exp((r - 1) * radius / (p["edge_px"] * spacing[1])))
    texture = (
        p["mean_hu"] + p["texture_std"] * ndi.gaussian_filter(rng.normal(size=sub.shape), (0.5, 1.5, 1.5)) * 3
    )
    out = sub * (1 - alpha) + np.maximum(sub, texture) * alpha  # keep crossing vessels brighter
    out += alpha * rng.normal(0, noise_std(sub) * p["noise_gain"], sub.shape)
    if p["touch_up"]:
        ring = (alpha > 0.05) & (alpha < 0.95)
        out = np.where(ring, ndi.gaussian_filter(out, (0, 0.7, 0.7)), out)
    return out.astype(np.float32), p


def dense_mask(
    sub: np.ndarray, centre: tuple[int, int, int], radius_px: float, thr: float = -500
) -> np.ndarray:
    """Dense voxels connected to the centre within a sphere-ish radius, dilated to cover partial volume."""
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in sub.shape)]
    ball = ((yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius_px**2) & (np.abs(zz - centre[0]) <= 2)
    dense = (ndi.gaussian_filter(sub, (0, 1, 1)) > thr) & ball
    labels, _ = ndi.label(dense)
    lab = labels[centre]
    mask = (
        labels == lab
        if lab
        else ball & ((yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= (radius_px / 2) ** 2)
    )
    return ndi.binary_dilation(mask, iterations=2) & ball


def _diffuse(img: np.ndarray, mask: np.ndarray, iters: int = 150) -> np.ndarray:
    out = img.copy()
    out[mask] = np.median(img[ndi.binary_dilation(mask, iterations=2) & ~mask])
    for _ in range(iters):
        out[mask] = ndi.uniform_filter(out, 3)[mask]
    return out


def _copy_move(img: np.ndarray, mask: np.ndarray, donor: np.ndarray) -> np.ndarray:
    alpha = ndi.gaussian_filter(mask.astype(np.float32), 1.0)
    alpha = np.clip(alpha * 1.5, 0, 1)
    return img * (1 - alpha) + donor * alpha


def remove_structure(
    sub: np.ndarray,
    centre: tuple[int, int, int],
    spacing: Sequence[float],
    rng: np.random.Generator,
    donor: np.ndarray | None = None,
    method: str | None = None,
    radius_mm: float | None = None,
) -> tuple[np.ndarray, Params]:
    """In-paint the dense structure at centre (per slice). donor: healthy crop for copy-move."""
    method = method or str(rng.choice(REMOVAL_METHODS if donor is not None else REMOVAL_METHODS[::2]))
    p: Params = {
        "method": method,
        "radius_mm": radius_mm or float(rng.uniform(3, 15)),
        "noise_gain": float(rng.uniform(0.6, 1.2)),
    }
    mask = dense_mask(sub, centre, p["radius_mm"] / spacing[1])
    out = sub.copy()
    sigma = noise_std(sub)
    for z in np.flatnonzero(mask.any((1, 2))):
        ys, xs = np.nonzero(ndi.binary_dilation(mask[z], iterations=6))
        box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        img, m = out[z][box], mask[z][box]
        if method == "biharmonic":
            filled = inpaint_biharmonic(img, m)
        elif method == "diffusion":
            filled = _diffuse(img, m)
        else:
            filled = _copy_move(img, m, donor[z][box])
        filled = np.where(m, filled + rng.normal(0, sigma * p["noise_gain"], m.shape), filled)
        out[z][box] = filled
    p["masked_voxels"] = int(mask.sum())
    return out.astype(np.float32), p


# ---- site catalogue and patch samples ---------------------------------------------------------------


def site_catalogue(
    vol: np.ndarray, z_range: tuple[int, int], step: int = 4, pixel_mm: float = 0.7
) -> dict[str, np.ndarray]:
    """(z, y, x) native-pixel sites of slices z_range[0] <= z < z_range[1].

    lung: lung interior; dense: dense lung structure; body: body outside the lungs; clear: healthy lung;
    scored: anywhere the scorer looks (lungs + margin, away from the skin); edge: the scored border band
    outside the lung interior (pleura, mediastinum, chest wall).
    """
    keys = ("lung", "dense", "body", "clear", "scored", "edge")
    sites: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    ms = SCORING_MASK_STEP
    scored_all = scoring_masks(vol, pixel_mm, ms)
    for z in range(*z_range):
        lung = ndi.binary_erosion(lung_mask(vol[z], step), iterations=2)
        body = body_mask(vol[z], step) & ~ndi.binary_dilation(lung, iterations=2)
        small = ndi.gaussian_filter(vol[z], 2)[::step, ::step]
        for key, m in (
            ("lung", lung),
            ("dense", lung & (small > -350)),
            ("body", body),
            ("clear", lung & (ndi.maximum_filter(small, 5) < -650)),
        ):
            yx = np.argwhere(m) * step
            sites[key].append(np.column_stack([np.full(len(yx), z), yx]))
        scored = scored_all["score"][z]
        interior = ndi.binary_erosion(scored_all["lung"][z], iterations=2)
        for key, m in (("scored", scored), ("edge", scored & ~interior)):
            yx = np.argwhere(m) * ms + ms // 2
            sites[key].append(np.column_stack([np.full(len(yx), z), yx]))
    return {k: np.concatenate(v) if v else np.zeros((0, 3), int) for k, v in sites.items()}


def _crop(
    vol: np.ndarray, z: int, y: int, x: int, hz: int, hw: int
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Air-padded (2hz+1, 2hw, 2hw) crop (slices clamped at the ends) and the centre's index inside it."""
    zs = np.clip(np.arange(z - hz, z + hz + 1), 0, vol.shape[0] - 1)
    out = np.full((len(zs), 2 * hw, 2 * hw), AIR_HU, np.float32)
    y0, x0 = y - hw, x - hw
    sy, sx = slice(max(y0, 0), min(y + hw, vol.shape[1])), slice(max(x0, 0), min(x + hw, vol.shape[2]))
    out[:, sy.start - y0 : sy.stop - y0, sx.start - x0 : sx.stop - x0] = vol[zs, sy, sx]
    return out, (hz, hw, hw)


def simulate_patch(
    vol: np.ndarray,
    spacing: Sequence[float],
    sites: dict[str, np.ndarray],
    label: str,
    seed: int,
    patch: int = 64,
    channels: Sequence[tuple[str, int]] = DEFAULT_CHANNELS,
    jitter: int = 16,
) -> tuple[np.ndarray, Params]:
    """One labelled 2.5D patch: genuine (TB/TM) or tampered (FB/FM) at a sampled site."""
    rng = np.random.default_rng(seed)
    if label == "TB":
        names, weights = zip(*TB_SITE_MIX, strict=True)
        kind = str(rng.choice(names, p=np.asarray(weights) / sum(weights)))
    else:
        kind = {"TM": "dense", "FB": "dense", "FM": "lung"}[label]
    if label == "FB" and rng.random() < 0.3:
        kind = "lung"  # remove a nodule we first inject: the "real tumour removed" case
    pool = sites[kind] if len(sites.get(kind, ())) else sites["lung"]
    z, y, x = (int(v) for v in pool[rng.integers(len(pool))])
    params: Params = {"label": label, "seed": seed, "site": kind, "z": z, "y": y, "x": x}
    hz, hw = 7, patch // 2 + jitter + 24
    sub, c = _crop(vol, z, y, x, hz, hw)
    if label == "FM" or (label == "FB" and kind == "lung"):
        sub, params["inject"] = inject_nodule(sub, c, spacing, rng)
    if label == "FB":
        donor = None
        if len(sites["clear"]):
            dz, dy, dx = sites["clear"][rng.integers(len(sites["clear"]))]
            donor, _ = _crop(vol, z, int(dy), int(dx), hz, hw)
        radius = params["inject"]["diameter_mm"] * 0.75 + 2 if "inject" in params else None
        sub, params["remove"] = remove_structure(sub, c, spacing, rng, donor, radius_mm=radius)
    oy, ox = (int(v) for v in rng.integers(-jitter, jitter + 1, 2))
    params.update(offset_y=oy, offset_x=ox)
    return patch_at(sub, c[0], c[1] + oy, c[2] + ox, patch, channels), params


# ---- 2D forgeries (X-ray, claim photos) -------------------------------------------------------------


def _box(shape: tuple[int, ...], size: int, rng: np.random.Generator) -> tuple[slice, slice]:
    y, x = rng.integers(0, shape[0] - size), rng.integers(0, shape[1] - size)
    return slice(y, y + size), slice(x, x + size)


def copy_move_2d(
    img: np.ndarray, rng: np.random.Generator, frac: float = 0.15
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Clone a region of the image onto another place of the same image; returns (image, mask, params)."""
    size = max(4, int(min(img.shape[:2]) * frac * rng.uniform(0.5, 1.5)))
    src, dst = _box(img.shape, size, rng), _box(img.shape, size, rng)
    out, mask = img.copy(), np.zeros(img.shape[:2], bool)
    out[dst] = img[src]
    mask[dst] = True
    return (
        out,
        mask,
        {
            "op": "copy_move",
            "src": [src[0].start, src[1].start],
            "dst": [dst[0].start, dst[1].start],
            "size": size,
        },
    )


def copy_move_transformed_2d(
    img: np.ndarray, rng: np.random.Generator, frac: float = 0.15, max_degrees: float = 45.0,
    scales: tuple[float, float] = (0.8, 1.25), degrees: float | None = None, scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Clone a region of a 2D image onto another place, rotated and scaled on the way (what an image editor's
    free transform does); returns (image, mask, params). ``src`` and ``dst`` are the top-left corners of
    ``size``-sided squares around both places' centres. ``degrees`` and ``scale`` unset: drawn at random."""
    size = max(8, int(min(img.shape[:2]) * frac * rng.uniform(0.5, 1.5)))
    degrees = float(rng.uniform(-max_degrees, max_degrees)) if degrees is None else degrees
    scale = float(rng.uniform(*scales)) if scale is None else scale
    reach = int(np.ceil(size * np.sqrt(2) / scale / 2)) + 1  # the source a rotated square needs
    centre_src = rng.integers(reach, np.array(img.shape[:2]) - reach)
    dst = _box(img.shape, size, rng)
    angle = np.radians(degrees)
    inverse = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    rows, cols = np.mgrid[dst[0], dst[1]]
    offsets = np.stack([rows - (dst[0].start + size / 2), cols - (dst[1].start + size / 2)])
    where = np.tensordot(inverse, offsets, axes=1) + centre_src[:, None, None]
    out, mask = img.copy(), np.zeros(img.shape[:2], bool)
    out[dst] = ndi.map_coordinates(img.astype(np.float32), where, order=1).astype(img.dtype)
    mask[dst] = True
    src = [int(centre_src[0] - size // 2), int(centre_src[1] - size // 2)]
    return out, mask, {"op": "copy_move_transformed", "src": src, "dst": [dst[0].start, dst[1].start],
                       "size": size, "degrees": degrees, "scale": scale}


def splice_2d(
    img: np.ndarray, donor: np.ndarray, rng: np.random.Generator, frac: float = 0.2
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Paste a feathered region of another image (splicing)."""
    size = max(4, int(min(img.shape[:2]) * frac * rng.uniform(0.5, 1.5)))
    src, dst = _box(donor.shape, size, rng), _box(img.shape, size, rng)
    alpha = np.zeros(img.shape[:2], np.float32)
    alpha[dst] = 1
    alpha = ndi.gaussian_filter(alpha, size / 20)
    pasted = img.astype(np.float32).copy()
    pasted[dst] = donor[src]
    a = alpha[..., None] if img.ndim == 3 else alpha
    out = (img * (1 - a) + pasted * a).astype(img.dtype)
    return (
        out,
        alpha > 0.5,
        {"op": "splice", "src": [src[0].start, src[1].start], "dst": [dst[0].start, dst[1].start]},
    )


def retouch_2d(
    img: np.ndarray, rng: np.random.Generator, frac: float = 0.15
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Local retouching: smooth (airbrush) and shift brightness inside a region."""
    size = max(4, int(min(img.shape[:2]) * frac * rng.uniform(0.5, 1.5)))
    box = _box(img.shape, size, rng)
    sigma, gain = float(rng.uniform(1, 4)), float(rng.uniform(0.85, 1.15))
    out, mask = img.astype(np.float32).copy(), np.zeros(img.shape[:2], bool)
    sig = (sigma, sigma, 0) if img.ndim == 3 else sigma
    out[box] = ndi.gaussian_filter(out, sig)[box] * gain
    mask[box] = True
    return (
        out.astype(img.dtype),
        mask,
        {"op": "retouch", "box": [box[0].start, box[1].start, size], "sigma": sigma, "gain": gain},
    )


# ---- whole-series tampering (series-level evaluation) -------------------------------------------------


def simulate_series_tamper(
    vol: np.ndarray,
    spacing: Sequence[float],
    label: str,
    z_range: tuple[int, int],
    seed: int,
    sites: dict[str, np.ndarray] | None = None,
    diameter_mm: float | None = None,
) -> tuple[np.ndarray, Params]:
    """A copy of a genuine (Z, H, W) HU volume with one CT-GAN-style tamper at a site of z_range.

    FM: a synthetic nodule injected in the lung (``diameter_mm`` fixes its size). FB: a genuine dense
    lung structure (vessel or nodule) removed by in-painting. Returns (tampered volume, params with the
    centre ``slice``, ``x``, ``y``).
    """
    if label not in ("FM", "FB"):
        raise ValueError(f"series tamper is FM or FB, not {label!r}")
    rng = np.random.default_rng(seed)
    sites = sites if sites is not None else site_catalogue(vol, z_range, pixel_mm=float(spacing[1]))
    kind = "lung" if label == "FM" else "dense"
    pool = sites[kind] if len(sites[kind]) else sites["lung"]
    z, y, x = (int(v) for v in pool[rng.integers(len(pool))])
    params: Params = {"label": label, "seed": seed, "slice": z, "x": x, "y": y}
    hz, hw = 7, 80
    sub, c = _crop(vol, z, y, x, hz, hw)
    if label == "FM":
        sub, params["inject"] = inject_nodule(sub, c, spacing, rng, diameter_mm)
        params["size_mm"] = params["inject"]["diameter_mm"]
    else:
        dz_, dy, dx = sites["clear"][rng.integers(len(sites["clear"]))] if len(sites["clear"]) else (z, y, x)
        donor, _ = _crop(vol, z, int(dy), int(dx), hz, hw)
        sub, params["remove"] = remove_structure(sub, c, spacing, rng, donor)
        params["size_mm"] = 2 * params["remove"]["radius_mm"]
    out = vol.copy()
    zs, ys, xs = np.arange(z - hz, z + hz + 1), np.arange(y - hw, y + hw), np.arange(x - hw, x + hw)
    kz = (zs >= 0) & (zs < vol.shape[0])
    ky, kx = (ys >= 0) & (ys < vol.shape[1]), (xs >= 0) & (xs < vol.shape[2])
    out[np.ix_(zs[kz], ys[ky], xs[kx])] = sub[np.ix_(kz, ky, kx)]
    return out, params


def simulated_radiograph(hu: np.ndarray, size: int, rng: np.random.Generator, noise: float = 8.0) -> np.ndarray:
    """A stand-in X-ray for checks that need one (no radiograph ships with the portal): a CT slice in the lung
    window as a 12-bit image, upscaled (bicubic) to ``size`` square, with Gaussian detector noise."""
    from PIL import Image

    grey = window(hu.astype(np.float32), "lung") * 4095
    image = np.asarray(Image.fromarray(grey).resize((size, size), Image.BICUBIC))
    return np.clip(image + rng.normal(0, noise, image.shape), 0, 4095).astype(np.uint16)
