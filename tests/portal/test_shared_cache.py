"""CACHE_URL: web processes share one cache (the machine's real Redis), so the access log's one-entry-per-hour
window holds across processes. Settings are read at start-up, so each process is a subprocess."""

import os
import subprocess
import sys
import uuid

import redis
from django.conf import settings

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

PROBE = """
import sys, django
django.setup()
from django.core.cache import cache
from django.core.management import call_command
print(cache.add(sys.argv[1], True, 60))
call_command("check", "--deploy", "--tag", "caches")
"""


def run_process(key: str, cache_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CACHE_URL": cache_url, "DJANGO_SETTINGS_MODULE": "portal.settings",
           "PORTAL_VAR_DIR": str(settings.VAR_DIR)}
    return subprocess.run([sys.executable, "-c", PROBE, key], env=env, cwd=settings.BASE_DIR, capture_output=True,
                          text=True, timeout=120)


def added(key: str, cache_url: str) -> bool:
    """Whether a new process could add the key: False when another process already did, in a shared cache."""
    out = run_process(key, cache_url)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[0] == "True"


def test_processes_share_the_redis_cache_and_deploy_check_asks_for_it():
    key = f"study-view:test:{uuid.uuid4().hex}"
    assert [added(key, REDIS_URL), added(key, REDIS_URL)] == [True, False]  # the second sees the first's window
    assert "studies.W001" not in run_process(key, REDIS_URL).stderr
    assert redis.Redis.from_url(REDIS_URL).exists(f"portal:1:{key}")  # stored in Redis, under the portal's prefix

    assert [added(key, ""), added(key, "")] == [True, True]  # the local-memory default: one window per process
    assert "studies.W001" in run_process(key, "").stderr


def test_a_cache_url_other_than_redis_is_refused_at_start_up():
    out = run_process("any", "memcached://127.0.0.1:11211")
    assert out.returncode != 0 and "only Redis is supported" in out.stderr
