"""Gaps in a series' slice positions: missing slices are named, with where and about how many."""

import uuid

import pytest

from detection.ml.geometry import SliceGap, slice_gaps
from portal.studies.models import Instance, Patient, Series, Study
from portal.studies.report import series_rows


def test_gaps_are_steps_well_over_the_usual_one():
    zs = [-300.0, -297.0, -294.0, -282.0, -279.0, -276.0, -273.0, -270.0]  # three slices missing after index 2
    assert slice_gaps(zs) == (3.0, [SliceGap(after_index=2, z_from=-294.0, z_to=-282.0, missing=3)])
    assert slice_gaps(list(reversed(zs)))[1] == [SliceGap(after_index=4, z_from=-282.0, z_to=-294.0, missing=3)]
    assert slice_gaps([0.0, 2.5, 5.0, 7.5, 10.0]) == (2.5, [])  # even: nothing missing
    assert slice_gaps([0.0, 2.5, 5.0, 8.0])[1] == []  # 3.0 for 2.5 is jitter, not a missing slice (< 1.5x)
    assert slice_gaps([0.0, 3.0, 6.0, 10.5])[1] == []  # 1.5x exactly: not yet
    assert slice_gaps([0.0, 3.0, 6.0, 10.6])[1] == [SliceGap(2, 6.0, 10.6, 1)]  # just over: one slice missing
    assert slice_gaps([0.0, 3.0]) == (None, [])  # too few to know the usual step
    assert slice_gaps([0.0, None, 6.0, 9.0]) == (None, [])  # a slice without a position: no claim
    assert slice_gaps([5.0, 5.0, 5.0]) == (None, [])  # one position repeated (e.g. a time series)


@pytest.mark.django_db
def test_series_detail_lists_its_gaps(user_factory, api_client):
    owner = user_factory("clinician")
    study = Study.objects.create(study_uid=f"2.25.{uuid.uuid4().int}", uploaded_by=owner,
                                 patient=Patient.objects.create(patient_id="GAPS-1"))  # fmt: skip
    series = Series.objects.create(series_uid=f"2.25.{uuid.uuid4().int}", study=study, modality="CT")
    zs = [0.0, 3.0, 6.0, 9.0, 30.0, 33.0, 36.0]  # six slices missing between 9 and 30 mm
    Instance.objects.bulk_create([
        Instance(sop_instance_uid=f"2.25.{uuid.uuid4().int}", series=series, slice_index=i, z=z, rows=512, columns=512)
        for i, z in enumerate(zs)
    ])  # fmt: skip
    body = api_client(owner).get(f"/api/series/{series.series_uid}").json()
    assert body["slice_spacing"] == {"usual_step_mm": 3.0,
                                     "gaps": [{"after_index": 3, "z_from": 9.0, "z_to": 30.0, "missing": 6}]}
    assert body["missing_slices"] == 6
    [brief] = api_client(owner).get(f"/api/studies/{study.study_uid}").json()["series"]
    assert brief["missing_slices"] == 6
    # and the study's PDF report says so beside the series' verdict
    rows = dict(series_rows(series, None, None))
    assert rows["Missing slices"] == ("about 6 in 1 gap(s) of the usual 3 mm step: after slice 4 (z 9.0 to 30.0 mm, "
                                      "~6). Scores next to a gap are unreliable.")  # fmt: skip
