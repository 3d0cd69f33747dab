"""The claims pages (rendered by Django) carry the single-page app's header: the same links per role, the
same name and role, the same log-out, so an insurer or admin moving between them sees one portal."""

from urllib.parse import urlparse

import pytest

from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _header(page) -> tuple[list[tuple[str, str]], str]:
    page.get_by_test_id("whoami").wait_for()
    links = page.locator("header nav a")
    pairs = [(links.nth(i).inner_text(), urlparse(links.nth(i).get_attribute("href")).path.rstrip("/"))
             for i in range(links.count())]  # fmt: skip
    return pairs, page.get_by_test_id("whoami").inner_text()


@pytest.mark.parametrize("role, spa_page", [("insurer", "/shares/open"), ("admin", "/studies")])
def test_claims_pages_have_the_app_header(role, spa_page, live_server, user_factory, page):
    user = user_factory(role)
    page.goto(f"{live_server.url}{spa_page}")
    log_in(page, user.username)
    spa = _header(page)
    page.goto(f"{live_server.url}/claims/")
    claims = _header(page)
    assert claims == spa and ("Claims", "/claims") in claims[0] and claims[1] == f"{user.username} · {role}"
    assert page.get_by_test_id("nav-claims").get_attribute("aria-current") == "page"
    # Both headers lead to the password page, which has the same header again.
    page.get_by_test_id("account-password").click()
    page.get_by_test_id("password-form").wait_for()
    assert _header(page)[0] == spa[0]
    page.get_by_test_id("logout").click()
    page.wait_for_url(lambda url: "/claims" not in url)
