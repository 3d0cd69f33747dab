"""Patch datasets: simulated tampering of a genuine scan, the CT-GAN dataset layout, grouped splits.

Splits are always grouped by scan (CT-GAN: uuid, across both experiments, so 6031 and 7507 stay on one
side) or, for the single shared scan, by z-block, so no scan / region contributes to both sides.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

from .constants import CLASS_INDEX, CLASSES, DEFAULT_CHANNELS, DEFAULT_PATCH
from .preprocessing import Channels, dicom_to_hu, lung_mask, patch_at, read_series
from .simulator import simulate_patch, site_catalogue


def shared_data_dir() -> Path:
    """SHARED_DATA env var, else <repo>/../shared/data."""
    import os

    env = os.environ.get("SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def default_scan_dir() -> Path:
    return shared_data_dir() / "cptac-lscc-C3N-00247-chest-ct"


@dataclass
class PatchSet:
    x: np.ndarray  # (N, C, P, P) float16 windowed patches
    y: np.ndarray  # (N,) int64 indices into CLASSES
    groups: np.ndarray  # (N,) str: scan id or scan:z-block; the unit of every split
    meta: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: Sequence[int] | np.ndarray) -> PatchSet:
        idx = np.asarray(idx)
        return PatchSet(
            self.x[idx], self.y[idx], self.groups[idx], [self.meta[i] for i in idx] if self.meta else []
        )

    def snapshot_id(self) -> str:
        """Content hash: identifies the exact data a model was trained on."""
        h = hashlib.sha1(self.x.tobytes())
        h.update(self.y.tobytes())
        return h.hexdigest()[:12]

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, x=self.x, y=self.y, groups=self.groups, meta=json.dumps(self.meta))

    @classmethod
    def load(cls, path: str | Path) -> PatchSet:
        d = np.load(path, allow_pickle=False)
        return cls(d["x"], d["y"], d["groups"], json.loads(str(d["meta"])))


def _simulate_chunk(vol: np.ndarray, spacing, sites, jobs, patch, channels) -> list:  # noqa: ANN001
    return [simulate_patch(vol, spacing, sites, lab, seed, patch, channels) for lab, seed in jobs]


def simulate_patchset(
    vol: np.ndarray,
    spacing: Sequence[float],
    n: int,
    z_range: tuple[int, int],
    seed: int = 0,
    patch: int = DEFAULT_PATCH,
    channels: Channels = DEFAULT_CHANNELS,
    scan_id: str = "scan",
    z_block: int = 10,
    n_jobs: int = 2,
    class_mix: Sequence[int] = (1, 1, 1, 1),
) -> PatchSet:
    """n simulated patches with sites drawn from slices z_range[0] <= z < z_range[1].

    ``class_mix``: how many of each class (CLASSES order) in every cycle of labels; (1, 1, 1, 1) is
    class-balanced, (2, 1, 1, 1) gives twice as many genuine TB patches (more kinds of genuine anatomy).
    """
    sites = site_catalogue(vol, z_range, pixel_mm=float(spacing[1]))
    cycle = [c for c, k in zip(CLASSES, class_mix, strict=True) for _ in range(int(k))]
    jobs = [(cycle[i % len(cycle)], seed * 1_000_003 + i) for i in range(n)]
    chunks = [jobs[i :: max(n_jobs, 1) * 4] for i in range(max(n_jobs, 1) * 4)]
    out = Parallel(n_jobs=n_jobs)(
        delayed(_simulate_chunk)(vol, spacing, sites, c, patch, channels) for c in chunks
    )
    items = sorted((p for chunk in out for p in chunk), key=lambda t: t[1]["seed"])
    x = np.stack([p for p, _ in items]).astype(np.float16)
    meta = [m for _, m in items]
    y = np.array([CLASS_INDEX[m["label"]] for m in meta], np.int64)
    groups = np.array([f"{scan_id}:z{m['z'] // z_block}" for m in meta])
    return PatchSet(x, y, groups, meta)


# ---- CT-GAN layout ----------------------------------------------------------------------------------


@dataclass
class LabelRow:
    type: str
    uuid: str
    slice: int
    x: int  # column
    y: int  # row
    experiment: str


def read_ctgan_labels(label_dir: str | Path) -> list[LabelRow]:
    """labels_exp1.csv / labels_exp2.csv (header ``type,uuid,slice,x,y``)."""
    rows = []
    for path in sorted(Path(label_dir).glob("labels_exp*.csv")):
        with path.open(newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append(
                    LabelRow(
                        r["type"].strip(),
                        r["uuid"].strip(),
                        int(r["slice"]),
                        int(r["x"]),
                        int(r["y"]),
                        path.stem.removeprefix("labels_"),
                    )
                )
    return rows


def scan_folder(root: Path, row: LabelRow) -> Path:
    """<root>/<uuid>, or <root>/EXP<k>*/<uuid> when experiments are stored separately."""
    for cand in sorted(root.glob(f"{row.experiment.upper()}*/{row.uuid}")):
        return cand
    return root / row.uuid


def load_ctgan_scan(folder: str | Path) -> np.ndarray:
    """(Z, H, W) HU volume indexed like the CSV ``slice`` column: file <slice>.dcm is index slice."""
    files = sorted(Path(folder).glob("*.dcm"), key=lambda p: int(p.stem))
    return np.stack([dicom_to_hu(ds) for ds in read_series_files(files)])


def read_series_files(files: Sequence[Path]) -> list:
    import pydicom

    return [pydicom.dcmread(f) for f in files]


def sample_tb_location(vol: np.ndarray, rng: np.random.Generator, step: int = 4) -> tuple[int, int, int]:
    """TB rows carry 0,0,0: draw a lung location from the middle half of the scan."""
    z0, z1 = vol.shape[0] // 4, max(vol.shape[0] * 3 // 4, vol.shape[0] // 4 + 1)
    for _ in range(20):
        z = int(rng.integers(z0, z1))
        yx = np.argwhere(lung_mask(vol[z], step))
        if len(yx):
            y, x = yx[rng.integers(len(yx))] * step
            return z, int(x), int(y)
    return vol.shape[0] // 2, vol.shape[2] // 2, vol.shape[1] // 2


def ctgan_patchset(
    root: str | Path,
    label_dir: str | Path | None = None,
    patch: int = DEFAULT_PATCH,
    channels: Channels = DEFAULT_CHANNELS,
    seed: int = 0,
) -> PatchSet:
    """Patches at every labelled CT-GAN location; group = uuid (shared across experiments)."""
    root = Path(root)
    rows = read_ctgan_labels(label_dir or root)
    rng = np.random.default_rng(seed)
    xs, ys, groups, meta, cache = [], [], [], [], {}
    for row in rows:
        folder = scan_folder(root, row)
        if folder not in cache:
            cache.clear()  # one scan in memory at a time (rows are grouped per scan in the CSVs)
            cache[folder] = load_ctgan_scan(folder)
        vol = cache[folder]
        z, x, y = sample_tb_location(vol, rng) if row.type == "TB" else (row.slice, row.x, row.y)
        xs.append(patch_at(vol, z, y, x, patch, channels))
        ys.append(CLASS_INDEX[row.type])
        groups.append(row.uuid)
        meta.append(
            {"uuid": row.uuid, "experiment": row.experiment, "slice": z, "x": x, "y": y, "type": row.type}
        )
    return PatchSet(np.stack(xs).astype(np.float16), np.array(ys, np.int64), np.array(groups), meta)


# ---- grouped splits ---------------------------------------------------------------------------------


def grouped_split(
    groups: np.ndarray, test_size: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices with every group entirely on one side."""
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    assert not set(groups[train]) & set(groups[test])
    return train, test


def grouped_kfold(
    y: np.ndarray, groups: np.ndarray, k: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k grouped folds, stratified by class as far as groups allow."""
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y, groups))


def load_scan(scan_dir: str | Path | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """HU volume (z-sorted) and spacing of a DICOM folder (default: the shared CPTAC chest CT)."""
    from .preprocessing import volume_from_datasets

    vol, spacing, _ = volume_from_datasets(read_series(scan_dir or default_scan_dir()))
    return vol, spacing
