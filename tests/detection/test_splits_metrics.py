from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from detection.ml.data import grouped_kfold, grouped_split
from detection.ml.evaluation import bootstrap_ci, comparison_table, compute_metrics


def _no_leak(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    assert not set(groups[a]) & set(groups[b]), "a scan appears on both sides of the split"


@pytest.mark.parametrize("seed", range(5))
def test_grouped_split_keeps_scans_together(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = rng.choice([f"uuid{i}" for i in range(12)], 300)
    train, test = grouped_split(groups, 0.3, seed)
    _no_leak(groups, train, test)
    assert len(train) + len(test) == 300


def test_grouped_kfold_covers_everything_once() -> None:
    rng = np.random.default_rng(0)
    groups = rng.choice([str(i) for i in range(20)], 400)
    y = rng.integers(0, 4, 400)
    seen = np.zeros(400, int)
    for tr, te in grouped_kfold(y, groups, 5):
        _no_leak(groups, tr, te)
        seen[te] += 1
    assert (seen == 1).all()


def test_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    prob = rng.dirichlet(np.ones(4), 200)
    prob[np.arange(200), y] += 0.4 * rng.random(200)
    prob /= prob.sum(1, keepdims=True)
    m = compute_metrics(y, prob)
    pred = prob.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["macro_precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["macro_recall"] == pytest.approx(recall_score(y, pred, average="macro"))
    assert m["macro_roc_auc"] == pytest.approx(roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    assert m["per_class"]["FM"]["roc_auc"] == pytest.approx(roc_auc_score(y == 3, prob[:, 3]))
    assert m["tamper_roc_auc"] == pytest.approx(roc_auc_score(y >= 2, prob[:, 2:].sum(1)))
    assert np.array(m["confusion_matrix"]).sum() == 200
    ci = bootstrap_ci(y, prob, n_boot=50)
    assert ci["accuracy"][0] <= m["accuracy"] <= ci["accuracy"][1]
    assert "| a |" in comparison_table({"a": {**m, "ci95": ci}})
