from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import FileResponse, HttpResponse, JsonResponse
from django.urls import Resolver404, include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.views import obtain_auth_token

from portal.accounts.views import PasswordChangeView, PasswordResetConfirmView, PasswordResetView
from portal.studies.views import dicomweb_proxy


@ensure_csrf_cookie
def spa(request, *args, **kwargs):
    """The front end's shell for every page route; the SPA routes on the client."""
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    index = settings.FRONTEND_DIST / "index.html"
    if not index.exists():
        return HttpResponse("The front end is not built: run `make frontend` (npm ci && npm run build in frontend/).",
                            status=503, content_type="text/plain")
    return FileResponse(index.open("rb"), content_type="text/html")


API_PREFIXES = ("/api/", "/dicomweb/")


def not_found(request, exception):
    """API clients get JSON, not Django's HTML page, also for a URL that matches no endpoint."""
    if not request.path.startswith(API_PREFIXES):
        return defaults.page_not_found(request, exception)
    detail = f"no API endpoint at {request.path}" if isinstance(exception, Resolver404) else str(exception)
    return JsonResponse({"detail": detail or "not found"}, status=404)


def server_error(request):
    if not request.path.startswith(API_PREFIXES):
        return defaults.server_error(request)
    return JsonResponse({"detail": "internal server error; it was logged"}, status=500)


handler404, handler500 = not_found, server_error


def healthz(request):
    """Liveness: the process answers."""
    return HttpResponse("ok", content_type="text/plain")


def readyz(request):
    """Readiness (database, PACS, broker; scoring workers reported): 200 when ready, else 503."""
    from portal.health import readiness

    report = readiness()
    return JsonResponse(report, status=200 if report["ready"] else 503, headers={"Cache-Control": "no-store"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/password/reset/", PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(
        template_name="registration/password_reset_sent.html",
        extra_context={"timeout_hours": settings.PASSWORD_RESET_TIMEOUT // 3600}), name="password_reset_done"),
    path("accounts/password/reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(
        template_name="registration/password_reset_finished.html"), name="password_reset_complete"),
    path("api/auth/token", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),  # no inline JS (CSP)
    path("api/", include("portal.studies.urls")),
    re_path(r"^dicomweb/(?P<path>.+)$", dicomweb_proxy, name="dicomweb-proxy"),
    path("healthz", healthz),
    path("readyz", readyz),
]
if "annotations" in settings.INSTALLED_APPS:
    urlpatterns.append(path("api/", include("annotations.urls")))
if "portal.claims" in settings.INSTALLED_APPS:
    urlpatterns.append(path("", include("portal.claims.urls")))
# Client-side page routes (frontend/src/router.ts): each answers with the SPA shell.
SPA_ROUTES = r"^(?:|upload|studies(?:/[^/]+)?|queue|models|viewer/.*|shares(?:/open(?:/[^/]+)?)?)/?$"
urlpatterns.append(re_path(SPA_ROUTES, spa, name="spa"))
