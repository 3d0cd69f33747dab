"""Property-based fuzzing of every API operation from the published OpenAPI schema (schemathesis): whatever an
admin sends, schema-valid or not, the portal answers with a 4xx that says what was wrong, never a 5xx.

Real objects back the path parameters (a study uploaded into the session's Orthanc, its scored series, a
label, a queue item, a claim, a share), so the requests reach the views' logic instead of stopping at 404.
Generation is derandomised: the same examples every run, so a failure reproduces. FUZZ_EXAMPLES=50 searches
harder (minutes) for a local run."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import upload_paths


def _load_schema():
    from django.core.wsgi import get_wsgi_application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    # Eager Celery would train a model inside the request; retraining has its own tests.
    return schema.exclude(method="POST", path="/api/retrain")


schema = _load_schema()


@pytest.fixture
def real_objects(orthanc, ct_files, user_factory, django_capture_on_commit_callbacks):
    from rest_framework.authtoken.models import Token

    from annotations.measurements import measurement_create
    from annotations.models import QueueItem
    from annotations.services import label_create, queue_build
    from detection.models import ModelVersion, ScoringJob
    from portal.claims.models import Claim
    from portal.claims.services import encrypted_share_create, study_share_with_insurer
    from portal.studies.models import Instance, Series

    clinician, insurer, admin = user_factory("clinician"), user_factory("insurer"), user_factory("admin")
    with django_capture_on_commit_callbacks(execute=True):  # scoring is queued on commit, run at once (eager)
        outcome = upload_paths(clinician, ct_files[45:48])
    assert len(outcome.stored) == 3, outcome.errors
    series = Series.objects.get(series_uid=outcome.stored[0]["series_uid"])
    study, instance = series.study, Instance.objects.filter(series=series).first()
    study_share_with_insurer(actor=clinician, study=study, insurer=insurer)
    job = ScoringJob.objects.filter(series=series, status=ScoringJob.Status.DONE).latest("pk")
    if not QueueItem.objects.filter(series=series).exists():
        queue_build(job=job, strategy="entropy", batch_size=3)
    label = label_create(user=admin, series=series, slice_index=1, x=100, y=100, label_class="TB")
    claim = Claim.objects.create(insurer=insurer, reference="fuzz")
    share = encrypted_share_create(actor=clinician, study=study).share
    item = QueueItem.objects.filter(series=series).first()
    measurement = measurement_create(user=admin, series=series, sop_instance_uid=instance.sop_instance_uid,
                                     points=[[10, 10], [20, 20]])  # fmt: skip
    ids = {"labels": label.pk, "measurements": measurement.pk, "queue": item.pk, "adjudications": item.pk,
           "models": ModelVersion.objects.latest("pk").pk, "jobs": job.pk,
           "uploads": str(outcome.batch.pk)}  # fmt: skip
    named = {"study_uid": study.study_uid, "series_uid": series.series_uid, "sop_uid": instance.sop_instance_uid,
             "claim_id": str(claim.pk), "share_id": str(share.pk), "slice_index": 1}  # fmt: skip
    return {"token": Token.objects.create(user=admin).key, "ids": ids, "named": named}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests go through the WSGI handler, whose request signals would close the test's open transaction
    (Django's own test client disconnects them the same way)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _real_path_parameters(case, objects) -> dict:
    params = dict(case.path_parameters or {})
    for name in params:
        if name in objects["named"]:
            params[name] = objects["named"][name]
        elif name == "id":
            params[name] = objects["ids"][case.operation.path.split("/")[2]]
    return params


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "6")), derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
def test_no_request_makes_the_api_fail_with_a_server_error(case, real_objects):
    case.path_parameters = _real_path_parameters(case, real_objects)
    case.call_and_validate(headers={"Authorization": f"Token {real_objects['token']}"},
                           checks=[not_a_server_error])  # fmt: skip
