"""API clients get JSON errors, also where no view ran (an unmatched URL)."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_api_url_that_matches_no_endpoint_is_a_json_404(api_client, user_factory):
    client = api_client(user_factory("admin"))
    for method, url in [("get", "/api/labels/abc"), ("delete", "/api/labels/-1"), ("get", "/api/nothing-here")]:
        r = getattr(client, method)(url)
        assert r.status_code == 404 and r["Content-Type"] == "application/json", (url, r.content[:80])
        assert r.json()["detail"] == f"no API endpoint at {url}"


def test_a_page_url_that_matches_nothing_stays_an_html_404(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")



def test_the_html_404_has_the_portal_header_and_a_way_home(client, user_factory):
    client.force_login(user_factory("insurer"))
    r = client.get("/review")
    page = r.content.decode()
    assert r.status_code == 404 and 'data-testid="not-found"' in page and "<code>/review</code>" in page
    assert 'data-testid="nav-open-share"' in page and 'href="/"' in page
