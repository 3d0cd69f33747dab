"""CACHE_URL: web processes share one cache (the machine's real Redis), so the access log's one-entry-per-hour
window holds across processes, and access taken away in one process reaches the frame proxy of the others.
Settings are read at start-up, so each process is a subprocess."""

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


EPOCH_PROBE = """
import sys, django
django.setup()
from portal.studies import proxy_access
if sys.argv[1] == "forget":
    proxy_access.forget_granted_access()
print(proxy_access.access_epoch())
"""


def run_process(key: str, cache_url: str, probe: str = PROBE) -> subprocess.CompletedProcess:
    env = {**os.environ, "CACHE_URL": cache_url, "DJANGO_SETTINGS_MODULE": "portal.settings",
           "PORTAL_VAR_DIR": str(settings.VAR_DIR)}
    return subprocess.run([sys.executable, "-c", probe, key], env=env, cwd=settings.BASE_DIR, capture_output=True,
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


def test_access_taken_away_in_one_process_reaches_the_others_through_redis():
    def epoch(action: str, cache_url: str) -> str:
        out = run_process(action, cache_url, EPOCH_PROBE)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()[-1]

    before = epoch("read", REDIS_URL)
    assert epoch("read", REDIS_URL) == before  # another process keys its remembered access alike
    changed = epoch("forget", REDIS_URL)  # a withdrawal, say, in a third process
    assert changed != before and epoch("read", REDIS_URL) == changed
    assert epoch("read", "") != epoch("read", "")  # without CACHE_URL each process has its own
