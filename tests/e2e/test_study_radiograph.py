"""An X-ray series on the study page: not scored by the CT detector, but checked for a copied region, which is
named with its image (linked to the viewer) and both places."""

import pydicom
import pytest

from tests.conftest import upload_paths
from tests.detection.test_radiographs import x_ray_series
from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_study_page_names_a_copied_region_in_an_x_ray(live_server, orthanc, ct_files, tmp_path, user_factory, page):
    paths = x_ray_series(ct_files, tmp_path)
    clinician = user_factory("clinician")
    study_uid = upload_paths(clinician, paths).stored[0]["study_uid"]  # checked at once (eager, autocommit)
    page.goto(f"{live_server.url}/studies/{study_uid}")
    log_in(page, clinician.username)
    from portal.studies.models import Instance

    cloned = Instance.objects.get(sop_instance_uid=pydicom.dcmread(paths[0], stop_before_pixels=True).SOPInstanceUID)
    found = page.get_by_test_id("copy-move-found")
    assert " px at x " in found.first.inner_text(timeout=15_000)
    link = found.first.get_by_role("link")
    assert link.inner_text() == f"image {cloned.slice_index + 1}"
    assert link.get_attribute("href").endswith(f"?slice={cloned.slice_index}")
    assert page.get_by_test_id("copy-move-check").get_attribute("data-status") == "done"
