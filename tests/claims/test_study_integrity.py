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
