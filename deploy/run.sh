#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the coordinator on its
# embedded PostgreSQL (data in /var/lib/fleetadapt for root). Ctrl-C stops it and its database.
# Extra arguments go to `fleetadapt-coordinator serve`, e.g. `bash deploy/run.sh --port 9000`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
swift build -c release --product fleetadapt-coordinator
exec "$(swift build -c release --show-bin-path)/fleetadapt-coordinator" serve "$@"
