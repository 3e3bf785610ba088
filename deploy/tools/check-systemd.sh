#!/usr/bin/env bash
# Checks deploy/systemd/*.service with systemd-analyze against the built executables: `verify` must print
# nothing (an unknown or misspelt directive is only a warning to systemd, so any output fails here), and
# `security --offline` must rate each unit's exposure at most 2.5 (systemd's "OK" band).
#   bash deploy/tools/check-systemd.sh [BIN_DIR]      (default: the release build's bin path)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-$(swift build -c release --show-bin-path)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for unit in deploy/systemd/*.service; do
  sed "s|/usr/local/bin/|$bin/|g" "$unit" > "$tmp/$(basename "$unit")"
done
status=0
for unit in "$tmp"/*.service; do
  name="$(basename "$unit")"
  out="$(systemd-analyze verify "$unit" 2>&1)" || { echo "$name: systemd-analyze verify failed:"; echo "$out"; status=1; continue; }
  if [ -n "$out" ]; then echo "$name: systemd-analyze verify warned:"; echo "$out"; status=1; continue; fi
  exposure="$(systemd-analyze security --offline=yes --no-pager "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
  if [ -z "$exposure" ]; then echo "$name: no exposure rating"; status=1; continue; fi
  if awk -v e="$exposure" 'BEGIN { exit !(e > 2.5) }'; then echo "$name: exposure $exposure > 2.5"; status=1; continue; fi
  echo "$name: verified, exposure $exposure"
done
exit $status
