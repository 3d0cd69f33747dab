from __future__ import annotations

import random

import numpy as np
import pydicom
import torch

from detection.ml.constants import DEFAULT_CHANNELS
from detection.ml.preprocessing import (
    air_values,
    body_mask,
    dicom_to_hu,
    grid_patches,
    patch_at,
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
    img = torch.from_numpy(np.stack([window(hu[0], n) for n, _ in DEFAULT_CHANNELS]))
    view, _, _ = grid_patches(img, 32, 16, air_values(DEFAULT_CHANNELS))
    assert np.allclose(view[0, 0].numpy(), edge)  # scoring padding == training padding


def test_grid_patches_are_centred_on_cells() -> None:
    img = torch.zeros(1, 64, 64)
    img[0, 16 + 8, 32 + 8] = 1.0  # centre of cell (1, 2) with stride 16
    view, ny, nx = grid_patches(img, 32, 16)
    assert (ny, nx) == (4, 4) and view.shape == (4, 4, 1, 32, 32)
    assert view[1, 2, 0, 16, 16] == 1.0


def test_body_mask_drops_outside_air(ct_volume: tuple[np.ndarray, tuple]) -> None:
    vol, _ = ct_volume
    m = body_mask(vol[50])
    assert 0.2 < m.mean() < 0.95 and not m[0, 0]
