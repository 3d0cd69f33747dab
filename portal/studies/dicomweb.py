"""The portal's only door to the PACS: dicomweb-client for STOW/QIDO/WADO, urllib3 for the streaming proxy."""

import io
from collections.abc import Iterator, Sequence
from xml.etree.ElementTree import fromstring

import pydicom
import requests
import urllib3
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.web import _load_xml_dataset, _Transaction
from django.conf import settings

# Failures that mean "the PACS is not there right now" (retry later), not "the PACS refused this".
PACS_DOWN_ERRORS = (requests.ConnectionError, requests.Timeout)


# The headers dicomweb-client sends with a chunked STOW (kept the same: see _post_whole_body).
CHUNKED_HEADERS = {"Transfer-Encoding": "chunked", "Cache-Control": "no-cache", "Connection": "Keep-Alive"}


class PacsUnavailable(Exception):
    """The DICOMweb server could not be reached; the caller keeps the data and retries."""


class PacsRejected(Exception):
    """The DICOMweb server answered with an error for this request."""


_session: requests.Session | None = None


def http_session() -> requests.Session:
    # One pooled session per process: keep-alive connections make STOW and proxied frames faster.
    global _session
    if _session is None:
        _session = requests.Session()
        # The PACS is an internal service: skip requests' per-request scan of proxy environment variables.
        _session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        _session.mount("http://", adapter)
        _session.mount("https://", adapter)
    return _session


class PortalDICOMwebClient(DICOMwebClient):
    def store_files(self, files: Sequence[bytes]) -> pydicom.Dataset:
        """STOW-RS of DICOM files exactly as uploaded.

        `store_instances` re-encodes parsed datasets with dcmwrite: slower, and the PACS would then hold
        bytes that differ from the ones the portal validated and signed. Same request, same response."""
        return self._http_post_multipart_application_dicom(self._get_studies_url(_Transaction.STORE), files)

    def store_files_json(self, files: Sequence[bytes]) -> dict:
        """`store_files`, answering with the response's DICOM JSON: the portal reads two attributes of it, and
        turning a 16-instance response into a pydicom Dataset cost about 0.2 ms per instance at upload."""
        content_type = 'multipart/related; type="application/dicom"; boundary="0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"'
        response = self._post_whole_body(self._get_studies_url(_Transaction.STORE),
                                         self._encode_multipart_message(files, content_type),
                                         headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
        if not response.content:
            return {}
        if response.headers.get("Content-Type", "").split(";")[0].strip() in ("application/dicom+json",
                                                                             "application/json"):
            return response.json()
        return _load_xml_dataset(fromstring(response.content)).to_json_dict()  # a server that answers XML

    def _post_whole_body(self, url: str, body: memoryview, headers: dict[str, str]) -> requests.Response:
        """POST ``body`` in chunks, with one retry on a dropped connection (e.g. a keep-alive connection the PACS
        had just closed). dicomweb-client's own retry re-sends its half-consumed chunk generator, so the PACS
        got a truncated body and stored only some of the instances; every attempt here sends the whole body."""

        def chunks() -> Iterator[memoryview]:
            for offset in range(0, len(body), self._chunk_size):
                yield body[offset : offset + self._chunk_size]

        for attempt in (1, 2):
            try:
                response = self._session.post(url, data=chunks(), headers={**headers, **CHUNKED_HEADERS},
                                              timeout=self._timeout)
                break
            except requests.ConnectionError:
                if attempt == 2:
                    raise
        response.raise_for_status()
        return response

    @classmethod
    def _encode_multipart_message(cls, content: Sequence[bytes], content_type: str) -> memoryview:  # type: ignore[override]
        """The same body as dicomweb-client's, built with one join instead of a growing buffer, and returned
        as a memoryview: the client slices it into 1 MiB chunks for chunked transfer, which are then views,
        not copies (about 50 MB less copying under the GIL per CT series)."""
        params = dict(part.strip().split("=", 1) for part in content_type.split(";")[1:])
        boundary, part_type = params["boundary"].strip('"'), params["type"].strip('"')
        head = f"\r\n--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
        body = b"".join([piece for part in content for piece in (head, part)] + [f"\r\n--{boundary}--".encode()])
        return memoryview(body)


def client() -> PortalDICOMwebClient:
    dicomweb = PortalDICOMwebClient(url=settings.DICOMWEB_URL, session=http_session(),
                                    timeout=settings.DICOMWEB_TIMEOUT)
    # dicomweb-client retries every failure 5 times with exponential waits: a PACS that is down took 30 s to
    # be reported. One quick retry rides out a blip; Celery tasks retry longer on their own (PacsUnavailable).
    dicomweb.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=100)
    return dicomweb


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except PACS_DOWN_ERRORS as exc:
        raise PacsUnavailable(f"DICOMweb server at {settings.DICOMWEB_URL} is unreachable: {exc}") from exc
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status is not None and status >= 500 and status != 501:
            raise PacsUnavailable(f"DICOMweb server error {status}: {exc}") from exc
        raise PacsRejected(f"the PACS refused the request: {exc}") from exc


REFERENCED_SOP_SEQUENCE, FAILED_SOP_SEQUENCE = "00081199", "00081198"
REFERENCED_SOP_INSTANCE_UID, FAILURE_REASON = "00081155", "00081197"


def _items(dicom_json: dict, tag: str) -> list[dict]:
    return dicom_json.get(tag, {}).get("Value") or []


def _first(dicom_json: dict, tag: str):
    return (dicom_json.get(tag, {}).get("Value") or [None])[0]


def store(files: dict[str, bytes]) -> tuple[set[str], dict[str, str]]:
    """STOW-RS of {SOP Instance UID: file bytes}. Returns (stored SOP UIDs, {failed SOP UID: reason})."""
    response = _call(client().store_files_json, list(files.values()))
    stored = {_first(item, REFERENCED_SOP_INSTANCE_UID) for item in _items(response, REFERENCED_SOP_SEQUENCE)}
    failed = {
        _first(item, REFERENCED_SOP_INSTANCE_UID):
            f"PACS refused the instance (failure reason {_first(item, FAILURE_REASON) or '?'})"
        for item in _items(response, FAILED_SOP_SEQUENCE)
    }
    # Some servers answer 200 with an empty body; treat everything not failed as stored then.
    if not stored and not failed:
        stored = set(files) - set(failed)
    # Never count an instance the answer does not mention as stored, and never drop it silently either.
    for uid in set(files) - stored - set(failed):
        failed[uid] = "the PACS did not confirm storing this instance; upload it again"
    return stored, failed


def search_studies(offset: int = 0, limit: int = 100) -> list[dict]:
    return _call(client().search_for_studies, offset=offset, limit=limit)


def search_series(study_uid: str) -> list[dict]:
    return _call(client().search_for_series, study_instance_uid=study_uid)


INSTANCE_FIELDS = ["00200013", "00200032", "00200037", "00280010", "00280011", "00280030", "00080016"]


def search_instances(study_uid: str, series_uid: str) -> list[dict]:
    return _call(
        client().search_for_instances,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        fields=INSTANCE_FIELDS,
    )


def file_bytes(ds: pydicom.Dataset) -> bytes:
    """A dataset (one retrieved from the PACS, or made by the portal) as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def retrieve_series(study_uid: str, series_uid: str) -> list[pydicom.Dataset]:
    return _call(client().retrieve_series, study_instance_uid=study_uid, series_instance_uid=series_uid)


def retrieve_instance(study_uid: str, series_uid: str, sop_uid: str) -> pydicom.Dataset:
    return _call(
        client().retrieve_instance,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
    )


_pool: urllib3.PoolManager | None = None


def _stream_pool() -> urllib3.PoolManager:
    # The frame proxy talks urllib3 directly: per frame, requests' session machinery costs more CPU than the
    # permission check. Keep-alive connections, no retries (the browser retries), no proxy environment.
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(maxsize=32, retries=False,
                                    timeout=urllib3.Timeout(connect=5.0, read=settings.DICOMWEB_TIMEOUT))
    return _pool


def open_stream(path: str, query: str, accept: str) -> urllib3.BaseHTTPResponse:
    """GET a DICOMweb path and return the un-read response, for streaming to the browser."""
    url = f"{settings.DICOMWEB_URL.rstrip('/')}/{path.lstrip('/')}"
    if query:
        url = f"{url}?{query}"
    headers = {"Accept": accept} if accept else {}
    try:
        return _stream_pool().request("GET", url, headers=headers, preload_content=False, decode_content=False)
    except urllib3.exceptions.HTTPError as exc:  # connection refused or reset, timeouts
        raise PacsUnavailable(f"DICOMweb server at {settings.DICOMWEB_URL} is unreachable: {exc}") from exc


def iter_body(response: urllib3.BaseHTTPResponse, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    complete = False
    try:
        yield from response.stream(chunk_size, decode_content=False)
        complete = True
    finally:
        if complete:
            response.release_conn()  # fully read: the keep-alive connection goes back to the pool
        else:
            response.close()  # the browser went away mid-stream: drop the half-read connection
            response.release_conn()
