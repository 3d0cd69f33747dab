"""Promotion gate on the fixed scan-level held-out set, with genuinely trained models (no canned numbers)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from annotations.models import RetrainRun
from detection import promotion
from detection.models import ModelVersion

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory):
    """A model trained on simulated tampering (z 4-58) and the same model trained on shuffled labels."""
    from detection.ml.data import load_scan, simulate_patchset
    from detection.ml.training import TrainConfig, fit

    root = tmp_path_factory.mktemp("models")
    vol, spacing = load_scan()
    train = simulate_patchset(vol, spacing, 240, (4, 58), seed=3, patch=32, scan_id="train")
    val = train.subset(np.arange(0, len(train), 6))
    cfg = TrainConfig(patch_size=32, stride=16, epochs=6, batch_size=32, lr=3e-3, device="cpu", seed=0,
                      augment=False)
    (root / "good").mkdir()
    good = fit(cfg, train, val, (root / "good").resolve(), {"model_version": "good"})
    shuffled = train.subset(np.arange(len(train)))
    shuffled.y = np.random.default_rng(0).permutation(shuffled.y)
    (root / "shuffled").mkdir()
    bad = fit(cfg, shuffled, val, (root / "shuffled").resolve(), {"model_version": "shuffled"})
    return Path(good), Path(bad)


@pytest.fixture
def small_heldout(settings):
    settings.PROMOTION_HELDOUT_N = 160
    settings.PROMOTION_METRIC = "macro_roc_auc"  # threshold-free: stable for small models
    settings.PROMOTION_TOLERANCE = 0.0


@pytest.mark.django_db
def test_gate_refuses_a_model_trained_on_shuffled_labels(trained_pair, small_heldout, user_factory):
    good, bad = trained_pair
    admin = user_factory("admin")
    base = ModelVersion.objects.create(name="good", arch="smallcnn", status=ModelVersion.Status.ACTIVE,
                                       trained=True, artifact_path=str(good))  # fmt: skip
    candidate = promotion.register_candidate(artifact=bad, base=base, metrics={})
    decision = promotion.evaluate_and_gate(candidate=candidate, base=base, actor=admin)

    assert not decision.promote
    assert decision.candidate < decision.baseline  # measured now, on the same held-out patches
    assert decision.baseline > 0.6  # the real model learnt something (chance AUC is 0.5)
    candidate.refresh_from_db()
    base.refresh_from_db()
    assert candidate.status == ModelVersion.Status.REJECTED and base.status == ModelVersion.Status.ACTIVE
    assert candidate.metrics["heldout"]["n"] == 160 and candidate.metrics["heldout"]["z"] == [64, 92]
    assert "rejected" in candidate.notes


@pytest.mark.django_db
def test_equal_model_passes_then_admin_rolls_back(trained_pair, small_heldout, user_factory, api_client, tmp_path):
    good, _ = trained_pair
    admin = user_factory("admin")
    base = ModelVersion.objects.create(name="good", arch="smallcnn", status=ModelVersion.Status.ACTIVE,
                                       trained=True, artifact_path=str(good), promoted_at="2026-01-01T00:00Z")
    copy = Path(shutil.copytree(good, tmp_path / "copy"))
    candidate = promotion.register_candidate(artifact=copy, base=base, metrics={})
    decision = promotion.evaluate_and_gate(candidate=candidate, base=base, actor=admin)
    assert decision.promote and decision.candidate == pytest.approx(decision.baseline)  # "not worse" passes
    base.refresh_from_db()
    assert base.status == ModelVersion.Status.RETIRED

    listing = api_client(admin).get("/api/models").json()["results"]
    assert {(m["name"], m["status"]) for m in listing} >= {("good", "retired"), (candidate.name, "active")}
    assert "macro_roc_auc" in next(m for m in listing if m["status"] == "active")["metrics"]
    r = api_client(admin).post(f"/api/models/{base.pk}/rollback")
    assert r.status_code == 200 and r.json()["status"] == "active"
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.RETIRED
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).count() == 1


@pytest.mark.django_db
def test_retrain_without_enough_settled_labels_fails_loudly(user_factory, api_client,
                                                         django_capture_on_commit_callbacks):
    admin = user_factory("admin")
    with django_capture_on_commit_callbacks(execute=True):  # the task is sent on commit; eager in tests
        r = api_client(admin).post("/api/retrain")
    assert r.status_code == 202
    run = RetrainRun.objects.get(pk=r.json()["id"])
    assert run.status == RetrainRun.Status.FAILED and "at least 2" in run.error
    assert api_client(admin).get("/api/retrain").json()["results"][0]["status"] == "failed"
