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
