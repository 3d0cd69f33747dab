import time

from django.conf import settings


class CrossOriginIsolationMiddleware:
    """COOP/COEP on every response: Cornerstone's decode workers need SharedArrayBuffer,
    which browsers only enable on cross-origin-isolated pages. Everything is same-origin here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Embedder-Policy", "require-corp")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class IdleLogoffMiddleware:
    """Automatic logoff: a browser session ends SESSION_COOKIE_AGE (SESSION_IDLE_MINUTES) after its last use.
    Each use moves the end forward by saving the session, at most once a minute so that a viewer's stream of
    requests does not write the session each time. The frame proxy (/dicomweb/) keeps its own short cache of
    the caller and is left out: looking at the session there would cost a query per frame."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and not request.path.startswith("/dicomweb/") and session.session_key:
            now = int(time.time())
            if now - session.get("_last_use", 0) >= min(60, settings.SESSION_COOKIE_AGE // 10):
                session["_last_use"] = now  # modified: saved with a new expiry, and the cookie sent again
        return self.get_response(request)
