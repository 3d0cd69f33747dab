"""Label CRUD through the front end's contract, versioned history, expert relabelling."""

import pytest

from annotations.models import Label
from portal.accounts.models import AuditEvent


def _post(client, series, **kw):
    body = {"series_uid": series.series_uid, "sop_instance_uid": "", "slice_index": 3, "x": 120, "y": 240,
            "box": [110, 230, 130, 250], "label_class": "FM", "comment": "sharp margin", **kw}
    return client.post("/api/labels", body, format="json")


@pytest.mark.django_db
def test_create_and_list_follow_the_front_end_contract(user_factory, api_client, series_factory):
    a1, a2 = user_factory("annotator"), user_factory("annotator")
    series = series_factory(shared_with=[a1, a2])
    r = _post(api_client(a1), series)
    assert r.status_code == 201, r.content
    _post(api_client(a2), series, label_class="TB", box=None, x=10, y=20)
    listing = api_client(a1).get(f"/api/labels?series={series.series_uid}").json()["results"]
    assert len(listing) == 2
    mine = next(row for row in listing if row["is_mine"])
    assert {"id", "study_uid", "series_uid", "sop_instance_uid", "slice_index", "x", "y", "box", "label_class",
            "annotator", "created", "comment", "is_mine"} <= set(mine)  # fmt: skip
    assert mine["box"] == [110, 230, 130, 250] and mine["label_class"] == "FM"
    assert mine["study_uid"] == series.study.study_uid
    # the instance UID is filled in from the index when the client leaves it blank
    assert mine["sop_instance_uid"] == series.instances.get(slice_index=3).sop_instance_uid
    other = next(row for row in listing if not row["is_mine"])
    assert other["box"] is None and other["annotator"] == a2.username


@pytest.mark.django_db
def test_invalid_labels_are_refused(user_factory, api_client, series_factory):
    a1 = user_factory("annotator")
    series = series_factory(shared_with=[a1])
    assert _post(api_client(a1), series, label_class="XX").status_code == 400
    assert _post(api_client(a1), series, box=[10, 10, 5, 5]).status_code == 400
    assert _post(api_client(a1), series, x=-1).status_code == 400
    assert Label.objects.count() == 0


@pytest.mark.django_db
def test_a_label_must_point_into_the_slice_it_names(user_factory, api_client, series_factory):
    """Found by fuzzing: a box of 1e308 was stored and then broke the study's DICOM SR export for everyone."""
    a1 = user_factory("annotator")
    series = series_factory(shared_with=[a1], n_slices=20)  # 512x512 slices
    c = api_client(a1)
    outside = [dict(slice_index=20), dict(x=512), dict(y=600, box=None), dict(box=[0, 0, 1.7976931348623157e308, 5]),
               dict(box=[-3, 0, 5, 5])]  # fmt: skip
    for change in outside:
        r = _post(c, series, **change)
        assert r.status_code == 400, (change, r.content)
    assert "slice 20 is not in this series (20 slices" in str(_post(c, series, slice_index=20).json())
    assert "outside the 512x512 image" in str(_post(c, series, x=512).json())
    assert Label.objects.count() == 0

    edge = _post(c, series, slice_index=19, x=511, y=511, box=[500, 500, 512, 512])
    assert edge.status_code == 201, edge.content
    moved = c.patch(f"/api/labels/{edge.json()['id']}", {"x": 700}, format="json")
    assert moved.status_code == 400 and Label.objects.get().x == 511
    sr = c.get(f"/api/studies/{series.study.study_uid}/labels.sr.dcm", HTTP_ACCEPT="application/dicom")
    assert sr.status_code == 200, sr.content


@pytest.mark.django_db
def test_every_change_is_versioned_and_delete_is_soft(user_factory, api_client, series_factory):
    a1 = user_factory("annotator")
    series = series_factory(shared_with=[a1])
    c = api_client(a1)
    label_id = _post(c, series).json()["id"]
    r = c.patch(f"/api/labels/{label_id}", {"label_class": "FB", "comment": "removed, not injected"}, format="json")
    assert r.status_code == 200 and r.json()["label_class"] == "FB" and r.json()["version"] == 2
    assert c.delete(f"/api/labels/{label_id}").status_code == 204
    assert c.get(f"/api/labels?series={series.series_uid}").json()["results"] == []
    assert c.get(f"/api/labels/{label_id}").status_code == 404
    history = c.get(f"/api/labels/{label_id}/history").json()
    assert [(h["version"], h["action"], h["label_class"], h["is_deleted"]) for h in history] == [
        (1, "create", "FM", False), (2, "update", "FB", False), (3, "delete", "FB", True)]
    assert history[0]["comment"] == "sharp margin"  # the original text is still there
    actions = set(AuditEvent.objects.filter(object_id=str(label_id)).values_list("action", flat=True))
    assert {"label.create", "label.update", "label.delete"} <= actions


@pytest.mark.django_db
def test_only_author_or_expert_with_reason_may_change_a_label(user_factory, api_client, series_factory):
    a1, a2, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    series = series_factory(shared_with=[a1, a2])
    label_id = _post(api_client(a1), series).json()["id"]
    assert api_client(a2).patch(f"/api/labels/{label_id}", {"label_class": "TB"}, format="json").status_code == 403
    assert api_client(a2).delete(f"/api/labels/{label_id}").status_code == 403
    ce = api_client(expert)
    assert ce.patch(f"/api/labels/{label_id}", {"label_class": "TM"}, format="json").status_code == 400
    r = ce.patch(f"/api/labels/{label_id}", {"label_class": "TM", "reason": "calcified granuloma, genuine"},
                 format="json")  # fmt: skip
    assert r.status_code == 200 and r.json()["label_class"] == "TM"
    last = api_client(a1).get(f"/api/labels/{label_id}/history").json()[-1]
    assert (last["action"], last["actor"], last["reason"]) == ("relabel", expert.username,
                                                             "calcified granuloma, genuine")
    assert Label.objects.get(pk=label_id).annotator == a1  # authorship is not rewritten


@pytest.mark.django_db
def test_a_deleted_label_can_be_restored_as_a_new_version(user_factory, api_client, series_factory, queue_of):
    a1, a2, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    series = series_factory(shared_with=[a1, a2])
    c = api_client(a1)
    label_id = _post(c, series).json()["id"]
    assert c.delete(f"/api/labels/{label_id}").status_code == 204
    assert api_client(a2).post(f"/api/labels/{label_id}/restore").status_code == 403  # not theirs
    assert api_client(expert).post(f"/api/labels/{label_id}/restore").status_code == 400  # an expert gives a reason
    r = c.post(f"/api/labels/{label_id}/restore")
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["label_class"] == "FM"
    assert [row["id"] for row in c.get(f"/api/labels?series={series.series_uid}").json()["results"]] == [label_id]
    history = c.get(f"/api/labels/{label_id}/history").json()
    assert [(h["action"], h["is_deleted"]) for h in history] == [("create", False), ("delete", True),
                                                                 ("restore", False)]  # fmt: skip
    assert AuditEvent.objects.filter(action="label.restore", object_id=str(label_id)).exists()
    assert c.post(f"/api/labels/{label_id}/restore").status_code == 200  # restoring a live label changes nothing
    assert c.get(f"/api/labels/{label_id}").json()["version"] == 3

    # On a queue item, the restored label counts again: the item it had reopened closes.
    from annotations.models import QueueItem

    queued, [item] = queue_of(1, shared_with=[a1])
    leased = c.post("/api/queue/next").json()
    answer = c.post("/api/labels", {"series_uid": queued.series_uid, "sop_instance_uid": "",
                                    "slice_index": leased["slice_index"], "x": leased["x"], "y": leased["y"],
                                    "box": None, "label_class": "TB", "comment": ""}, format="json").json()  # fmt: skip
    assert QueueItem.objects.get(pk=item.pk).status == QueueItem.Status.DONE
    c.delete(f"/api/labels/{answer['id']}")
    assert QueueItem.objects.get(pk=item.pk).status == QueueItem.Status.OPEN
    c.post(f"/api/labels/{answer['id']}/restore")
    assert (QueueItem.objects.get(pk=item.pk).status, QueueItem.objects.get(pk=item.pk).consensus_class) == (
        QueueItem.Status.DONE, "TB")


@pytest.mark.django_db
def test_a_series_the_detector_does_not_read_takes_no_labels_and_none_trains(user_factory, api_client,
                                                                             series_factory):
    from detection.promotion import label_snapshot

    a1 = user_factory("annotator")
    ct, x_ray = series_factory(shared_with=[a1]), series_factory(shared_with=[a1])
    assert _post(api_client(a1), ct).status_code == 201
    type(x_ray).objects.filter(pk=x_ray.pk).update(modality="CR")
    refused = _post(api_client(a1), x_ray)
    assert refused.status_code == 400 and "this series is CR" in str(refused.json()["series_uid"])
    assert api_client(a1).get(f"/api/series/{x_ray.series_uid}").json()["labels_apply"] is False
    assert api_client(a1).get(f"/api/series/{ct.series_uid}").json()["labels_apply"] is True

    # One from before labels were refused there does not train: its pixels are no Hounsfield units.
    Label.objects.create(study=x_ray.study, series=x_ray, slice_index=1, x=5, y=5, label_class="FM", annotator=a1)
    assert {row["series"] for row in label_snapshot()} == {ct.series_uid}
