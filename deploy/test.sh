#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole suite.
# Tests start their own private PostgreSQL cluster (the coordinator's embedded mechanism).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
swift build --build-tests
swift test --skip-build
