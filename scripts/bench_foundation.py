"""Benchmark: portal upload vs direct STOW, and WADO-RS frames through the proxy vs direct, in one run.

Starts its own Orthanc (free port) and the portal under gunicorn (SQLite, filesystem broker, temp var dir),
then alternates the two paths so machine noise hits both alike. Prints medians and ratios
(ratio = portal throughput / direct throughput; target >= 0.8) and the proxy worker's peak RSS.
Each round measures both paths back to back; besides the ratio of the medians it prints the median and
range of the per-round ratios, which a machine whose speed drifts during the run disturbs less.

    .venv/bin/python scripts/bench_foundation.py [--rounds 7]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from portal.orthanc import OrthancServer, free_port  # noqa: E402
from portal.studies.dicomweb import PortalDICOMwebClient  # noqa: E402

CT_DIR = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")) / "cptac-lscc-C3N-00247-chest-ct"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def delete_all(orthanc: OrthancServer) -> None:
    for study_id in requests.get(f"{orthanc.url}/studies", timeout=30).json():
        requests.delete(f"{orthanc.url}/studies/{study_id}", timeout=30)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of the gunicorn worker(s) under a master pid."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    peaks = []
    for child in children or [str(pid)]:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time of processes (load from other programs does not inflate it, unlike wall time)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def pin(pid: int, cpus: set[int]) -> None:
    """Every existing thread of a process (threads started later inherit from their creator)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cpus)


def paired(direct: list[float], portal: list[float]) -> str:
    """Median and range of the per-round throughput ratios (portal / direct = direct time / portal time)."""
    ratios = sorted(d / p for d, p in zip(direct, portal, strict=True))
    return f"{statistics.median(ratios):.2f} (rounds {ratios[0]:.2f} to {ratios[-1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=6, help="parallel frame requests, like a browser")
    parser.add_argument("--pacs-core", action="store_true",
                        help="pin Orthanc to the last CPU and the portal and this client to the others, as if the "
                             "PACS ran on its own machine (a diagnostic, not the headline figure)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its PACS and portal
    files = sorted(CT_DIR.glob("*.dcm"))
    payload = [(f.name, f.read_bytes()) for f in files]
    total_mb = sum(len(b) for _, b in payload) / 1e6

    var = Path(tempfile.mkdtemp(prefix="bench-var-"))
    orthanc = OrthancServer(var / "orthanc", free_port()).start()
    server = None
    try:  # the PACS and the portal stop however the run ends
        port = free_port()
        env = {**os.environ, "PORTAL_VAR_DIR": str(var), "DICOMWEB_URL": orthanc.dicomweb_url,
               "DATABASE_URL": f"sqlite:///{var}/bench.sqlite3", "CELERY_BROKER_URL": "filesystem://",
               "DJANGO_SETTINGS_MODULE": "portal.settings", "LOG_LEVEL": "WARNING"}
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
        token = subprocess.run(
            [py, "manage.py", "shell", "-c",
             "from portal.accounts.services import user_create; from rest_framework.authtoken.models import Token;"
             "u=user_create(username='bench', password='bench-pass-123', role='clinician');"
             "print(Token.objects.create(user=u).key)"],
            cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        workers = os.environ.get("BENCH_WORKERS", "2")  # one gunicorn worker per core, as deployed
        server = subprocess.Popen([py, "-m", "gunicorn", "portal.wsgi:application", "-b", f"127.0.0.1:{port}",
                                   "-w", workers, "--threads", "8", "--timeout", "300", "--log-level", "warning"],
                                  cwd=REPO, env=env)
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        direct = PortalDICOMwebClient(orthanc.dicomweb_url)

        for _ in range(300):
            try:
                if requests.get(f"{base}/healthz", timeout=10).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        worker_pids = [int(pid) for pid in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
        opid = orthanc.process.pid
        if args.pacs_core:
            last = os.cpu_count() - 1
            pin(opid, {last})
            for pid in (os.getpid(), server.pid, *worker_pids):
                pin(pid, set(range(last)))
        upload_portal, upload_direct, upload_parsed = [], [], []
        cpu_direct_pacs, cpu_portal_pacs, cpu_portal_web = [], [], []
        for _ in range(args.rounds):
            # Direct, strict baseline: the file bytes as they are, 32 per STOW request (no parsing at all).
            delete_all(orthanc)
            pacs_cpu = cpu_seconds(opid)
            start = time.perf_counter()
            for i in range(0, len(files), 32):
                direct.store_files([f.read_bytes() for f in files[i:i + 32]])
            upload_direct.append(time.perf_counter() - start)
            cpu_direct_pacs.append(cpu_seconds(opid) - pacs_cpu)
            # Direct, the common client idiom: parse each file, then dicomweb-client store_instances.
            delete_all(orthanc)
            start = time.perf_counter()
            datasets = [pydicom.dcmread(f) for f in files]
            for i in range(0, len(datasets), 32):
                DICOMwebClient(orthanc.dicomweb_url).store_instances(datasets[i:i + 32])
            upload_parsed.append(time.perf_counter() - start)
            delete_all(orthanc)
            pacs_cpu, web_cpu = cpu_seconds(opid), cpu_seconds(*worker_pids)
            start = time.perf_counter()
            response = session.post(f"{base}/api/studies/upload",
                                    files=[("files", (name, data, "application/dicom")) for name, data in payload])
            upload_portal.append(time.perf_counter() - start)
            cpu_portal_pacs.append(cpu_seconds(opid) - pacs_cpu)
            cpu_portal_web.append(cpu_seconds(*worker_pids) - web_cpu)
            assert response.status_code == 201, response.text[:500]

        body = response.json()
        study, series = body["stored"][0]["study_uid"], body["stored"][0]["series_uid"]
        sops = [s["sop_instance_uid"] for s in body["stored"]]
        paths = [f"studies/{study}/series/{series}/instances/{sop}/frames/1" for sop in sops]

        def fetch_all(root: str, sess: requests.Session) -> int:
            def one(path: str) -> int:
                r = sess.get(f"{root}/{path}", headers={"Accept": FRAME_ACCEPT})
                r.raise_for_status()
                return len(r.content)
            with ThreadPoolExecutor(args.threads) as pool:
                return sum(pool.map(one, paths))

        plain = requests.Session()
        fetch_portal, fetch_direct = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            nbytes = fetch_all(orthanc.dicomweb_url, plain)
            fetch_direct.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert fetch_all(f"{base}/dicomweb", session) == nbytes
            fetch_portal.append(time.perf_counter() - start)

        up_d, up_p = statistics.median(upload_direct), statistics.median(upload_portal)
        up_parsed = statistics.median(upload_parsed)
        fe_d, fe_p = statistics.median(fetch_direct), statistics.median(fetch_portal)
        print(f"gunicorn workers: {workers} x 8 threads" + (
            f"; Orthanc pinned to CPU {os.cpu_count() - 1}, portal and client to the others" if args.pacs_core else ""))
        print(f"machine: {os.cpu_count()} cores; {len(files)} slices, {total_mb:.1f} MB; rounds={args.rounds}")
        print(f"upload  direct STOW, file bytes        : {up_d:6.2f} s  ({total_mb / up_d:6.1f} MB/s)")
        print(f"upload  direct STOW, parse+store_instances: {up_parsed:6.2f} s  ({total_mb / up_parsed:6.1f} MB/s)")
        print(f"upload  through portal (validate, stage, STOW, index, sign): {up_p:6.2f} s  "
              f"({total_mb / up_p:6.1f} MB/s)")
        print(f"upload  ratio portal / direct file-bytes STOW: {up_d / up_p:.2f}  (target >= 0.8); "
              f"per round {paired(upload_direct, upload_portal)}")
        print(f"upload  CPU per upload (median): Orthanc {statistics.median(cpu_direct_pacs):.2f} s direct, "
              f"{statistics.median(cpu_portal_pacs):.2f} s via portal; "
              f"portal workers {statistics.median(cpu_portal_web):.2f} s")
        print(f"upload  ratio portal / direct parse+store_instances: {up_parsed / up_p:.2f}")
        print(f"frames  direct WADO-RS   : {fe_d:6.2f} s  ({len(paths) / fe_d:6.1f} frames/s, {args.threads} threads)")
        print(f"frames  through proxy    : {fe_p:6.2f} s  ({len(paths) / fe_p:6.1f} frames/s)")
        print(f"frames  ratio proxy/direct throughput: {fe_d / fe_p:.2f}  (target >= 0.8); "
              f"per round {paired(fetch_direct, fetch_portal)}")
        print(f"proxy worker peak RSS (whole Django process, incl. upload handling): {peak_rss_mb(server.pid):.0f} MB")
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        orthanc.stop()


if __name__ == "__main__":
    main()
