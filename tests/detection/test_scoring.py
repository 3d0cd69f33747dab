from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from detection.ml.constants import CLASSES
from detection.ml.scoring import Detector, SeriesResult


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.load(device="cpu")


def test_score_series_shapes_on_real_ct(detector: Detector, ct_datasets: list[pydicom.Dataset]) -> None:
    subset = [ds for ds in ct_datasets if int(ds.InstanceNumber) % 9 == 0]  # 11 slices keep it fast
    random.Random(0).shuffle(subset)
    res = detector.score_series(subset, top_k=10)
    n = len(subset)
    assert isinstance(res, SeriesResult)
    assert res.slice_probs.shape == (n, 4) and res.slice_probs.dtype == np.float32
    assert np.allclose(res.slice_probs.sum(1), 1, atol=1e-4)
    assert res.slice_tamper.shape == (n,)
    assert np.allclose(res.slice_tamper, res.slice_probs[:, 2] + res.slice_probs[:, 3], atol=1e-5)
    assert res.heatmaps.shape == (n, 128, 128) and res.heatmaps.dtype == np.float16
    assert res.heatmaps.min() >= 0 and res.heatmaps.max() <= 1
    assert res.verdict in CLASSES and 0 <= res.verdict_score <= 1
    assert len(res.locations) == 10 and res.locations[0].tamper >= res.locations[-1].tamper
    loc = res.locations[0]
    assert (
        0 <= loc.slice_index < n and 0 <= loc.x < 512 and 0 <= loc.y < 512 and set(loc.probs) == set(CLASSES)
    )
    z = [float(subset[i].ImagePositionPatient[2]) for i in res.order]
    assert z == sorted(z)
    assert res.model_version and isinstance(res.trained, bool)


def test_untrained_fallback_is_labelled(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):  # an explicit artefact dir must exist
        Detector.load(tmp_path / "missing")
    import detection.ml.scoring as scoring

    real = scoring.DEFAULT_ARTIFACT
    scoring.DEFAULT_ARTIFACT = tmp_path / "none"
    try:
        det = Detector.load(device="cpu")  # no shipped model -> random smallcnn, marked untrained
    finally:
        scoring.DEFAULT_ARTIFACT = real
    assert not det.config["trained"] and det.config["arch"] == "smallcnn"


def test_embed_and_mc_dropout(detector: Detector, ct_volume: tuple) -> None:
    vol, _ = ct_volume
    patches = detector.patches(vol, [(50, 256, 256), (60, 150, 300), (40, 300, 200)])
    out = detector.embed_and_probs(patches, mc_samples=5)
    assert (
        out["embeddings"].shape[0] == 3 and out["mc_mean"].shape == (3, 4) and out["mc_std"].shape == (3, 4)
    )
    assert np.allclose(out["mc_mean"].sum(1), 1, atol=1e-4)
    assert not any(m.training for m in detector.model.modules())  # dropout switched back off


def test_artifact_roundtrip(tmp_path: Path) -> None:
    from detection.ml.scoring import build_model, fallback_config

    cfg = {**fallback_config(), "patch_size": 32, "stride": 32, "model_version": "t-1", "trained": True}
    torch.save(build_model(cfg).state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    det = Detector.load(tmp_path, "cpu")
    vol = np.full((3, 96, 96), -1024, np.float32)
    vol[:, 20:80, 20:80] = 0  # a "body" so the grid is not empty
    res = det.score_volume(vol, (3.0, 0.7, 0.7), top_k=None)
    assert res.trained and res.model_version == "t-1" and res.n_patches == len(res.locations) > 0
    assert res.heatmaps.shape == (3, 128, 128)


def test_gradcam_maps(detector: Detector, ct_volume: tuple) -> None:
    from detection.ml.localisation import gradcam

    patches = detector.patches(ct_volume[0], [(50, 256, 256), (60, 150, 300)])
    maps = gradcam(detector, patches, "FM")
    assert maps.shape == (2, detector.patch, detector.patch) and maps.min() >= 0 and maps.max() <= 1
    assert not detector.model.training


def test_shipped_default_is_small_and_honest() -> None:
    from detection.ml.scoring import DEFAULT_ARTIFACT

    size = sum(f.stat().st_size for f in DEFAULT_ARTIFACT.iterdir())
    assert size < 5 * 2**20
    cfg = json.loads((DEFAULT_ARTIFACT / "config.json").read_text())
    assert cfg["trained"] and "simulated" in cfg["training_data"]
