"""A study reused with slices changed: the portal finds the earlier upload of the same images by their signed
pixel hashes and names the slices that differ; only studies the asker may read are named."""

import pydicom
import pytest

from portal.studies.models import Instance, StudyAccess
from tests.claims.test_provenance_mismatch import _tampered
from tests.conftest import fresh_copies, pdf_text, upload_paths

pytestmark = pytest.mark.django_db


def test_a_copy_with_changed_slices_is_found_and_the_changes_located(orthanc, ct_files, tmp_path, user_factory,
                                                                     api_client):  # fmt: skip
    by_z = sorted(ct_files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    clinician = user_factory("clinician")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    original = upload_paths(clinician, fresh_copies(by_z[40:46], tmp_path / "a", patient_id="PATIENT-A"))
    # The same scan under another patient, with slices 2 and 3 (z order) changed: a reused, tampered scan.
    reused = fresh_copies(by_z[40:46], tmp_path / "b", patient_id="PATIENT-B")
    for path in reused[2:4]:
        _tampered(path).save_as(path, enforce_file_format=True)
    copy = upload_paths(clinician, reused)
    original_uid, copy_uid = original.stored[0]["study_uid"], copy.stored[0]["study_uid"]
    client = api_client(clinician)

    [found] = client.get(f"/api/provenance/studies/{copy_uid}/copies").json()
    assert (found["study_uid"], found["patient_id"]) == (original_uid, "PATIENT-A")
    assert (found["shared_images"], found["images"]) == (4, 6)
    assert found["differing"] == [{"series_uid": copy.stored[0]["series_uid"], "slices": [[2, 3]]}]
    [back] = client.get(f"/api/provenance/studies/{original_uid}/copies").json()  # and the other way round
    assert back["study_uid"] == copy_uid and back["differing"][0]["slices"] == [[2, 3]]

    # Slice by slice, for the viewer's comparison: identical images by hash, the changed ones by position.
    copy_series = copy.stored[0]["series_uid"]
    paired = client.get(f"/api/provenance/series/{copy_series}/copies/{original_uid}").json()
    original_sops = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in (tmp_path / "a").iterdir()]
    by_index = {pair["slice_index"]: pair for pair in paired["pairs"]}
    assert paired["other_series_uid"] == original.stored[0]["series_uid"] and sorted(by_index) == list(range(6))
    assert [by_index[i]["identical"] for i in range(6)] == [True, True, False, False, True, True]
    assert sorted(pair["other_sop_instance_uid"] for pair in paired["pairs"]) == sorted(original_sops)
    z_of = dict(Instance.objects.values_list("sop_instance_uid", "z"))
    assert all(z_of[p["sop_instance_uid"]] == z_of[p["other_sop_instance_uid"]] for p in paired["pairs"])

    # The copy's PDF report says it too.
    text = pdf_text(client.get(f"/api/studies/{copy_uid}/report.pdf").content)
    assert b"Same images elsewhere: 4 of 6 images are pixel for pixel" in text  # the PDF wraps long lines
    assert original_uid.encode() in text and b"PATIENT-A" in text and rb"differ at slice\(s\) 3-4." in text
    # With a figure of the slice that differs most, beside the original's and their difference.
    def changed(path) -> int:
        a, b = pydicom.dcmread(path), pydicom.dcmread(tmp_path / "a" / path.name)
        hu = [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in (a, b)]
        return int((abs(hu[0] - hu[1]) >= 10).sum())

    counts = [changed(path) for path in reused[2:4]]  # slices 2 and 3 (z order = slice order)
    most = max(range(2), key=lambda i: counts[i])
    assert f"Slice {most + 3} of this study \\(left\\)".encode() in text
    assert f"{counts[most]} pixels differ by 10 HU or".encode() in text

    # Someone who may read the copy but not the original learns nothing about it.
    colleague = user_factory("clinician")
    StudyAccess.objects.create(study=copy.jobs[0].series.study, user=colleague, kind=StudyAccess.Kind.SHARE)
    assert api_client(colleague).get(f"/api/provenance/studies/{copy_uid}/copies").json() == []
    assert api_client(user_factory("annotator")).get(f"/api/provenance/studies/{copy_uid}/copies").status_code == 403
    assert api_client(colleague).get(f"/api/provenance/studies/{original_uid}/copies").status_code == 404
    assert api_client(colleague).get(f"/api/provenance/series/{copy_series}/copies/{original_uid}").status_code == 404


@pytest.mark.django_db(transaction=True)  # the check runs when the scoring transaction commits
def test_images_reused_under_another_patient_are_reported_once(orthanc, ct_files, tmp_path, user_factory,
                                                               settings):  # fmt: skip
    from django.core import mail

    from portal.accounts.models import AuditEvent
    from portal.claims.copies import send_reuse_alert

    settings.TAMPER_ALERT_EMAILS, settings.PORTAL_URL = ["security@example.org"], "https://portal.example.org"
    by_z = sorted(ct_files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    clinician = user_factory("clinician")
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()

    def reuse_mails() -> list:
        return [m for m in mail.outbox if m.subject.startswith("Images reused under another patient")]

    first = upload_paths(clinician, fresh_copies(by_z[30:34], tmp_path / "a", patient_id="PATIENT-A"))
    again = upload_paths(clinician, fresh_copies(by_z[30:34], tmp_path / "b", patient_id="PATIENT-A"))
    assert reuse_mails() == []  # the same patient's images exported twice: not reuse
    other = upload_paths(clinician, fresh_copies(by_z[30:34], tmp_path / "c", patient_id="PATIENT-B"))
    [message] = reuse_mails()
    other_uid = other.stored[0]["study_uid"]
    assert message.to == ["security@example.org"]
    assert f"https://portal.example.org/studies/{other_uid}" in message.body
    for earlier in (first, again):
        assert f"4 of its 4 images are in https://portal.example.org/studies/{earlier.stored[0]['study_uid']}" \
            in message.body
    assert "PATIENT-A" not in message.body and "PATIENT-B" not in message.body
    assert AuditEvent.objects.filter(action="study.image_reuse").count() == 2
    study = other.jobs[0].series.study
    assert send_reuse_alert(study.pk) == 0 and len(reuse_mails()) == 1  # told once per pair of studies,
    assert send_reuse_alert(first.jobs[0].series.study.pk) == 0  # whichever of the two is checked


def _reuse_mails() -> list:
    from django.core import mail

    return [m for m in mail.outbox if m.subject.startswith("Images reused under another patient")]


@pytest.mark.django_db(transaction=True)  # the check is queued when the upload's transaction commits
def test_a_reused_series_the_detector_does_not_score_is_reported(orthanc, ct_files, tmp_path, user_factory,
                                                                  settings):  # fmt: skip
    settings.TAMPER_ALERT_EMAILS = ["security@example.org"]
    clinician = user_factory("clinician")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    upload_paths(clinician, fresh_copies(ct_files[:4], tmp_path / "a", patient_id="PATIENT-A"))
    copies = fresh_copies(ct_files[:4], tmp_path / "b", patient_id="PATIENT-B")
    for path in copies:  # the same pixels filed as another modality, which the detector leaves alone
        ds = pydicom.dcmread(path)
        ds.Modality = "MR"
        ds.save_as(path, enforce_file_format=True)
    outcome = upload_paths(clinician, copies)
    assert outcome.jobs == []  # not scored
    [message] = _reuse_mails()
    assert f"/studies/{outcome.stored[0]['study_uid']}" in message.body


@pytest.mark.django_db(transaction=True)  # two real connections, each in its own transaction
def test_two_workers_checking_a_reused_pair_at_once_send_one_alert(orthanc, ct_files, tmp_path, user_factory,
                                                                    settings, monkeypatch):  # fmt: skip
    import contextlib
    import threading

    from django.db import connection

    from portal.claims import copies, receivers
    from portal.studies.models import Study
    from portal.studies.signals import upload_stored

    settings.TAMPER_ALERT_EMAILS = ["security@example.org"]
    clinician = user_factory("clinician")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    upload_stored.disconnect(dispatch_uid="claims.image_reuse")  # the two checks below are the ones racing
    try:
        for name, patient in (("a", "PATIENT-A"), ("b", "PATIENT-B")):
            upload_paths(clinician, fresh_copies(ct_files[:4], tmp_path / name, patient_id=patient))
    finally:
        upload_stored.connect(receivers.check_image_reuse, dispatch_uid="claims.image_reuse")
    assert _reuse_mails() == []
    # Both checks get as far as sending before either goes on, as two workers would without the pair's row:
    # the barrier lets them through together, or times out when one of them is (rightly) held back.
    both_sending = threading.Barrier(2, timeout=3)
    send_mail = copies.send_mail

    def send_when_both_are_sending(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_sending.wait()
        return send_mail(*args, **kwargs)

    monkeypatch.setattr(copies, "send_mail", send_when_both_are_sending)
    results: list[int] = []

    def check(study_id: int) -> None:
        try:
            results.append(copies.send_reuse_alert(study_id))
        finally:
            connection.close()

    workers = [threading.Thread(target=check, args=(study.pk,)) for study in Study.objects.order_by("pk")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == [0, 1] and len(_reuse_mails()) == 1
    assert copies.ReuseAlert.objects.count() == 1
