from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detection.ml.baselines import BASELINES, fit_predict
from detection.ml.data import PatchSet
from detection.ml.evaluation import cross_validate, evaluate
from detection.ml.scoring import Detector
from detection.ml.training import TrainConfig, fine_tune, train


def test_train_resume_finetune_evaluate(tmp_path: Path, shared_data: Path, ct_volume: tuple) -> None:
    cfg = TrainConfig(patch_size=32, stride=32, n_train=24, n_val=12, epochs=1, batch_size=8, out_dir=str(tmp_path),
                      train_z=(40, 44), val_z=(50, 52), arch_kwargs={"width": 8}, device="cpu")  # fmt: skip
    art = train(cfg)
    for f in ("config.json", "model.pt", "metrics.json", "curves.png", "checkpoint.pt"):
        assert (art / f).exists(), f
    config = json.loads((art / "config.json").read_text())
    assert config["trained"] and config["data_snapshot"]["train"] and len(config["history"]) == 1
    # The tamper threshold is calibrated for whole series on genuine patches of the training region only.
    calib = config["calibration"]
    assert calib["z_range"] == [40, 44] and calib["n_calibration"] > 0 and calib["patches_per_series"] > 0
    assert 0 < calib["max_genuine_tamper"] <= calib["tamper_threshold"] < 1
    assert Detector.load(art, "cpu").threshold == calib["tamper_threshold"]
    cfg.epochs, cfg.resume = 2, str(art)
    assert train(cfg) == art and len(json.loads((art / "config.json").read_text())["history"]) == 2

    vol, _ = ct_volume
    samples = [(vol, 45, 200 + 10 * i, 250, ["TB", "TM", "FB", "FM"][i % 4]) for i in range(8)]
    ft = fine_tune(art, samples, epochs=1, out_dir=tmp_path / "ft")
    det = Detector.load(ft, "cpu")
    assert det.config["base_artifact"] == str(art) and det.config["trained"]
    assert det.config["calibration"]["z_range"] == [40, 44]  # new weights, new threshold, same genuine patches

    rng = np.random.default_rng(0)
    ps = PatchSet(
        rng.random((40, 4, 32, 32)).astype(np.float16),
        np.arange(40) % 4,
        np.array([str(i % 8) for i in range(40)]),
    )
    m = evaluate(det, ps, tmp_path / "eval", "tiny", n_boot=20)
    assert (tmp_path / "eval" / "roc_tiny.png").exists() and 0 <= m["accuracy"] <= 1
    cv = cross_validate(lambda tr, te: fit_predict(BASELINES[2], tr, te), ps, k=4)
    assert len(cv["folds"]) == 4


def test_exact_augmentation_keeps_noise_texture() -> None:
    """The "exact" mode (flips, 90-degree rotations, contrast) leaves pixel-level noise as it is; the
    resampling mode smooths and adds noise, which hides the white-noise fill of an in-painted removal."""
    import torch

    from detection.ml.training import augment

    gen = torch.Generator().manual_seed(0)
    x = (0.5 + 0.05 * torch.randn(16, 4, 32, 32, generator=gen)).clamp(0, 1)

    def lag1(t: torch.Tensor) -> float:  # horizontal lag-1 correlation of the pixels around each mean
        r = t - t.mean((2, 3), keepdim=True)
        return float((r[..., :-1] * r[..., 1:]).mean() / (r * r).mean())

    exact = augment(x, torch.Generator().manual_seed(1), "exact")
    assert exact.shape == x.shape and abs(lag1(exact)) < 0.05  # white noise stays white
    # Up to the per-sample contrast/brightness, each sample is a flip / rotation of its input.
    for xi, ei in zip(x, exact, strict=True):
        z = lambda t: ((t - t.mean()) / t.std()).flatten()  # noqa: E731
        assert any(torch.allclose(z(ei[0]), z(torch.rot90(v, k, (-2, -1))[0]), atol=1e-4)
                   for v in (xi, xi.flip(-1)) for k in range(4))  # fmt: skip
    assert lag1(augment(x, torch.Generator().manual_seed(1), "resample")) > 0.1  # resampling correlates it
