"""The study's tamper report (PDF): the verdict in words, the most suspicious locations with their slices
from the PACS under the heatmap, the labels; the same records give the same bytes."""

import pytest

from detection.services import run_scoring_job
from portal.accounts.models import AuditEvent
from tests.conftest import fresh_copies, pdf_text, upload_paths

pytestmark = pytest.mark.django_db


def test_study_report_pdf(orthanc, ct_files, tmp_path, user_factory, api_client):
    from annotations.services import label_create

    owner = user_factory("clinician")
    outcome = upload_paths(owner, fresh_copies(ct_files[45:50], tmp_path))
    job = run_scoring_job(job_id=outcome.jobs[0].pk)
    series, study = job.series, job.series.study
    label_create(user=user_factory("expert"), series=series, slice_index=2, x=200, y=220, label_class="FM")
    client = api_client(owner)
    url = f"/api/studies/{study.study_uid}/report.pdf"

    first = client.get(url)
    assert first.status_code == 200 and first["Content-Type"] == "application/pdf"
    assert first.content.startswith(b"%PDF") and client.get(url).content == first.content  # deterministic
    text = pdf_text(first.content)
    assert b"Tamper detection report" in text and series.series_uid.encode() in text
    verdict = {"TB": b"no tampering found (true benign)", "TM": b"no tampering found (true malignant)",
               "FB": b"a real tumour removed", "FM": b"a fake tumour injected"}[job.verdict]
    assert verdict in text and b"FM 1" in text  # the expert's label
    assert first.content.count(b"/Subtype /Image") >= 1  # at least one slice figure
    assert AuditEvent.objects.filter(action="study.report_pdf", object_id=str(study.pk)).count() == 2
    assert api_client(user_factory("clinician")).get(url).status_code == 404
    assert api_client(user_factory("insurer")).get(url).status_code == 403
