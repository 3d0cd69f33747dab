"""Expert review in the browser: relabelling a colleague's label with a reason (and its history), annotators
without that control, and adjudicating a disputed queue item. Five real CT slices in a real Orthanc."""

import pytest

from tests.conftest import upload_paths
from tests.e2e.browser import SLICE_INDEX_JS, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SLICE = 2
REASON = "Injected nodule: no vessel feeds it, edges too smooth"


@pytest.fixture
def small_series(orthanc, ct_files, user_factory):
    """A clinician uploads five slices (scored eagerly, which also fills the review queue)."""
    from portal.studies.models import Series

    outcome = upload_paths(user_factory("clinician"), ct_files[45:50])
    assert len(outcome.stored) == 5, outcome.errors
    return Series.objects.get(series_uid=outcome.stored[0]["series_uid"])


def _assign(series, *users):
    from portal.studies.models import StudyAccess

    for user in users:
        StudyAccess.objects.create(study=series.study, user=user, kind=StudyAccess.Kind.ASSIGN)


def _open_viewer(page, live_server, series, username, query=f"?slice={SLICE}"):
    page.goto(f"{live_server.url}/viewer/{series.study.study_uid}/{series.series_uid}{query}")
    log_in(page, username)
    page.get_by_test_id("viewer").wait_for()
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '{SLICE}'")


def _csrf(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def test_expert_relabels_with_reason_and_annotator_cannot(live_server, small_series, user_factory, page, screenshot):
    from annotations.models import Label
    from annotations.services import label_create

    series = small_series
    annotator, colleague, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    _assign(series, annotator, colleague)
    label = label_create(user=annotator, series=series, slice_index=SLICE, x=200, y=220, label_class="TB")
    theirs = label_create(user=colleague, series=series, slice_index=SLICE, x=300, y=260, label_class="TM")

    # The expert sees the slice's labels, each with its history.
    _open_viewer(page, live_server, series, expert.username)
    card = page.locator(f"[data-testid=review-label][data-label-id='{label.pk}']")
    card.get_by_test_id("history-entry").first.wait_for()
    first = card.get_by_test_id("history-entry").first.inner_text()
    assert "v1 created as TB" in first and annotator.username in first
    assert page.get_by_test_id("review-label").count() == 2

    # Keyboard: ] selects the first label of the slice, 4 picks FM, the reason is typed, Enter saves.
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("]")
    card.get_by_test_id("relabel-form").wait_for()
    page.keyboard.press("4")
    assert card.get_by_test_id("relabel-class-FM").get_attribute("aria-pressed") == "true"
    assert card.get_by_test_id("relabel-save").is_disabled()  # no reason yet
    reason = card.get_by_test_id("relabel-reason")
    assert reason.evaluate("el => el === document.activeElement")
    page.keyboard.type(REASON)
    page.keyboard.press("Enter")
    page.get_by_test_id("relabel-saved").wait_for()
    relabelled = page.locator(f"[data-testid=review-label][data-label-id='{label.pk}'][data-label-class=FM]")
    entry = relabelled.locator("[data-testid=history-entry][data-action=relabel]")
    entry.wait_for()
    text = entry.inner_text()
    assert "v2 relabelled TB → FM" in text and expert.username in text and REASON in text
    assert entry.locator("time").get_attribute("datetime")
    page.locator(f"[data-testid=label-item][data-label-class=FM][data-slice-index='{SLICE}']").wait_for()
    page.locator(f"[data-testid=label-marker][data-label-id='{label.pk}'][data-label-class=FM]").wait_for()
    screenshot("relabelled")

    label.refresh_from_db()
    assert (label.label_class, label.version, label.annotator) == ("FM", 2, annotator)
    revision = label.revisions.get(version=2)
    assert (revision.action, revision.actor, revision.reason) == ("relabel", expert, REASON)

    # Mouse: select the other label, choose TB, give a reason, click Relabel.
    page.locator(f"[data-testid=review-label][data-label-id='{theirs.pk}'] [data-testid=review-select]").click()
    other = page.locator(f"[data-testid=review-label][data-label-id='{theirs.pk}']")
    other.get_by_test_id("relabel-class-TB").click()
    other.get_by_test_id("relabel-reason").fill("Benign granuloma, calcified")
    other.get_by_test_id("relabel-save").click()
    page.locator(f"[data-testid=review-label][data-label-id='{theirs.pk}'][data-label-class=TB]"
                 " [data-testid=history-entry][data-action=relabel]").wait_for()
    assert Label.objects.get(pk=theirs.pk).label_class == "TB"

    # The annotator sees the labels (the relabelled class) but no review panel and no relabel control.
    page.get_by_test_id("logout").click()
    _open_viewer(page, live_server, series, annotator.username)
    page.locator(f"[data-testid=label-item][data-label-class=TB][data-slice-index='{SLICE}']").click()
    page.get_by_test_id("label-editor").get_by_text(f"{colleague.username}'s TB label").wait_for()
    for test_id in ("label-review", "review-label", "relabel-form", "relabel-reason", "relabel-hint", "rebuild-box"):
        assert page.get_by_test_id(test_id).count() == 0, test_id
    screenshot("annotator-view")
    # And the API refuses it, even with a valid session and CSRF token.
    r = page.request.post(f"{live_server.url}/api/labels/{theirs.pk}/relabel",
                          data={"label_class": "FM", "reason": "I disagree"}, headers={"X-CSRFToken": _csrf(page)})
    assert r.status == 403 and "CSRF" not in r.text()
    assert Label.objects.get(pk=theirs.pk).label_class == "TB"


def test_expert_adjudicates_a_disputed_item(live_server, small_series, user_factory, page, screenshot):
    from annotations.models import QueueItem
    from annotations.services import label_create

    series = small_series
    a1, a2, expert = user_factory("annotator"), user_factory("annotator"), user_factory("expert")
    # A double-read item on an indexed slice (the session's Orthanc may hold more of this series than these
    # five slices, so the scored queue's slice numbers are not used here).
    item = QueueItem.objects.create(series=series, sop_instance_uid=series.instances.get(slice_index=SLICE)
                                    .sop_instance_uid, slice_index=SLICE, x=240, y=250, strategy="entropy",
                                    priority=10.0, probs={"TB": 0.3, "TM": 0.2, "FB": 0.2, "FM": 0.3},
                                    required_labels=2)  # fmt: skip
    for user, cls in ((a1, "TB"), (a2, "FM")):
        label_create(user=user, series=series, slice_index=item.slice_index, x=item.x, y=item.y, label_class=cls,
                     queue_item=item)  # fmt: skip
    item.refresh_from_db()
    assert item.status == QueueItem.Status.ADJUDICATION

    # The queue page has an adjudication mode listing the disputed item with both labels.
    page.goto(f"{live_server.url}/queue")
    log_in(page, expert.username)
    page.get_by_test_id("queue-mode-adjudication").click()
    row = page.locator(f"[data-testid=adjudication-row][data-item-id='{item.pk}']")
    row.wait_for()
    assert {c.get_attribute("data-label-class") for c in row.get_by_test_id("label-chip").all()} == {"TB", "FM"}
    screenshot("adjudication-list")
    row.get_by_test_id("adjudication-open").click()

    # The viewer opens at the item, in adjudication mode: 2 picks TM, a reason, Enter decides.
    box = page.get_by_test_id("adjudication-box")
    box.get_by_test_id("adjudicate-form").wait_for()
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '{item.slice_index}'")
    page.get_by_test_id("queue-target").wait_for()
    assert box.get_by_test_id("label-chip").count() == 2
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("2")
    assert box.get_by_test_id("adjudicate-class-TM").get_attribute("aria-pressed") == "true"
    page.keyboard.type("Spiculated margin: a real malignant nodule")
    page.keyboard.press("Enter")
    box.get_by_test_id("adjudication-done").wait_for()
    assert "Decided: TM" in box.get_by_test_id("adjudication-done").inner_text()
    # The decision is a label on the item, listed in the viewer.
    page.locator(f"[data-testid=label-item][data-label-class=TM][data-slice-index='{item.slice_index}']").wait_for()
    item.refresh_from_db()
    assert (item.status, item.consensus_class) == (QueueItem.Status.DONE, "TM")
    decision = item.labels.get(is_adjudication=True)
    assert decision.annotator == expert and decision.revisions.get().reason.startswith("Spiculated")
    screenshot("adjudicated")

    box.get_by_test_id("adjudication-next").click()
    page.get_by_test_id("adjudication-empty").wait_for()

    # The agreement tab: one double-read item, the two readers disagreed and the expert overruled both.
    page.goto(f"{live_server.url}/queue")
    page.get_by_test_id("queue-mode-agreement").click()
    overall = page.get_by_test_id("agreement-overall")
    overall.wait_for()
    assert overall.inner_text().startswith("1 item read by two or more annotators: 0% of 1 label pair agree")
    rows = {r.locator("td").first.inner_text(): r.locator("td").all_inner_texts()
            for r in page.get_by_test_id("agreement-annotator-row").all()}  # fmt: skip
    # Annotator, Labels, TB, TM, FB, FM, Decided, Matched final, Overruled, Agreement with final
    assert rows[a1.username][1:] == ["1", "1", "0", "0", "0", "1", "0", "1", "0%"]
    assert rows[a2.username][1:] == ["1", "0", "0", "0", "1", "1", "0", "1", "0%"]
    assert expert.username not in rows
    assert "matched the final answer on 0 of 1 decided item" in page.get_by_test_id("agreement-model").inner_text()
    confusion = page.get_by_test_id("agreement-confusion")
    assert confusion.locator("td.off-diagonal").all_inner_texts() == ["1", "1"]  # TB/FM and FM/TB
    screenshot("agreement")
    page.get_by_test_id("agreement-since").fill("2999-01-01")
    page.get_by_test_id("agreement-empty").wait_for()
    assert "since=2999-01-01" in page.url


def test_expert_rebuilds_the_series_queue_with_a_chosen_strategy(live_server, small_series, user_factory, page,
                                                                 screenshot):  # fmt: skip
    from annotations.models import QueueItem
    from annotations.services import default_strategy

    series, expert = small_series, user_factory("expert")
    page.set_viewport_size({"width": 1280, "height": 720})  # a laptop: the expert's panels do not all fit
    _open_viewer(page, live_server, series, expert.username)
    box = page.get_by_test_id("rebuild-box")
    # The side panel scrolls with the mouse wheel to the last section (it used to cut it off).
    side = page.locator("aside.viewer-side")
    assert side.evaluate("(el) => el.scrollHeight > el.clientHeight")
    side.locator(".side-section").first.hover()  # the series details: no list of its own to scroll first
    page.mouse.wheel(0, 2000)
    page.wait_for_function("() => document.querySelector('aside.viewer-side').scrollTop > 0")
    button = box.get_by_test_id("rebuild-queue").bounding_box()
    assert button is not None and button["y"] + button["height"] <= 720
    strategy = box.get_by_test_id("rebuild-strategy")
    page.wait_for_function("() => !document.querySelector('[data-testid=rebuild-strategy]').disabled")
    assert strategy.input_value() == default_strategy()
    # Upload scored the series, which queued it with the default strategy.
    queued = QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN).count()
    page.locator(f"[data-testid=rebuild-current][data-count='{queued}']").wait_for()

    # Stored scores only: margin, three items, double reading.
    strategy.select_option("margin")
    box.get_by_test_id("rebuild-batch").fill("3")
    box.get_by_test_id("rebuild-double").check()
    box.get_by_test_id("rebuild-queue").click()
    page.locator("[data-testid=rebuild-status][data-state=done]").wait_for()
    assert box.get_by_test_id("rebuild-status").inner_text().startswith("3 items queued by margin")
    open_items = QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN)
    assert [(i.strategy, i.required_labels) for i in open_items] == [("margin", 2)] * 3
    page.locator("[data-testid=rebuild-current][data-count='3']").wait_for()
    assert box.get_by_test_id("rebuild-current").inner_text() == "3 open items (margin)."

    # The default re-reads the series from the PACS and runs the model's trunk on the candidates.
    strategy.select_option(default_strategy())
    box.get_by_test_id("rebuild-batch").fill("2")
    box.get_by_test_id("rebuild-double").uncheck()
    box.get_by_test_id("rebuild-queue").click()
    page.wait_for_function("() => document.querySelector('[data-testid=rebuild-status]').textContent"
                           f".startsWith('2 items queued by {default_strategy()}')")
    assert {i.strategy for i in QueueItem.objects.filter(series=series, status=QueueItem.Status.OPEN)} == {
        default_strategy()}
    page.locator("[data-testid=rebuild-current][data-count='2']").wait_for()  # the margin items were retired
    assert box.get_by_test_id("rebuild-current").inner_text() == f"2 open items ({default_strategy()})."
    screenshot("queue-rebuilt")

    # A batch the API would refuse is caught before sending.
    box.get_by_test_id("rebuild-batch").fill("0")
    box.get_by_test_id("rebuild-queue").click()
    page.locator("[data-testid=rebuild-status][data-state=error]").wait_for()
    assert "1 to 500" in box.get_by_test_id("rebuild-status").inner_text()
