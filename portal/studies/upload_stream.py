"""Hand each file of a multipart upload to the ingest pipeline the moment its last byte has arrived.

Django parses the whole request body before a view can read `request.FILES`: for a 50 MB series that is
time in which the PACS could already be storing the first files. Here a parser thread reads the body
while the request thread validates, stages and stores what has arrived (`services.study_upload`).

Only works if nothing read the body before the view: the upload view therefore checks CSRF from the
header alone (`HeaderCsrfSessionAuthentication`). Token clients never send the body to CSRF anyway.
"""

import io
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, QueryDict
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

_END = object()
QUEUED_FILES = 32  # files received but not yet ingested: bounds memory when the PACS is slower than the network


class _WithoutBody:
    """The request as the CSRF check sees it: no form fields, so the token is read from the header."""

    POST = QueryDict()

    def __init__(self, request: HttpRequest) -> None:
        self._wrapped = request

    def __getattr__(self, name: str):
        return getattr(self._wrapped, name)


class HeaderCsrfSessionAuthentication(SessionAuthentication):
    """Session auth whose CSRF token must come in the X-CSRFToken header (the portal's front end sends it).

    Django's check looks for a `csrfmiddlewaretoken` form field first, which parses a whole upload before
    the view starts; skipping that lets the upload stream."""

    def enforce_csrf(self, request: Request) -> None:
        super().enforce_csrf(_WithoutBody(request._request))


class HandOverUploadHandler(FileUploadHandler):
    """Hands each file over the moment it is complete. Returns nothing to Django, so request.FILES does not
    pin every file until the end. A file is kept as its received chunks and joined once (one copy instead
    of a growing buffer plus a read); past FILE_UPLOAD_MAX_MEMORY_SIZE it spills to a temporary file."""

    # chunk_size stays Django's 64 KiB: larger chunks measured slower in the multipart parser.

    def __init__(self, request: HttpRequest, field: str, hand_over: Callable[[UploadedFile], None]) -> None:
        super().__init__(request)
        self.field = field
        self.hand_over = hand_over
        self.receiving = False
        self.chunks: list[bytes] = []
        self.received = 0
        self.spilled: IO[bytes] | None = None
        self.cut_off: tuple[str, int] | None = None  # (file name, bytes received) of a file the body ended in

    def new_file(self, field_name, *args, **kwargs) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.receiving = field_name == self.field
        self.chunks, self.received, self.spilled = [], 0, None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if not self.receiving:
            return
        self.received += len(raw_data)
        if self.spilled is None and self.received > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            # Closed by StreamedUpload once ingested (or by upload_interrupted).
            self.spilled = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)  # noqa: SIM115
            self.spilled.writelines(self.chunks)
            self.chunks = []
        if self.spilled is not None:
            self.spilled.write(raw_data)
        else:
            self.chunks.append(raw_data)

    def file_complete(self, file_size: int) -> None:
        if not self.receiving:
            return
        self.receiving = False
        file = self.spilled if self.spilled is not None else io.BytesIO(b"".join(self.chunks))
        file.seek(0)
        self.chunks, self.spilled = [], None
        self.hand_over(UploadedFile(file, self.file_name, self.content_type, file_size, self.charset,
                                    self.content_type_extra))

    def upload_interrupted(self) -> None:
        if self.receiving:
            self.cut_off = (self.file_name, self.received)
            if self.spilled is not None:
                self.spilled.close()
            self.chunks, self.spilled, self.receiving = [], None, False


class StreamedUpload:
    """Iterate over the files of `field` while the body is still arriving. After iteration, `errors` says
    why the body ended early (cut off, malformed, too many files); the complete files before that were yielded."""

    def __init__(self, request: Request, field: str = "files") -> None:
        self.request = request
        self.field = field
        self.errors: list[dict] = []

    @staticmethod
    def possible(request: Request) -> bool:
        return not hasattr(request._request, "_files") and not request._request._read_started

    def __iter__(self) -> Iterator[UploadedFile]:
        arrived: queue.Queue = queue.Queue(maxsize=QUEUED_FILES)
        handler = HandOverUploadHandler(self.request._request, self.field, arrived.put)
        self.request._request.upload_handlers = [handler]

        def parse() -> None:
            try:
                self.request.FILES  # noqa: B018 - DRF parses the body here, through the handler above
            except Exception as exc:  # the client went away, a malformed body, too many files...
                self.errors.append({"file": "(request body)", "reason": (
                    f"the upload ended early ({type(exc).__name__}: {exc}); "
                    "the complete files received before that were processed")})
            finally:
                if handler.cut_off:
                    name, received = handler.cut_off
                    self.errors.append({"file": name, "reason": (
                        f"cut off: the request body ended after {received} bytes of this file; upload it again")})
                arrived.put(_END)

        parser = threading.Thread(target=parse, name="upload-parser", daemon=True)
        parser.start()
        item = None
        try:
            while (item := arrived.get()) is not _END:
                try:
                    yield item
                finally:
                    item.close()
        finally:
            while item is not _END:  # the consumer stopped early: let the parser finish, close what it sends
                if (item := arrived.get()) is not _END:
                    item.close()
            parser.join()
