"""A connection to the PACS that drops in the middle of a STOW: the portal sends the whole request again and
every instance is stored; none is counted as stored, or dropped, without the PACS confirming it."""

import contextlib
import socket
import threading

import pytest
import requests

from tests.conftest import fresh_copies, upload_paths


class DroppingProxy:
    """A TCP relay in front of the PACS that resets the first connection after ``drop_after`` request bytes:
    a real dropped connection (as when the PACS closes a keep-alive connection while it is being reused)."""

    def __init__(self, target_port: int, drop_after: int) -> None:
        self.target_port, self.drop_after = target_port, drop_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.drop_after if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                sent += len(data)
                if limit is not None and sent >= limit:
                    for s in (src, dst):  # RST, not a clean close
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        s.close()
                    return
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.django_db
def test_stow_survives_a_connection_dropped_mid_request(orthanc, ct_files, user_factory, settings, tmp_path):
    files = fresh_copies(ct_files[60:70], tmp_path)
    settings.DICOMWEB_STOW_PARALLEL = 1  # one connection at a time: the first one is the one dropped
    proxy = DroppingProxy(orthanc.http_port, drop_after=1_500_000)
    settings.DICOMWEB_URL = f"http://127.0.0.1:{proxy.port}/dicom-web"
    try:
        outcome = upload_paths(user_factory("clinician"), files)
    finally:
        proxy.close()
    assert proxy.connections >= 2  # the first connection really was dropped, and a second one was made
    assert not outcome.pacs_down and not outcome.errors, outcome.errors
    assert len(outcome.stored) == 10
    # "stored" means the PACS holds it
    study_uid = outcome.stored[0]["study_uid"]
    found = requests.get(f"{orthanc.dicomweb_url}/studies/{study_uid}/instances",
                         headers={"Accept": "application/dicom+json"}, timeout=30).json()
    assert {i["00080018"]["Value"][0] for i in found} == {row["sop_instance_uid"] for row in outcome.stored}
