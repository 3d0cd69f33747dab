"""Test settings: the machine's real PostgreSQL, RabbitMQ and a private var/ and queue per run."""

import os
import tempfile
import uuid

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
os.environ.setdefault("CELERY_QUEUE", f"test-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="portal-test-var-"))
os.environ.setdefault("AXES_FAILURE_LIMIT", "1000")

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests
