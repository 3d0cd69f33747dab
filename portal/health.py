"""Readiness: can this process serve requests (database, PACS, broker), and is anything consuming the
scoring queue. Each check is short and bounded, so a load balancer can poll it."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from portal.studies import dicomweb

CHECK_TIMEOUT_S = 3.0


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _pacs() -> None:
    response = dicomweb.http_session().get(
        f"{settings.DICOMWEB_URL.rstrip('/')}/studies", params={"limit": 1},
        headers={"Accept": "application/dicom+json"}, timeout=CHECK_TIMEOUT_S)
    if response.status_code not in (200, 204):
        raise RuntimeError(f"QIDO-RS answered HTTP {response.status_code}")


def _broker() -> None:
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)


def workers_on(queues: list[str]) -> list[int] | None:
    """How many workers consume each queue; None when the broker cannot be asked (e.g. a transport without
    broadcast)."""
    from portal.celery import app

    try:
        replies = app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception:  # noqa: BLE001 - any transport failure means "cannot tell", not "none"
        return None
    return [sum(any(q.get("name") == queue for q in consumed) for consumed in replies.values()) for queue in queues]


def readiness() -> dict:
    """{"ready": bool, "checks": {name: "ok" | "down: reason"}, "workers": int | None, "bulk_workers": int | None,
    "seconds": float}. Ready = database, PACS and broker answer; workers only delay scoring (bulk workers:
    retraining and mass re-scores), so they are reported, not required."""
    started = time.monotonic()
    checks = {}
    for name, check in (("database", _database), ("pacs", _pacs), ("broker", _broker)):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - the reason is the answer
            checks[name] = f"down: {type(exc).__name__}"
    workers = workers_on([settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_BULK_QUEUE]) or [None, None]
    return {"ready": all(v == "ok" for v in checks.values()), "checks": checks,
            "workers": workers[0], "bulk_workers": workers[1], "eager": bool(settings.CELERY_TASK_ALWAYS_EAGER),
            "seconds": round(time.monotonic() - started, 3)}
