"""Expert relabelling and adjudication items through the API the viewer uses (POST /api/labels/{id}/relabel)."""

import pytest

from annotations.models import Label, LabelRevision, QueueItem
from annotations.services import label_create
from portal.accounts.models import AuditEvent

pytestmark = pytest.mark.django_db


def _relabel(client, label_id, **body):
    return client.post(f"/api/labels/{label_id}/relabel", body, format="json")


def test_expert_relabel_is_versioned_with_who_what_when_why(user_factory, api_client, series_factory):
    annotator, expert = user_factory("annotator"), user_factory("expert")
    series = series_factory(shared_with=[annotator])
    label = label_create(user=annotator, series=series, slice_index=4, x=100, y=120, label_class="TB")

    r = _relabel(api_client(expert), label.pk, label_class="FM", reason="injected: no vessel feeds it")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["label"]["label_class"], body["label"]["version"], body["label"]["annotator"]) == (
        "FM", 2, annotator.username)  # the annotator stays the author
    assert [(h["version"], h["action"], h["label_class"], h["actor"], h["reason"]) for h in body["history"]] == [
        (1, "create", "TB", annotator.username, ""),
        (2, "relabel", "FM", expert.username, "injected: no vessel feeds it"),
    ]
    assert body["history"][1]["created"] >= body["history"][0]["created"]
    # The annotator reads the same history, and the audit log has the change with its reason.
    history = api_client(annotator).get(f"/api/labels/{label.pk}/history").json()
    assert history == body["history"]
    event = AuditEvent.objects.get(action="label.relabel", object_id=str(label.pk))
    assert event.actor == expert and event.details["reason"] == "injected: no vessel feeds it"


def test_relabel_needs_a_reason_and_a_new_class(user_factory, api_client, series_factory):
    annotator, expert = user_factory("annotator"), user_factory("expert")
    label = label_create(user=annotator, series=series_factory(shared_with=[annotator]), slice_index=1, x=5, y=5,
                         label_class="TM")  # fmt: skip
    client = api_client(expert)
    assert _relabel(client, label.pk, label_class="FB").status_code == 400
    assert _relabel(client, label.pk, label_class="FB", reason="   ").status_code == 400
    same = _relabel(client, label.pk, label_class="TM", reason="looks right")
    assert same.status_code == 400 and "already TM" in str(same.json())
    assert _relabel(client, label.pk, label_class="XX", reason="x").status_code == 400
    assert _relabel(client, 999999, label_class="FB", reason="x").status_code == 404
    label.refresh_from_db()
    assert (label.label_class, label.version, label.revisions.count()) == ("TM", 1, 1)


@pytest.mark.parametrize("role", ["annotator", "clinician", "insurer"])
def test_only_experts_and_admins_may_relabel(role, user_factory, api_client, series_factory):
    annotator = user_factory("annotator")
    other = user_factory(role)
    series = series_factory(uploaded_by=other if role == "clinician" else None, shared_with=[annotator])
    theirs = label_create(user=annotator, series=series, slice_index=2, x=50, y=60, label_class="TB")
    r = _relabel(api_client(other), theirs.pk, label_class="FM", reason="I think it is fake")
    assert r.status_code == 403
    # Not even on their own label: an annotator corrects their own label with PATCH, not as a relabel.
    own = _relabel(api_client(annotator), theirs.pk, label_class="FM", reason="changed my mind")
    assert own.status_code == 403
    assert _relabel(api_client(), theirs.pk, label_class="FM", reason="x").status_code in (401, 403)
    theirs.refresh_from_db()
    assert (theirs.label_class, theirs.version) == ("TB", 1)
    assert not LabelRevision.objects.filter(action="relabel").exists()

    admin = user_factory("admin")
    assert _relabel(api_client(admin), theirs.pk, label_class="FM", reason="second opinion").status_code == 200


def test_relabel_reopens_agreement_for_adjudication(user_factory, api_client, queue_of):
    a1, a2, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    series, items = queue_of(1, required_labels=2, shared_with=[a1, a2])
    item = items[0]
    first = label_create(user=a1, series=series, slice_index=item.slice_index, x=item.x, y=item.y,
                         label_class="TB", queue_item=item)  # fmt: skip
    label_create(user=a2, series=series, slice_index=item.slice_index, x=item.x, y=item.y, label_class="TB",
                 queue_item=item)  # fmt: skip
    item.refresh_from_db()
    assert (item.status, item.consensus_class) == (QueueItem.Status.DONE, "TB")

    assert _relabel(api_client(expert), first.pk, label_class="FB", reason="tumour removed").status_code == 200
    item.refresh_from_db()
    assert item.status == QueueItem.Status.ADJUDICATION  # the two labels now disagree


def test_adjudication_item_detail_for_experts_only(user_factory, api_client, queue_of):
    a1, a2, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    series, items = queue_of(1, required_labels=2, shared_with=[a1, a2])
    item = items[0]
    for user, cls in ((a1, "TB"), (a2, "FM")):
        label_create(user=user, series=series, slice_index=item.slice_index, x=item.x, y=item.y, label_class=cls,
                     queue_item=item)  # fmt: skip
    r = api_client(expert).get(f"/api/adjudications/{item.pk}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "adjudication" and body["series_uid"] == series.series_uid
    assert sorted((lab["annotator"], lab["label_class"], lab["is_adjudication"]) for lab in body["labels"]) == sorted(
        [(a1.username, "TB", False), (a2.username, "FM", False)])
    assert api_client(a1).get(f"/api/adjudications/{item.pk}").status_code == 403

    decided = api_client(expert).post(f"/api/adjudications/{item.pk}", {"label_class": "FM", "reason": "injected"},
                                      format="json")  # fmt: skip
    assert decided.status_code == 201
    after = api_client(expert).get(f"/api/adjudications/{item.pk}").json()
    assert (after["status"], after["consensus_class"]) == ("done", "FM")
    assert any(lab["is_adjudication"] and lab["annotator"] == expert.username for lab in after["labels"])
    assert Label.objects.filter(queue_item=item, is_adjudication=True).count() == 1
