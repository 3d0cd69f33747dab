"""Queue mode and label editing in the browser, on a scored series (real Orthanc, tasks run eagerly)."""

import pytest

from tests.e2e.browser import SLICE_INDEX_JS, current_slice, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Coloured pixels of the heatmap layer: red (a finding) and amber (below the threshold), by hue.
HEATMAP_PIXELS_JS = """(() => {
  const canvas = document.querySelector('[data-testid=heatmap-layer]');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let red = 0, amber = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 40 || data[i] < 200) continue;
    const ratio = data[i + 1] / data[i];
    if (ratio < 0.2) red++; else if (ratio > 0.55 && ratio < 0.8) amber++;
  }
  return { red, amber, drawn: red + amber };
})()"""


def test_queue_item_label_then_edit_move_delete(live_server, uploaded_ct, user_factory, page, screenshot):
    from annotations.models import Label, QueueItem
    from annotations.services import label_create

    study = uploaded_ct()
    series = study.series.get()
    assert QueueItem.objects.filter(series=series).exists(), "scoring should have filled the review queue"
    expert, colleague = user_factory("expert"), user_factory("annotator")
    theirs = label_create(user=colleague, series=series, slice_index=10, x=200, y=220, label_class="TB")

    # The study list shows the model's verdict; the verdict filter narrows it.
    page.goto(f"{live_server.url}/studies")
    log_in(page, expert.username)
    row = page.get_by_test_id("study-row").first
    row.wait_for()
    assert row.get_by_test_id("verdict").get_attribute("data-verdict") == study.verdict
    other_verdicts = {"TB", "TM", "FB", "FM"} - {study.verdict}
    page.get_by_test_id("filter-verdict").select_option(sorted(other_verdicts)[0])
    page.get_by_text("No studies match these filters.").wait_for()
    page.get_by_test_id("filter-verdict").select_option("")
    page.get_by_test_id("study-row").first.wait_for()

    # Queue: "next uncertain item" opens the viewer at the item's slice with its location marked.
    page.get_by_test_id("nav-queue").click()
    waiting = QueueItem.objects.filter(status=QueueItem.Status.OPEN).count()
    page.get_by_test_id("queue-waiting").get_by_text(f"{waiting} items waiting for you.").wait_for()
    page.get_by_test_id("queue-next").click()
    page.get_by_test_id("queue-box").wait_for()
    item = QueueItem.objects.get(pk=int(page.url.split("item=")[1].split("&")[0]))
    assert item.leased_to_id == expert.pk
    # Back on the queue page the held item is offered to resume (not counted as waiting).
    page.get_by_test_id("nav-queue").click()
    page.get_by_test_id("queue-held").get_by_text(f"You hold slice {item.slice_index + 1}").wait_for()
    assert page.get_by_test_id("queue-waiting").inner_text() == f"{waiting - 1} items waiting for you."
    page.get_by_test_id("queue-resume").click()
    page.get_by_test_id("queue-box").wait_for()
    assert f"item={item.pk}" in page.url
    page.wait_for_function(f"() => {SLICE_INDEX_JS}")
    assert current_slice(page) == item.slice_index
    page.get_by_test_id("queue-target").wait_for()
    page.get_by_test_id("pending-marker").wait_for()

    # The series verdict is in words, and only locations at the calibrated threshold are marked findings.
    job = series.scoring_jobs.get()
    assert page.get_by_test_id("series-verdict").get_attribute("data-verdict") == job.verdict
    page.locator("[data-testid=location-item]").first.wait_for()
    listed = page.locator("[data-testid=location-item]")
    findings = page.locator("[data-testid=location-item][data-finding=true]")
    assert findings.count() == min(job.flagged_locations, listed.count())
    if findings.count() < listed.count():  # the rest are listed for review, not as findings
        assert "flag threshold" in page.get_by_test_id("location-note").inner_text()
    # The heatmap is amber below the slice's flag threshold and red only where a finding is.
    page.wait_for_function(f"() => ({HEATMAP_PIXELS_JS}).drawn > 0", timeout=20_000)
    pixels = page.evaluate(HEATMAP_PIXELS_JS)
    on_slice = job.location_scores.filter(slice_index=item.slice_index)
    edge = item.slice_index in (0, series.instances.count() - 1) and job.edge_flag_threshold
    has_finding = on_slice.filter(tamper__gte=edge or job.flag_threshold).exists()
    assert (pixels["red"] > 0) == has_finding and pixels["amber"] > 0, (pixels, has_finding)
    screenshot("queue-item")

    # 2 labels the queue item's location as TM (keyboard), linked to the item.
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("2")
    page.locator("[data-testid=label-item][data-label-class=TM]").wait_for()
    mine = Label.objects.get(annotator=expert)
    assert (mine.slice_index, mine.label_class, mine.queue_item_id) == (item.slice_index, "TM", item.pk)
    assert (mine.x, mine.y) == (item.x, item.y)
    saved = f"Item {item.pk}: saved as TM. Press Q for the next item."
    assert page.get_by_test_id("queue-status").inner_text() == saved

    # Edit: with the new label selected, 3 changes its class to FB.
    page.keyboard.press("3")
    page.locator("[data-testid=label-item][data-label-class=FB]").wait_for()
    mine.refresh_from_db()
    assert mine.label_class == "FB"

    # Move: drag the marker 30 screen pixels to the right.
    marker = page.locator("[data-testid=label-marker][data-label-class=FB] circle")
    box = marker.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 15, cy, steps=3)
    page.mouse.move(cx + 30, cy, steps=3)
    page.mouse.up()
    old_x = mine.x
    page.wait_for_timeout(300)
    for _ in range(20):
        mine.refresh_from_db()
        if mine.x != old_x:
            break
        page.wait_for_timeout(250)
    assert mine.x > old_x
    screenshot("label-moved")

    # A colleague's label is listed, drawn differently and cannot be edited.
    page.locator(f"[data-testid=label-item][data-slice-index='{theirs.slice_index}']").click()
    page.wait_for_function(f"() => {SLICE_INDEX_JS} === '{theirs.slice_index}'")
    their_marker = page.locator(f"[data-testid=label-marker][data-label-id='{theirs.pk}']")
    their_marker.wait_for()
    assert "theirs" in their_marker.get_attribute("class")
    assert page.get_by_test_id("label-delete").count() == 0

    # Delete: back to my label, Delete removes it (soft delete on the server).
    page.locator("[data-testid=label-item][data-label-class=FB]").click()
    page.get_by_test_id("label-delete").wait_for()
    page.get_by_test_id("viewport").focus()
    page.keyboard.press("Delete")
    page.locator("[data-testid=label-item][data-label-class=FB]").wait_for(state="detached")
    mine.refresh_from_db()
    assert mine.is_deleted

    # Ctrl+Z takes the steps back, newest first, also after a reload (the steps are kept in the tab): the
    # delete, the move, the class change, the label itself.
    moved_x = mine.x
    page.reload()
    page.locator("[data-testid=load-progress][data-complete=true]").wait_for(timeout=60_000)

    def undo_then(check) -> None:
        page.get_by_test_id("viewport").focus()
        page.keyboard.press("Control+z")
        for _ in range(40):
            mine.refresh_from_db()
            if check():
                return
            page.wait_for_timeout(100)
        raise AssertionError((mine.is_deleted, mine.label_class, mine.x))

    undo_then(lambda: not mine.is_deleted and mine.x == moved_x)
    page.locator("[data-testid=label-item][data-label-class=FB]").wait_for()
    undo_then(lambda: mine.x == old_x)
    undo_then(lambda: mine.label_class == "TM")
    undo_then(lambda: mine.is_deleted)
    page.locator("[data-testid=label-item][data-label-class=TM]").wait_for(state="detached")
    page.keyboard.press("Control+z")
    assert page.get_by_test_id("label-error").inner_text() == "Nothing to undo."
    assert [r.action for r in mine.revisions.order_by("version")] == [
        "create", "update", "update", "delete", "restore", "update", "update", "delete"]

    # Window presets and the overlay controls respond.
    page.keyboard.press("b")
    page.get_by_test_id("overlay-toggle").wait_for()
    assert page.get_by_test_id("overlay-toggle").is_enabled()
    page.keyboard.press("h")
    assert not page.get_by_test_id("overlay-toggle").is_checked()
    screenshot("after-delete")

    # Q: the next uncertain item, leased to the expert (maybe this one again: its only label was deleted).
    assert page.get_by_test_id("queue-status").inner_text().startswith(f"Item {item.pk}:")  # (reloaded above)
    with page.expect_response(lambda response: response.url.endswith("/api/queue/next")) as leased:
        page.keyboard.press("q")
    following = QueueItem.objects.get(pk=leased.value.json()["id"])
    page.wait_for_url(lambda url: url.endswith(f"item={following.pk}"))
    page.get_by_test_id("queue-status").get_by_text("check the marked location and save a label").wait_for()
    assert following.leased_to_id == expert.pk
