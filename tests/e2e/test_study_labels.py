"""The study page's Labels section: an expert imports a CT-GAN table (a bad one is refused whole, with the
line), sees the count and downloads the labels as CT-GAN CSV and as DICOM SR."""

import pydicom
import pytest

from tests.conftest import upload_paths
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_expert_imports_ctgan_table_and_downloads_csv_and_sr(live_server, orthanc, ct_files, user_factory, page,
                                                             tmp_path):
    from annotations.models import Label
    from portal.studies.models import Study

    clinician, expert = user_factory("clinician"), user_factory("expert")
    outcome = upload_paths(clinician, ct_files[45:50])
    study = Study.objects.get(study_uid=outcome.stored[0]["study_uid"])
    bad, good = tmp_path / "bad.csv", tmp_path / "ctgan.csv"
    bad.write_text("type,uuid,slice,x,y\nFM,scan-7,1,100,120\nFM,scan-7,9,100,120\n")  # slice 9 of 5
    good.write_text("type,uuid,slice,x,y\nFM,scan-7,1,100,120\nFB,scan-7,3,300,260\n")

    page.goto(f"{live_server.url}/studies/{study.study_uid}")
    log_in(page, expert.username)
    page.get_by_test_id("labels-count").get_by_text("No labels on this study yet.").wait_for()
    page.get_by_test_id("labels-import-file").set_input_files(str(bad))
    page.get_by_test_id("labels-import-submit").click()
    page.get_by_test_id("labels-message").get_by_text("line 3").wait_for()
    assert "Nothing was imported" in page.get_by_test_id("labels-message").inner_text()
    assert not Label.objects.exists()

    page.get_by_test_id("labels-import-file").set_input_files(str(good))
    page.get_by_test_id("labels-import-submit").click()
    page.get_by_test_id("labels-imported").wait_for()
    page.get_by_test_id("labels-count").get_by_text("2 labels on this study.").wait_for()
    assert sorted(Label.objects.values_list("label_class", "slice_index")) == [("FB", 3), ("FM", 1)]

    with page.expect_download() as csv_download:
        page.get_by_test_id("labels-export-csv").click()
    rows = (tmp_path / "out.csv")
    csv_download.value.save_as(rows)
    lines = rows.read_text().strip().splitlines()
    assert lines[0] == "type,uuid,slice,x,y" and len(lines) == 3
    with page.expect_download() as sr_download:
        page.get_by_test_id("labels-export-sr").click()
    sr_path = tmp_path / sr_download.value.suggested_filename
    sr_download.value.save_as(sr_path)
    sr = pydicom.dcmread(sr_path)
    assert sr.Modality == "SR" and sr.StudyInstanceUID == study.study_uid
