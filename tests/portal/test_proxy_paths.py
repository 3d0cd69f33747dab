"""The WADO-RS proxy checks the study named in the path, so the path must not be able to name another one:
Orthanc resolves "..", also percent-encoded, after the portal's check."""

import pytest

from tests.conftest import fresh_copies, upload_paths

pytestmark = pytest.mark.django_db


def test_a_path_cannot_climb_from_a_readable_study_into_another(orthanc, ct_files, user_factory, api_client,
                                                                tmp_path):  # fmt: skip
    mine, theirs = user_factory("clinician"), user_factory("clinician")
    own = upload_paths(mine, ct_files[:1]).stored[0]
    other = upload_paths(theirs, fresh_copies(ct_files[1:2], tmp_path, patient_id="OTHER-PATIENT")).stored[0]
    client = api_client(mine)
    assert client.get(f"/dicomweb/studies/{own['study_uid']}/series").status_code == 200
    assert client.get(f"/dicomweb/studies/{other['study_uid']}/series").status_code == 404

    for climb in ["..", "%2e%2e", "%252e%252e", ".%2e", "%2E%2E"]:
        path = f"/dicomweb/studies/{own['study_uid']}/{climb}/{other['study_uid']}/series"
        response = client.get(path)
        assert response.status_code in (400, 404), (climb, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert other["series_uid"].encode() not in body, climb


def test_a_query_cannot_widen_a_study_scoped_search(orthanc, ct_files, user_factory, api_client, tmp_path):
    mine, theirs = user_factory("clinician"), user_factory("clinician")
    own = upload_paths(mine, ct_files[:1]).stored[0]
    other = upload_paths(theirs, fresh_copies(ct_files[1:2], tmp_path, patient_id="OTHER-PATIENT")).stored[0]
    client = api_client(mine)
    for query in [f"StudyInstanceUID={other['study_uid']}", f"0020000D={other['study_uid']}",
                  f"SeriesInstanceUID={other['series_uid']}"]:
        response = client.get(f"/dicomweb/studies/{own['study_uid']}/series?{query}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert other["series_uid"].encode() not in body, (query, response.status_code)
