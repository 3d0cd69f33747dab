"""Withdrawing a study: the uploader or an admin, with a reason; hidden from everyone but admins (lists,
study page, viewer, DICOMweb proxy, insurer shares); uploads into it refused per file; an admin restores it.
Nothing leaves the PACS. An uploader whose study an admin withdrew or restored is emailed."""

import pytest

from portal.accounts.models import AuditEvent
from portal.studies import dicomweb
from portal.studies.models import StudyAccess
from tests.conftest import fresh_copies, upload_paths

pytestmark = pytest.mark.django_db


def test_withdrawn_study_is_hidden_from_all_but_admins_and_restored(orthanc, ct_files, tmp_path, user_factory,
                                                                    api_client):
    owner, colleague, annotator = user_factory("clinician"), user_factory("clinician"), user_factory("annotator")
    expert, insurer, admin = user_factory("expert"), user_factory("insurer"), user_factory("admin")
    outcome = upload_paths(owner, fresh_copies(ct_files[:2], tmp_path))
    study = outcome.jobs[0].series.study
    series_uid = outcome.jobs[0].series.series_uid
    for user, kind in ((colleague, StudyAccess.Kind.SHARE), (annotator, StudyAccess.Kind.ASSIGN),
                       (insurer, StudyAccess.Kind.SHARE)):
        StudyAccess.objects.create(study=study, user=user, kind=kind)
    page, withdraw = f"/api/studies/{study.study_uid}", f"/api/studies/{study.study_uid}/withdraw"
    metadata = f"/dicomweb/studies/{study.study_uid}/series/{series_uid}/metadata"

    for user in (owner, colleague, annotator, expert):  # viewing it: the proxy remembers each grant...
        assert api_client(user).get(metadata).status_code == 200

    # Who may not: a colleague it was shared with, an expert, an insurer; and not without a reason.
    assert api_client(colleague).post(withdraw, {"reason": "no"}).status_code == 403
    assert api_client(expert).post(withdraw, {"reason": "no"}).status_code == 403
    assert api_client(insurer).post(withdraw, {"reason": "no"}).status_code == 403
    blank = api_client(owner).post(withdraw, {"reason": "  "})
    assert blank.status_code == 400 and "reason" in blank.json()

    done = api_client(owner).post(withdraw, {"reason": "uploaded under the wrong patient"})
    assert done.status_code == 200, done.content
    assert done.json()["withdrawn"]["reason"] == "uploaded under the wrong patient"
    assert done.json()["withdrawn"]["by"] == owner.username

    for user in (owner, colleague, annotator, expert):
        client = api_client(user)
        assert study.study_uid not in [s["study_uid"] for s in client.get("/api/studies").json()["results"]]
        assert client.get(page).status_code == 404
        assert client.get(f"/api/series/{series_uid}").status_code == 404
        assert client.get(metadata).status_code in (403, 404)  # ...and forgets it at the withdrawal
        assert client.post(withdraw, {"reason": "again"}).status_code == 404
        assert client.get("/api/studies?withdrawn=true").json()["results"] == []
    assert api_client(insurer).get(metadata).status_code in (403, 404)
    assert api_client(owner).post(f"/api/studies/{study.study_uid}/restore").status_code == 403

    # Admins: not in the usual list, in the withdrawn one, and the page still opens (to restore it).
    boss = api_client(admin)
    assert study.study_uid not in [s["study_uid"] for s in boss.get("/api/studies").json()["results"]]
    listed = boss.get("/api/studies?withdrawn=true").json()["results"]
    assert [s["study_uid"] for s in listed] == [study.study_uid]
    assert listed[0]["withdrawn"]["by"] == owner.username
    assert boss.get(page).json()["withdrawn"]["reason"] == "uploaded under the wrong patient"

    # Nothing was deleted: the PACS still holds both images.
    assert len(dicomweb.search_instances(study.study_uid, series_uid)) == 2

    restored = boss.post(f"/api/studies/{study.study_uid}/restore")
    assert restored.status_code == 200 and restored.json()["withdrawn"] is None
    assert boss.post(f"/api/studies/{study.study_uid}/restore").status_code == 409
    for user in (owner, colleague, annotator, expert):
        assert api_client(user).get(page).status_code == 200
    assert api_client(owner).get(metadata).status_code == 200

    actions = list(AuditEvent.objects.filter(object_type="Study", object_id=str(study.pk),
                                             action__in=["study.withdraw", "study.restore"]).order_by(
        "created").values_list("action", "actor__username", "details__reason"))
    assert actions == [("study.withdraw", owner.username, "uploaded under the wrong patient"),
                       ("study.restore", admin.username, None)]
    log = [r["action"] for r in api_client(owner).get(f"{page}/access").json()["results"]]
    assert "study.withdraw" in log and "study.restore" in log


def test_upload_into_a_withdrawn_study_is_refused_per_file_and_the_rest_stored(orthanc, ct_files, tmp_path,
                                                                               user_factory, api_client):
    owner = user_factory("clinician")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = fresh_copies(ct_files[:3], tmp_path / "a")
    outcome = upload_paths(owner, first[:1])
    study = outcome.jobs[0].series.study
    assert api_client(owner).post(f"/api/studies/{study.study_uid}/withdraw",
                                  {"reason": "consent withdrawn"}).status_code == 200

    other = fresh_copies(ct_files[3:4], tmp_path / "b")
    again = upload_paths(owner, first[1:] + other)
    assert [row["file"] for row in again.stored] == [other[0].name]
    refused = {e["file"]: e["reason"] for e in again.errors}
    assert set(refused) == {p.name for p in first[1:]}
    assert all("withdrawn" in reason and "admin must restore" in reason for reason in refused.values())
    assert len(dicomweb.search_instances(study.study_uid, outcome.jobs[0].series.series_uid)) == 1
    study.refresh_from_db()
    assert study.withdrawn_at is not None


def test_an_uploader_is_emailed_when_an_admin_withdraws_or_restores_their_study(user_factory, settings,
                                                                                 django_capture_on_commit_callbacks):
    from django.core import mail

    from portal.studies.models import Patient, Study
    from portal.studies.withdrawal import restore_study, withdraw_study

    settings.PORTAL_URL = "https://portal.example.org"
    owner, admin = user_factory("clinician"), user_factory("admin")
    owner.email = "owner@example.org"
    owner.save()
    study = Study.objects.create(study_uid="1.2.99", uploaded_by=owner,
                                 patient=Patient.objects.create(patient_id="SECRET-ID", patient_name="Doe^Jane"))
    with django_capture_on_commit_callbacks(execute=True):  # the email goes in a task after the commit
        withdraw_study(actor=admin, study=study, reason="wrong exam attached to the claim")
    [withdrawn] = mail.outbox
    assert withdrawn.to == ["owner@example.org"] and "withdrawn" in withdrawn.subject
    assert "Reason given: wrong exam attached to the claim" in withdrawn.body and "1.2.99" in withdrawn.body
    assert "SECRET-ID" not in withdrawn.body and "Doe" not in withdrawn.body

    with django_capture_on_commit_callbacks(execute=True):
        restore_study(actor=admin, study=study)
    assert "restored" in mail.outbox[1].subject and "https://portal.example.org/studies/1.2.99" in mail.outbox[1].body
    assert list(AuditEvent.objects.filter(action="study.withdrawal_email").values_list("details__change", flat=True)
                .order_by("created")) == ["withdrawn", "restored"]

    # The uploader withdrawing their own study is not told what they just did.
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_study(actor=owner, study=study, reason="duplicate")
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)  # a second connection must see the database as committed
def test_a_frame_request_while_the_withdrawal_commits_does_not_keep_the_grant(orthanc, ct_files, tmp_path,
                                                                              user_factory, api_client):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, transaction

    from portal.studies.withdrawal import withdraw_study

    owner = user_factory("clinician")
    outcome = upload_paths(owner, fresh_copies(ct_files[:1], tmp_path))
    study = outcome.jobs[0].series.study
    metadata = f"/dicomweb/studies/{study.study_uid}/series/{outcome.jobs[0].series.series_uid}/metadata"
    client = api_client(owner)

    def fetch_in_another_connection() -> int:
        try:
            return client.get(metadata).status_code
        finally:
            connection.close()

    with transaction.atomic():
        withdraw_study(actor=owner, study=study, reason="wrong patient")
        with ThreadPoolExecutor(1) as pool:  # not committed yet: the other connection still sees the study
            assert pool.submit(fetch_in_another_connection).result() == 200
    assert client.get(metadata).status_code == 404  # what that request remembered was forgotten at the commit
