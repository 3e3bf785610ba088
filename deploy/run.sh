#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the demo fleet — the coordinator on
# its embedded PostgreSQL, an edge server, a published elastic package, eight real agents adapting to a corrupted target domain —
# then stops everything it started.
#   bash deploy/run.sh                 the demo (extra arguments go to `fleetadapt demo`, e.g. --agents 9)
#   bash deploy/run.sh serve [...]     only the coordinator, serving until Ctrl-C (arguments go to `serve`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
swift build -c release
bin="$(swift build -c release --show-bin-path)"
if [ "${1:-}" = "serve" ]; then
  shift
  exec "$bin/fleetadapt-coordinator" serve "$@"
fi
exec "$bin/fleetadapt" demo "$@"
