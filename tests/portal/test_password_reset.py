"""Someone who forgot their password (or locked themselves out) gets a one-time link by email and chooses a new
one: their API token is revoked, the failed sign-ins against them are cleared, both steps are audited; the page
reads the same for an address with no account."""

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.authtoken.models import Token

from portal.accounts.models import AuditEvent
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-new-passphrase-2026"


def _sign_in(client: Client, username: str, password: str) -> int:
    return client.post("/accounts/login/", {"username": username, "password": password}).status_code


def test_a_locked_out_person_resets_their_password_by_email(user_factory, settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = user_factory("annotator")
    user.email = "reader@example.org"
    user.save()
    token = Token.objects.create(user=user)
    browser = Client()
    assert b'data-testid="forgot-password"' in browser.get("/accounts/login/").content
    for _ in range(3):
        _sign_in(browser, user.username, "not-it")
    assert _sign_in(browser, user.username, TEST_PASSWORD) == 429  # locked out, even with the right password

    for address in ("nobody@example.org", "reader@example.org"):  # the same answer either way
        sent = browser.post("/accounts/password/reset/", {"email": address})
        assert sent.status_code == 302 and sent["Location"] == "/accounts/password/reset/sent/"
    assert b"expires in 2 hours" in browser.get(sent["Location"]).content
    [message] = mail.outbox
    assert message.to == ["reader@example.org"] and user.username in message.body
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", message.body).group(1)

    form = browser.get(link, follow=True)  # Django moves the token out of the address before showing the form
    assert b'data-testid="password-reset-confirm"' in form.content
    weak = browser.post(form.redirect_chain[-1][0], {"new_password1": "short", "new_password2": "short"})
    assert b'data-testid="new_password2-errors"' in weak.content and b"too short" in weak.content
    done = browser.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/password/reset/complete/"

    assert not Token.objects.filter(key=token.key).exists()
    assert _sign_in(Client(), user.username, NEW_PASSWORD) == 302  # the lockout is cleared with the reset
    again = Client().get(link, follow=True)
    assert b'data-testid="password-reset-invalid"' in again.content  # the link works once
    actions = list(AuditEvent.objects.filter(object_type="User", object_id=str(user.pk))
                   .order_by("pk").values_list("action", "details__via"))  # fmt: skip
    assert actions == [("account.password_reset_request", None), ("account.password_change", "reset")]


def test_reset_links_to_one_address_are_limited_to_three_an_hour(user_factory):
    user = user_factory("clinician")
    user.email = "someone@example.org"
    user.save()
    for _ in range(5):  # the form is public: it must not become a way to flood an inbox
        sent = Client().post("/accounts/password/reset/", {"email": "Someone@example.org"})
        assert sent["Location"] == "/accounts/password/reset/sent/"  # the same answer every time
    assert len(mail.outbox) == 3
    assert list(AuditEvent.objects.filter(action="account.password_reset_request").order_by("pk")
                .values_list("details__sent", flat=True)) == [True, True, True, False, False]  # fmt: skip
