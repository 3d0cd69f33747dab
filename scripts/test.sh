#!/usr/bin/env bash
# One command: set up, then run lint and every test against the machine's PostgreSQL and RabbitMQ,
# an Orthanc the tests start on a free port, and Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_BROWSER=1 scripts/setup.sh
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/portal}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//}"
echo "==> ruff"
.venv/bin/ruff check .
echo "==> pytest"
.venv/bin/pytest "$@"
