"""Upload -> STOW into a real Orthanc -> index -> WADO-RS through the proxy."""

import hashlib
import io
import zipfile

import pydicom
import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.studies.models import Instance, Series, UploadBatch

pytestmark = pytest.mark.django_db


def _qido_instances(orthanc, study_uid: str, series_uid: str) -> list[dict]:
    response = requests.get(f"{orthanc.dicomweb_url}/studies/{study_uid}/series/{series_uid}/instances",
                            headers={"Accept": "application/dicom+json"}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_upload_real_ct_stores_99_instances_in_z_order(orthanc, ct_files, user_factory, api_client):
    clinician = user_factory("clinician")
    client = api_client(clinician)
    response = client.post("/api/studies/upload",
                           {"files": [SimpleUploadedFile(p.name, p.read_bytes()) for p in ct_files]},
                           format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert len(body["stored"]) == 99 and body["errors"] == []
    study_uid, series_uid = body["stored"][0]["study_uid"], body["stored"][0]["series_uid"]
    assert len(_qido_instances(orthanc, study_uid, series_uid)) == 99
    assert body["jobs"] and body["jobs"][0]["series_uid"] == series_uid

    detail = client.get(f"/api/series/{series_uid}").json()
    zs = [inst["z"] for inst in detail["instances"]]
    assert [inst["slice_index"] for inst in detail["instances"]] == list(range(99))
    assert zs == sorted(zs) and zs[0] == pytest.approx(-288.0) and zs[-1] == pytest.approx(6.0)
    # File names are shuffled with respect to anatomy: the index must follow geometry, not names.
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in ct_files]
    by_geometry = [ds.SOPInstanceUID for ds in sorted(headers, key=lambda ds: float(ds.ImagePositionPatient[2]))]
    by_name = [ds.SOPInstanceUID for ds in headers]
    assert by_geometry != by_name
    assert [inst["sop_instance_uid"] for inst in detail["instances"]] == by_geometry


def test_pacs_holds_the_uploaded_bytes_exactly_and_the_ledger_signed_them(orthanc, ct_files, user_factory,
                                                                          api_client):
    """STOW sends the files as uploaded (no re-encoding), so the signed file hash is the PACS's file hash."""
    from portal.claims.models import LedgerEntry

    files = ct_files[:3]
    response = api_client(user_factory("clinician")).post(
        "/api/studies/upload", {"files": [SimpleUploadedFile(p.name, p.read_bytes()) for p in files]},
        format="multipart")
    assert response.status_code == 201, response.json()
    for path in files:
        sop_uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        [orthanc_id] = requests.post(f"{orthanc.url}/tools/lookup", data=sop_uid, timeout=30).json()
        stored = requests.get(f"{orthanc.url}/instances/{orthanc_id['ID']}/file", timeout=30).content
        assert stored == path.read_bytes()
        entry = LedgerEntry.objects.get(sop_instance_uid=sop_uid)
        assert entry.file_sha256 == hashlib.sha256(stored).hexdigest()
    seqs = list(LedgerEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one batch, a dense chain


def test_a_failing_head_start_receiver_loses_nothing(orthanc, ct_files, user_factory, api_client):
    """instances_staged receivers only precompute: if one fails, the upload and its ledger entries still
    complete (the ledger computes the fingerprints itself at confirmation)."""
    from portal.claims.models import LedgerEntry
    from portal.studies.signals import instances_staged

    def broken(sender, items=(), **kwargs):
        raise RuntimeError("head start failed")

    instances_staged.connect(broken, dispatch_uid="test.broken")
    try:
        response = api_client(user_factory("clinician")).post(
            "/api/studies/upload", {"files": [SimpleUploadedFile(p.name, p.read_bytes()) for p in ct_files[:3]]},
            format="multipart")
    finally:
        instances_staged.disconnect(dispatch_uid="test.broken")
    assert response.status_code == 201, response.json()
    sops = [row["sop_instance_uid"] for row in response.json()["stored"]]
    assert len(sops) == 3 and LedgerEntry.objects.filter(sop_instance_uid__in=sops).count() == 3


def _single_part(content_type: str, body: bytes) -> bytes:
    """The payload of a one-part multipart/related body (boundaries differ between responses)."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    part = body.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]


def test_wado_through_proxy_returns_same_pixel_bytes_as_orthanc(uploaded_ct, orthanc, user_factory, api_client):
    clinician = user_factory("clinician")
    study = uploaded_ct(clinician)
    series = study.series.get()
    instance = series.instances.get(slice_index=50)
    path = (f"studies/{study.study_uid}/series/{series.series_uid}/instances/{instance.sop_instance_uid}"
            "/frames/1")
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    direct = requests.get(f"{orthanc.dicomweb_url}/{path}", headers={"Accept": accept}, timeout=30)
    proxied = api_client(clinician).get(f"/dicomweb/{path}", HTTP_ACCEPT=accept)
    assert proxied.status_code == 200
    assert proxied["Content-Type"].startswith('multipart/related; type="application/octet-stream')
    proxied_frame = _single_part(proxied["Content-Type"], b"".join(proxied.streaming_content))
    direct_frame = _single_part(direct.headers["Content-Type"], direct.content)
    assert len(direct_frame) == 512 * 512 * 2
    assert proxied_frame == direct_frame

    metadata = api_client(clinician).get(f"/dicomweb/studies/{study.study_uid}/series/{series.series_uid}/metadata",
                                         HTTP_ACCEPT="application/dicom+json")
    assert metadata.status_code == 200
    assert len(__import__("json").loads(b"".join(metadata.streaming_content))) == 99


def _truncated(path) -> bytes:
    data = path.read_bytes()
    return data[: len(data) // 2]


def test_mixed_upload_keeps_good_files_and_names_bad_ones(orthanc, ct_files, user_factory, api_client):
    files = [
        SimpleUploadedFile("good.dcm", ct_files[10].read_bytes()),
        SimpleUploadedFile("notes.txt", b"this is not an image\n"),
        SimpleUploadedFile("broken.dcm", _truncated(ct_files[11])),
    ]
    response = api_client(user_factory("clinician")).post("/api/studies/upload", {"files": files},
                                                          format="multipart")
    assert response.status_code == 207
    body = response.json()
    assert [s["file"] for s in body["stored"]] == ["good.dcm"]
    reasons = {e["file"]: e["reason"] for e in body["errors"]}
    assert set(reasons) == {"notes.txt", "broken.dcm"}
    assert "not a DICOM file" in reasons["notes.txt"]
    assert "truncated" in reasons["broken.dcm"] or "corrupt" in reasons["broken.dcm"]
    assert Instance.objects.filter(sop_instance_uid=body["stored"][0]["sop_instance_uid"]).exists()


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_flattens_folders_and_refuses_traversal_and_bombs(orthanc, ct_files, user_factory, api_client):
    archive = _zip({
        "study/series/a.dcm": ct_files[0].read_bytes(),
        "study/b.dcm": ct_files[1].read_bytes(),
        "../../etc/evil.dcm": ct_files[2].read_bytes(),
        "bomb.bin": b"\0" * 50_000_000,
    })
    response = api_client(user_factory("clinician")).post(
        "/api/studies/upload", {"files": [SimpleUploadedFile("scan.zip", archive)]}, format="multipart")
    assert response.status_code == 207, response.json()
    body = response.json()
    assert sorted(s["file"] for s in body["stored"]) == ["scan.zip/study/b.dcm", "scan.zip/study/series/a.dcm"]
    reasons = {e["file"]: e["reason"] for e in body["errors"]}
    assert "unsafe path" in reasons["scan.zip/../../etc/evil.dcm"]
    assert "zip bomb" in reasons["scan.zip/bomb.bin"]


def _rle_blank_image(template, side: int) -> bytes:
    """A 16-bit RLE Lossless image of side x side zeros, built by hand: 2 bytes per 128 pixels per byte plane."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(template)
    plane = b"\x81\x00" * (side * side // 128)  # -127: repeat the next byte 128 times
    offsets = [64, 64 + len(plane)]
    frame = (2).to_bytes(4, "little") + b"".join(o.to_bytes(4, "little") for o in offsets) + b"\0" * 52
    ds.Rows = ds.Columns = side
    ds.PixelData = encapsulate([frame + plane + plane])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_small_file_that_decodes_to_a_huge_image_is_refused_before_decoding(orthanc, ct_files, user_factory,
                                                                              api_client, settings):  # fmt: skip
    settings.UPLOAD_MAX_DECODED_PIXEL_BYTES = 100 * 2**20  # the default is 2 GiB; the rule is the same
    bomb = _rle_blank_image(ct_files[3], 12_000)  # 4.5 MB of RLE, 275 MiB of pixels
    assert len(bomb) < 5_000_000
    files = [SimpleUploadedFile("good.dcm", ct_files[12].read_bytes()), SimpleUploadedFile("bomb.dcm", bomb)]
    response = api_client(user_factory("clinician")).post("/api/studies/upload", {"files": files},
                                                          format="multipart")  # fmt: skip
    assert response.status_code == 207, response.content
    body = response.json()
    assert [s["file"] for s in body["stored"]] == ["good.dcm"]
    refused = body["errors"][0]
    assert refused["file"] == "bomb.dcm"
    assert "decodes to 275 MiB of pixels (12000x12000, 1 frame(s)), more than the 100 MiB" in refused["reason"]


def test_upload_of_only_bad_files_is_400_with_reasons(user_factory, api_client, orthanc):
    response = api_client(user_factory("clinician")).post(
        "/api/studies/upload", {"files": [SimpleUploadedFile("x.jpg", b"\xff\xd8\xff\xe0 not dicom")]},
        format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0]["file"] == "x.jpg"
    assert UploadBatch.objects.get().status == UploadBatch.Status.FAILED


def test_pacs_sync_rebuilds_index_from_qido(uploaded_ct, orthanc):
    from portal.studies.services import sync_from_pacs

    study = uploaded_ct()
    Series.objects.all().delete()
    counts = sync_from_pacs()
    assert counts["instances"] >= 99
    series = Series.objects.get(study__study_uid=study.study_uid)
    zs = list(series.instances.order_by("slice_index").values_list("z", flat=True))
    assert len(zs) == 99 and zs == sorted(zs)
