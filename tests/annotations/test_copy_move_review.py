"""Experts review what the copy-move check found in radiographs: the findings waiting for a review are listed,
each image is confirmed or dismissed with a reason (audited, history kept), only experts and admins may, only
images the latest check found a copy in; a dismissed image leaves the study's verdict, also after a re-check."""

import io

import pydicom
import pytest
from highdicom.sr import Comprehensive3DSR

from portal.accounts.models import AuditEvent
from tests.conftest import pdf_text, upload_paths
from tests.detection.test_radiographs import x_ray_series

pytestmark = pytest.mark.django_db


def _corners(box: list[int]) -> list[float]:
    x, y, w, h = box
    return [float(v) for v in (x, y, x + w, y, x + w, y + h, x, y + h, x, y)]


def _sr_content(ds: pydicom.Dataset) -> tuple[list[tuple[list[float], str]], dict[str, list[str]]]:
    """The SR's image-region polylines (points, referenced SOP) and its coded values by concept name."""
    boxes, codes = [], {}

    def walk(items) -> None:
        for item in items:
            if item.get("ValueType") == "SCOORD":
                ref = item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
                boxes.append(([float(v) for v in item.GraphicData], ref))
            if item.get("ValueType") == "CODE":
                name = item.ConceptNameCodeSequence[0].CodeMeaning
                codes.setdefault(name, []).append(item.ConceptCodeSequence[0].CodeValue)
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return boxes, codes


def test_an_expert_confirms_or_dismisses_a_copy_and_the_verdict_follows(
        orthanc, ct_files, tmp_path, user_factory, api_client, django_capture_on_commit_callbacks):
    from detection.radiographs import enqueue_copy_move_check, run_copy_move_check

    owner, expert = user_factory("clinician"), user_factory("expert")
    annotator = user_factory("annotator")
    paths = x_ray_series(ct_files, tmp_path)
    with django_capture_on_commit_callbacks(execute=True):  # the check runs eagerly on commit
        stored = upload_paths(owner, paths).stored
    study_uid, series_uid = stored[0]["study_uid"], stored[0]["series_uid"]
    cloned, clean = (str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths)
    reviews = f"/api/series/{series_uid}/copy-move/{cloned}/reviews"
    boss, uploader = api_client(expert), api_client(owner)

    def study() -> dict:
        return uploader.get(f"/api/studies/{study_uid}").json()

    def listed(verdict: str) -> list[str]:
        return [s["study_uid"] for s in uploader.get("/api/studies", {"verdict": verdict}).json()["results"]]

    waiting = boss.get("/api/copy-move/findings", {"reviewed": "false"}).json()["results"]
    assert [(f["study_uid"], f["sop_instance_uid"], f["review"]) for f in waiting] == [(study_uid, cloned, None)]
    assert waiting[0]["regions"] and waiting[0]["modality"] == "CR"
    assert waiting[0]["regions"][0]["changed"] == ""  # only moved: not turned or resized on the way

    # Who may not, and what is refused.
    assert uploader.post(reviews, {"decision": "dismissed", "reason": "mine"}).status_code == 403
    assert api_client(annotator).post(reviews, {"decision": "confirmed"}).status_code == 403
    assert api_client(annotator).get("/api/copy-move/findings").status_code == 403
    no_reason = boss.post(reviews, {"decision": "dismissed", "reason": " "})
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    elsewhere = boss.post(f"/api/series/{series_uid}/copy-move/{clean}/reviews", {"decision": "confirmed"})
    assert elsewhere.status_code == 400 and "found no copy in this image" in str(elsewhere.json())
    assert boss.post(reviews, {"decision": "maybe"}).status_code == 400

    def counts() -> tuple[int, int, int]:
        return study()["copy_move_images"], study()["copy_move_dismissed"], study()["copy_move_confirmed"]

    confirmed = boss.post(reviews, {"decision": "confirmed"})
    assert confirmed.status_code == 201, confirmed.content
    assert counts() == (1, 0, 1)  # still suspected, now confirmed by an expert
    assert boss.get("/api/copy-move/findings", {"reviewed": "false"}).json()["results"] == []
    [done] = boss.get("/api/copy-move/findings", {"reviewed": "true"}).json()["results"]
    assert (done["review"]["decision"], done["review"]["by"]) == ("confirmed", expert.username)

    # The expert changes their mind: two ribs alike, no copy. The study no longer counts as tampered.
    assert boss.post(reviews, {"decision": "dismissed", "reason": "two ribs alike"}).status_code == 201
    assert counts() == (0, 1, 0)
    assert study_uid not in listed("tampered") and study_uid not in listed("copy_move")
    [image] = uploader.get(f"/api/series/{series_uid}").json()["copy_move"]["found"]
    assert (image["review"]["decision"], image["review"]["reason"]) == ("dismissed", "two ribs alike")
    pdf = pdf_text(uploader.get(f"/api/studies/{study_uid}/report.pdf").content)
    assert b"Expert review" in pdf and b"dismissed by " + expert.username.encode() in pdf
    sr = pydicom.dcmread(io.BytesIO(uploader.get(f"/api/studies/{study_uid}/labels.sr.dcm").content))
    groups = Comprehensive3DSR.from_dataset(sr).content.get_planar_roi_measurement_groups()  # highdicom reads it
    assert [g.finding_type.meaning for g in groups] == ["Region copied within the image"] * 2
    boxes, codes = _sr_content(sr)
    first, second = (image["regions"][0][place] for place in ("first", "second"))
    assert [(box, sop) for box, sop in boxes] == [(_corners(first), cloned), (_corners(second), cloned)]
    assert codes["Expert review of the copy-move finding"] == ["DISMISSED"] * 2  # on each place
    assert codes["Finding"] == ["COPYMOVE", "COPYMOVE"] and codes["Procedure reported"] == ["43468-8"]  # XR
    history = boss.get(reviews).json()
    assert [r["decision"] for r in history] == ["dismissed", "confirmed"]  # newest first, nothing overwritten
    assert list(AuditEvent.objects.filter(action__startswith="study.copy_move_").order_by("created")
                .values_list("action", "details__reason")) == [("study.copy_move_confirm", ""),
                                                               ("study.copy_move_dismiss", "two ribs alike")]
    log = [e["action"] for e in uploader.get(f"/api/studies/{study_uid}/access").json()["results"]]
    assert [a for a in log if "copy_move_" in a] == ["study.copy_move_dismiss", "study.copy_move_confirm"]

    # Checked again (the same image found again): the expert's dismissal still holds.
    series = owner.uploaded_studies.get(study_uid=study_uid).series.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_copy_move_check(check_id=enqueue_copy_move_check(series).pk)
    assert counts() == (0, 1, 0)
    assert study_uid not in listed("tampered")

    # The expert looks again and confirms it after all: suspected again, and confirmed.
    assert boss.post(reviews, {"decision": "confirmed"}).status_code == 201
    assert counts() == (1, 0, 1) and study_uid in listed("tampered")


def test_the_findings_list_costs_the_same_queries_for_more_studies_and_leaves_out_withdrawn_ones(
        orthanc, ct_files, tmp_path, user_factory, api_client, django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.studies.withdrawal import withdraw_study

    owner, admin = user_factory("clinician"), user_factory("admin")
    client = api_client(admin)

    def listed() -> tuple[list[str], int]:
        with CaptureQueriesContext(connection) as queries:
            results = client.get("/api/copy-move/findings").json()["results"]
        # The session's own writes (its idle timer) come and go; the rest is the list's.
        own = [q for q in queries.captured_queries if "django_session" not in q["sql"] and "SAVEPOINT" not in q["sql"]]
        return [f["study_uid"] for f in results], len(own)

    uids = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        with django_capture_on_commit_callbacks(execute=True):
            uids.append(upload_paths(owner, x_ray_series(ct_files, tmp_path / name)).stored[0]["study_uid"])
        if name == "first":
            one, queries_for_one = listed()
    both, queries_for_two = listed()
    assert one == uids[:1] and both == uids and queries_for_two == queries_for_one
    withdraw_study(actor=owner, study=owner.uploaded_studies.get(study_uid=uids[0]), reason="wrong patient")
    assert listed()[0] == uids[1:]


def test_those_alerted_to_a_copy_are_told_when_an_expert_dismisses_it(
        orthanc, ct_files, tmp_path, user_factory, api_client, django_capture_on_commit_callbacks, settings):
    from django.core import mail

    settings.TAMPER_ALERT_EMAILS = ["security@example.org"]
    owner, expert = user_factory("clinician"), user_factory("expert")
    owner.email = "uploader@example.org"
    owner.save()
    paths = x_ray_series(ct_files, tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        stored = upload_paths(owner, paths).stored
    [alert] = mail.outbox
    cloned = str(pydicom.dcmread(paths[0], stop_before_pixels=True).SOPInstanceUID)
    reviews = f"/api/series/{stored[0]['series_uid']}/copy-move/{cloned}/reviews"

    with django_capture_on_commit_callbacks(execute=True):
        api_client(expert).post(reviews, {"decision": "confirmed"})  # nothing changes for those alerted
    assert mail.outbox == [alert]
    with django_capture_on_commit_callbacks(execute=True):
        api_client(expert).post(reviews, {"decision": "dismissed", "reason": "patient Jane Doe: two ribs alike"})
    cleared = mail.outbox[-1]
    assert len(mail.outbox) == 2 and cleared.to == alert.to
    assert "dismissed" in cleared.subject and f"/studies/{stored[0]['study_uid']}" in cleared.body
    assert "Jane Doe" not in cleared.body  # the reason is free text: it stays in the portal
    assert AuditEvent.objects.get(action="study.copy_move_cleared").details["reviewer"] == expert.username
    with django_capture_on_commit_callbacks(execute=True):  # dismissed again: already cleared, no second mail
        api_client(expert).post(reviews, {"decision": "dismissed", "reason": "still ribs"})
    assert len(mail.outbox) == 2
