"""The Models page: versions with held-out metrics, retraining runs with the gate's reason; admins roll back."""

import pytest
from django.utils import timezone

from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_admin_sees_gate_decisions_and_rolls_back(live_server, user_factory, page, screenshot):
    from annotations.models import RetrainRun
    from detection.models import ModelVersion, ScoringJob
    from portal.studies.models import Patient, Series, Study

    earlier = ModelVersion.objects.create(
        name="smallcnn:earlier", arch="smallcnn", status=ModelVersion.Status.RETIRED, trained=True,
        promoted_at=timezone.now(), metrics={"macro_roc_auc": 0.91, "accuracy": 0.8, "macro_f1": 0.79,
                                             "heldout": {"n": 400, "z": [64, 92]}})
    active = ModelVersion.objects.create(
        name="smallcnn:active", arch="smallcnn", status=ModelVersion.Status.ACTIVE, trained=True, parent=earlier,
        promoted_at=timezone.now(), metrics={"macro_roc_auc": 0.93})
    rejected = ModelVersion.objects.create(name="smallcnn:worse", arch="smallcnn", trained=True, parent=active,
                                           status=ModelVersion.Status.REJECTED)
    reason = "rejected: macro_roc_auc 0.9000 vs current 0.9300 (tolerance 0.0000)"
    RetrainRun.objects.create(status=RetrainRun.Status.REJECTED, n_labels=12, base_version=active,
                              candidate_version=rejected, metrics={"reason": reason}, finished=timezone.now())
    # A series whose latest scores are the earlier model's.
    study = Study.objects.create(study_uid="1.2.826.0.1.3680043.10.6", patient=Patient.objects.create(patient_id="m1"))
    ScoringJob.objects.create(series=Series.objects.create(series_uid=f"{study.study_uid}.1", study=study),
                              model_version=earlier, status=ScoringJob.Status.DONE, finished=timezone.now())
    stale_note = "1 series was last scored by another model than smallcnn:active."
    waiting = RetrainRun.objects.create(status=RetrainRun.Status.QUEUED)  # this run's bulk queue has no worker

    expert = user_factory("expert")
    page.goto(f"{live_server.url}/models")
    log_in(page, expert.username)
    page.get_by_test_id("models-page").wait_for()
    page.locator(f"[data-testid=model-row][data-model-id='{active.pk}']").wait_for()
    assert "0.930" in page.locator(f"[data-testid=model-row][data-model-id='{active.pk}']").inner_text()
    assert page.get_by_test_id("retrain-outcome").last.inner_text() == reason
    assert "No bulk worker is running" in page.get_by_test_id("no-bulk-worker").inner_text(timeout=10_000)
    RetrainRun.objects.filter(pk=waiting.pk).update(status=RetrainRun.Status.FAILED, error="no worker")
    assert page.get_by_test_id("retrain-start").count() == 0 and page.get_by_test_id("model-rollback").count() == 0
    assert page.get_by_test_id("stale-series").inner_text().strip() == stale_note  # admins re-score them
    # What scores claim images: the shipped single-image model, with its threshold per input path.
    assert page.get_by_test_id("claim-model-name").inner_text().startswith("single-image:")
    thresholds = page.get_by_test_id("claim-model-thresholds").inner_text()
    assert "DICOM slice: flagged at tamper probability 93.88 %" in thresholds and "PNG/JPEG" in thresholds

    page.get_by_test_id("logout").click()
    admin = user_factory("admin")
    page.goto(f"{live_server.url}/models")
    log_in(page, admin.username)
    row = page.locator(f"[data-testid=model-row][data-model-id='{earlier.pk}']")
    row.wait_for()
    assert "400 held-out patches, slices 64–91" in row.inner_text()
    assert page.get_by_test_id("retrain-start").is_enabled() and page.get_by_test_id("no-bulk-worker").count() == 0
    assert stale_note in page.get_by_test_id("stale-series").inner_text()
    assert page.get_by_test_id("rescore-stale").is_enabled()
    screenshot("models")
    row.get_by_test_id("model-rollback").click()
    page.locator(f"[data-testid=model-row][data-model-id='{earlier.pk}'][data-status=active]").wait_for()
    active.refresh_from_db()
    assert active.status == ModelVersion.Status.RETIRED
    assert "is the active model again" in page.get_by_test_id("models-message").inner_text()
    assert page.get_by_test_id("stale-series").inner_text() == ""  # its scores are the active model's again
