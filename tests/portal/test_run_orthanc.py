"""`manage.py run_orthanc`, the embedded PACS of the run command, must not outlive its own process."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal.orthanc import free_port

REPO = Path(__file__).resolve().parents[2]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/system", timeout=1):
            return True
    except OSError:
        return False


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sigterm_stops_the_embedded_orthanc(tmp_path):
    port = free_port()
    env = {**os.environ, "PORTAL_VAR_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "manage.py", "run_orthanc", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert _wait(lambda: _answers(port), 30), "Orthanc did not come up"
        proc.send_signal(signal.SIGTERM)  # what run.sh's cleanup sends
        assert proc.wait(timeout=20) == 0
        assert _wait(lambda: not _answers(port), 10), "Orthanc still answers after its command was terminated"
    finally:
        proc.kill()
        _kill_processes_mentioning(str(tmp_path))  # a failed run must not leave Orthanc behind


def _kill_processes_mentioning(text: str) -> None:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.slow
def test_setup_stops_the_system_orthanc_and_no_other(orthanc, tmp_path):
    """Debian's init script stops every Orthanc process ("service orthanc stop" killed the test suite's and a
    running portal's PACS whenever setup ran); the setup stops only the one in the system pidfile."""
    from portal.orthanc import OrthancServer

    system = OrthancServer(data_dir=tmp_path / "system", http_port=free_port()).start()  # stands in for Debian's
    pidfile = tmp_path / "orthanc.pid"
    pidfile.write_text(str(system.process.pid))
    try:
        subprocess.run(["scripts/stop_system_orthanc.sh"], cwd=REPO, check=True, timeout=30,
                       env={**os.environ, "ORTHANC_PIDFILE": str(pidfile)})  # fmt: skip
        assert _wait(lambda: not _answers(system.http_port), 10), "the system Orthanc still answers"
        assert _answers(orthanc.http_port), "another Orthanc was stopped too"
        assert not pidfile.exists()
        subprocess.run(["scripts/stop_system_orthanc.sh"], cwd=REPO, check=True, timeout=30,
                       env={**os.environ, "ORTHANC_PIDFILE": str(pidfile)})  # fmt: skip  # nothing to stop: fine
    finally:
        system.stop()
