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


def _queries(client, path: str) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        status = client.get(path).status_code
    return status, len(queries)


def test_proxy_grants_a_new_share_at_once_and_forgets_revoked_access_at_once(orthanc, ct_files, user_factory,
                                                                            api_client):
    from portal.studies.models import Study, StudyAccess
    from portal.studies.services import study_share

    owner, colleague = user_factory("clinician"), user_factory("clinician")
    outcome = upload_paths(owner, ct_files[:1])
    path = f"/dicomweb/studies/{outcome.stored[0]['study_uid']}/series/{outcome.stored[0]['series_uid']}/metadata"
    study = Study.objects.get(study_uid=outcome.stored[0]["study_uid"])
    client = api_client(colleague)
    assert client.get(path).status_code == 404  # a denial is not remembered...
    study_share(actor=owner, study=study, user=colleague)
    first, second = _queries(client, path), _queries(client, path)
    assert first[0] == second[0] == 200  # ...so the share works on the next request
    assert second[1] < first[1]  # and the grant is remembered (DICOMWEB_PROXY_ACCESS_TTL)
    StudyAccess.objects.filter(user=colleague).delete()
    assert client.get(path).status_code == 404  # unsharing is not: the access epoch changed

    study_share(actor=owner, study=study, user=colleague)
    assert client.get(path).status_code == 200
    colleague.groups.clear()  # no role any more
    assert client.get(path).status_code == 404
    owner_client = api_client(owner)
    assert owner_client.get(path).status_code == 200
    owner.is_active = False
    owner.save()
    assert owner_client.get(path).status_code == 401  # a deactivated account: its session no longer signs in


def test_proxy_forgets_a_deleted_token_and_a_sign_out_at_once(orthanc, ct_files, user_factory, settings):
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
    first, second = _queries(client, path), _queries(client, path)
    assert first[0] == second[0] == 200  # a failed lookup was not remembered
    assert second[1] < first[1]  # the caller is remembered
    token.delete()
    assert client.get(path).status_code == 401
    session = APIClient()
    session.force_login(clinician)
    assert session.get(path).status_code == 200
    session.logout()
    assert session.get(path).status_code == 401
    settings.DICOMWEB_PROXY_ACCESS_TTL = 0  # nothing remembered: every request is checked
    session.force_login(clinician)
    assert _queries(session, path)[1] == _queries(session, path)[1]


def test_proxy_answers_503_with_a_reason_when_the_pacs_is_down(orthanc, ct_files, user_factory, api_client, settings):
    from portal.orthanc import free_port

    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, ct_files[:1])
    settings.DICOMWEB_URL = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    response = api_client(clinician).get(f"/dicomweb/studies/{outcome.stored[0]['study_uid']}/metadata")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert "unreachable" in response.json()["detail"]
