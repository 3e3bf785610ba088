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
# onnxruntime, onnx and numpy for ONNXExportTests (onnxruntime is the independent implementation the exported models
# are checked against), in a virtualenv under .build; created once (about 95 s from PyPI), then reused.
if ! .build/venv-onnx/bin/python -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  python3 -m venv .build/venv-onnx
  .build/venv-onnx/bin/pip install --quiet --disable-pip-version-check onnxruntime==1.32.0 onnx==1.23.2 numpy==2.4.6
fi
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
