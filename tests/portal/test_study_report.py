"""The study's tamper report (PDF): the verdict in words, the most suspicious locations with their slices
from the PACS under the heatmap, the labels, whether the PACS still holds the images as signed; the same
records give the same bytes."""

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from detection.services import run_scoring_job
from portal.accounts.models import AuditEvent
from portal.studies.models import StudyAccess
from tests.claims.test_provenance_mismatch import _delete_from_pacs, _tampered
from tests.conftest import fresh_copies, pdf_text, upload_paths

pytestmark = pytest.mark.django_db


def test_study_report_pdf(orthanc, ct_files, tmp_path, user_factory, api_client):
    from annotations.measurements import measurement_create
    from annotations.services import label_create

    owner = user_factory("clinician")
    outcome = upload_paths(owner, fresh_copies(ct_files[45:50], tmp_path))
    job = run_scoring_job(job_id=outcome.jobs[0].pk)
    series, study = job.series, job.series.study
    label_create(user=user_factory("expert"), series=series, slice_index=2, x=200, y=220, label_class="FM")
    measured = measurement_create(user=owner, series=series, points=[[190, 210], [210, 235]],
                                  sop_instance_uid=series.instances.get(slice_index=2).sop_instance_uid)
    client = api_client(owner)
    url = f"/api/studies/{study.study_uid}/report.pdf"

    first = client.get(url)
    assert first.status_code == 200 and first["Content-Type"] == "application/pdf"
    assert first.content.startswith(b"%PDF") and client.get(url).content == first.content  # deterministic
    text = pdf_text(first.content)
    assert b"Tamper detection report" in text and series.series_uid.encode() in text
    verdict = {"TB": rb"no tampering found \(true benign\)", "TM": rb"no tampering found \(true malignant\)",
               "FB": b"a real tumour removed", "FM": b"a fake tumour injected"}[job.verdict]  # PDF escapes ( )
    assert verdict in text and b"FM 1" in text  # the expert's label
    assert (rf"slice 3: {measured.length_mm:.1f} mm \(190, 210\)-\(210, 235\) by {owner.username}".encode()
            in text)  # the viewer's measurement
    assert first.content.count(b"/Subtype /Image") >= 1  # at least one slice figure
    assert AuditEvent.objects.filter(action="study.report_pdf", object_id=str(study.pk)).count() == 2
    assert b"Integrity: all 5 images in the PACS match what the portal signed at upload" in text
    assert b"Same images elsewhere: no other study the requester may read holds any of these images." in text

    # An image changed inside the PACS: the next report says so, with its slice.
    tampered = series.instances.get(slice_index=3)
    path = next(p for p in tmp_path.glob("*.dcm") if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
                == tampered.sop_instance_uid)
    _delete_from_pacs(orthanc, tampered.sop_instance_uid)
    DICOMwebClient(orthanc.dicomweb_url).store_instances([_tampered(path)])
    text = pdf_text(client.get(url).content)
    assert b"Integrity: 1 changed in the PACS, 0 missing, 0 unverifiable, of 5 images" in text
    assert b"- changed: slice 4: the PACS copy of " + tampered.sop_instance_uid.encode() in text
    annotator = user_factory("annotator")
    StudyAccess.objects.create(study=study, user=annotator, kind=StudyAccess.Kind.ASSIGN)
    for_annotator = pdf_text(api_client(annotator).get(url).content)
    assert b"Integrity" not in for_annotator and b"Same images" not in for_annotator  # they read no provenance
    assert api_client(user_factory("clinician")).get(url).status_code == 404
    assert api_client(user_factory("insurer")).get(url).status_code == 403
