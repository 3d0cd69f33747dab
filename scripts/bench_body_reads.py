"""Benchmark: CPU to receive and parse a 99-file multipart upload (52 MB) through gunicorn's body reader,
with and without portal.wsgi_input's BufferedReader, for two socket read sizes.

A loopback upload fills the kernel buffer, so gunicorn's recv() returns 1 MiB at a time (seen with strace on
the benchmark server, with and without the wrapper); gunicorn then copies its whole read-ahead buffer on each
of Django's 64 KiB reads. The socket is simulated (recv returns up to 128 KiB or 1 MiB) so that only this
process's CPU is measured; the parser and upload handler are the portal's. glibc's allocator makes these
figures vary by up to 2x between runs (large buffers are mapped and unmapped): compare the columns of one run.

    .venv/bin/python scripts/bench_body_reads.py [--repeats 15]
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django  # noqa: E402

django.setup()
from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from gunicorn.http.body import Body, LengthReader  # noqa: E402
from gunicorn.http.unreader import SocketUnreader  # noqa: E402

from portal.studies.upload_stream import HandOverUploadHandler  # noqa: E402
from portal.wsgi_input import BODY_READ_SIZE, _BodyInput  # noqa: E402

CT_DIR = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")) / "cptac-lscc-C3N-00247-chest-ct"
BOUNDARY = "portal-bench-boundary"


class LoopbackSocket:
    def __init__(self, data: bytes, most: int) -> None:
        self.data, self.pos, self.most = memoryview(data), 0, most

    def recv(self, size: int) -> bytes:
        size = min(size, self.most, len(self.data) - self.pos)
        chunk = bytes(self.data[self.pos:self.pos + size])
        self.pos += size
        return chunk


def multipart(files: list[Path]) -> bytes:
    parts = []
    for f in files:
        parts += [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{f.name}"\r\n'
                  "Content-Type: application/dicom\r\n\r\n".encode(), f.read_bytes(), b"\r\n"]
    return b"".join([*parts, f"--{BOUNDARY}--\r\n".encode()])


def receive(body: bytes, most: int, buffered: bool) -> float:
    stream = Body(LengthReader(SocketUnreader(LoopbackSocket(body, most)), len(body)))
    if buffered:
        stream = io.BufferedReader(_BodyInput(stream, len(body)), BODY_READ_SIZE)
    request = WSGIRequest({
        "REQUEST_METHOD": "POST", "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": stream, "PATH_INFO": "/", "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "wsgi.url_scheme": "http"})
    sizes: list[int] = []
    request.upload_handlers = [HandOverUploadHandler(request, "files", lambda f: sizes.append(f.size))]
    start = time.process_time()
    request.FILES  # noqa: B018 - parses the body through the handler
    elapsed = time.process_time() - start
    assert len(sizes) == 99, sizes
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15, help="the minimum of this many runs is printed")
    args = parser.parse_args()
    body = multipart(sorted(CT_DIR.glob("*.dcm")))
    print(f"{len(body) / 1e6:.1f} MB multipart body, 99 files; CPU seconds, minimum of {args.repeats} runs")
    for most in (128 * 1024, 1024 * 1024):
        plain = min(receive(body, most, False) for _ in range(args.repeats))
        buffered = min(receive(body, most, True) for _ in range(args.repeats))
        print(f"recv up to {most // 1024:5d} KiB: gunicorn body as is {plain * 1000:5.0f} ms, "
              f"through the {BODY_READ_SIZE // 1024} KiB BufferedReader {buffered * 1000:5.0f} ms")


if __name__ == "__main__":
    main()
