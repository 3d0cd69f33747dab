"""Role matrix: every endpoint x every role, allowed or refused as designed."""

import pytest

from detection.models import ScoringJob
from detection.services import run_scoring_job
from portal.studies.models import StudyAccess
from tests.conftest import upload_paths

pytestmark = pytest.mark.django_db

OK, FORBIDDEN, NOT_FOUND, UNAUTH = 200, 403, 404, 401

# Columns: owner clinician, other clinician, assigned annotator, unassigned annotator, expert, insurer, admin, anon
ROLES = ["owner", "other_clinician", "annotator", "other_annotator", "expert", "insurer", "admin", "anonymous"]
MATRIX = {
    "GET /api/me":             [OK, OK, OK, OK, OK, OK, OK, UNAUTH],
    "POST /api/studies/upload": [400, 400, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, 400, UNAUTH],
    "GET /api/studies":        [OK, OK, OK, OK, OK, FORBIDDEN, OK, UNAUTH],
    "GET /api/studies/{study}": [OK, NOT_FOUND, OK, NOT_FOUND, OK, FORBIDDEN, OK, UNAUTH],
    "GET /api/series/{series}": [OK, NOT_FOUND, OK, NOT_FOUND, OK, FORBIDDEN, OK, UNAUTH],
    "GET /api/series/{series}/scores": [OK, NOT_FOUND, OK, NOT_FOUND, OK, FORBIDDEN, OK, UNAUTH],
    "GET /api/series/{series}/heatmap/0.png": [OK, NOT_FOUND, OK, NOT_FOUND, OK, FORBIDDEN, OK, UNAUTH],
    "GET /api/studies/{study}/report.pdf": [OK, NOT_FOUND, OK, NOT_FOUND, OK, FORBIDDEN, OK, UNAUTH],
    "GET /api/studies/{study}/access": [OK, NOT_FOUND, FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, OK, UNAUTH],
    "GET /api/jobs/{job}":     [OK, NOT_FOUND, OK, NOT_FOUND, OK, FORBIDDEN, OK, UNAUTH],
    "GET /dicomweb/studies/{study}/series/{series}/metadata": [OK, NOT_FOUND, OK, NOT_FOUND, OK, NOT_FOUND, OK,
                                                               UNAUTH],
    "POST /dicomweb/studies": [405, 405, 405, 405, 405, 405, 405, 405],
    "GET /admin/":             [302, 302, 302, 302, 302, 302, OK, 302],
    "GET /admin/auth/user/":   [302, 302, 302, 302, 302, 302, OK, 302],  # admins manage people and roles
    # The owner's re-score queues a job (202); an expert or admin asking after it finds it pending (409).
    "POST /api/series/{series}/rescore": [202, NOT_FOUND, FORBIDDEN, FORBIDDEN, 409, FORBIDDEN, 409, UNAUTH],
}


def test_role_matrix(orthanc, ct_files, user_factory, api_client):
    users = {
        "owner": user_factory("clinician"), "other_clinician": user_factory("clinician"),
        "annotator": user_factory("annotator"), "other_annotator": user_factory("annotator"),
        "expert": user_factory("expert"), "insurer": user_factory("insurer"), "admin": user_factory("admin"),
        "anonymous": None,
    }
    outcome = upload_paths(users["owner"], ct_files[40:44])
    series = outcome.jobs[0].series
    study = series.study
    StudyAccess.objects.create(study=study, user=users["annotator"], kind=StudyAccess.Kind.ASSIGN)
    job = run_scoring_job(job_id=outcome.jobs[0].pk)
    assert job.status == ScoringJob.Status.DONE, job.error

    mismatches = []
    for endpoint, expected in MATRIX.items():
        method, path = endpoint.split(" ", 1)
        path = path.format(study=study.study_uid, series=series.series_uid, job=job.pk)
        for role, want in zip(ROLES, expected, strict=True):
            client = api_client(users[role])
            got = client.generic(method, path).status_code
            if got != want:
                mismatches.append(f"{role:16} {endpoint}: got {got}, want {want}")
    assert not mismatches, "\n".join(mismatches)


def test_every_write_is_audited(orthanc, ct_files, user_factory):
    from portal.accounts.models import AuditEvent

    clinician = user_factory("clinician")
    upload_paths(clinician, ct_files[:2])
    event = AuditEvent.objects.get(action="study.upload")
    assert event.actor == clinician and event.details["staged"] == 2


def test_token_auth_reaches_api_and_proxy(orthanc, ct_files, user_factory, client):
    from rest_framework.authtoken.models import Token

    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, ct_files[:1])
    token = Token.objects.create(user=clinician)
    header = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get("/api/studies", **header).status_code == 200
    path = f"/dicomweb/studies/{outcome.stored[0]['study_uid']}/series/{outcome.stored[0]['series_uid']}/metadata"
    assert client.get(path, **header).status_code == 200
    assert client.get(path, HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_proxy_grants_a_new_share_at_once_and_drops_revoked_access_after_the_ttl(orthanc, ct_files, user_factory,
                                                                               api_client, settings):
    from django.core.cache import caches

    from portal.studies.models import Study, StudyAccess
    from portal.studies.services import study_share

    owner, colleague = user_factory("clinician"), user_factory("clinician")
    outcome = upload_paths(owner, ct_files[:1])
    path = f"/dicomweb/studies/{outcome.stored[0]['study_uid']}/series/{outcome.stored[0]['series_uid']}/metadata"
    client = api_client(colleague)
    assert client.get(path).status_code == 404  # a denial is not remembered...
    study_share(actor=owner, study=Study.objects.get(study_uid=outcome.stored[0]["study_uid"]), user=colleague)
    assert client.get(path).status_code == 200  # ...so the share works on the next request
    StudyAccess.objects.filter(user=colleague).delete()
    assert client.get(path).status_code == 200  # the grant is remembered for DICOMWEB_PROXY_ACCESS_TTL
    caches["local"].clear()  # what the TTL's expiry does
    assert client.get(path).status_code == 404
    settings.DICOMWEB_PROXY_ACCESS_TTL = 0
    study_share(actor=owner, study=Study.objects.get(study_uid=outcome.stored[0]["study_uid"]), user=colleague)
    assert client.get(path).status_code == 200
    StudyAccess.objects.filter(user=colleague).delete()
    assert client.get(path).status_code == 404  # TTL 0: every request is checked


def test_proxy_remembers_the_caller_for_the_ttl_only(orthanc, ct_files, user_factory, settings):
    from django.core.cache import caches
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, ct_files[:1])
    path = f"/dicomweb/studies/{outcome.stored[0]['study_uid']}/series/{outcome.stored[0]['series_uid']}/metadata"
    token = Token.objects.create(user=clinician)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(path).status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(path).status_code == 200  # a failed lookup was not remembered
    token.delete()
    assert client.get(path).status_code == 200  # remembered for DICOMWEB_PROXY_ACCESS_TTL
    caches["local"].clear()  # what the TTL's expiry does
    assert client.get(path).status_code == 401
    settings.DICOMWEB_PROXY_ACCESS_TTL = 0
    session = APIClient()
    session.force_login(clinician)
    assert session.get(path).status_code == 200
    session.logout()
    assert session.get(path).status_code == 401  # TTL 0: signing out takes effect at once


def test_proxy_answers_503_with_a_reason_when_the_pacs_is_down(orthanc, ct_files, user_factory, api_client, settings):
    from portal.orthanc import free_port

    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, ct_files[:1])
    settings.DICOMWEB_URL = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    response = api_client(clinician).get(f"/dicomweb/studies/{outcome.stored[0]['study_uid']}/metadata")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "unreachable" in response.json()["detail"]
