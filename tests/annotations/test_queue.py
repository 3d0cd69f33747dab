"""Leases, expiry, consensus and adjudication as annotators and experts experience them."""

import threading
import time

import pytest
from django.db import connection

from annotations.models import QueueItem
from annotations.services import lease_next


@pytest.mark.django_db(transaction=True)
def test_two_annotators_asking_at_once_never_get_the_same_item(user_factory, queue_of):
    """Real PostgreSQL row locks: 8 threads (4 annotators x 2 requests each) race for 6 items."""
    annotators = [user_factory("annotator") for _ in range(4)]
    queue_of(6, shared_with=annotators)
    barrier = threading.Barrier(len(annotators) * 2)
    got: dict[int, list[int | None]] = {a.pk: [] for a in annotators}
    errors: list[BaseException] = []

    def ask(user):
        try:
            barrier.wait()
            item = lease_next(user=user)
            got[user.pk].append(item.pk if item else None)
        except BaseException as exc:  # surfaced below; a thread must not swallow it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(a,)) for a in annotators for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    per_user = {uid: {i for i in items if i} for uid, items in got.items()}
    # Each annotator ends up holding exactly one item (asking twice returns the held one) ...
    assert all(len(items) == 1 for items in per_user.values()), per_user
    # ... and no item is held by two annotators.
    held = [next(iter(items)) for items in per_user.values()]
    assert len(set(held)) == len(held) == 4
    for item in QueueItem.objects.filter(pk__in=held):
        assert item.leased_to_id in per_user and item.pk in per_user[item.leased_to_id]


@pytest.mark.django_db(transaction=True)
def test_api_next_returns_contract_and_204_when_empty(user_factory, api_client, queue_of):
    a1, a2 = user_factory("annotator"), user_factory("annotator")
    series, _ = queue_of(1, shared_with=[a1, a2])
    r1 = api_client(a1).post("/api/queue/next")
    assert r1.status_code == 200
    body = r1.json()
    assert {"id", "study_uid", "series_uid", "slice_index", "x", "y", "lease_expires", "strategy"} <= set(body)
    assert body["series_uid"] == series.series_uid and body["strategy"] == "entropy"
    assert api_client(a2).post("/api/queue/next").status_code == 204  # the only item is leased


@pytest.mark.django_db(transaction=True)
def test_expired_lease_returns_the_item_to_the_queue(user_factory, queue_of):
    a1, a2 = user_factory("annotator"), user_factory("annotator")
    queue_of(1, shared_with=[a1, a2])
    first = lease_next(user=a1, seconds=1)
    assert lease_next(user=a2) is None
    time.sleep(1.2)
    second = lease_next(user=a2)
    assert second is not None and second.pk == first.pk and second.leased_to_id == a2.pk
    # a1's lease is gone: labelling now does not count against the item a2 holds
    assert lease_next(user=a1) is None


@pytest.mark.django_db
def test_release_gives_the_item_back(user_factory, api_client, queue_of):
    a1, a2 = user_factory("annotator"), user_factory("annotator")
    queue_of(1, shared_with=[a1, a2])
    item = api_client(a1).post("/api/queue/next").json()
    assert api_client(a2).post(f"/api/queue/{item['id']}/release").status_code == 403  # not theirs
    assert api_client(a1).post(f"/api/queue/{item['id']}/release").status_code == 200
    assert api_client(a2).post("/api/queue/next").json()["id"] == item["id"]


def _label_leased(client, item, label_class):
    return client.post("/api/labels", {
        "series_uid": item["series_uid"], "sop_instance_uid": "", "slice_index": item["slice_index"],
        "x": item["x"], "y": item["y"], "box": None, "label_class": label_class, "comment": "",
    }, format="json")  # fmt: skip


@pytest.mark.django_db
def test_single_label_closes_item_and_annotator_moves_on(user_factory, api_client, queue_of):
    a1 = user_factory("annotator")
    queue_of(2, shared_with=[a1])
    c = api_client(a1)
    first = c.post("/api/queue/next").json()
    assert _label_leased(c, first, "FM").status_code == 201
    item = QueueItem.objects.get(pk=first["id"])
    assert item.status == QueueItem.Status.DONE and item.consensus_class == "FM" and item.leased_to is None
    second = c.post("/api/queue/next").json()
    assert second["id"] != first["id"]
    assert _label_leased(c, second, "TB").status_code == 201
    assert c.post("/api/queue/next").status_code == 204


@pytest.mark.django_db
def test_double_reading_agreement_and_disagreement_then_adjudication(user_factory, api_client, queue_of):
    a1, a2, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    queue_of(2, required_labels=2, shared_with=[a1, a2])
    c1, c2, ce = api_client(a1), api_client(a2), api_client(expert)

    # Item A: both say FM -> consensus, no expert needed.
    ia = c1.post("/api/queue/next").json()
    _label_leased(c1, ia, "FM")
    assert QueueItem.objects.get(pk=ia["id"]).status == QueueItem.Status.OPEN  # waits for a second reader
    assert c1.post("/api/queue/next").json()["id"] != ia["id"]  # never the item a1 already read
    c1.post(f"/api/queue/{c1.post('/api/queue/next').json()['id']}/release")
    got = c2.post("/api/queue/next").json()
    assert got["id"] == ia["id"]  # higher priority, still needs a label
    _label_leased(c2, got, "FM")
    assert QueueItem.objects.get(pk=ia["id"]).consensus_class == "FM"

    # Item B: FB vs TB -> goes to the adjudication queue.
    ib = c1.post("/api/queue/next").json()
    _label_leased(c1, ib, "FB")
    ib2 = c2.post("/api/queue/next").json()
    assert ib2["id"] == ib["id"]
    _label_leased(c2, ib2, "TB")
    assert QueueItem.objects.get(pk=ib["id"]).status == QueueItem.Status.ADJUDICATION
    disputed = ce.get("/api/adjudications").json()["results"]
    assert [d["id"] for d in disputed] == [ib["id"]]
    assert sorted(lab["label_class"] for lab in disputed[0]["labels"]) == ["FB", "TB"]

    assert c1.post(f"/api/adjudications/{ib['id']}", {"label_class": "FB", "reason": "x"}).status_code == 403
    assert ce.post(f"/api/adjudications/{ib['id']}", {"label_class": "FB"}).status_code == 400  # needs reason
    r = ce.post(f"/api/adjudications/{ib['id']}", {"label_class": "FB", "reason": "in-painting seam on z+1"})
    assert r.status_code == 201
    item = QueueItem.objects.get(pk=ib["id"])
    assert item.status == QueueItem.Status.DONE and item.consensus_class == "FB"
    assert ce.get("/api/adjudications").json()["results"] == []


@pytest.mark.django_db
def test_rebuild_with_another_strategy_replaces_untouched_items(user_factory, api_client, queue_of):
    expert, a1 = user_factory("expert"), user_factory("annotator")
    series, items = queue_of(6, shared_with=[a1])
    leased = api_client(a1).post("/api/queue/next").json()
    r = api_client(expert).post("/api/queue/rebuild", {"series_uid": series.series_uid, "strategy": "margin",
                                                       "batch_size": 3}, format="json")  # fmt: skip
    assert r.status_code == 201 and {i["strategy"] for i in r.json()} == {"margin"} and len(r.json()) == 3
    # The leased item survives; every other entropy item is retired.
    open_items = QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN)
    assert {i.strategy for i in open_items.exclude(pk=leased["id"])} == {"margin"}
    assert QueueItem.objects.get(pk=leased["id"]).status == QueueItem.Status.OPEN
    bad = api_client(expert).post("/api/queue/rebuild", {"series_uid": series.series_uid, "strategy": "nope"})
    assert bad.status_code == 400


@pytest.mark.django_db
def test_rebuild_says_when_the_pacs_is_down_or_lacks_the_series_and_keeps_the_queue(
    user_factory, api_client, queue_of, orthanc, settings
):
    """Embedding strategies re-read the series from the PACS: a PACS that is down is a 503 to retry, one that
    does not hold the series a 502, and the series' queue stays as it was either way."""
    from portal.orthanc import free_port

    expert = user_factory("expert")
    series, items = queue_of(4)
    before = set(QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN).values_list("pk", flat=True))
    body = {"series_uid": series.series_uid, "strategy": "typiclust_bald"}

    missing = api_client(expert).post("/api/queue/rebuild", body, format="json")  # rows only, no pixels in Orthanc
    assert missing.status_code == 502, missing.content
    assert "PACS refused" in missing.json()["detail"] and missing.json()["retry"] is False

    settings.DICOMWEB_URL = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    down = api_client(expert).post("/api/queue/rebuild", body, format="json")
    assert down.status_code == 503 and down.json()["retry"] is True and down["Retry-After"] == "30"
    assert "unreachable" in down.json()["detail"]
    assert set(QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN).values_list("pk", flat=True)) \
        == before


@pytest.mark.django_db
def test_a_refused_adjudication_says_why_in_one_string(user_factory, api_client, queue_of):
    """The service's ValidationError reaches the client as {"detail": "..."}, the shape the schema documents."""
    _, items = queue_of(1)
    r = api_client(user_factory("expert")).post(f"/api/adjudications/{items[0].pk}",
                                                {"label_class": "FB", "reason": "seam"}, format="json")
    assert r.status_code == 400
    assert r.json() == {"detail": f"queue item {items[0].pk} is open, not awaiting adjudication"}


@pytest.mark.django_db
def test_queue_summary_counts_what_next_can_give_each_annotator(user_factory, api_client, queue_of, settings):
    """An item a1 labelled waits for a second reader: it is not among what a1 can still get (it was, and
    "next" then said the queue was empty), while a2 sees it; a held item is offered back to its holder."""
    settings.RETRAIN_EVERY_N_LABELS = 50
    a1, a2, clinician = user_factory("annotator"), user_factory("annotator"), user_factory("clinician")
    queue_of(3, required_labels=2, shared_with=[a1, a2])
    c1, c2 = api_client(a1), api_client(a2)

    def summary(client) -> dict:
        return client.get("/api/queue/summary").json()

    assert summary(c1) == {
        "available": 3, "held": None, "held_by_others": 0, "awaiting_other_annotators": 0, "adjudication": 0,
        "done": 0, "my_labels": 0, "retraining": {"every_n_labels": 50, "labels_since_last": 0},
        "my_agreement": {"decided": 0, "agreed_with_final": 0}}  # fmt: skip
    first = c1.post("/api/queue/next").json()
    held = summary(c1)
    assert held["held"]["id"] == first["id"] and held["available"] == 2
    assert (summary(c2)["available"], summary(c2)["held_by_others"]) == (2, 1)

    _label_leased(c1, first, "FM")
    after = summary(c1)
    assert after["held"] is None and after["awaiting_other_annotators"] == 1 and after["available"] == 2
    assert after["my_labels"] == 1 and after["retraining"]["labels_since_last"] == 1
    assert (summary(c2)["available"], summary(c2)["awaiting_other_annotators"]) == (3, 0)
    for _ in range(2):  # a1 works through the rest: what the summary promised is what "next" gives
        _label_leased(c1, c1.post("/api/queue/next").json(), "TB")
    assert summary(c1)["available"] == 0 and c1.post("/api/queue/next").status_code == 204
    assert api_client(clinician).get("/api/queue/summary").status_code == 403
