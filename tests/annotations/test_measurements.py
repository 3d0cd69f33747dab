"""Distances measured in the viewer are kept with the study: the portal computes each length from the pixel
spacing indexed at upload, everyone who may read the series sees them, only the author (or an admin) changes
them."""

import math

import pydicom
import pytest

from portal.accounts.models import AuditEvent
from portal.studies.models import Instance, StudyAccess
from tests.conftest import fresh_copies, upload_paths

pytestmark = pytest.mark.django_db


def test_a_measurement_on_a_real_ct_slice_reads_its_length_from_the_dicom_pixel_spacing(
        orthanc, ct_files, tmp_path, user_factory, api_client):  # fmt: skip
    clinician = user_factory("clinician")
    outcome = upload_paths(clinician, fresh_copies(ct_files[40:42], tmp_path))
    series_uid, sop = outcome.stored[0]["series_uid"], outcome.stored[0]["sop_instance_uid"]
    row_mm, column_mm = (float(v) for v in pydicom.dcmread(ct_files[40], stop_before_pixels=True).PixelSpacing)
    url = f"/api/series/{series_uid}/measurements"
    client = api_client(clinician)

    created = client.post(url, {"sop_instance_uid": sop, "points": [[100, 200], [130, 240]]}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["length_mm"] == pytest.approx(math.hypot(30 * column_mm, 40 * row_mm))
    assert body["slice_index"] == Instance.objects.get(sop_instance_uid=sop).slice_index
    assert (body["author"], body["is_mine"]) == (clinician.username, True)

    # An annotator the study is assigned to sees it (not theirs to change); one it is not assigned to does not.
    annotator = user_factory("annotator")
    StudyAccess.objects.create(study=Instance.objects.get(sop_instance_uid=sop).series.study, user=annotator,
                               kind=StudyAccess.Kind.ASSIGN)  # fmt: skip
    [seen] = api_client(annotator).get(url).json()
    assert (seen["id"], seen["is_mine"], seen["points"]) == (body["id"], False, [[100.0, 200.0], [130.0, 240.0]])
    detail = f"/api/measurements/{body['id']}"
    assert api_client(annotator).delete(detail).status_code == 403
    assert api_client(annotator).patch(detail, {"points": [[0, 0], [1, 1]]}, format="json").status_code == 403
    assert api_client(user_factory("annotator")).get(url).status_code == 404
    assert api_client(user_factory("insurer")).get(url).status_code == 403

    moved = client.patch(detail, {"points": [[100, 200], [100, 260]]}, format="json")
    assert moved.json()["length_mm"] == pytest.approx(60 * row_mm)
    assert client.delete(detail).status_code == 204
    assert client.get(url).json() == []
    actions = list(AuditEvent.objects.filter(object_type="Measurement", object_id=str(body["id"]))
                   .order_by("pk").values_list("action", flat=True))  # fmt: skip
    assert actions == ["measurement.create", "measurement.update", "measurement.delete"]


def test_a_bad_measurement_is_refused_with_the_reason(series_factory, user_factory, api_client):
    clinician = user_factory("clinician")
    series = series_factory(uploaded_by=clinician, n_slices=2)
    sop = series.instances.first().sop_instance_uid
    url = f"/api/series/{series.series_uid}/measurements"
    client = api_client(clinician)

    def refused(payload) -> dict:
        response = client.post(url, payload, format="json")
        assert response.status_code == 400, response.json()
        return response.json()

    assert "must lie on the image (512 × 512 pixels)" in str(refused({"sop_instance_uid": sop,
                                                                     "points": [[10, 10], [600, 10]]}))
    assert "no such image in this series" in str(refused({"sop_instance_uid": "1.2.3", "points": [[1, 1], [2, 2]]}))
    assert "points" in refused({"sop_instance_uid": sop, "points": [[1, 1]]})
    assert "points" in refused({"sop_instance_uid": sop, "points": [[1, 1], ["a", 2]]})
    # Without a pixel spacing the portal keeps the points and gives no size rather than a wrong one.
    kept = client.post(url, {"sop_instance_uid": sop, "points": [[1, 1], [5, 4]]}, format="json").json()
    assert kept["length_mm"] is None
