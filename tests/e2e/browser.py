"""Steps the browser tests share."""

PASSWORD = "pw-Secret-123"
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
