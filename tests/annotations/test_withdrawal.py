"""A withdrawn study leaves the queues, the label lists and retraining; restored, it comes back."""

import pytest
from django.utils import timezone

from annotations.selectors import label_list, queue_summary
from annotations.services import label_create, labels_since_last_retrain, lease_next
from detection.promotion import label_snapshot
from portal.studies.withdrawal import restore_study, withdraw_study

pytestmark = pytest.mark.django_db


def test_withdrawn_study_leaves_queue_labels_and_training_until_restored(queue_of, user_factory):
    owner, annotator, admin = user_factory("clinician"), user_factory("annotator"), user_factory("admin")
    series, items = queue_of(3, uploaded_by=owner, shared_with=[annotator])
    label_create(user=annotator, series=series, slice_index=2, x=40, y=40, label_class="TM")
    study = series.study
    assert lease_next(user=annotator) is not None
    assert len(label_list(annotator, study_uid=study.study_uid)) == 1
    training_before = labels_since_last_retrain()

    withdraw_study(actor=owner, study=study, reason="wrong patient")

    assert lease_next(user=annotator) is None
    summary = queue_summary(annotator, timezone.now())
    assert summary["available"] == 0 and summary["held"] is None
    assert not label_list(annotator, study_uid=study.study_uid).exists()
    assert not any(row["study"] == study.study_uid for row in label_snapshot())
    assert labels_since_last_retrain() == training_before - 1

    restore_study(actor=admin, study=study)
    assert lease_next(user=annotator) is not None
    assert label_list(annotator, study_uid=study.study_uid).count() == 1
    assert labels_since_last_retrain() == training_before


def test_a_held_item_is_not_handed_back_once_its_study_is_out_of_sight(queue_of, user_factory):
    from portal.studies.models import StudyAccess

    annotator = user_factory("annotator")
    series, _ = queue_of(2, shared_with=[annotator])
    held = lease_next(user=annotator)
    assert held is not None and lease_next(user=annotator) == held  # asking again: the same item
    StudyAccess.objects.filter(study=series.study, user=annotator).delete()  # assignment revoked
    assert lease_next(user=annotator) is None
