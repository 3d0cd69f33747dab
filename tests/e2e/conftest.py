"""Browser fixtures: headless Debian Chromium driven by Playwright's sync API."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS

# Playwright's sync API keeps an asyncio loop on the main thread; the ORM calls the tests
# make in between browser steps are ordinary blocking calls, so Django's guard is lifted.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(__file__).resolve().parents[2]
FRONTEND_INDEX = REPO / "frontend" / "dist" / "index.html"
ARTIFACTS = REPO / "test-artifacts"


def pytest_collection_modifyitems(items):
    if FRONTEND_INDEX.exists():
        return
    reason = f"front end not built ({FRONTEND_INDEX} missing): cd frontend && npm ci && npm run build"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="package")
def browser() -> Iterator["Browser"]:  # noqa: F821
    # Package scope: Playwright's sync API is stopped once tests/e2e is done, so browser tests elsewhere
    # (tests/claims/test_e2e_claim.py starts its own) can run later in the same session.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session", autouse=True)
def _static_files_cross_origin_isolated():
    """The test server answers /static/ from its own handler, outside the middleware stack, so
    the COOP/COEP headers the portal adds to every response (whitenoise runs inside that middleware
    in production) would be missing, and Chromium refuses the decode worker
    (net::ERR_BLOCKED_BY_RESPONSE): run the portal's own middleware over those responses too."""
    from csp.middleware import CSPMiddleware
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    from portal.middleware import CrossOriginIsolationMiddleware

    original = StaticFilesHandler.serve

    def serve(self, request):
        response = original(self, request)
        # As in production, the Content-Security-Policy reaches static files (the decode worker's script) too.
        return CSPMiddleware(CrossOriginIsolationMiddleware(lambda _request: response))(request)

    StaticFilesHandler.serve = serve
    yield
    StaticFilesHandler.serve = original


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request) -> Iterator["Page"]:  # noqa: F821
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.console_messages = messages
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    # Let the page's requests in flight finish (panels that load themselves, frames) before the test database
    # is flushed: a live-server thread still writing (an access-log row) deadlocked the flush's TRUNCATE once.
    # Pages that poll never go quiet; the wait is bounded.
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_load_state("networkidle", timeout=5_000)
    # A blocked script, worker, image or request may not break the step a test checks: fail on any.
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # Leave what the browser showed and said, for whoever reads the CI log.
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"))
        (ARTIFACTS / f"{request.node.name}-console.txt").write_text("\n".join(messages))
    context.close()


@pytest.fixture
def screenshot(page, request):
    """screenshot(name): saves test-artifacts/<test>-<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
