"""Classical baselines (SVM, random forest, decision tree) on the same 2.5D patches."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from .data import PatchSet

BASELINES = ("svm", "random_forest", "decision_tree")


def patch_features(x: np.ndarray, pool: int = 8) -> np.ndarray:
    """Hand-made features: 8x8-pooled intensities + per-channel histogram and gradient energy."""
    x = x.astype(np.float32)
    n, c, h, w = x.shape
    pooled = x.reshape(n, c, h // pool, pool, w // pool, pool).mean((3, 5)).reshape(n, -1)
    hist = np.stack([np.histogram(xi, bins=16, range=(0, 1))[0] for xi in x.reshape(n * c, -1)]).reshape(
        n, -1
    )
    grad = np.abs(np.diff(x, axis=-1)).mean((2, 3))  # texture: in-painting smooths, injection re-noises
    centre = x[:, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    stats = np.concatenate([centre.mean((2, 3)), centre.std((2, 3)), x.std((2, 3))], 1)
    return np.concatenate([pooled, hist / (h * w), grad, stats], 1)


def make_baseline(name: str, seed: int = 0) -> ClassifierMixin:
    if name == "svm":
        return make_pipeline(StandardScaler(), SVC(C=3.0, probability=True, random_state=seed))
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=-1, random_state=seed)
    if name == "decision_tree":
        return DecisionTreeClassifier(max_depth=10, min_samples_leaf=5, random_state=seed)
    raise KeyError(name)


def fit_predict(name: str, train: PatchSet, test: PatchSet, seed: int = 0) -> np.ndarray:
    """Train a baseline on train, return (N, 4) probabilities on test (columns in CLASSES order)."""
    clf = make_baseline(name, seed).fit(patch_features(train.x), train.y)
    prob = np.zeros((len(test), 4), np.float32)
    prob[:, clf.classes_] = clf.predict_proba(patch_features(test.x))
    return prob
