"""Fixtures for the ML-core tests (plain pytest, no Django database)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from anywhere without installing the project
    sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("SHARED_DATA") or Path(__file__).parents[2].parent / "shared" / "data")
CT_DIR = SHARED / "cptac-lscc-C3N-00247-chest-ct"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not CT_DIR.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    os.environ.setdefault("SHARED_DATA", str(SHARED))
    return SHARED


@pytest.fixture(scope="session")
def ct_datasets(shared_data: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(CT_DIR.glob("*.dcm"))]


@pytest.fixture(scope="session")
def ct_volume(ct_datasets: list[pydicom.Dataset]) -> tuple[np.ndarray, tuple[float, float, float]]:
    from detection.ml.preprocessing import volume_from_datasets

    vol, spacing, _ = volume_from_datasets(ct_datasets)
    return vol, spacing
