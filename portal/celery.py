"""Celery application: tasks are thin wrappers around services (see studies/tasks.py)."""

import logging
import os
import smtplib

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Email tasks (alerts, notices): a mail server that is down or refuses is tried again, backing off to half an hour.
EMAIL_TASK = {"acks_late": True, "autoretry_for": (OSError, smtplib.SMTPException), "retry_backoff": 30,
              "retry_backoff_max": 1800, "max_retries": 8}


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
