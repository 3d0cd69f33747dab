"""A tab opened before a deploy: the page chunks it asks for were replaced by the deploy (their names carry a
content hash, the old files are gone). The portal loads the new version once instead of showing an error; a
file that stays missing shows the error rather than reloading for ever."""

import pytest

from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_page_chunk_gone_after_a_deploy_loads_the_new_version(live_server, user_factory, page):
    page.goto(f"{live_server.url}/upload")
    log_in(page, user_factory("clinician").username)
    page.get_by_test_id("nav-studies").wait_for()
    gone: list[str] = []

    def deployed_away(route):  # the one fault here: the file the old page names is no longer on the server
        gone.append(route.request.url)
        route.fulfill(status=404, body="Not Found")

    page.route("**/static/app/assets/studiesPage-*.js", deployed_away)
    with page.expect_navigation():  # the reload
        page.get_by_test_id("nav-studies").click()
    page.unroute("**/static/app/assets/studiesPage-*.js")
    page.get_by_test_id("studies-table").wait_for()
    assert len(gone) == 1 and page.url.endswith("/studies")

    # Another chunk missing within the minute: the error, not a loop of reloads.
    page.route("**/static/app/assets/uploadPage-*.js", deployed_away)
    page.get_by_test_id("nav-upload").click()
    page.get_by_test_id("page-error").wait_for()
    page.wait_for_timeout(500)
    assert page.url.endswith("/upload") and len(gone) == 2
