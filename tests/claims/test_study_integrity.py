"""Study integrity on the real Orthanc: every image as signed at upload; then one changed inside the PACS (the
CT-GAN attack) and one deleted there, each named with its slice and the reason; who may ask; audited."""

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from portal.accounts.models import AuditEvent
from tests.claims.test_provenance_mismatch import _delete_from_pacs, _tampered
from tests.conftest import fresh_copies, upload_paths

pytestmark = pytest.mark.django_db


def test_integrity_names_images_changed_or_lost_in_the_pacs(orthanc, ct_files, tmp_path, user_factory, api_client):
    owner = user_factory("clinician")
    copies = fresh_copies(ct_files[45:49], tmp_path)
    outcome = upload_paths(owner, copies)
    study_uid = outcome.stored[0]["study_uid"]
    url = f"/api/provenance/studies/{study_uid}/integrity"
    client = api_client(owner)
    clean = client.post(url).json()
    assert clean["ok"] and (clean["checked"], clean["matching"]) == (4, 4), clean

    by_sop = {row.sop_instance_uid: row.slice_index for row in outcome.jobs[0].series.instances.all()}
    changed, lost = (pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in copies[1:3])
    _delete_from_pacs(orthanc, changed)
    DICOMwebClient(orthanc.dicomweb_url).store_instances([_tampered(copies[1])])  # written to the PACS directly
    _delete_from_pacs(orthanc, lost)

    report = client.post(url).json()
    assert not report["ok"] and (report["checked"], report["matching"]) == (4, 2)
    [found] = report["changed"]
    assert (found["sop_instance_uid"], found["slice_index"]) == (changed, by_sop[changed])
    assert "no upload signed by the portal has these pixels, so they were changed in the PACS" in found["reason"]
    [gone] = report["missing"]
    assert gone["sop_instance_uid"] == lost and gone["reason"] == "the PACS no longer holds this instance"
    event = AuditEvent.objects.filter(action="study.integrity_check").order_by("-created").first()
    assert event.actor == owner and event.details == {"checked": 4, "changed": 1, "missing": 1, "unverifiable": 0}

    assert api_client(user_factory("clinician")).post(url).status_code == 404  # not their study
    assert api_client(user_factory("annotator")).post(url).status_code == 403
    assert api_client(user_factory("expert")).post(url).status_code == 200


def _restore_with(orthanc, path, **changes) -> None:
    """Replace an instance in the PACS by a copy whose header differs (its pixels untouched)."""
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    _delete_from_pacs(orthanc, ds.SOPInstanceUID)
    DICOMwebClient(orthanc.dicomweb_url).store_instances([ds])


def test_integrity_names_header_changes_that_alter_how_an_image_reads(orthanc, ct_files, tmp_path, user_factory,
                                                                      api_client):  # fmt: skip
    """Pixels as signed, header not: the Hounsfield conversion (checked against the signed lung-window
    rendering), the slice position (the order of the scan), the pixel spacing (a measured size) or the patient
    (against the index)."""
    owner = user_factory("clinician")
    client = api_client(owner)
    copies = fresh_copies(ct_files[60:63], tmp_path)
    study_uid = upload_paths(owner, copies).stored[0]["study_uid"]
    url = f"/api/provenance/studies/{study_uid}/integrity"
    assert client.post(url).json()["matching"] == 3

    original = pydicom.dcmread(copies[0], stop_before_pixels=True)
    _restore_with(orthanc, copies[0], RescaleIntercept=float(original.RescaleIntercept) + 100)
    moved = pydicom.dcmread(copies[1], stop_before_pixels=True).ImagePositionPatient
    _restore_with(orthanc, copies[1], ImagePositionPatient=[moved[0], moved[1], float(moved[2]) + 5])
    spacing = [float(v) for v in pydicom.dcmread(copies[2], stop_before_pixels=True).PixelSpacing]
    _restore_with(orthanc, copies[2], PixelSpacing=[spacing[0] * 1.5, spacing[1] * 1.5])
    report = client.post(url).json()
    assert report["matching"] == 0 and report["missing"] == report["unverifiable"] == []
    reasons = {row["sop_instance_uid"]: row["reason"] for row in report["changed"]}
    hu_reason = reasons[original.SOPInstanceUID]
    assert hu_reason.startswith("its pixels are as signed, but the header's conversion to Hounsfield units changed")
    assert f"RescaleIntercept {float(original.RescaleIntercept) + 100:g}" in hu_reason
    moved_reason = reasons[pydicom.dcmread(copies[1], stop_before_pixels=True).SOPInstanceUID]
    assert "its position along the scan changed" in moved_reason and "the slices' order moved" in moved_reason
    spacing_reason = reasons[pydicom.dcmread(copies[2], stop_before_pixels=True).SOPInstanceUID]
    assert f"its pixel spacing changed ({spacing[0]:g} × {spacing[1]:g} mm at upload, {spacing[0] * 1.5:g} × " \
        f"{spacing[1] * 1.5:g} now)" in spacing_reason

    single = fresh_copies(ct_files[63:64], tmp_path)  # its own study: the PACS files studies by patient
    single_uid = upload_paths(owner, single).stored[0]["study_uid"]
    _restore_with(orthanc, single[0], PatientID="SOMEONE-ELSE")
    [other] = client.post(f"/api/provenance/studies/{single_uid}/integrity").json()["changed"]
    assert other["reason"] == ("its pixels are as signed, but the header names another patient than at upload "
                               "(PatientID changed)")  # fmt: skip
    assert "SOMEONE-ELSE" not in other["reason"]  # the finding names no patient


@pytest.mark.django_db(transaction=True)  # the command checks studies in threads, each with its own connection
def test_the_nightly_command_emails_the_studies_changed_in_the_pacs(orthanc, ct_files, tmp_path, user_factory,
                                                                    settings):
    from django.core import mail
    from django.core.management import CommandError, call_command

    from portal.orthanc import free_port

    settings.TAMPER_ALERT_EMAILS, settings.PORTAL_URL = ["security@example.org"], "https://portal.example.org"
    copies = fresh_copies(ct_files[50:52], tmp_path)
    study_uid = upload_paths(user_factory("clinician"), copies).stored[0]["study_uid"]
    mail.outbox.clear()  # the upload's scoring may have sent a tamper alert
    call_command("check_integrity", "--study", study_uid)  # as signed: no error, no mail
    assert mail.outbox == []

    _delete_from_pacs(orthanc, pydicom.dcmread(copies[0], stop_before_pixels=True).SOPInstanceUID)
    DICOMwebClient(orthanc.dicomweb_url).store_instances([_tampered(copies[0])])
    with pytest.raises(CommandError) as found:
        call_command("check_integrity", "--study", study_uid)
    assert found.value.returncode == 1 and "1 address(es) emailed" in str(found.value)
    assert AuditEvent.objects.filter(action="study.integrity_check").count() == 2  # checked in a worker thread
    [message] = mail.outbox
    assert message.to == ["security@example.org"] and "1 changed, 0 missing of 2" in message.body
    assert f"https://portal.example.org/studies/{study_uid}" in message.body and "withdrawn" not in message.body

    # A withdrawn study's images stay in the PACS and are checked too; the alert says only admins open it.
    from portal.studies.models import Study
    from portal.studies.withdrawal import withdraw_study

    study = Study.objects.get(study_uid=study_uid)
    withdraw_study(actor=study.uploaded_by, study=study, reason="wrong patient")
    mail.outbox.clear()
    with pytest.raises(CommandError):
        call_command("check_integrity", "--study", study_uid)
    assert f"/studies/{study_uid} (withdrawn: only admins open it)" in mail.outbox[-1].body

    settings.DICOMWEB_URL = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    with pytest.raises(CommandError) as down:
        call_command("check_integrity", "--study", study_uid)
    assert down.value.returncode == 2 and "unreachable" in str(down.value)


def test_a_pacs_that_is_down_is_reported_at_once(orthanc, ct_files, tmp_path, user_factory, api_client, settings):
    """503 with retry, in well under a second or two (dicomweb-client's own retries used to take 30 s)."""
    import time

    from portal.orthanc import free_port

    owner = user_factory("clinician")
    study_uid = upload_paths(owner, fresh_copies(ct_files[52:53], tmp_path)).stored[0]["study_uid"]
    settings.DICOMWEB_URL = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    started = time.monotonic()
    response = api_client(owner).post(f"/api/provenance/studies/{study_uid}/integrity")
    assert response.status_code == 503 and response.json()["retry"] is True
    assert time.monotonic() - started < 5
