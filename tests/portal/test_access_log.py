"""Who opened a study: one audit record per user, study and hour, whichever way they came (study page,
viewer, DICOMweb), readable by the study's uploader and admins."""

import pytest

from portal.accounts.models import AuditEvent
from portal.studies.models import StudyAccess
from tests.conftest import fresh_copies, upload_paths

pytestmark = pytest.mark.django_db


def test_study_views_are_logged_once_per_hour_and_shown_to_the_uploader(orthanc, ct_files, tmp_path, user_factory,
                                                                        api_client):
    owner, annotator, expert = user_factory("clinician"), user_factory("annotator"), user_factory("expert")
    outcome = upload_paths(owner, fresh_copies(ct_files[:2], tmp_path))
    series = outcome.jobs[0].series
    study = series.study
    StudyAccess.objects.create(study=study, user=annotator, kind=StudyAccess.Kind.ASSIGN)
    metadata = f"/dicomweb/studies/{study.study_uid}/series/{series.series_uid}/metadata"

    reader = api_client(annotator)
    study_page = f"/api/studies/{study.study_uid}"
    for url in (study_page, study_page, f"/api/series/{series.series_uid}", metadata):
        assert reader.get(url).status_code == 200
    assert api_client(expert).get(metadata).status_code == 200
    views = AuditEvent.objects.filter(action="study.view", object_id=str(study.pk))
    assert sorted((e.actor.username, e.details["via"]) for e in views) == sorted(
        [(annotator.username, "study page"), (expert.username, "DICOMweb")])

    log = api_client(owner).get(f"/api/studies/{study.study_uid}/access")
    assert log.status_code == 200
    rows = [(r["user"], r["role"], r["action"]) for r in log.json()["results"]]
    assert (annotator.username, "annotator", "study.view") in rows and (expert.username, "expert", "study.view") in rows
    assert api_client(user_factory("admin")).get(f"/api/studies/{study.study_uid}/access").status_code == 200
    assert api_client(expert).get(f"/api/studies/{study.study_uid}/access").status_code == 403
    assert reader.get(f"/api/studies/{study.study_uid}/access").status_code == 403
    assert api_client(user_factory("clinician")).get(f"/api/studies/{study.study_uid}/access").status_code == 404
