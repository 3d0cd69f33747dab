from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom

from detection.ml.constants import CLASS_INDEX
from detection.ml.data import ctgan_patchset, grouped_split, read_ctgan_labels
from detection.ml.preprocessing import z_order


def test_real_label_tables(shared_data: Path) -> None:
    rows = read_ctgan_labels(shared_data / "ctgan-labels")
    assert len(rows) == 133 + 36
    assert {r.type for r in rows} == {"TB", "TM", "FB", "FM"}
    assert all((r.slice, r.x, r.y) == (0, 0, 0) for r in rows if r.type == "TB")
    both = {r.uuid for r in rows if r.experiment == "exp1"} & {r.uuid for r in rows if r.experiment == "exp2"}
    assert {"6031", "7507"} <= both


def _fake_ctgan(root: Path, datasets: list[pydicom.Dataset], ct_dir: Path) -> None:
    """Two fake scans in CT-GAN layout (<uuid>/<slice>.dcm) made of 8 real slices each."""
    files = sorted(ct_dir.glob("*.dcm"))
    order = z_order(datasets)
    for uuid, start in (("6031", 40), ("1280", 50)):
        (root / uuid).mkdir(parents=True)
        for k, i in enumerate(order[start : start + 8]):
            shutil.copy(files[i], root / uuid / f"{k}.dcm")
    (root / "labels_exp1.csv").write_text(
        "type,uuid,slice,x,y\nTM,6031,3,180,250\nTB,1280,0,0,0\nFM,1280,4,330,260\n"
    )
    (root / "labels_exp2.csv").write_text("type,uuid,slice,x,y\nFB,6031,3,180,250\n")


def test_ctgan_layout_import(tmp_path: Path, ct_datasets: list[pydicom.Dataset], shared_data: Path) -> None:
    _fake_ctgan(tmp_path, ct_datasets, shared_data / "cptac-lscc-C3N-00247-chest-ct")
    ps = ctgan_patchset(tmp_path, patch=32)
    assert ps.x.shape == (4, 4, 32, 32)
    assert sorted(ps.y.tolist()) == sorted(CLASS_INDEX[c] for c in ("TM", "TB", "FM", "FB"))
    tb = next(m for m in ps.meta if m["type"] == "TB")
    assert (tb["x"], tb["y"]) != (0, 0)  # sampled location, not the CSV's 0,0,0
    train, test = grouped_split(ps.groups, 0.5, 0)
    assert not set(ps.groups[train]) & set(ps.groups[test])
    six = np.flatnonzero(ps.groups == "6031")  # exp1 TM and exp2 FB rows of the same scan
    assert len(six) == 2 and (set(six) <= set(train) or set(six) <= set(test))
