"""Inter-annotator agreement: the figures against hand computation, then the API on real double readings."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotations.agreement import ItemLabels, agreement_report
from annotations.services import adjudicate, label_create, lease_next


def test_report_matches_hand_computed_agreement_and_kappa():
    # ann and bob read the same four items; ann once chose FM where bob and then the expert said TB.
    items = [
        ItemLabels(1, (("ann", "FM"), ("bob", "FM")), final="FM", model="FM"),
        ItemLabels(2, (("ann", "FM"), ("bob", "TB")), final="TB", model="FM"),
        ItemLabels(3, (("ann", "TB"), ("bob", "TB")), final="TB", model="TB"),
        ItemLabels(4, (("ann", "TB"), ("bob", "TB")), final="TB", model="TM"),
        ItemLabels(5, (("cat", "FB"),), final="FB", model="FB"),  # one reader: her label is the final answer
        ItemLabels(6, (("ann", "TM"), ("cat", "TB"))),  # disputed, not decided yet
    ]
    report = agreement_report(items)
    pair = {tuple(p["annotators"]): p for p in report["pairs"]}
    # ann vs bob: 3 of 4 agree; p_e = .5*.25 + .5*.75 = .5, so kappa = (.75 - .5) / (1 - .5) = .5
    assert pair[("ann", "bob")] == {"annotators": ["ann", "bob"], "items": 4, "agreement": 0.75, "kappa": 0.5}
    # ann vs cat: one item, no agreement; kappa 0 (chance would agree as little)
    assert pair[("ann", "cat")]["items"] == 1 and pair[("ann", "cat")]["agreement"] == 0.0
    overall = report["overall"]
    assert overall["items_with_two_or_more_labels"] == 5 and overall["label_pairs"] == 5
    assert overall["agreement"] == 0.6
    pooled_a = ["FM", "FM", "TB", "TB", "TM", "FM", "TB", "TB", "TB", "TB"]
    pooled_b = ["FM", "TB", "TB", "TB", "TB", "FM", "FM", "TB", "TB", "TM"]
    assert overall["kappa"] == pytest.approx(cohen_kappa_score(pooled_a, pooled_b), abs=1e-4)

    ann, bob, cat = report["annotators"]
    assert ann["annotator"] == "ann" and ann["labels"] == 5 and ann["classes"] == {"TB": 2, "TM": 1, "FB": 0, "FM": 2}
    assert (ann["decided"], ann["agreed_with_final"], ann["overruled"], ann["agreement_with_final"]) == (4, 3, 1, 0.75)
    assert (bob["decided"], bob["agreed_with_final"], bob["overruled"]) == (4, 4, 0)
    # cat's single-reader label is not a test of her; her disputed item has no answer yet
    assert (cat["labels"], cat["decided"], cat["agreement_with_final"]) == (2, 0, None)

    confusion = np.array(report["confusion"])
    assert report["classes"] == ["TB", "TM", "FB", "FM"]
    assert (confusion == confusion.T).all() and confusion.sum() == 2 * 5
    assert confusion[0, 0] == 4 and confusion[3, 3] == 2 and confusion[3, 0] == 1 and confusion[1, 0] == 1
    # the model: right on items 1, 2? no (FM vs TB), 3 yes, 4 no, 5 yes -> 3 of 5
    assert report["model"] == {"decided": 5, "agreed_with_final": 3, "agreement_with_final": 0.6}


def test_kappa_is_null_where_it_is_undefined_and_an_empty_report_has_no_rates():
    same = agreement_report([ItemLabels(i, (("ann", "TB"), ("bob", "TB")), final="TB") for i in range(3)])
    assert same["pairs"][0]["agreement"] == 1.0 and same["pairs"][0]["kappa"] is None  # one class throughout
    empty = agreement_report([])
    assert empty["overall"] == {"items_with_two_or_more_labels": 0, "label_pairs": 0, "agreement": None, "kappa": None}
    assert empty["pairs"] == [] and empty["annotators"] == [] and empty["model"]["agreement_with_final"] is None


def _read(user, item, label_class):
    assert lease_next(user=user).pk == item.pk
    return label_create(user=user, series=item.series, slice_index=item.slice_index, x=item.x, y=item.y,
                        label_class=label_class, queue_item=item)  # fmt: skip


@pytest.mark.django_db
def test_api_reports_double_readings_for_experts_only(user_factory, api_client, queue_of):
    a1, a2 = user_factory("annotator", "reader-1"), user_factory("annotator", "reader-2")
    expert = user_factory("expert")
    _series, items = queue_of(3, required_labels=2, shared_with=[a1, a2, expert])
    first, second, third = sorted(items, key=lambda i: -i.priority)
    _read(a1, first, "FM"), _read(a2, first, "FM")  # agree
    _read(a1, second, "FB"), _read(a2, second, "TB")  # disagree; the expert sides with reader-2
    adjudicate(expert=expert, item=second, label_class="TB", reason="no seam")
    _read(a1, third, "TM")  # waits for a second reader

    r = api_client(expert).get("/api/labels/agreement")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["overall"] == {"items_with_two_or_more_labels": 2, "label_pairs": 2, "agreement": 0.5,
                               "kappa": body["overall"]["kappa"]}  # fmt: skip
    assert body["pairs"][0]["annotators"] == ["reader-1", "reader-2"] and body["pairs"][0]["items"] == 2
    rows = {row["annotator"]: row for row in body["annotators"]}
    assert rows["reader-1"]["labels"] == 3 and rows["reader-1"]["overruled"] == 1
    assert rows["reader-2"]["agreement_with_final"] == 1.0
    assert expert.username not in rows  # an adjudication is the answer, not a reading
    assert body["model"]["decided"] == 2

    # each annotator sees their own figure on the queue page
    mine = api_client(a1).get("/api/queue/summary").json()["my_agreement"]
    assert mine == {"decided": 2, "agreed_with_final": 1}
    assert api_client(a1).get("/api/labels/agreement").status_code == 403  # annotators: their queue, not this
    assert api_client(user_factory("clinician")).get("/api/labels/agreement").status_code == 403
    later = api_client(expert).get("/api/labels/agreement", {"since": "2999-01-01"}).json()
    assert later["overall"]["label_pairs"] == 0 and later["annotators"] == []
    bad = api_client(expert).get("/api/labels/agreement", {"since": "2026-13-45"})
    assert bad.status_code == 400 and "since" in bad.json()
