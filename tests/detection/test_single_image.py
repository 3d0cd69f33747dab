"""The shipped single-image model (claim images): one slice per patch, calibrated for single images, and
better on held-out single slices than the 2.5D series model fed three copies of one slice."""

from __future__ import annotations

import pytest

from detection.cli import parse_channels
from detection.ml import single_image
from detection.ml.scoring import SINGLE_IMAGE_ARTIFACT, Detector


@pytest.fixture(scope="module")
def single_image_detector() -> Detector:
    return Detector.load(SINGLE_IMAGE_ARTIFACT, device="cpu")


def test_the_single_image_model_sees_one_slice_and_is_calibrated_for_both_paths(single_image_detector):
    config = single_image_detector.config
    assert config["trained"] is True
    assert [dz for _, dz in single_image_detector.channels] == [0]  # no neighbour slice to stand in for
    assert set(single_image_detector.single_image_thresholds) == set(single_image.PATHS)
    assert config["calibration_single_image"]["dicom"]["z_range"] == [4, 58]  # training region only
    assert config["val_z"] == [64, 92]


def test_it_finds_more_held_out_tampers_than_the_series_model_scored_alone(single_image_detector, ct_volume):
    """Eight simulated injections and eight removals at held-out sites (z 64-91) and the 28 genuine held-out
    slices, DICOM path, each model at its own single-image threshold. Measured: this model flags 5 FM + 3 FB
    and 2 genuine slices, the series model 4 FM + 0 FB and none (the full 20 + 20 table: docs/claims.md)."""
    vol, spacing = ct_volume
    results = {
        name: single_image.evaluate(det, vol, spacing, (64, 92), n_per_class=8, seed=0)["paths"]["dicom"]
        for name, det in (("single", single_image_detector), ("series", Detector.load(device="cpu")))
    }
    flagged = {name: r["flagged"]["single_image"] for name, r in results.items()}
    assert flagged["single"]["FM"] + flagged["single"]["FB"] >= flagged["series"]["FM"] + flagged["series"]["FB"] + 3
    assert flagged["single"]["genuine"] <= 2, flagged


def test_parse_channels() -> None:
    assert parse_channels("lung:-1, lung:0,full:0") == [["lung", -1], ["lung", 0], ["full", 0]]
    with pytest.raises(SystemExit, match="bad channel 'bone:0'"):
        parse_channels("bone:0")
