"""Automatic logoff in the browser: a page left without mouse or keyboard signs out and shows the sign-in form
(which brings the person back to the same page); a page in use stays, on the screen and on the server."""

import time

import pytest

from tests.e2e.browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_idle_page_signs_out_and_a_used_one_stays(live_server, user_factory, page, settings):
    settings.SESSION_COOKIE_AGE = 4  # seconds, for the test (SESSION_IDLE_MINUTES in production)
    user = user_factory("clinician")
    page.goto(f"{live_server.url}/studies")
    log_in(page, user.username)
    page.get_by_test_id("study-filters").wait_for()
    started = time.monotonic()
    while time.monotonic() - started < 6:  # longer than the idle time, in use all along
        page.mouse.move(100 + int(time.monotonic() * 10) % 200, 200)
        page.wait_for_timeout(500)
    assert "/studies" in page.url and "/accounts/login/" not in page.url
    assert page.evaluate("fetch('/api/me').then((r) => r.status)") == 200  # and the server kept the session

    page.wait_for_url(lambda url: "/accounts/login/" in url, timeout=10_000)  # left alone: signed out
    assert "next=%2Fstudies" in page.url
    page.goto(f"{live_server.url}/studies")  # the session is gone on the server too
    page.wait_for_url(lambda url: "/accounts/login/" in url)
    log_in(page, user.username)
    page.get_by_test_id("study-filters").wait_for()


def test_an_upload_without_clicks_is_not_cut_by_the_idle_logoff(live_server, orthanc, ct_files, user_factory, page,
                                                                 settings):
    settings.SESSION_COOKIE_AGE = 4
    user = user_factory("clinician")
    page.goto(f"{live_server.url}/upload")
    log_in(page, user.username)
    # The upload must outlast the idle time: 40 files (20 MB) sent at 3 MB/s. Few files, so that handing them
    # to a loaded CI browser (which blocks its page meanwhile) stays well inside the idle time.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 3 * 1024 * 1024})
    files = ct_files[:40]
    page.get_by_test_id("file-input").set_input_files([str(p) for p in files])
    started = time.monotonic()
    page.get_by_test_id("upload-start").click()  # from here on only the upload holds the session
    page.get_by_test_id("upload-done").wait_for(timeout=180_000)
    assert time.monotonic() - started > 4, "the upload must outlast the idle time for this test to mean anything"
    assert page.locator("[data-testid=file-row][data-state=stored]").count() == len(files)
    page.wait_for_url(lambda url: "/accounts/login/" in url, timeout=10_000)  # idle once it is done


def test_the_server_rendered_claims_pages_sign_out_too(live_server, user_factory, page, settings):
    settings.SESSION_COOKIE_AGE = 3
    insurer = user_factory("insurer")
    page.goto(f"{live_server.url}/claims/")
    log_in(page, insurer.username)
    page.get_by_role("heading", name="Claims").first.wait_for()
    started = time.monotonic()
    while time.monotonic() - started < 5:  # in use for longer than the idle time: stays, on the server too
        page.mouse.move(100 + int(time.monotonic() * 10) % 200, 200)
        page.wait_for_timeout(400)
    assert page.url.endswith("/claims/")
    assert page.evaluate("fetch('/api/me').then((r) => r.status)") == 200
    page.wait_for_url(lambda url: "/accounts/login/" in url, timeout=10_000)  # left alone: signed out
    assert "next=%2Fclaims%2F" in page.url
    assert page.evaluate("fetch('/api/me').then((r) => r.status)") == 401
