#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the whole suite.
# Tests start their own private PostgreSQL cluster (the coordinator's embedded mechanism).
# Built optimised (with testing enabled): the learning tests train real networks, which is minutes
# in a debug build and seconds in an optimised one.
set -euo pipefail
cd "$(dirname "$0")/.."
# systemd only for systemd-analyze, which checks the unit files in deploy/systemd; chromium and chromium-driver for
# DashboardTests (the web dashboard in a real headless browser); python3-yaml for the admin CLI test, which reads its YAML back.
bash deploy/install-deps.sh systemd python3-yaml chromium chromium-driver
swift build -c release --build-tests -Xswiftc -enable-testing
bash deploy/tools/check-systemd.sh "$(swift build -c release --show-bin-path)"
# onnxruntime, onnx and numpy for ONNXExportTests (onnxruntime is the independent implementation the exported models
# are checked against), in a virtualenv under .build; created once (about 95 s from PyPI), then reused.
if ! .build/venv-onnx/bin/python -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  python3 -m venv .build/venv-onnx
  .build/venv-onnx/bin/pip install --quiet --disable-pip-version-check onnxruntime==1.32.0 onnx==1.23.2 numpy==2.4.6
fi
# selenium for DashboardTests, which drive the web dashboard in Debian's headless chromium with its chromedriver
# (apt packages chromium and chromium-driver); in a virtualenv under .build, created once, then reused.
if ! .build/venv-ui/bin/python -c "import selenium" 2>/dev/null; then
  python3 -m venv .build/venv-ui
  .build/venv-ui/bin/pip install --quiet --disable-pip-version-check selenium==4.51.0
fi
# openapi-python-client for GeneratedClientTests (a client generated from openapi/openapi.yaml runs a scenario against
# a real coordinator); pinned with everything it pulls in, in a virtualenv under .build, created once, then reused.
if ! .build/venv-openapi/bin/python -c "import openapi_python_client, httpx, attrs" 2>/dev/null; then
  python3 -m venv .build/venv-openapi
  .build/venv-openapi/bin/pip install --quiet --disable-pip-version-check openapi-python-client==0.29.1 \
    annotated-doc==0.0.7 annotated-types==0.8.0 anyio==4.16.0 attrs==26.1.0 certifi==2026.10.19.post1 h11==0.16.0 httpcore==1.0.9 \
    httpx==0.28.1 idna==3.20 Jinja2==3.1.6 markdown-it-py==4.3.0 MarkupSafe==3.0.4 mdurl==0.1.2 pydantic==2.14.4 pydantic_core==2.50.5 \
    Pygments==2.21.0 rich==15.0.0 ruamel.yaml==0.19.1 ruff==0.17.6 shellingham==1.5.4 typer==0.27.3 typing-inspection==0.4.5 \
    typing_extensions==4.16.0
fi
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
