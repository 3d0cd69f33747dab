"""`manage.py load_demo` on real services: users, the study, the insurer's share and a checked demo claim."""

import shutil

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from portal.claims.demo import DEMO_REFERENCE
from portal.claims.models import Claim
from portal.studies.models import Study, StudyAccess

pytestmark = pytest.mark.django_db


def test_load_demo_files_a_claim_that_finds_the_retouched_copy(orthanc, ct_slice_paths, tmp_path):
    for path in ct_slice_paths:
        shutil.copy(path, tmp_path / path.name)
    call_command("load_demo", ct_dir=str(tmp_path), password="demo-pass-for-test")
    call_command("load_demo", ct_dir=str(tmp_path), password="demo-pass-for-test")  # idempotent

    study = Study.objects.get()
    insurer = User.objects.get(username="demo-insurer")
    assert StudyAccess.objects.filter(study=study, user=insurer, kind=StudyAccess.Kind.SHARE).exists()
    claim = Claim.objects.get(insurer=insurer)
    assert claim.reference == DEMO_REFERENCE and list(claim.studies.all()) == [study]
    exact, retouched = claim.images.order_by("position")
    assert (exact.original_name, exact.provenance) == ("slice-export.png", "exact")
    assert (retouched.original_name, retouched.provenance, retouched.status) == \
        ("slice-retouched.png", "modified", "tampered")


def test_claims_list_summarises_each_claims_results(orthanc, ct_slice_paths, tmp_path, client):
    for path in ct_slice_paths:
        shutil.copy(path, tmp_path / path.name)
    call_command("load_demo", ct_dir=str(tmp_path), password="demo-pass-for-test")
    client.force_login(User.objects.get(username="demo-insurer"))
    page = client.get("/claims/").content.decode()
    assert 'data-status="tampered">1 tampered</span>' in page
    assert 'data-status="authentic">1 authentic</span>' in page


@pytest.mark.django_db(transaction=True)  # the uploads' scoring jobs start when their transactions commit
def test_load_demo_adds_a_tampered_copy_the_detector_flags_and_radiographs_with_a_copy(orthanc, ct_files, tmp_path):
    from django.conf import settings
    from django.core import mail

    from detection.models import CopyMoveCheck, ScoringJob
    from portal.studies.management.commands.load_demo import RADIOGRAPH_PATIENT_ID, TAMPERED_PATIENT_ID

    for path in ct_files:
        shutil.copy(path, tmp_path / path.name)
    call_command("load_demo", ct_dir=str(tmp_path), password="demo-pass-for-test")
    genuine = Study.objects.exclude(patient__patient_id__in=[TAMPERED_PATIENT_ID, RADIOGRAPH_PATIENT_ID]).get()
    tampered = Study.objects.get(patient__patient_id=TAMPERED_PATIENT_ID)
    assert genuine.verdict in ("TB", "TM") and tampered.verdict == "FM"  # scored (eagerly, in this test)
    job = ScoringJob.objects.get(series__study=tampered, status="done")
    top = job.location_scores.order_by("-tamper").first()
    assert (top.slice_index, abs(top.x - 100) < 32, abs(top.y - 248) < 32) == (81, True, True)  # seed 2026's site
    [alert] = [m for m in mail.outbox if "fake tumour injected (FM)" in m.body]  # the uploader is told, once
    [reuse] = [m for m in mail.outbox if m.subject.startswith("Images reused under another patient")]
    [copy_move] = [m for m in mail.outbox if "copy-move" in m.subject]  # the demo radiograph's copy
    assert alert.to == reuse.to == copy_move.to == ["demo-clinician@example.org"] and len(mail.outbox) == 3
    assert f"92 of its 99 images are in {settings.PORTAL_URL}/studies/{genuine.study_uid}" in reuse.body
    # The demo radiographs: not scored by the CT detector; the copy inside the first is found, the second is clean.
    check = CopyMoveCheck.objects.get(series__study__patient__patient_id=RADIOGRAPH_PATIENT_ID)
    assert (check.status, check.images_checked, [f["slice_index"] for f in check.found]) == ("done", 2, [0])
    assert Study.objects.get(patient__patient_id=RADIOGRAPH_PATIENT_ID).copy_move_images == 1
    call_command("load_demo", ct_dir=str(tmp_path), password="demo-pass-for-test")  # idempotent
    assert Study.objects.count() == 3
