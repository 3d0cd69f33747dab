"""The WSGI wrapper that reads large bodies 1 MiB at a time hands Django exactly the body, never more."""

import io

from django.core.handlers.wsgi import LimitedStream

from portal.wsgi_input import BODY_READ_SIZE, large_body_reads


class CountingStream(io.BytesIO):
    """A server's wsgi.input: the body followed by bytes of the next request on a keep-alive connection."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def run(body: bytes, trailing: bytes = b"NEXT REQUEST") -> tuple[bytes, CountingStream, object]:
    stream = CountingStream(body + trailing)
    seen = {}

    def app(environ, start_response):
        reader = environ["wsgi.input"]
        seen["input"] = reader
        limited, parts = LimitedStream(reader, int(environ["CONTENT_LENGTH"])), []  # as Django reads the body
        while part := limited.read(64 * 1024):  # the multipart parser's chunk size
            parts.append(part)
        seen["body"] = b"".join(parts)
        return [b""]

    large_body_reads(app)({"CONTENT_LENGTH": str(len(body)), "wsgi.input": stream}, lambda *a: None)
    return seen["body"], stream, seen["input"]


def test_large_body_is_read_in_big_pieces_and_never_past_its_length():
    body = bytes(range(256)) * (5 * BODY_READ_SIZE // 256 + 77)
    received, stream, reader = run(body)
    assert received == body
    assert stream.read() == b"NEXT REQUEST"  # the next request's bytes are left where they were
    assert reader is not stream and max(stream.reads) == BODY_READ_SIZE
    assert len(stream.reads) <= len(body) // BODY_READ_SIZE + 2  # not 64 KiB at a time


def test_small_body_keeps_the_servers_stream():
    received, stream, reader = run(b"x" * 1000)
    assert received == b"x" * 1000 and reader is stream and stream.reads == [1000]
