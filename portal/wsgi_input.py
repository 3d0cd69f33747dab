"""Read large request bodies from the WSGI server in big pieces.

Django's multipart parser asks for 64 KiB at a time. gunicorn (27) answers each such read from a read-ahead
buffer that it copies whole on every call; on a loopback upload its recv() returns 1 MiB at a time (strace),
so receiving the 52 MB CT series cost about 0.24 s of CPU under the GIL. A 512 KiB ``io.BufferedReader`` in
front of ``wsgi.input`` asks the server for 512 KiB at a time and serves the parser's small reads from its own
buffer: about 0.06-0.13 s (``scripts/bench_body_reads.py``; 512 KiB rather than 1 MiB because it also stays
close to the unwrapped cost when recv() returns only 128 KiB).
"""

import io
from collections.abc import Callable, Iterable
from typing import Any

BODY_READ_SIZE = 512 * 1024


class _BodyInput(io.RawIOBase):
    """``wsgi.input`` as a raw stream that never reads past CONTENT_LENGTH (a keep-alive socket would block)."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        data = self._stream.read(min(len(buffer), self._left))
        n = len(data)
        buffer[:n] = data
        self._left -= n
        return n


def large_body_reads(app: Callable) -> Callable:
    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > BODY_READ_SIZE:
            environ["wsgi.input"] = io.BufferedReader(_BodyInput(environ["wsgi.input"], length), BODY_READ_SIZE)
        return app(environ, start_response)

    return application
