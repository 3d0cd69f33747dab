"""The upload is ingested while its body is still arriving (portal.studies.upload_stream)."""

import time

import pydicom
import pytest
import requests
from django.test import Client, RequestFactory
from django.test.client import ClientHandler
from urllib3 import encode_multipart_formdata

from portal.studies.models import Instance, UploadBatch

pytestmark = pytest.mark.django_db

CSRF_SECRET = "A" * 32  # a well-formed CSRF cookie value; the header must repeat it


def _multipart(named_bytes: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    return encode_multipart_formdata([("files", (name, data, "application/dicom")) for name, data in named_bytes])


def _orthanc_ids(orthanc, sop_uid: str) -> list[str]:
    found = requests.post(f"{orthanc.url}/tools/lookup", data=sop_uid, timeout=10).json()
    return [item["ID"] for item in found if item["Type"] == "Instance"]


def _orthanc_has(orthanc, sop_uid: str) -> bool:
    return bool(_orthanc_ids(orthanc, sop_uid))


def _orthanc_instance_count(orthanc) -> int:
    return requests.get(f"{orthanc.url}/statistics", timeout=10).json()["CountInstances"]


def test_session_upload_needs_the_csrf_header_and_then_streams(orthanc, ct_files, user_factory):
    """CSRF is checked from the X-CSRFToken header alone, so the body is not parsed before the view."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_factory("clinician"))
    client.cookies["csrftoken"] = CSRF_SECRET
    body, content_type = _multipart([(p.name, p.read_bytes()) for p in ct_files[:2]])

    before = _orthanc_instance_count(orthanc)
    refused = client.generic("POST", "/api/studies/upload", body, content_type=content_type)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not UploadBatch.objects.exists()
    assert _orthanc_instance_count(orthanc) == before
    sop = pydicom.dcmread(ct_files[0], stop_before_pixels=True).SOPInstanceUID

    accepted = client.generic("POST", "/api/studies/upload", body, content_type=content_type,
                              headers={"X-CSRFToken": CSRF_SECRET})
    assert accepted.status_code == 201, accepted.json()
    assert len(accepted.json()["stored"]) == 2 and _orthanc_has(orthanc, sop)


def test_body_cut_off_mid_file_keeps_the_complete_files(orthanc, ct_files, user_factory, api_client):
    files = [(p.name, p.read_bytes()) for p in ct_files[20:24]]
    body, content_type = _multipart(files)
    cut = body[: body.index(files[3][1]) + 1000]  # the connection drops 1000 bytes into the fourth file
    response = api_client(user_factory("clinician")).generic("POST", "/api/studies/upload", cut,
                                                             content_type=content_type)
    payload = response.json()
    assert response.status_code == 207, payload
    assert [s["file"] for s in payload["stored"]] == [name for name, _ in files[:3]]
    assert Instance.objects.count() == 3
    [error] = payload["errors"]
    assert error["file"] == files[3][0] and "cut off" in error["reason"] and "upload it again" in error["reason"]
    assert UploadBatch.objects.get().errors == payload["errors"]


def test_malformed_body_is_a_clear_400(user_factory, api_client):
    response = api_client(user_factory("clinician")).generic(
        "POST", "/api/studies/upload", b"not a multipart body", content_type="multipart/form-data; boundary=zz")
    assert response.status_code == 400
    assert "no files" in response.json()["detail"]


class _BodyThatWaits:
    """A request body that stops before its last file until the PACS holds the first one (or 30 s pass)."""

    def __init__(self, body: bytes, hold_at: int, first_is_stored) -> None:
        self.body, self.position, self.hold_at = body, 0, hold_at
        self.first_is_stored = first_is_stored
        self.first_stored_before_body_ended = None

    def read(self, size: int = -1) -> bytes:
        if self.position >= self.hold_at and self.first_stored_before_body_ended is None:
            deadline = time.monotonic() + 30
            while not self.first_is_stored() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.first_stored_before_body_ended = self.first_is_stored()
        end = len(self.body) if size < 0 else min(len(self.body), self.position + size)
        if self.first_stored_before_body_ended is None:
            end = min(end, self.hold_at)
        chunk = self.body[self.position:end]
        self.position = end
        return chunk

    def readline(self, size: int = -1) -> bytes:
        raise AssertionError("the multipart parser reads the body in chunks")


def test_first_files_reach_the_pacs_while_the_body_is_still_arriving(orthanc, ct_files, user_factory):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=user_factory("clinician")).key
    files = [(p.name, p.read_bytes()) for p in ct_files[40:80]]
    body, content_type = _multipart(files)
    first_sop = pydicom.dcmread(ct_files[40], stop_before_pixels=True).SOPInstanceUID
    for orthanc_id in _orthanc_ids(orthanc, first_sop):  # an earlier test may have stored it (shared Orthanc)
        requests.delete(f"{orthanc.url}/instances/{orthanc_id}", timeout=10).raise_for_status()
    assert not _orthanc_has(orthanc, first_sop)
    stream = _BodyThatWaits(body, hold_at=body.index(files[-1][1]), first_is_stored=lambda: _orthanc_has(
        orthanc, first_sop))
    environ = {**RequestFactory()._base_environ(), "REQUEST_METHOD": "POST", "PATH_INFO": "/api/studies/upload",
               "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)), "wsgi.input": stream,
               "HTTP_AUTHORIZATION": f"Token {token}"}
    response = ClientHandler()(environ)
    assert response.status_code == 201, response.content[:500]
    assert stream.first_stored_before_body_ended is True


def test_handler_spills_a_file_larger_than_the_memory_limit_to_disk(settings):
    """Files up to FILE_UPLOAD_MAX_MEMORY_SIZE stay in memory; a bigger one goes to a temporary file, and
    both reach the ingest byte-exact."""
    from portal.studies.upload_stream import HandOverUploadHandler

    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100_000
    handed = []
    handler = HandOverUploadHandler(RequestFactory().post("/"), "files", handed.append)
    payloads = {"small.dcm": bytes(range(256)) * 100, "big.dcm": bytes(range(256)) * 1000}
    for name, data in payloads.items():
        handler.new_file("files", name, "application/dicom", len(data))
        for start in range(0, len(data), 65536):
            handler.receive_data_chunk(data[start:start + 65536], start)
        handler.file_complete(len(data))
    assert [f.name for f in handed] == list(payloads)
    assert [f.read() for f in handed] == list(payloads.values())
    small, big = (f.file for f in handed)
    assert hasattr(small, "getbuffer") and not hasattr(big, "getbuffer")  # BytesIO vs a file on disk
