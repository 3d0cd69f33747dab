from __future__ import annotations

import random

import numpy as np
import pydicom

from detection.ml.constants import DEFAULT_CHANNELS
from detection.ml.preprocessing import (
    PatchGrid,
    air_values,
    body_mask,
    dicom_to_hu,
    grid_cells,
    patch_at,
    run_bounds,
    scoring_masks,
    slice_position,
    volume_from_datasets,
    window,
)


def test_hu_conversion_uses_slope_and_intercept(ct_datasets: list[pydicom.Dataset]) -> None:
    ds = ct_datasets[0].copy()
    raw = ds.pixel_array.astype(np.float64)
    assert np.allclose(dicom_to_hu(ds), raw * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
    assert np.allclose(dicom_to_hu(ds), raw * 2 - 1000)


def test_hu_of_native_pixel_data_matches_pydicom_decoder(ct_datasets: list[pydicom.Dataset]) -> None:
    from copy import deepcopy

    ds = deepcopy(ct_datasets[3])
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.array_equal(dicom_to_hu(ds), expected.astype(np.float32))
    # Garbage above BitsStored (12 here): pydicom's masking applies, not a raw view of the bytes.
    raw = np.frombuffer(ds.PixelData, "<u2").copy()
    raw[0] |= 0xF000
    ds.PixelData = raw.tobytes()
    assert dicom_to_hu(ds)[0, 0] == float(raw[0] & 0x0FFF) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_real_ct_hu_range(ct_volume: tuple[np.ndarray, tuple]) -> None:
    vol, spacing = ct_volume
    assert vol.shape == (99, 512, 512)
    assert vol.min() == -1024 and (vol < -400).mean() > 0.3  # air around and in the chest
    assert spacing == (3.0, 0.564453125, 0.564453125)


def test_z_order_ignores_input_and_instance_order(ct_datasets: list[pydicom.Dataset]) -> None:
    shuffled = ct_datasets[:]
    random.Random(1).shuffle(shuffled)
    vol, _, order = volume_from_datasets(shuffled)
    z = [float(shuffled[i].ImagePositionPatient[2]) for i in order]
    assert np.all(np.diff(z) == 3.0)
    inst = [int(shuffled[i].InstanceNumber) for i in order]
    assert inst == sorted(inst, reverse=True)  # this series numbers instances top-down
    assert np.array_equal(vol[0], dicom_to_hu(shuffled[order[0]]))
    assert slice_position(shuffled[order[0]]) == min(z)


def test_windows_and_patches() -> None:
    hu = np.full((3, 100, 100), -1024.0, np.float32)
    hu[1, 40:60, 40:60] = 40.0
    air = air_values(DEFAULT_CHANNELS).numpy()
    assert window(hu, "lung").min() == air[0] and window(hu, "full").min() == 0.0
    p = patch_at(hu, 1, 50, 50, 32)
    assert p.shape == (4, 32, 32) and p[1, 16, 16] > 0.9 and p[0, 16, 16] == air[0]
    edge = patch_at(hu, 0, 0, 0, 32)  # outside the image counts as air
    assert np.allclose(edge, air[:, None, None])


def test_scoring_grid_patches_equal_training_patches(ct_volume: tuple[np.ndarray, tuple]) -> None:
    """The scorer's strided-view gather must hand the model exactly what training's patch_at produced:
    same centre, air outside the image, neighbouring slices clamped at both ends of the volume."""
    vol = ct_volume[0][:6]
    rng = np.random.default_rng(0)
    for size, stride in ((64, 32), (32, 16), (16, 32)):
        ny, nx = -(-512 // stride), -(-512 // stride)
        cells = np.array(sorted({(int(rng.integers(6)), int(rng.integers(ny)), int(rng.integers(nx)))
                                 for _ in range(40)} | {(0, 0, 0), (5, ny - 1, nx - 1)}))  # fmt: skip
        grid = PatchGrid(vol, size, stride, DEFAULT_CHANNELS, cells)
        out = np.zeros((3, 4, size, size), np.float32)
        for z, iy, ix in cells:
            grid.prepare(z)
            grid.copy_run(out, 1, z, iy, ix, 1)
            expected = patch_at(vol, z, iy * stride + stride // 2, ix * stride + stride // 2, size)
            assert np.array_equal(out[1], expected), (size, stride, z, iy, ix)
    # A run of neighbouring cells is one strided copy.
    grid = PatchGrid(vol, 64, 32, DEFAULT_CHANNELS)
    grid.prepare(3)
    grid.copy_run(out := np.zeros((5, 4, 64, 64), np.float32), 0, 3, 7, 4, 5)
    assert all(np.array_equal(out[j], patch_at(vol, 3, 7 * 32 + 16, (4 + j) * 32 + 16, 64)) for j in range(5))


def test_a_gap_splits_the_volume_into_runs_read_on_their_own() -> None:
    """With breaks, a patch's neighbouring slices are clamped to its run, as at the ends of a volume: the
    patches equal those of each run cut out as a volume by itself."""
    assert [b.tolist() for b in run_bounds(7, [2, 4])] == [[0, 0, 0, 3, 3, 5, 5], [2, 2, 2, 4, 4, 6, 6]]
    assert [b.tolist() for b in run_bounds(3)] == [[0, 0, 0], [2, 2, 2]]
    rng = np.random.default_rng(1)
    vol = rng.uniform(-1000, 400, (7, 96, 96)).astype(np.float32)
    cells = np.array([(z, iy, ix) for z in range(7) for iy in range(3) for ix in range(3)])
    grid = PatchGrid(vol, 64, 32, DEFAULT_CHANNELS, cells, breaks=[2, 4])
    out = np.zeros((1, 4, 64, 64), np.float32)
    for z, iy, ix in cells:
        start, end = (0, 3) if z <= 2 else (3, 5) if z <= 4 else (5, 7)
        grid.prepare(z)
        grid.copy_run(out, 0, z, iy, ix, 1)
        expected = patch_at(vol[start:end], z - start, iy * 32 + 16, ix * 32 + 16, 64)
        assert np.array_equal(out[0], expected), (z, iy, ix)
        assert np.array_equal(patch_at(vol, z, iy * 32 + 16, ix * 32 + 16, 64, bounds=(start, end - 1)), expected)
    # Without the breaks, slice 2 reads slice 3 as its neighbour.
    whole = PatchGrid(vol, 64, 32, DEFAULT_CHANNELS, cells)
    whole.prepare(2)
    whole.copy_run(out, 0, 2, 1, 1, 1)
    assert not np.array_equal(out[0], patch_at(vol[0:3], 2, 48, 48, 64))


def test_grid_cells_are_centred_on_mask_cells() -> None:
    mask = np.zeros((2, 8, 8), bool)  # 1/8 resolution of a 64 x 64 image
    mask[1, 3, 5] = True  # pixel rows 24-31, columns 40-47
    assert grid_cells(mask, 8, 16, 4, 4).tolist() == [[1, 1, 2]]  # cell (1, 2) is centred on (24, 40)


def test_scoring_mask_keeps_lungs_and_drops_skin_edge_and_outside_air(ct_volume: tuple[np.ndarray, tuple]) -> None:
    vol, spacing = ct_volume
    m = scoring_masks(vol, spacing[1], 8)
    score, lung, body = m["score"], m["lung"], m["body"]
    assert score.shape == (99, 64, 64)
    assert (score & ~body).sum() == 0  # never the air outside the patient
    assert lung[50].mean() > 0.15 and (score[50] & lung[50]).sum() >= 0.9 * lung[50].sum()
    # The old false positives sat at the body edge: (x=496, y=48) on several slices is not scored any more,
    # and nothing within 15 mm of the outline is.
    assert not score[:, 48 // 8, 496 // 8].any()
    from scipy import ndimage as ndi

    for z in (30, 50, 70):
        dist_mm = ndi.distance_transform_edt(body[z]) * 8 * spacing[1]
        assert dist_mm[score[z]].min() >= 14
    # Bowel gas in the upper abdomen is not lung.
    assert score[:3].sum() == 0


def test_body_mask_drops_outside_air(ct_volume: tuple[np.ndarray, tuple]) -> None:
    vol, _ = ct_volume
    m = body_mask(vol[50])
    assert 0.2 < m.mean() < 0.95 and not m[0, 0]
