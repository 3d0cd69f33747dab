"""Claim checks against a real Orthanc: DICOM and PNG/JPEG claim images, report, encrypted study export."""

import hashlib
import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from portal.accounts.models import AuditEvent
from portal.claims.models import ClaimImage, EncryptedShare, LedgerEntry
from tests.claims.conftest import png_bytes, tamper_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def claim_setup(shared_study, api_client):
    insurer = shared_study["insurer"]
    client = api_client(insurer)
    claim = client.post("/api/claims/", {"reference": "CLM-001"}, format="json").json()
    r = client.post(f"/api/claims/{claim['id']}/studies", {"study_uid": shared_study["study"].study_uid},
                    format="json")
    assert r.status_code == 201, r.content
    return {**shared_study, "client": client, "claim_id": claim["id"]}


def file_obj(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def post_file(client, claim_id, name, data) -> dict:
    r = client.post(f"/api/claims/{claim_id}/images", {"files": [file_obj(name, data)]}, format="multipart")
    assert r.status_code == 201, r.content
    return r.json()["images"][0]


def test_ingest_records_every_stored_instance(shared_study, ct_slice_paths):
    entries = LedgerEntry.objects.filter(study_uid=shared_study["study"].study_uid)
    assert entries.count() == len(ct_slice_paths)
    for path in ct_slice_paths:
        ds = pydicom.dcmread(path)
        entry = entries.get(sop_instance_uid=ds.SOPInstanceUID)
        assert entry.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_untouched_dicom_is_an_exact_match(claim_setup, ct_slice_paths, api_client, user_factory):
    image = post_file(claim_setup["client"], claim_setup["claim_id"], "slice.dcm", ct_slice_paths[2].read_bytes())
    assert image["provenance"] == "exact"
    assert image["result"]["provenance"]["ledger"]["signature_valid"] is True
    detector = image["result"]["detector"]
    assert detector["available"] is True and detector["calibrated"] is True
    # Claim images are scored by the single-slice model, not the 2.5D series model.
    assert detector["model_kind"] == "single-image" and detector["model"].startswith("single-image:")
    assert detector["model_version_id"] is None
    # Experts see on the Models page what scores claim images, with the same threshold.
    info = api_client(user_factory("expert")).get("/api/models/single-image").json()
    assert info["in_use"] is True and info["model"] == detector["model"] and info["channels"] == [["lung", 0]]
    assert round(info["thresholds"]["dicom"], 7) == detector["threshold"]
    assert detector["scored_locations"] > 0  # lung tissue was scored
    # Scored alone with the single-image threshold, a genuine slice is not flagged.
    assert detector["tamper"] < detector["threshold"]
    assert image["status"] == "authentic"


def test_one_pixel_dicom_edit_is_detected_and_localised(claim_setup, ct_slice_paths):
    ds = pydicom.dcmread(ct_slice_paths[1])
    arr = ds.pixel_array.copy()
    arr[250, 140] = arr[250, 140] + 1
    ds.PixelData = arr.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf)
    image = post_file(claim_setup["client"], claim_setup["claim_id"], "edited.dcm", buf.getvalue())
    prov = image["result"]["provenance"]
    assert image["provenance"] == "modified" and image["status"] == "tampered"
    assert prov["diff"]["changed_pixels"] == 1
    assert prov["diff"]["boxes"][0] == {"x": 140, "y": 250, "w": 1, "h": 1, "pixels": 1}
    assert "1 pixel(s) changed in 1 region(s)" in " ".join(image["result"]["reasons"])


def test_exported_png_matches_and_tampered_png_is_localised(claim_setup, ct_slice_paths):
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    uid = pydicom.dcmread(ct_slice_paths[3]).SOPInstanceUID
    r = client.get(f"/api/provenance/instances/{uid}/lung.png", HTTP_ACCEPT="image/png")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    exported = b"".join(r.streaming_content) if r.streaming else r.content
    exact = post_file(client, claim_id, "export.png", exported)
    assert (exact["provenance"], exact["status"]) == ("exact", "authentic")
    assert exact["result"]["provenance"]["ledger"]["sop_instance_uid"] == uid

    tampered = post_file(client, claim_id, "tampered.png", tamper_png(exported, x=300, y=200, size=12))
    prov = tampered["result"]["provenance"]
    assert tampered["provenance"] == "modified" and tampered["status"] == "tampered"
    assert prov["ledger"]["sop_instance_uid"] == uid  # the nearest signed slice is the right one
    box = prov["diff"]["boxes"][0]
    assert 292 <= box["x"] <= 296 and 192 <= box["y"] <= 196 and box["w"] <= 13 and box["h"] <= 13
    assert "scored alone" in tampered["result"]["detector"]["path"]


def test_jpeg_of_an_export_is_consistent_and_noise_is_unknown(claim_setup, ct_slice_paths):
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    uid = pydicom.dcmread(ct_slice_paths[0]).SOPInstanceUID
    exported = client.get(f"/api/provenance/instances/{uid}/lung.png").content
    grey = np.asarray(Image.open(io.BytesIO(exported)))
    jpeg = post_file(client, claim_id, "photo.jpg", png_bytes(grey, "JPEG", quality=95))
    assert jpeg["provenance"] == "consistent", jpeg["result"]["provenance"]
    rng = np.random.default_rng(0)
    noise = post_file(client, claim_id, "other.png", png_bytes(rng.integers(0, 255, (512, 512), dtype=np.uint8)))
    assert noise["provenance"] == "unknown" and noise["status"] in ("unverified", "suspicious")


def test_report_pdf_is_reproducible(claim_setup, ct_slice_paths):
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    post_file(client, claim_id, "slice.dcm", ct_slice_paths[4].read_bytes())
    first = client.get(f"/claims/{claim_id}/report.pdf")
    second = client.get(f"/api/claims/{claim_id}/report.pdf")
    assert first.status_code == 200 and first["Content-Type"] == "application/pdf"
    assert first.content.startswith(b"%PDF") and len(first.content) > 20_000  # images embedded
    assert first.content == second.content
    # Re-running the whole analysis (provenance, detector, overlays) on the same input gives the same report.
    from portal.claims.services import analyse_image

    analyse_image(image=ClaimImage.objects.get(claim_id=claim_id, position=1))
    assert client.get(f"/claims/{claim_id}/report.pdf").content == first.content
    page = client.get(f"/claims/{claim_id}/")
    assert b"CLM-001" in page.content and b"Ed25519" in page.content
    assert AuditEvent.objects.filter(action="claim.report_pdf", object_id=claim_id).count() == 3


def test_clinician_shares_study_as_encrypted_archive(shared_study, api_client, user_factory):
    clinician, study = shared_study["clinician"], shared_study["study"]
    client = api_client(clinician)
    r = client.post("/api/shares/encrypted", {"study_uid": study.study_uid, "recipient": "Dr. Who"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    key = body["key"]
    share = EncryptedShare.objects.get(pk=body["id"])
    assert key not in str(share.__dict__)  # only the hash is stored
    from portal.claims import crypto

    assert share.key_sha256 == hashlib.sha256(crypto.decode_key(key)).hexdigest()
    archive = b"".join(client.get(body["archive_url"]).streaming_content)
    other = api_client(user_factory("annotator"))
    ok = other.post("/api/shares/import", {"archive": file_obj("a.mitp", archive), "key": key}, format="multipart")
    assert ok.status_code == 200, ok.content
    assert ok.json()["ok"] and ok.json()["ledger_verified"] == 5
    wrong = other.post("/api/shares/import", {"archive": file_obj("a.mitp", archive),
                                              "key": crypto.encode_key(b"\x01" * 32)}, format="multipart")
    assert wrong.status_code == 400 and "wrong key" in wrong.json()["detail"]
    broken = bytearray(archive)
    broken[len(broken) // 2] ^= 0xFF
    bad = other.post("/api/shares/import", {"archive": file_obj("a.mitp", bytes(broken)), "key": key},
                     format="multipart")
    assert bad.status_code == 400 and "integrity check failed" in bad.json()["detail"]


def test_claim_image_rows_are_kept_in_upload_order(claim_setup, ct_slice_paths):
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    for p in ct_slice_paths[:2]:
        post_file(client, claim_id, p.name, p.read_bytes())
    detail = client.get(f"/api/claims/{claim_id}").json()
    assert [i["original_name"] for i in detail["images"]] == [p.name for p in ct_slice_paths[:2]]
    assert ClaimImage.objects.filter(claim_id=claim_id).count() == 2


def test_undecodable_or_foreign_uploads_are_refused(claim_setup):
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    r = client.post(f"/api/claims/{claim_id}/images", {"files": [file_obj("x.txt", b"hello")]}, format="multipart")
    assert r.status_code == 400 and "not a DICOM" in r.json()["detail"]
    truncated = png_bytes(np.zeros((64, 64), np.uint8))[:40]
    r = client.post(f"/api/claims/{claim_id}/images", {"files": [file_obj("t.png", truncated)]}, format="multipart")
    assert r.status_code == 400 and "cannot be decoded" in r.json()["detail"]
    assert not ClaimImage.objects.filter(claim_id=claim_id).exists()


def test_a_small_file_holding_a_huge_image_is_refused_before_decoding(claim_setup):
    """49 megapixels of zeros compress to about 50 kB of PNG; the limit is read from the header."""
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    bomb = png_bytes(np.zeros((7000, 7000), np.uint8))
    assert len(bomb) < 1_000_000
    r = client.post(f"/api/claims/{claim_id}/images", {"files": [file_obj("big.png", bomb)]}, format="multipart")
    assert r.status_code == 400, r.content
    assert "7000x7000 pixels (49 megapixels) is more than the 40 megapixels" in r.json()["detail"]
    assert not ClaimImage.objects.filter(claim_id=claim_id).exists()


def test_png_export_of_an_instance_without_pixels_is_refused_clearly(claim_setup):
    from portal.claims import ledger

    study = claim_setup["study"]
    series_uid = study.series.first().series_uid
    ledger.append(ledger.Fingerprint(
        study_uid=study.study_uid, series_uid=series_uid, sop_instance_uid="1.2.826.0.1.3680043.8.498.1",
        pixel_sha256="", file_sha256="0" * 64, render_sha256="", pixel_shape=[], pixel_dtype="",
        transfer_syntax_uid="1.2.840.10008.1.2.1"))  # fmt: skip  (what ingest records for an SR)
    r = claim_setup["client"].get("/api/provenance/instances/1.2.826.0.1.3680043.8.498.1/lung.png",
                                  HTTP_ACCEPT="image/png")  # fmt: skip
    assert r.status_code == 422 and "no image pixels" in r.json()["detail"]


def test_clinician_lists_grants_and_revokes_insurer_access(claim_setup, ct_slice_paths, api_client, user_factory):
    """Revoking stops the insurer's access to the study's images and new comparisons; the claim keeps its
    reference."""
    study, insurer, insurer_client = claim_setup["study"], claim_setup["insurer"], claim_setup["client"]
    clinician = api_client(claim_setup["clinician"])
    url = f"/api/shares/studies/{study.study_uid}/insurers"
    late = user_factory("insurer")
    names = [u["username"] for u in clinician.get("/api/insurers").json()]
    assert {insurer.username, late.username} <= set(names) and claim_setup["clinician"].username not in names

    created = clinician.post(url, {"insurer": late.username}, format="json")
    assert created.status_code == 201 and created.json()["granted_by"] == claim_setup["clinician"].username
    assert created.json()["study_uid"] == study.study_uid  # as the endpoint answered before it listed access
    assert [a["insurer"] for a in clinician.get(url).json()] == [insurer.username, late.username]
    uid = pydicom.dcmread(ct_slice_paths[3]).SOPInstanceUID
    export = f"/api/provenance/instances/{uid}/lung.png"
    png = insurer_client.get(export, HTTP_ACCEPT="image/png")
    assert png.status_code == 200

    assert clinician.delete(f"{url}/{insurer.username}").status_code == 204
    assert [a["insurer"] for a in clinician.get(url).json()] == [late.username]
    assert clinician.delete(f"{url}/{insurer.username}").status_code == 404  # nothing left to revoke
    assert api_client(user_factory("annotator")).delete(f"{url}/{late.username}").status_code == 403
    assert insurer_client.get(export, HTTP_ACCEPT="image/png").status_code == 404
    assert AuditEvent.objects.filter(action="study.unshare_insurer", object_id=study.pk).exists()

    # The claim still names the study, but a new image is no longer compared with it.
    claim = insurer_client.get(f"/api/claims/{claim_setup['claim_id']}").json()
    assert claim["studies"] == [study.study_uid]
    checked = post_file(insurer_client, claim_setup["claim_id"], "after-revoke.png", png.content)
    assert checked["provenance"] == "unknown"
    assert "no longer shared" in checked["result"]["provenance"]["reasons"][0]


def test_a_model_without_single_image_calibration_cannot_flag_a_claim_image():
    from portal.claims.services import final_status

    provenance = {"status": "exact", "reasons": ["identical to the signed original"]}
    detector = {"available": True, "trained": True, "calibrated": False, "tampered": True, "verdict": "FM",
                "tamper": 0.999, "threshold": None, "model": "m:1"}
    status, reasons = final_status(provenance, detector)
    assert status == "authentic" and "no threshold calibrated for single images" in reasons[-1]


def test_series_setting_scores_claim_images_with_the_active_series_model(claim_setup, ct_slice_paths, settings,
                                                                        api_client, user_factory):
    from detection.services import current_model_version

    settings.DETECTOR_SINGLE_IMAGE_ARTIFACT = "series"
    image = post_file(claim_setup["client"], claim_setup["claim_id"], "slice.dcm", ct_slice_paths[2].read_bytes())
    detector = image["result"]["detector"]
    version = current_model_version()
    assert detector["model_kind"] == "series" and detector["model_version_id"] == version.pk
    assert detector["model"] == version.name and detector["calibrated"] is True
    calibration = version.config["calibration_single_image"]
    assert detector["threshold"] == round(calibration["dicom"]["tamper_threshold"], 7)
    info = api_client(user_factory("admin")).get("/api/models/single-image").json()
    assert info == {"in_use": False, "model_kind": "series", "model": version.name,
                    "thresholds": {p: c["tamper_threshold"] for p, c in calibration.items()}}


def test_an_image_without_lungs_gets_no_detector_verdict(claim_setup, shared_data):
    """The LIDC-IDRI slice is abdominal (kidneys, no lung): the detector has nothing to score, and the claim
    says so instead of reporting a genuine verdict it never reached."""
    data = (shared_data / "lidc-idri-0002-single-slice" / "ref_scan.dcm").read_bytes()
    image = post_file(claim_setup["client"], claim_setup["claim_id"], "abdomen.dcm", data)
    detector = image["result"]["detector"]
    assert detector["available"] is True and detector["scored_locations"] == 0 and detector["tampered"] is False
    assert image["status"] == "unverified" and image["provenance"] == "unknown"
    assert "found no lung tissue to score" in image["result"]["reasons"][-1]
    from portal.claims.report import image_rows

    rows = dict(image_rows(ClaimImage.objects.get(claim_id=claim_setup["claim_id"], position=1)))
    assert rows["Verdict"] == "none: no lung tissue to score in this image"


def test_a_dicom_image_of_another_modality_gets_no_detector_verdict(claim_setup, ct_slice_paths):
    """The detector reads CT in Hounsfield units: an X-ray (here a CT slice relabelled CR, under new UIDs)
    is not scored, and the claim says why instead of printing a verdict that means nothing."""
    ds = pydicom.dcmread(ct_slice_paths[0])
    ds.Modality = "CR"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    image = post_file(claim_setup["client"], claim_setup["claim_id"], "xray.dcm", buf.getvalue())
    detector = image["result"]["detector"]
    assert detector["available"] is False and detector["error"].endswith("this image is CR")
    assert image["status"] == "authentic"  # its pixels are a signed original's: provenance decides
    assert "detector not available: not scored: the detector scores CT" in " ".join(image["result"]["reasons"])


def test_a_region_cloned_inside_a_claim_image_is_found_without_an_original(claim_setup, ct_slice_paths):
    """A mirrored export matches nothing the portal signed (unknown origin); with lung texture copied over
    another part of it, the copy-move check finds both places and the image is suspicious."""
    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    uid = pydicom.dcmread(ct_slice_paths[2]).SOPInstanceUID
    mirrored = np.fliplr(np.asarray(Image.open(io.BytesIO(
        client.get(f"/api/provenance/instances/{uid}/lung.png").content)))).copy()
    plain = post_file(client, claim_id, "mirrored.png", png_bytes(mirrored))
    assert plain["provenance"] == "unknown" and plain["result"]["copy_move"] == {"found": []}
    cloned = mirrored.copy()
    cloned[300:348, 140:188] = mirrored[200:248, 320:368]
    image = post_file(client, claim_id, "cloned.png", png_bytes(cloned))
    [found] = image["result"]["copy_move"]["found"]
    assert image["provenance"] == "unknown" and image["status"] == "suspicious"
    assert found["shift"] == [100, -180] and "copy-move: the same content at two places" in " ".join(
        image["result"]["reasons"])
    from portal.claims.report import image_figures, image_rows

    stored = ClaimImage.objects.get(claim_id=claim_id, position=image["position"])
    assert dict(image_rows(stored))["Copy-move check"].startswith("copy-move: the same content at two places")
    assert ("Copy-move: both places of each cloned region boxed", "copy_move") in image_figures(stored)
    figure = client.get(f"/claims/{claim_id}/images/{image['position']}/copy_move.png")
    assert figure.status_code == 200 and figure["Content-Type"] == "image/png"
    assert dict(image_rows(ClaimImage.objects.get(claim_id=claim_id, position=plain["position"])))[
        "Copy-move check"] == "no region of the image is a copy of another"


def test_a_region_turned_and_resized_on_the_way_is_found_too(claim_setup, ct_slice_paths):
    """Block matching needs equal blocks; a copy turned and enlarged in an image editor is found by its
    keypoints, and the reason says how it was changed."""
    from detection.ml.simulator import copy_move_transformed_2d

    client, claim_id = claim_setup["client"], claim_setup["claim_id"]
    uid = pydicom.dcmread(ct_slice_paths[2]).SOPInstanceUID
    mirrored = np.fliplr(np.asarray(Image.open(io.BytesIO(
        client.get(f"/api/provenance/instances/{uid}/lung.png").content)))).copy()
    turned, _, params = copy_move_transformed_2d(mirrored, np.random.default_rng(5), frac=0.25, degrees=25.0,
                                                 scale=1.15)
    image = post_file(client, claim_id, "turned.png", png_bytes(turned))
    [found] = image["result"]["copy_move"]["found"]
    assert image["status"] == "suspicious" and abs(abs(found["rotation"]) - 25) < 2, found
    assert "one was copied onto the other (turned 25 degrees, resized x" in " ".join(image["result"]["reasons"])


def test_a_failing_copy_move_check_leaves_the_rest_of_the_analysis(claim_setup, ct_slice_paths, monkeypatch):
    """A fault only a bug can cause (here forced): the image keeps its provenance, detector and status."""
    from portal.claims import services
    from portal.claims.report import image_rows

    def broken(grey):
        raise ValueError("forced")

    monkeypatch.setattr(services, "find_copy_moves", broken)
    image = post_file(claim_setup["client"], claim_setup["claim_id"], "slice.dcm", ct_slice_paths[1].read_bytes())
    assert (image["provenance"], image["status"]) == ("exact", "authentic")
    assert image["result"]["copy_move"] == {"found": [], "error": "ValueError: forced"}
    stored = ClaimImage.objects.get(claim_id=claim_setup["claim_id"], position=image["position"])
    assert dict(image_rows(stored))["Copy-move check"] == "not run: ValueError: forced"
