#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole suite.
# Tests start their own private PostgreSQL cluster (the coordinator's embedded mechanism).
# Built optimised (with testing enabled): the learning tests train real networks, which is minutes
# in a debug build and seconds in an optimised one.
set -euo pipefail
cd "$(dirname "$0")/.."
# systemd only for systemd-analyze, which checks the unit files in deploy/systemd.
bash deploy/install-deps.sh systemd
swift build -c release --build-tests -Xswiftc -enable-testing
bash deploy/tools/check-systemd.sh "$(swift build -c release --show-bin-path)"
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
