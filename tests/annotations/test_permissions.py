"""Role matrix: every endpoint, every role (annotator, expert, admin, clinician, insurer, anonymous)."""

import pytest

from annotations.models import Label
from annotations.services import label_create, queue_build
from detection.models import ModelVersion

ROLES = ["annotator", "expert", "admin", "clinician", "insurer", "anonymous"]


@pytest.fixture
def world(user_factory, series_factory, scored_job):
    users = {r: user_factory(r) for r in ROLES if r != "anonymous"}
    users["anonymous"] = None
    series = series_factory(uploaded_by=users["clinician"], shared_with=[users["annotator"]])
    job = scored_job(series, [(1, 100, 100), (2, 200, 200), (3, 300, 300)])
    queue_build(job=job, strategy="entropy", batch_size=3)
    label = label_create(user=users["expert"], series=series, slice_index=5, x=10, y=10, label_class="TM")
    version = ModelVersion.objects.create(name="m:1", arch="smallcnn", status=ModelVersion.Status.RETIRED,
                                          trained=True)  # fmt: skip
    return users, series, label, version


def status_of(api_client, user, method, url, data=None):
    client = api_client(user)
    return getattr(client, method)(url, data or {}, format="json").status_code


ALLOWED = {
    # (method, url-template): roles that get a 2xx
    ("get", "/api/labels?series={series}"): {"annotator", "expert", "admin", "clinician"},
    ("post", "/api/labels"): {"annotator", "expert", "admin"},
    ("get", "/api/labels/{label}"): {"annotator", "expert", "admin", "clinician"},
    ("get", "/api/labels/{label}/history"): {"annotator", "expert", "admin", "clinician"},
    ("patch", "/api/labels/{label}"): {"expert", "admin"},  # author (expert) or admin with a reason
    ("post", "/api/labels/{label}/restore"): {"expert", "admin"},  # likewise (a live label: nothing changes)
    ("get", "/api/studies/{study}/labels.csv"): {"annotator", "expert", "admin", "clinician"},
    ("post", "/api/queue/next"): {"annotator", "expert", "admin"},
    ("get", "/api/queue"): {"annotator", "expert", "admin"},
    ("get", "/api/queue/strategies"): {"annotator", "expert", "admin"},
    ("get", "/api/queue/summary"): {"annotator", "expert", "admin"},
    ("post", "/api/queue/rebuild"): {"expert", "admin"},
    ("get", "/api/adjudications"): {"expert", "admin"},
    ("get", "/api/labels/agreement"): {"expert", "admin"},
    ("post", "/api/labels/import"): {"expert", "admin"},
    ("get", "/api/retrain"): {"expert", "admin"},
    ("get", "/api/models"): {"expert", "admin"},
    ("get", "/api/models/{version}"): {"expert", "admin"},
    ("get", "/api/models/single-image"): {"expert", "admin"},
    ("get", "/api/models/stale-series"): {"expert", "admin"},
    ("post", "/api/models/stale-series"): {"admin"},
    ("post", "/api/models/{version}/rollback"): {"admin"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role, world, api_client):
    users, series, label, version = world
    fmt = {"series": series.series_uid, "study": series.study.study_uid, "label": label.pk, "version": version.pk}
    bodies = {
        "/api/labels": {"series_uid": series.series_uid, "slice_index": 1, "x": 5, "y": 5, "label_class": "TB"},
        "/api/labels/{label}": {"comment": "checked", "reason": "second look"},
        "/api/labels/{label}/restore": {"reason": "second look"},
        "/api/queue/rebuild": {"series_uid": series.series_uid, "strategy": "margin"},
        "/api/labels/import": {"csv": "type,uuid,slice,x,y\nTB,{series},0,0,0\n".format(**fmt)},
    }
    wrong = []
    for (method, template), allowed in ALLOWED.items():
        code = status_of(api_client, users[role], method, template.format(**fmt), bodies.get(template))
        ok = 200 <= code < 300
        if ok != (role in allowed):
            wrong.append(f"{method.upper()} {template}: {code}")
        if role == "anonymous":
            assert code in (401, 403)
    assert not wrong, f"{role}: {wrong}"


@pytest.mark.django_db
def test_clinician_reads_labels_only_of_studies_they_can_see(world, user_factory, api_client):
    users, series, label, _ = world
    stranger = user_factory("clinician")
    assert api_client(stranger).get(f"/api/labels?series={series.series_uid}").json()["results"] == []
    assert api_client(stranger).get(f"/api/labels/{label.pk}").status_code == 404
    assert api_client(stranger).get(f"/api/studies/{series.study.study_uid}/labels.csv").status_code == 404
    rows = api_client(users["clinician"]).get(f"/api/labels?series={series.series_uid}").json()["results"]
    assert [r["id"] for r in rows] == [label.pk]


@pytest.mark.django_db
def test_annotator_cannot_label_or_lease_unassigned_studies(world, user_factory, api_client):
    _, series, _, _ = world
    outsider = user_factory("annotator")
    c = api_client(outsider)
    r = c.post("/api/labels", {"series_uid": series.series_uid, "slice_index": 1, "x": 1, "y": 1,
                               "label_class": "TB"}, format="json")  # fmt: skip
    assert r.status_code == 404
    assert c.post("/api/queue/next").status_code == 204
    assert Label.objects.filter(annotator=outsider).count() == 0


@pytest.mark.django_db
def test_only_admins_start_retraining(world, api_client):
    users, *_ = world
    assert api_client(users["expert"]).post("/api/retrain").status_code == 403
    assert api_client(users["annotator"]).post("/api/retrain").status_code == 403
