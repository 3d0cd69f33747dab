"""Automatic logoff: a browser session ends SESSION_COOKIE_AGE after its last use; using it moves the end."""

import time

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_session_ends_after_idle_time_and_use_keeps_it(user_factory, settings):
    settings.SESSION_COOKIE_AGE = 3  # seconds, for the test (SESSION_IDLE_MINUTES in production)
    client = Client()
    client.force_login(user_factory("annotator"))
    for _ in range(3):  # 4.5 s in all, longer than the idle time, but never 3 s idle
        time.sleep(1.5)
        assert client.get("/api/me").status_code == 200
    time.sleep(3.5)
    assert client.get("/api/me").status_code == 401  # idle too long: signed out
    assert client.get("/studies").status_code == 302  # the app's pages send it to the sign-in form


def test_the_default_idle_time_is_thirty_minutes(settings):
    assert settings.SESSION_IDLE_MINUTES == 30 and settings.SESSION_COOKIE_AGE == 1800
