"""The Swagger UI at /api/docs/ renders the schema from the portal's own static files: no request leaves the
host (no CDN next to a session, works offline, passes COEP)."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_without_leaving_the_host(live_server, page):
    outside = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None)
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock-summary-path").first.wait_for(timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/studies/upload").count() >= 1
    assert outside == []
