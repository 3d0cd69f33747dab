"""Celery application: tasks are thin wrappers around services (see studies/tasks.py)."""

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def delay_after_commit(task, *args) -> None:
    """Send ``task(*args)`` once the current transaction commits: follow-up work of a finished job (an alert, a
    check). A broker that is down, or the task failing when run eagerly, is logged, never raised into the job."""
    from django.db import transaction

    def send() -> None:
        try:
            task.delay(*args)
        except Exception:
            logging.getLogger(__name__).exception("%s%r not sent", task.name, args)

    transaction.on_commit(send)
