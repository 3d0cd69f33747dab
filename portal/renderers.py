"""Content negotiation for endpoints that answer with a file (PNG, CSV, DICOM, archives)."""

from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer
from rest_framework.settings import api_settings


class _DownloadRenderer(BaseRenderer):
    """Accepts ``Accept: <the file's type>``: without a renderer for it DRF answers 406 before the view runs.
    The file itself leaves as the view's own HttpResponse; only an error (a dict) is rendered here, as JSON."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data).encode()


def download_renderers(*media_types: str) -> list[type[BaseRenderer]]:
    """The default renderers (JSON first, so ``*/*`` still gets JSON errors) plus one per file type."""
    extra = [type(f"{t.split('/')[1].title().replace('-', '')}DownloadRenderer", (_DownloadRenderer,),
                  {"media_type": t, "format": t.split("/")[1]}) for t in media_types]  # fmt: skip
    return [*api_settings.DEFAULT_RENDERER_CLASSES, *extra]
