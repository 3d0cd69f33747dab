"""The studies list sorts by upload (default), study date, patient, or tampering suspected first."""

from datetime import date

import pytest

from portal.studies.models import Patient, Study

pytestmark = pytest.mark.django_db


def test_study_list_orderings(user_factory, api_client):
    rows = [  # (patient, study date, verdict, score), uploaded in this order
        ("p3", date(2020, 1, 1), "FM", 0.70),
        ("p1", None, "TB", 0.99),
        ("p2", date(2024, 6, 1), "FB", 0.95),
        ("p4", date(2022, 3, 1), "", None),
    ]
    for i, (patient, study_date, verdict, score) in enumerate(rows):
        Study.objects.create(study_uid=f"1.2.826.0.1.3680043.10.7.{i}", study_date=study_date, verdict=verdict,
                             verdict_score=score, patient=Patient.objects.create(patient_id=patient))
    admin = api_client(user_factory("admin"))

    def patients(ordering: str = "") -> list[str]:
        url = "/api/studies" + (f"?ordering={ordering}" if ordering else "")
        return [s["patient_id"] for s in admin.get(url).json()["results"]]

    assert patients() == patients("uploaded") == ["p4", "p2", "p1", "p3"]
    assert patients("study_date") == ["p2", "p4", "p3", "p1"]  # no date last
    assert patients("patient") == ["p1", "p2", "p3", "p4"]
    assert patients("suspicion") == ["p2", "p3", "p4", "p1"]  # FB 0.95, FM 0.70, then newest upload
    assert patients("suspicion") == [s["patient_id"] for s in admin.get(
        "/api/studies?ordering=suspicion&verdict=tampered").json()["results"]] + ["p4", "p1"]
    refused = admin.get("/api/studies?ordering=size")
    assert refused.status_code == 400 and "ordering" in refused.json()
