"""A signed-in person changes their password: Django's form and validators; their other sessions are signed
out, their API token revoked, the change audited; this session stays signed in."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from portal.accounts.models import AuditEvent
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-new-passphrase-2026"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_password_change_signs_out_other_sessions_and_revokes_the_api_token(user_factory):
    user = user_factory("clinician")
    token = Token.objects.create(user=user)
    here, elsewhere = signed_in(user), signed_in(user)
    url = "/accounts/password/"

    wrong = here.post(url, {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert wrong.status_code == 200 and b'data-testid="old_password-errors"' in wrong.content
    weak = here.post(url, {"old_password": TEST_PASSWORD, "new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 200 and b"too short" in weak.content
    assert not AuditEvent.objects.filter(action="account.password_change").exists()

    done = here.post(url, {"old_password": TEST_PASSWORD, "new_password1": NEW_PASSWORD,
                           "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/password/done/"
    assert here.get("/api/me").status_code == 200  # this session stays signed in
    assert elsewhere.get("/api/me").status_code == 401  # the other one is signed out
    assert not Token.objects.filter(key=token.key).exists()
    assert Client().get("/api/me", headers={"Authorization": f"Token {token.key}"}).status_code == 401
    event = AuditEvent.objects.get(action="account.password_change")
    assert event.actor == user and event.details == {"tokens_revoked": 1, "via": "change"}
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) and not user.check_password(TEST_PASSWORD)


def test_the_password_page_asks_to_sign_in_first(client):
    response = client.get("/accounts/password/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
