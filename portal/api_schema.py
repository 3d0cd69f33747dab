"""Small helpers for describing function-based API views to drf-spectacular (OpenAPI at /api/schema/)."""

from __future__ import annotations

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

DETAIL = inline_serializer("Detail", {"detail": serializers.CharField()})


def paged(item: type[serializers.Serializer]) -> serializers.Serializer:
    """The page PageNumberPagination answers: count, next/previous links, results."""
    return inline_serializer(f"Paginated{item.__name__.removesuffix('Serializer')}List", {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    })  # fmt: skip


def errors(*codes: int, description: str = "") -> dict[int, OpenApiResponse]:
    """`{"detail": ...}` at the given status codes; for 400 also `{field: [message, ...]}`."""
    return {code: OpenApiResponse(OpenApiTypes.OBJECT if code == 400 else DETAIL,
                                  description=description or ("Invalid input: {field: [message]} or {detail}."
                                                              if code == 400 else ""))
            for code in codes}  # fmt: skip


# What portal.api_errors answers for a PACS failure met by any view.
PACS_ERRORS = {
    **errors(503, description="The image archive (PACS) is unreachable; `retry` is true, retry after Retry-After."),
    **errors(502, description="The image archive (PACS) refused the request (e.g. it no longer holds the images)."),
}


def binary(media_type: str, description: str) -> dict[tuple[int, str], OpenApiResponse]:
    return {(200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description)}


# One class for every use: the schema generator refuses two components of one name.
_FILE_ERROR = type(inline_serializer("FileError", {"file": serializers.CharField(), "reason": serializers.CharField()}))


def file_errors() -> serializers.Serializer:
    """The per-file ``errors`` list of an upload: which file, and why it was refused."""
    return _FILE_ERROR(many=True)


class HeaderCsrfSessionScheme(SessionScheme):
    """The upload's session authentication (CSRF token from the header, body left unread) is a session cookie."""

    target_class = "portal.studies.upload_stream.HeaderCsrfSessionAuthentication"
    name = "headerCsrfCookieAuth"


def _detail(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}}}


def document_common_errors(result: dict, generator, request, public: bool) -> dict:  # noqa: ANN001
    """Postprocessing hook for the answers every view shares:
    - an operation that needs credentials answers 401 `{detail}` without them (TokenAuthentication comes
      first in portal.settings, so DRF says "log in", not "forbidden");
    - a paginated list answers 404 `{detail: "Invalid page."}` for a page past its end."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            security = operation.get("security", [])
            if security and {} not in security:
                operation["responses"].setdefault(
                    "401", _detail("No valid credentials: log in, or send `Authorization: Token <key>`."))
            if any(p.get("name") == "page" and p.get("in") == "query" for p in operation.get("parameters", [])):
                operation["responses"].setdefault(
                    "404", _detail("`page` is past the last page (`{\"detail\": \"Invalid page.\"}`)."))
    return result
