"""HTTPS=1: plain HTTP is redirected, cookies are Secure, HSTS is sent (settings are read at start-up, so
each case runs in its own process)."""

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import json, django
django.setup()
from django.test import Client
c = Client()
plain = c.get("/accounts/login/")
tls = c.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
print(json.dumps({"plain": [plain.status_code, plain.get("Location", "")], "tls": tls.status_code,
                  "hsts": tls.get("Strict-Transport-Security", ""),
                  "csrf_secure": bool(tls.cookies["csrftoken"]["secure"]) if "csrftoken" in tls.cookies else None}))
"""


def probe(https: str) -> dict:
    env = {**os.environ, "HTTPS": https, "DJANGO_SETTINGS_MODULE": "portal.settings",
           "ALLOWED_HOSTS": "testserver", "PORTAL_VAR_DIR": str(settings.VAR_DIR)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=settings.BASE_DIR, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_https_mode_redirects_plain_http_and_marks_cookies_secure():
    on = probe("1")
    assert on["plain"] == [301, "https://testserver/accounts/login/"]
    assert on["tls"] == 200 and on["hsts"].startswith("max-age=31536000") and on["csrf_secure"] is True
    off = probe("0")  # the embedded local defaults stay on plain HTTP
    assert off["plain"][0] == 200 and off["hsts"] == "" and off["csrf_secure"] is False
