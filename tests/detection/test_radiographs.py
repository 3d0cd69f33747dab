"""Projection radiographs (X-ray, mammography), which the CT detector cannot read, are checked for a region
copied inside an image: found at both places in the image's own pixels, also when the image is large enough
to be read shrunk; an image without a copy has none; after an upload the check runs by itself, the series says
so, the study counts as tampering suspected and the uploader is emailed once; a PACS that is down leaves the
check queued for the retry."""

import numpy as np
import pydicom
import pytest

from detection.ml.copy_move_keypoints import transform_changes, transform_words
from detection.ml.preprocessing import dicom_to_hu
from detection.ml.radiograph import as_cr, check_image, display_grey
from detection.ml.simulator import copy_move_2d, copy_move_transformed_2d, simulated_radiograph
from tests.conftest import fresh_copies, pdf_text, upload_paths


def radiograph(ds: pydicom.Dataset, size: int, rng: np.random.Generator, clone: bool) -> dict | None:
    """Turn a CT slice into a 12-bit CR image of size x size (simulator.simulated_radiograph); with ``clone``,
    a region copied onto another place. Returns the copy's parameters."""
    image = simulated_radiograph(dicom_to_hu(ds), size, rng)
    params = None
    if clone:
        image, _, params = copy_move_2d(image, rng)
    as_cr(ds, image)
    return params


def x_ray_series(ct_files: list, tmp_path) -> list:
    """Two CR images of one new series, 512 px: the first with a region copied inside it, the second clean."""
    rng = np.random.default_rng(7)
    paths = fresh_copies(ct_files[40:42], tmp_path)
    for path, clone in zip(paths, (True, False), strict=True):
        ds = pydicom.dcmread(path)
        radiograph(ds, 512, rng, clone)
        ds.save_as(path, enforce_file_format=True)
    return paths


def _overlaps(box: list[int], x: int, y: int, size: int) -> bool:
    bx, by, bw, bh = box
    return bx < x + size and x < bx + bw and by < y + size and y < by + bh


def test_a_copied_region_is_found_at_both_places_in_the_image_pixels(ct_files):
    rng = np.random.default_rng(512)
    ds = pydicom.dcmread(ct_files[40])
    params = radiograph(ds, 512, rng, clone=True)
    regions = check_image(ds)
    assert regions, params
    assert _both_places(regions[0], params)
    assert display_grey(ds)[1] == 1

    clean = pydicom.dcmread(ct_files[43])
    radiograph(clean, 512, rng, clone=False)
    assert check_image(clean) == []


def test_a_large_image_is_read_shrunk_and_its_boxes_are_in_its_own_pixels(ct_files, monkeypatch):
    """Here "large" is over 512 pixels; the shift is even, so both places shrink alike (how often an odd one
    is missed: scripts/eval_radiograph_copy_move.py)."""
    from detection.ml import radiograph as module

    monkeypatch.setattr(module, "MAX_SIDE", 512)
    ds = pydicom.dcmread(ct_files[40])
    radiograph(ds, 1024, np.random.default_rng(0), clone=False)
    pixels = ds.pixel_array.copy()
    pixels[600:760, 520:680] = pixels[100:260, 200:360]  # 160 px copied 500 down, 320 right
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    assert display_grey(ds)[1] == 2
    [region] = check_image(ds)
    assert _both_places(region, {"src": [100, 200], "dst": [600, 520], "size": 160})
    assert region["shift"] == [500, 320]


def _both_places(region: dict, params: dict) -> bool:
    (sy, sx), (dy, dx), side = params["src"], params["dst"], params["size"]
    places = {_overlaps(region["first"], sx, sy, side) or _overlaps(region["first"], dx, dy, side),
              _overlaps(region["second"], sx, sy, side) or _overlaps(region["second"], dx, dy, side)}
    return places == {True}


@pytest.mark.parametrize(("degrees", "scale"), [(30.0, 1.2), (-15.0, 0.85)])
def test_a_copy_turned_and_resized_on_the_way_is_found_at_both_places(ct_files, degrees, scale):
    """Block matching cannot see such a copy (no two blocks are equal); the keypoint check can, and says how
    the copy was turned and resized."""
    rng = np.random.default_rng(60)
    ds = pydicom.dcmread(ct_files[60])
    image = simulated_radiograph(dicom_to_hu(ds), 768, rng)
    cloned, _, params = copy_move_transformed_2d(image, rng, frac=0.2, degrees=degrees, scale=scale)
    regions = check_image(as_cr(ds, cloned))
    assert len(regions) == 1 and _both_places(regions[0], params), (regions, params)
    turned = regions[0]
    assert abs(abs(turned["rotation"]) - abs(degrees)) < 2, turned  # from first to second, or back
    assert min(abs(turned["scale"] - scale), abs(turned["scale"] - 1 / scale)) < 0.03, turned
    assert transform_words(turned).startswith(f" (turned {abs(degrees):.0f} degrees, resized x")  # the PDF's words
    assert transform_words(turned) == f" ({transform_changes(turned)})"  # the API's words, for the pages
    assert check_image(as_cr(ds, image)) == []  # the same image without the copy


def test_monochrome1_is_shown_inverted(ct_files):
    ds = pydicom.dcmread(ct_files[40])
    radiograph(ds, 256, np.random.default_rng(0), clone=False)
    grey2 = display_grey(ds)[0].astype(int)
    ds.PhotometricInterpretation = "MONOCHROME1"
    assert np.abs(display_grey(ds)[0].astype(int) - (255 - grey2)).max() <= 1


@pytest.mark.django_db
def test_an_uploaded_x_ray_series_is_checked_and_says_what_it_found(orthanc, ct_files, tmp_path, user_factory,
                                                                    api_client, django_capture_on_commit_callbacks):
    from detection.models import CopyMoveCheck

    paths = x_ray_series(ct_files, tmp_path)
    owner = user_factory("clinician")
    with django_capture_on_commit_callbacks(execute=True):  # the check is queued on commit, runs eagerly
        outcome = upload_paths(owner, paths)
    assert len(outcome.stored) == 2 and outcome.jobs == []
    assert [s["copy_move_check"] for s in outcome.not_scored] == [True]  # the upload page follows the check
    series_uid = outcome.stored[0]["series_uid"]
    series = api_client(owner).get(f"/api/series/{series_uid}").json()
    assert series["not_scored_reason"].endswith("checked for regions copied inside them instead")
    check = series["copy_move"]
    assert check["status"] == "done" and check["images_checked"] == 2
    cloned_sop = str(pydicom.dcmread(paths[0], stop_before_pixels=True).SOPInstanceUID)
    assert [f["sop_instance_uid"] for f in check["found"]] == [cloned_sop]
    study_uid = outcome.stored[0]["study_uid"]
    study = api_client(owner).get(f"/api/studies/{study_uid}").json()
    assert study["series"][0]["copy_move"]["found"][0]["regions"]
    report = api_client(owner).get(f"/api/studies/{study_uid}/report.pdf").content
    pdf = pdf_text(report)
    assert b"this series is CR; its images are checked for" in pdf, pdf  # (table cells wrap lines)
    assert b"one copied onto the other:" in pdf
    caption = f"image {check['found'][0]['slice_index'] + 1}: the same content in both boxes".encode()
    assert caption in pdf and report.count(b"/Subtype /Image") == 1  # the radiograph, its copy boxed

    # A CT upload queues no such check.
    with django_capture_on_commit_callbacks(execute=True):
        (tmp_path / "ct").mkdir()
        upload_paths(owner, fresh_copies(ct_files[44:45], tmp_path / "ct"))
    assert CopyMoveCheck.objects.count() == 1


@pytest.mark.django_db
def test_a_copy_found_marks_the_study_as_suspected_and_emails_the_uploader_once(
        orthanc, ct_files, tmp_path, user_factory, api_client, django_capture_on_commit_callbacks, settings):
    from django.core import mail

    from detection.radiographs import enqueue_copy_move_check, run_copy_move_check
    from portal.accounts.models import AuditEvent

    settings.TAMPER_ALERT_EMAILS = ["security@example.org"]
    owner = user_factory("clinician")
    owner.email = "uploader@example.org"
    owner.save()
    client = api_client(owner)
    clean = fresh_copies(ct_files[50:51], tmp_path)
    ds = pydicom.dcmread(clean[0])
    radiograph(ds, 256, np.random.default_rng(3), clone=False)
    ds.save_as(clean[0], enforce_file_format=True)
    with django_capture_on_commit_callbacks(execute=True):
        clean_uid = upload_paths(owner, clean).stored[0]["study_uid"]
    (tmp_path / "xr").mkdir()
    with django_capture_on_commit_callbacks(execute=True):
        study_uid = upload_paths(owner, x_ray_series(ct_files, tmp_path / "xr")).stored[0]["study_uid"]

    def listed(**query) -> list[str]:
        return [s["study_uid"] for s in client.get("/api/studies", query).json()["results"]]

    assert client.get(f"/api/studies/{study_uid}").json()["copy_move_images"] == 1
    assert client.get(f"/api/studies/{clean_uid}").json()["copy_move_images"] == 0
    assert listed(verdict="tampered") == listed(verdict="copy_move") == [study_uid]
    assert listed(verdict="genuine") == listed(verdict="unscored") == []  # checked, so not "not scored yet"
    assert listed(ordering="suspicion") == [study_uid, clean_uid]

    [message] = mail.outbox
    assert message.to == ["uploader@example.org", "security@example.org"]
    assert "copy-move" in message.subject and "1 region(s) in 1 of the series' 2 image(s)" in message.body
    patient = owner.uploaded_studies.get(study_uid=study_uid).patient.patient_id
    assert f"/studies/{study_uid}" in message.body and patient not in message.body  # no patient named
    assert AuditEvent.objects.get(action="study.copy_move_alert").details["images"] == 1

    # Checked again (another upload into the series): it agrees, so nobody is emailed a second time.
    series = owner.uploaded_studies.get(study_uid=study_uid).series.get()
    with django_capture_on_commit_callbacks(execute=True):
        run_copy_move_check(check_id=enqueue_copy_move_check(series).pk)
    assert len(mail.outbox) == 1
    assert client.get(f"/api/studies/{study_uid}").json()["copy_move_images"] == 1


@pytest.mark.django_db
def test_a_pacs_that_is_down_leaves_the_check_queued_for_the_retry(orthanc, ct_files, tmp_path, user_factory,
                                                                   settings):
    from detection.models import CopyMoveCheck
    from detection.radiographs import enqueue_copy_move_check, run_copy_move_check
    from portal.studies.dicomweb import PacsUnavailable

    [path] = fresh_copies(ct_files[40:41], tmp_path)
    ds = pydicom.dcmread(path)
    radiograph(ds, 256, np.random.default_rng(1), clone=False)
    ds.save_as(path, enforce_file_format=True)
    series = upload_paths(user_factory("clinician"), [path]).jobs or None
    check = CopyMoveCheck.objects.get()  # queued by the upload; on_commit never ran in this transaction
    assert check.status == "queued" and series is None
    settings.DICOMWEB_URL = "http://127.0.0.1:9/dicom-web"  # nothing listens there
    with pytest.raises(PacsUnavailable):
        run_copy_move_check(check_id=check.pk)
    check.refresh_from_db()
    assert check.status == "queued"
    assert enqueue_copy_move_check(check.series) == check  # a later upload reuses the waiting check
    settings.DICOMWEB_URL = orthanc.dicomweb_url
    assert run_copy_move_check(check_id=check.pk).status == "done"
