"""One answer for a PACS that is down or refuses, whichever API view met it (DRF's EXCEPTION_HANDLER)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from portal.studies.dicomweb import PacsRejected, PacsUnavailable

RETRY_AFTER_S = "30"


def exception_handler(exc: Exception, context: dict) -> Response | None:
    # As DRF's own handler does: where ATOMIC_REQUESTS is on, the request's transaction is rolled back.
    if isinstance(exc, PacsUnavailable):
        set_rollback()
        return Response({"detail": str(exc), "retry": True}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": RETRY_AFTER_S})  # fmt: skip
    if isinstance(exc, PacsRejected):
        set_rollback()
        return Response({"detail": str(exc), "retry": False},
                        status=status.HTTP_502_BAD_GATEWAY)  # fmt: skip
    return drf_exception_handler(exc, context)
