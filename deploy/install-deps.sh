#!/usr/bin/env bash
# Installs the Debian packages FleetAdapt builds and runs with (Debian 12, as root).
# Skips apt entirely when everything is already installed. Extra package names (the test command's tools) may
# be given as arguments.
set -euo pipefail
pkgs=(pkg-config libmicrohttpd-dev libpq-dev postgresql libopenblas-dev zlib1g-dev libcurl4-openssl-dev
      libturbojpeg0-dev libpng-dev dataset-fashion-mnist ca-certificates curl "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
