"""Steps and launch settings the browser tests (and scripts/bench_viewer.py) share."""

import os

from tests.conftest import TEST_PASSWORD as PASSWORD

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Root in a container needs --no-sandbox; the rest keep Chromium off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The viewer's current slice_index (0-based), as the slice read-out exposes it.
SLICE_INDEX_JS = "document.querySelector('[data-testid=slice-index]')?.dataset.sliceIndex"


def log_in(page, username: str, password: str = PASSWORD) -> None:
    """Fill Django's login form (the page must be on it, e.g. after a redirect)."""
    page.wait_for_url(lambda url: "/accounts/login/" in url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form [type=submit]").first.click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def current_slice(page) -> int:
    return int(page.get_by_test_id("slice-index").get_attribute("data-slice-index"))
