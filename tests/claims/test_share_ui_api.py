"""The share UI's API: list a study's shares, open or download a stored share with its key, revoke it."""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve

from portal.accounts.models import AuditEvent
from portal.claims import crypto
from portal.claims.models import EncryptedShare

pytestmark = pytest.mark.django_db


@pytest.fixture
def share(shared_study, api_client):
    """The clinician seals the five-slice study for an insurer; the key is shown once."""
    client = api_client(shared_study["clinician"])
    r = client.post("/api/shares/encrypted", {"study_uid": shared_study["study"].study_uid,
                                              "recipient": "ACME claims desk"}, format="json")
    assert r.status_code == 201, r.content
    return {**shared_study, "client": client, "id": r.json()["id"], "key": r.json()["key"], "body": r.json()}


def test_sharer_lists_the_shares_of_a_study(share, api_client, user_factory):
    listing = share["client"].get(f"/api/shares/encrypted?study={share['study'].study_uid}").json()
    assert [(s["id"], s["study_uid"], s["recipient"], s["revoked_at"]) for s in listing] == [
        (share["id"], share["study"].study_uid, "ACME claims desk", None)]
    assert "key" not in listing[0]  # the key is never shown again
    assert share["client"].get("/api/shares/encrypted?study=1.2.3.4").json() == []
    # Another clinician sees none of them.
    assert api_client(user_factory("clinician")).get("/api/shares/encrypted").json() == []


def test_key_holder_opens_and_downloads_a_stored_share(share, api_client):
    insurer = api_client(share["insurer"])
    opened = insurer.post(f"/api/shares/encrypted/{share['id']}/open", {"key": share["key"]}, format="json")
    assert opened.status_code == 200, opened.content
    body = opened.json()
    assert body["ok"] and body["ledger_verified"] == 5 and body["problems"] == []
    assert body["header"]["subject"] == share["study"].study_uid and len(body["files"]) == 5
    assert body["share"]["created_by"] == share["clinician"].username

    files = insurer.post(f"/api/shares/encrypted/{share['id']}/files", {"key": share["key"]}, format="json")
    assert files.status_code == 200 and files["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(files.content)) as zf:
        names = zf.namelist()
    assert "manifest.json" in names and sum(n.endswith(".dcm") for n in names) == 5
    assert AuditEvent.objects.filter(action="share.download_files", actor=share["insurer"]).exists()


def test_wrong_or_malformed_key_opens_nothing(share, api_client):
    insurer = api_client(share["insurer"])
    wrong = crypto.encode_key(b"\x02" * 32)
    for url in (f"/api/shares/encrypted/{share['id']}/open", f"/api/shares/encrypted/{share['id']}/files"):
        r = insurer.post(url, {"key": wrong}, format="json")
        assert r.status_code == 400 and "wrong key" in r.json()["detail"]
        assert insurer.post(url, {"key": "not-a-key"}, format="json").status_code == 400
        assert insurer.post(url, {}, format="json").status_code == 400
    assert AuditEvent.objects.filter(action="share.open_refused", details__reason="wrong key").count() == 2
    missing = insurer.post("/api/shares/encrypted/00000000-0000-4000-8000-000000000000/open", {"key": wrong},
                           format="json")  # fmt: skip
    assert missing.status_code == 404
    assert api_client().post(f"/api/shares/encrypted/{share['id']}/open", {"key": share["key"]},
                             format="json").status_code in (401, 403)  # fmt: skip


def test_creator_revokes_and_the_portal_stops_serving_it(share, api_client, user_factory):
    client, share_id, key = share["client"], share["id"], share["key"]
    archive = b"".join(client.get(share["body"]["archive_url"]).streaming_content)  # a copy handed out earlier
    path = Path(EncryptedShare.objects.get(pk=share_id).archive_path)
    assert path.exists()

    # Only the creator (or an admin) may revoke: another clinician does not see it, insurers and annotators
    # have no revoke right at all.
    assert api_client(user_factory("clinician")).post(f"/api/shares/encrypted/{share_id}/revoke").status_code == 404
    for role in ("insurer", "annotator", "expert"):
        assert api_client(user_factory(role)).post(f"/api/shares/encrypted/{share_id}/revoke").status_code == 403
    assert EncryptedShare.objects.get(pk=share_id).revoked_at is None

    r = client.post(f"/api/shares/encrypted/{share_id}/revoke")
    assert r.status_code == 200, r.content
    assert r.json()["revoked_at"] and r.json()["revoked_by"] == share["clinician"].username
    assert not path.exists()  # the server's copy is gone
    assert client.post(f"/api/shares/encrypted/{share_id}/revoke").status_code == 200  # idempotent
    assert AuditEvent.objects.filter(action="share.revoke", object_id=share_id).count() == 1

    insurer = api_client(share["insurer"])
    for url in (f"/api/shares/encrypted/{share_id}/open", f"/api/shares/encrypted/{share_id}/files"):
        gone = insurer.post(url, {"key": key}, format="json")
        assert gone.status_code == 410 and "revoked" in gone.json()["detail"]
    assert client.get(share["body"]["archive_url"]).status_code == 410
    imported = insurer.post("/api/shares/import", {"archive": SimpleUploadedFile("a.mitp", archive), "key": key},
                            format="multipart")  # fmt: skip
    assert imported.status_code == 410
    listed = client.get("/api/shares/encrypted").json()
    assert listed[0]["id"] == share_id and listed[0]["revoked_at"]


def test_admin_may_revoke_any_share(share, api_client, user_factory):
    r = api_client(user_factory("admin")).post(f"/api/shares/encrypted/{share['id']}/revoke")
    assert r.status_code == 200 and r.json()["revoked_by"].startswith("admin-")


@pytest.mark.parametrize("path", ["/studies/1.2.3.4", "/shares", "/shares/open", "/shares/open/abc-123/"])
def test_share_pages_are_spa_routes(path):
    assert resolve(path).url_name == "spa"


def test_downloads_answer_their_own_media_type_and_a_lost_archive_is_a_404(share, api_client):
    client, share_id = share["client"], share["id"]
    url = share["body"]["archive_url"]
    # A strict client asks for the file's type; DRF used to answer 406 before the view ran.
    r = client.get(url, HTTP_ACCEPT="application/octet-stream")
    assert r.status_code == 200 and r["Content-Type"] == "application/octet-stream"
    files = api_client(share["insurer"]).post(f"/api/shares/encrypted/{share_id}/files", {"key": share["key"]},
                                              format="json", HTTP_ACCEPT="application/zip")  # fmt: skip
    assert files.status_code == 200 and files["Content-Type"] == "application/zip"
    # An error under such an Accept header is still JSON.
    wrong = api_client(share["insurer"]).post(f"/api/shares/encrypted/{share_id}/files", {"key": "not-a-key"},
                                              format="json", HTTP_ACCEPT="application/zip")  # fmt: skip
    assert wrong.status_code == 400 and wrong["Content-Type"] == "application/json" and wrong.json()
    Path(EncryptedShare.objects.get(pk=share_id).archive_path).unlink()
    lost = client.get(url)
    assert lost.status_code == 404 and "missing" in lost.json()["detail"]


@pytest.mark.parametrize("extra", [{"claim_id": "6f1c2a8e-5d1b-4c55-9a43-0b9e7f2d1c10"}, {"study_uid": ""}])
def test_a_share_of_both_or_neither_a_study_and_a_claim_is_refused(shared_study, api_client, extra):
    """Naming a study and a claim used to share the study silently; naming neither must not share anything."""
    body = {"study_uid": shared_study["study"].study_uid, "recipient": "ACME", **extra}
    if body["study_uid"] == "":
        del body["study_uid"]
    r = api_client(shared_study["clinician"]).post("/api/shares/encrypted", body, format="json")
    assert r.status_code == 400
    assert "exactly one of study_uid or claim_id" in str(r.json())
    assert not EncryptedShare.objects.exists()
