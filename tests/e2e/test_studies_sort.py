"""The studies list sorts in the browser; the choice is kept in the address, so a reload or a shared link keeps it."""

import pytest

from portal.studies.models import Patient, Study
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_tampering_suspected_first(live_server, user_factory, page):
    for i, (patient, verdict, score) in enumerate([("p-fm", "FM", 0.7), ("p-tb", "TB", 0.99), ("p-fb", "FB", 0.95)]):
        name = "Doe^Jane^A" if i == 1 else ""
        Study.objects.create(study_uid=f"1.2.826.0.1.3680043.10.8.{i}", verdict=verdict, verdict_score=score,
                             patient=Patient.objects.create(patient_id=patient, patient_name=name))
    page.goto(f"{live_server.url}/studies")
    log_in(page, user_factory("admin").username)
    rows = page.get_by_test_id("study-row")
    rows.first.wait_for()

    def order() -> list[str]:
        return [rows.nth(i).get_attribute("data-study-uid")[-1] for i in range(rows.count())]

    assert order() == ["2", "1", "0"]  # newest upload first
    names = [rows.nth(i).get_by_test_id("open-study").inner_text() for i in range(3)]
    assert names == ["p-fb", "Doe, Jane A", "p-fm"]  # a DICOM person name as people write it
    page.get_by_test_id("filter-ordering").select_option("suspicion")
    page.wait_for_url("**ordering=suspicion**")
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=study-row]')]"
                           ".map((row) => row.dataset.studyUid.slice(-1)).join() === '2,0,1'")
    assert order() == ["2", "0", "1"]  # FB 0.95, FM 0.70, then the genuine study
    page.reload()
    rows.first.wait_for()
    assert page.get_by_test_id("filter-ordering").input_value() == "suspicion" and order() == ["2", "0", "1"]
