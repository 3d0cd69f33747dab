#!/usr/bin/env bash
# One command: set up, then run the portal on embedded defaults (SQLite, local Orthanc, local Celery worker,
# filesystem broker) with the demo study loaded. Open http://127.0.0.1:8000 (users demo-<role>, see README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PY=.venv/bin/python
export PORT="${PORT:-8000}" ORTHANC_PORT="${ORTHANC_PORT:-8042}"
export DICOMWEB_URL="${DICOMWEB_URL:-http://127.0.0.1:${ORTHANC_PORT}/dicom-web}"
export PORTAL_URL="${PORTAL_URL:-http://127.0.0.1:${PORT}}"  # links in alert emails
mkdir -p var/log
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

$PY manage.py migrate --noinput -v 0
if [[ "$DICOMWEB_URL" == "http://127.0.0.1:${ORTHANC_PORT}/dicom-web" ]]; then
  $PY manage.py run_orthanc --port "$ORTHANC_PORT" > var/log/orthanc.log 2>&1 & pids+=($!)
  for _ in $(seq 60); do curl -sf "http://127.0.0.1:${ORTHANC_PORT}/system" >/dev/null && break; sleep 0.5; done
fi
# Two workers: one scores uploads, one does bulk work (retraining, re-scoring after a new model), so an
# upload never waits behind a retraining.
QUEUE="${CELERY_QUEUE:-celery}"
$PY -m celery -A portal worker --pool=solo -Q "$QUEUE" -n "main@%h" -l INFO > var/log/worker.log 2>&1 & pids+=($!)
$PY -m celery -A portal worker --pool=solo -Q "${CELERY_BULK_QUEUE:-$QUEUE.bulk}" -n "bulk@%h" -l INFO \
  > var/log/worker-bulk.log 2>&1 & pids+=($!)
$PY manage.py load_demo
echo "==> portal at http://127.0.0.1:${PORT}  (logs in var/log/)"
# In the background and waited for, so that a TERM to this script runs the cleanup at once (bash defers traps
# while a foreground command runs).
$PY manage.py runserver "127.0.0.1:${PORT}" --noreload & pids+=($!)
wait "${pids[-1]}"
