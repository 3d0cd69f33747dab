"""The main navigation of the server-rendered pages (claims): the same links per role as the single-page
app's header, frontend/src/nav.ts (tests/e2e/test_claims_header.py checks that the two agree)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from portal.accounts.models import Role
from portal.accounts.services import primary_role

UPLOAD, STUDIES, QUEUE = ("Upload", "/upload"), ("Studies", "/studies"), ("Queue", "/queue")
MODELS, SHARES = ("Models", "/models"), ("Shares", "/shares")
CLAIMS, OPEN_SHARE = ("Claims", "/claims/"), ("Open share", "/shares/open")
ADMIN = ("Admin", "/admin/")  # Django's admin: people and their roles (groups), the audit log

NAV_BY_ROLE: dict[str, list[tuple[str, str]]] = {
    Role.CLINICIAN: [UPLOAD, STUDIES, SHARES],
    Role.ADMIN: [UPLOAD, STUDIES, QUEUE, MODELS, SHARES, CLAIMS, ADMIN],
    Role.ANNOTATOR: [STUDIES, QUEUE],
    Role.EXPERT: [STUDIES, QUEUE, MODELS],
    Role.INSURER: [CLAIMS, OPEN_SHARE],
}


def navigation(request: HttpRequest) -> dict:
    """Template context processor: ``portal_nav`` (label, href, test id, current), ``portal_role`` and
    ``idle_logoff_s`` (the server-rendered pages sign out on the screen after it, as the app's pages do)."""
    role = primary_role(request.user) if hasattr(request, "user") else None
    links = [{"label": label, "href": href, "testid": f"nav-{label.lower().replace(' ', '-')}",
              "current": request.path.startswith(href)} for label, href in NAV_BY_ROLE.get(role, [])]  # fmt: skip
    return {"portal_nav": links, "portal_role": role, "idle_logoff_s": settings.SESSION_COOKIE_AGE}
