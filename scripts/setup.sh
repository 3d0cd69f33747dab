#!/usr/bin/env bash
# Install everything the portal and its tests need on a fresh Debian machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need_apt+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb)
if [ "${WITH_BROWSER:-0}" = 1 ]; then command -v chromium >/dev/null || need_apt+=(chromium); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's package starts a system Orthanc on 8042; the portal runs its own, so stop that one (and no other).
scripts/stop_system_orthanc.sh

if [ ! -x .venv/bin/python ]; then
  echo "==> python venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
echo "==> pip install -r requirements.txt"
.venv/bin/pip install -q -r requirements.txt

echo "==> front end (npm ci, vite build)"
(cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
