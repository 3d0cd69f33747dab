from __future__ import annotations

import numpy as np
import pytest

from detection.ml.constants import CLASSES
from detection.ml.data import simulate_patchset
from detection.ml.simulator import (
    copy_move_2d,
    inject_nodule,
    remove_structure,
    retouch_2d,
    simulate_patch,
    site_catalogue,
    splice_2d,
)


@pytest.fixture(scope="module")
def sites(ct_volume: tuple) -> dict:
    return site_catalogue(ct_volume[0], (40, 46))


def test_inject_raises_hu_and_records_params() -> None:
    rng = np.random.default_rng(0)
    sub = np.full((9, 64, 64), -850.0, np.float32) + rng.normal(0, 20, (9, 64, 64)).astype(np.float32)
    out, p = inject_nodule(sub, (4, 32, 32), (1.0, 0.7, 0.7), np.random.default_rng(1))
    assert 4 <= p["diameter_mm"] <= 30
    assert out[4, 32, 32] > sub[4, 32, 32] + 500  # a soft-tissue nodule in lung air
    assert abs(out[4, 2, 2] - sub[4, 2, 2]) < 1e-3 or p["diameter_mm"] > 20


@pytest.mark.parametrize("method", ["biharmonic", "copy_move", "diffusion"])
def test_remove_structure_erases_blob(method: str) -> None:
    sub = np.full((7, 64, 64), -850.0, np.float32)
    yy, xx = np.ogrid[:64, :64]
    sub[2:5, ((yy - 32) ** 2 + (xx - 32) ** 2) < 36] = 30.0
    donor = np.full_like(sub, -860.0)
    out, p = remove_structure(sub, (3, 32, 32), (1.0, 0.7, 0.7), np.random.default_rng(0), donor, method)
    assert p["method"] == method and p["masked_voxels"] > 0
    assert out[3, 32, 32] < -600


def test_simulated_patches_are_labelled_and_reproducible(ct_volume: tuple, sites: dict) -> None:
    vol, spacing = ct_volume
    for label in CLASSES:
        a, pa = simulate_patch(vol, spacing, sites, label, seed=7, patch=32)
        b, pb = simulate_patch(vol, spacing, sites, label, seed=7, patch=32)
        assert pa["label"] == label and pa == pb and np.array_equal(a, b)
        assert a.shape == (4, 32, 32) and a.min() >= 0 and a.max() <= 1
        assert ("inject" in pa) == (label == "FM" or (label == "FB" and pa["site"] == "lung"))
        assert ("remove" in pa) == (label == "FB")


def test_simulate_patchset_balanced(ct_volume: tuple) -> None:
    vol, spacing = ct_volume
    ps = simulate_patchset(vol, spacing, 16, (40, 46), seed=3, patch=32, n_jobs=1)
    assert ps.x.shape == (16, 4, 32, 32) and np.bincount(ps.y).tolist() == [4, 4, 4, 4]
    assert all(g.startswith("scan:z4") for g in ps.groups)
    assert [m["seed"] for m in ps.meta] == sorted(m["seed"] for m in ps.meta)


def test_2d_forgeries_return_masks() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (80, 100, 3)).astype(np.uint8)
    for out, mask, p in (copy_move_2d(img, rng), splice_2d(img, img[::-1], rng), retouch_2d(img, rng)):
        assert out.shape == img.shape and out.dtype == img.dtype and mask.shape == img.shape[:2]
        assert mask.any() and "op" in p
        assert not np.array_equal(out[mask], img[mask]) or p["op"] == "copy_move"
