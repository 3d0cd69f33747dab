"""Permission matrix: every claims endpoint x insurer / other insurer / clinician / annotator / admin / anonymous."""

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from portal.accounts.models import AuditEvent
from portal.claims import services
from tests.claims.conftest import png_bytes

pytestmark = pytest.mark.django_db

ROLES = ["insurer", "other_insurer", "clinician", "annotator", "admin", "anonymous"]


def expect(**codes):
    """codes by role; unlisted roles default to 403 (logged-in) / 401 (anonymous)."""
    return codes


@pytest.fixture
def world(shared_study, user_factory, ct_slice_paths):
    import numpy as np

    insurer, clinician, study = shared_study["insurer"], shared_study["clinician"], shared_study["study"]
    claim = services.claim_create(actor=insurer, reference="PERM-1")
    services.claim_reference_study(actor=insurer, claim=claim, study_uid=study.study_uid)
    services.claim_add_image(actor=insurer, claim=claim, name="a.png",
                             data=png_bytes(np.zeros((64, 64), dtype=np.uint8)))
    admin = user_factory("admin")
    share = services.encrypted_share_create(actor=admin, claim=claim)
    users = {"insurer": insurer, "other_insurer": user_factory("insurer"), "clinician": clinician,
             "annotator": user_factory("annotator"), "admin": admin, "anonymous": None}
    sop = pydicom.dcmread(ct_slice_paths[0]).SOPInstanceUID
    return {"users": users, "claim": claim, "study": study, "sop": sop, "share": share}


def endpoints(w):
    c, s, sop, share = w["claim"].id, w["study"].study_uid, w["sop"], w["share"]
    png = png_bytes(__import__("numpy").zeros((64, 64), dtype="uint8"))
    return [
        # (name, method, url, data-factory, expected codes by role; default 403)
        ("list claims", "get", "/api/claims/", None, dict(insurer=200, other_insurer=200, admin=200)),
        ("create claim", "post", "/api/claims/", lambda: {"reference": "X"},
         dict(insurer=201, other_insurer=201, admin=201)),
        ("claim detail", "get", f"/api/claims/{c}", None, dict(insurer=200, other_insurer=404, admin=200)),
        ("upload image", "post", f"/api/claims/{c}/images",
         lambda: {"files": [SimpleUploadedFile("b.png", png)]}, dict(insurer=201, other_insurer=404, admin=201)),
        ("reference study", "post", f"/api/claims/{c}/studies", lambda: {"study_uid": s},
         dict(insurer=201, other_insurer=404, admin=201)),
        ("api pdf", "get", f"/api/claims/{c}/report.pdf", None,
         dict(insurer=200, other_insurer=404, admin=200, anonymous=302)),
        ("shared studies", "get", "/api/claims/shared-studies", None, dict(insurer=200, other_insurer=200, admin=200)),
        ("page list", "get", "/claims/", None, dict(insurer=200, other_insurer=200, admin=200, anonymous=302)),
        ("page detail", "get", f"/claims/{c}/", None, dict(insurer=200, other_insurer=404, admin=200, anonymous=302)),
        ("page pdf", "get", f"/claims/{c}/report.pdf", None,
         dict(insurer=200, other_insurer=404, admin=200, anonymous=302)),
        ("figure", "get", f"/claims/{c}/images/1/input.png", None,
         dict(insurer=200, other_insurer=404, admin=200, anonymous=302)),
        ("public keys", "get", "/api/provenance/keys", None, {r: 200 for r in ROLES}),
        ("verify ledger", "get", "/api/provenance/ledger/verify", None, dict(admin=200)),
        ("instance provenance", "get", f"/api/provenance/instances/{sop}", None,
         dict(insurer=200, other_insurer=404, clinician=200, admin=200)),
        ("export png", "get", f"/api/provenance/instances/{sop}/lung.png", None,
         dict(insurer=200, other_insurer=404, clinician=200, admin=200)),
        ("share with insurer", "post", f"/api/shares/studies/{s}/insurers",
         lambda: {"insurer": w["users"]["other_insurer"].username}, dict(clinician=201, admin=201)),
        ("insurers with access", "get", f"/api/shares/studies/{s}/insurers", None, dict(clinician=200, admin=200)),
        # Each allowed role shares with other_insurer (above), then revokes it.
        ("revoke insurer", "delete", f"/api/shares/studies/{s}/insurers/{w['users']['other_insurer'].username}",
         None, dict(clinician=204, admin=204)),
        ("insurer accounts", "get", "/api/insurers", None, dict(clinician=200, admin=200)),
        ("encrypted study", "post", "/api/shares/encrypted", lambda: {"study_uid": s}, dict(clinician=201, admin=201)),
        ("encrypted claim", "post", "/api/shares/encrypted", lambda: {"claim_id": str(c)}, dict(admin=201)),
        ("list shares", "get", "/api/shares/encrypted", None, dict(clinician=200, admin=200)),
        ("download share", "get", f"/api/shares/encrypted/{share.share.id}/archive", None,
         dict(clinician=404, admin=200)),
        ("import share", "post", "/api/shares/import",
         lambda: {"archive": SimpleUploadedFile("x.mitp", open(share.share.archive_path, "rb").read()),
                  "key": share.key}, {r: 200 for r in ROLES if r != "anonymous"}),
    ]


def test_permission_matrix(world):
    mismatches = []
    for role in ROLES:
        user = world["users"][role]
        client = APIClient()
        if user is not None:
            client.force_login(user)
        for name, method, url, data, codes in endpoints(world):
            # Without credentials the API says "log in" (401); pages redirect to the login form (302).
            expected = codes.get(role, 401 if role == "anonymous" else 403)
            kwargs = {}
            if data is not None:
                payload = data()
                fmt = "multipart" if any(isinstance(v, (list, SimpleUploadedFile)) for v in payload.values()) \
                    else "json"
                kwargs = {"data": payload, "format": fmt}
            response = getattr(client, method)(url, **kwargs)
            if response.status_code != expected:
                mismatches.append(f"{role:14} {name:20} {method.upper()} {url}: {response.status_code} != {expected}")
    assert not mismatches, "\n".join(mismatches)


def test_accesses_are_audited(world):
    client = APIClient()
    client.force_login(world["users"]["insurer"])
    before = AuditEvent.objects.count()
    client.get(f"/api/claims/{world['claim'].id}")
    client.get(f"/claims/{world['claim'].id}/")
    client.get(f"/claims/{world['claim'].id}/images/1/input.png")
    actions = list(AuditEvent.objects.order_by("-id").values_list("action", flat=True)[:AuditEvent.objects.count()
                                                                                      - before])
    assert sorted(actions) == ["claim.view", "claim.view", "claim.view_figure"]
    assert AuditEvent.objects.filter(action="study.share_insurer", actor=world["users"]["clinician"]).exists()
    assert AuditEvent.objects.filter(action="share.encrypted_create", actor=world["users"]["admin"]).exists()


def test_insurer_cannot_reference_a_study_not_shared_with_them(world, api_client):
    other = api_client(world["users"]["other_insurer"])
    claim = other.post("/api/claims/", {"reference": "OTHER"}, format="json").json()
    r = other.post(f"/api/claims/{claim['id']}/studies", {"study_uid": world["study"].study_uid}, format="json")
    assert r.status_code == 400 and "shared" in r.json()["detail"]
