"""Shared fixtures: real PostgreSQL (pytest-django), a real Orthanc with DICOMweb, real Celery workers."""

import base64
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data"))
CT_DIR = SHARED_DATA / "cptac-lscc-C3N-00247-chest-ct"
TEST_PASSWORD = "pw-Secret-123"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not CT_DIR.exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ct_files(shared_data) -> list[Path]:
    files = sorted(CT_DIR.glob("*.dcm"))
    assert len(files) == 99
    return files


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Iterator["OrthancServer"]:  # noqa: F821
    from django.conf import settings

    from portal.orthanc import OrthancServer, free_port

    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), free_port()).start()
    previous = settings.DICOMWEB_URL
    settings.DICOMWEB_URL = server.dicomweb_url
    yield server
    settings.DICOMWEB_URL = previous
    server.stop()


@pytest.fixture
def user_factory(db) -> Callable:
    from portal.accounts.services import user_create

    def make(role: str, username: str | None = None, password: str = TEST_PASSWORD):
        return user_create(username=username or f"{role}-{uuid.uuid4().hex[:6]}", password=password, role=role)

    return make


@pytest.fixture
def api_client() -> Callable:
    from rest_framework.test import APIClient

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


def upload_paths(user, paths: list[Path]):
    """Upload files through the portal's upload service, as the API view does."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.studies.services import study_upload

    return study_upload(user=user, files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in paths])


def fresh_copies(paths: list[Path], tmp_path: Path, patient_id: str | None = None) -> list[Path]:
    """The slices under new study/series/instance UIDs (one new study): the session's PACS cannot already
    hold them. ``patient_id``: also make them another patient's."""
    import pydicom
    from pydicom.uid import generate_uid

    study, series, out = generate_uid(), generate_uid(), []
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        if patient_id:
            ds.PatientID = patient_id
        out.append(tmp_path / path.name)
        ds.save_as(out[-1], enforce_file_format=True)
    return out


@pytest.fixture
def uploaded_ct(orthanc, ct_files, user_factory) -> Callable:
    """uploaded_ct(user=None) -> Study: the real 99-slice CT stored in Orthanc and indexed (not scored)."""
    from portal.studies.models import Study

    def upload(user=None):
        user = user or user_factory("clinician")
        outcome = upload_paths(user, ct_files)
        assert not outcome.pacs_down and len(outcome.stored) == 99, outcome.errors
        return Study.objects.get(study_uid=outcome.stored[0]["study_uid"])

    return upload


class WorkerProcess:
    """A real `celery worker` process bound to the test database and this session's queue."""

    def __init__(self, database_url: str, log_path: Path, queue: str | None = None):
        self.database_url = database_url
        self.log_path = log_path
        self.queue = queue or os.environ["CELERY_QUEUE"]
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        from django.conf import settings

        env = {**os.environ, "DATABASE_URL": self.database_url, "CELERY_TASK_ALWAYS_EAGER": "0",
               "DICOMWEB_URL": settings.DICOMWEB_URL}
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "--concurrency=1",
             "-Q", self.queue, "-n", f"{self.queue}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
             "-l", "INFO"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL, as an out-of-memory kill or a power cut would: no chance to ack or clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def worker_database_url() -> str:
    """The test database, for a worker process."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def scoring_worker(transactional_db, tmp_path) -> Iterator[WorkerProcess]:
    """Tasks go through the real broker to a real worker process while this fixture is active."""
    from portal.celery import app

    app.conf.task_always_eager = False
    worker = WorkerProcess(worker_database_url(), tmp_path / "worker.log").start()
    yield worker
    worker.stop()
    app.conf.task_always_eager = True


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.5,
             message: str | Callable[[], str] = "") -> object:
    """``message``: what the failure says, or a callable that tells it then (a worker's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    said = message() if callable(message) else message
    raise AssertionError(f"timed out after {timeout}s waiting for {said or predicate}")


def pdf_text(pdf: bytes) -> bytes:
    """The decoded content streams of reportlab's PDF (ASCII85 + Flate), where its text operators are."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            out.append(zlib.decompress(base64.a85decode(stream.strip().removesuffix(b"~>"))))
        except (ValueError, zlib.error):
            continue  # an image or a stream with another filter
    return b"\n".join(out)
