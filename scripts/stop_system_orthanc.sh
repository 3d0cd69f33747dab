#!/usr/bin/env bash
# Debian's orthanc package starts a system Orthanc on 8042; the portal runs its own, so stop that one. Only that
# one: the package's init script ("service orthanc stop") stops every process of /usr/sbin/Orthanc, a test
# run's and a running portal's too. Under systemd the unit's own processes are stopped; otherwise the process
# in the init script's pidfile (ORTHANC_PIDFILE, default /run/orthanc.pid), if it still is an Orthanc.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  if systemctl is-active --quiet orthanc 2>/dev/null; then $SUDO systemctl stop orthanc || true; fi
  exit 0
fi
pidfile="${ORTHANC_PIDFILE:-/run/orthanc.pid}"
[ -s "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if [ "$(ps -p "$pid" -o comm= 2>/dev/null)" = Orthanc ]; then
  $SUDO kill "$pid" || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
$SUDO rm -f "$pidfile" 2>/dev/null || true
