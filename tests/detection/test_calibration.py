"""Tamper threshold: what it promises on genuine data, and that it never flags the largest genuine score."""

from __future__ import annotations

import numpy as np

from detection.ml.calibration import logit, tail_threshold


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-u))


def test_threshold_keeps_expected_genuine_false_alarms_per_series_at_alpha() -> None:
    rng = np.random.default_rng(0)
    # Genuine location scores whose logit tail is exponential: P(u > t) = exp(-(t + 3)).
    calibration = _sigmoid(rng.exponential(1.0, 20_000) - 3)
    cal = tail_threshold(calibration, patches_per_series=5_000, alpha=0.05)
    true_logit = -3 + np.log(5_000 / 0.05)
    assert abs(cal["threshold_logit"] - true_logit) < 0.6
    # Fresh genuine "series" of 5,000 locations: on average about alpha of them above the threshold, so
    # most series get no tampered verdict, unlike a plain per-patch threshold at the calibration maximum.
    series = _sigmoid(rng.exponential(1.0, (400, 5_000)) - 3)
    flagged = (series >= cal["tamper_threshold"]).any(1).mean()
    assert flagged < 0.15
    at_max = (series >= calibration.max()).any(1).mean()
    assert at_max > 2 * flagged


def test_threshold_stays_above_the_largest_genuine_score() -> None:
    # Locations are flagged at >= threshold: the largest genuine score must not be, even in float32 and
    # even when it sits where softmax saturates (single images score up to 0.99998).
    for top in (0.95, 0.9999843):
        scores = np.array([0.1, 0.2, 0.3, top], dtype=np.float32)
        cal = tail_threshold(scores, patches_per_series=10, alpha=0.5, min_tail=2)
        assert not (scores >= cal["tamper_threshold"]).any() and cal["n_calibration"] == 4
        assert cal["tamper_threshold"] > top
    assert np.isclose(logit(np.array([0.5]))[0], 0.0)
