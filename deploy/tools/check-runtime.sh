#!/usr/bin/env bash
# Proves the container image's runtime stage without a Docker engine (opt-in; needs root, network to a Debian
# mirror, and about 10 minutes):
#   1. debootstraps a minimal Debian 12 root with exactly the packages deploy/Dockerfile's runtime stage installs
#      (read from the Dockerfile, so the two cannot drift apart);
#   2. builds the four executables as the Dockerfile does (release, --static-swift-stdlib) and copies them alone into
#      /usr/local/bin of that root: no migrations, no OpenAPI files, no FLEETADAPT_HOME;
#   3. inside the root, as the image's unprivileged user 10001: every executable's shared libraries resolve, and the
#      coordinator migrates and serves against a PostgreSQL started here on loopback (/readyz 200, /openapi.yaml
#      served, a device registers).
# Usage: sudo bash deploy/tools/check-runtime.sh [ROOT_DIR]   (default: .build-runtime/rootfs; kept for reruns)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
root="${1:-$repo/.build-runtime/rootfs}"
scratch="$repo/.build-runtime/build"
[ "$(id -u)" = 0 ] || { echo "check-runtime: run as root (debootstrap and chroot need it)"; exit 2; }
command -v debootstrap > /dev/null || apt-get install -y debootstrap

# The runtime stage's packages: the apt-get install line(s) after the last FROM.
packages="$(awk '/^FROM /{buf=""} {buf=buf"\n"$0} END{print buf}' deploy/Dockerfile \
  | tr '\\\n' '  ' | grep -o 'apt-get install -y --no-install-recommends [^&]*' | tail -1 \
  | sed 's/apt-get install -y --no-install-recommends//' | xargs)"
echo "runtime packages (from deploy/Dockerfile): $packages"

if [ ! -x "$root/usr/bin/env" ] || [ "$(cat "$root/.fleetadapt-packages" 2>/dev/null)" != "$packages" ]; then
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase --include="$(echo "$packages" | tr ' ' ,)" bookworm "$root" http://deb.debian.org/debian \
    > "$repo/.build-runtime/debootstrap.log" 2>&1 || { tail -20 "$repo/.build-runtime/debootstrap.log"; exit 1; }
  echo "$packages" > "$root/.fleetadapt-packages"
fi
chroot "$root" /bin/sh -c 'getent passwd 10001 > /dev/null || (groupadd --system --gid 10001 fleetadapt &&
  useradd --system --uid 10001 --gid fleetadapt --home-dir /var/lib/fleetadapt --shell /usr/sbin/nologin fleetadapt)'
install -d -o 10001 -g 10001 -m 0700 "$root/var/lib/fleetadapt"

swift build -c release --static-swift-stdlib --scratch-path "$scratch" 2>&1 | grep -E "error|warning:|Compiling|Build" | tail -3
bin="$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)"
for exe in fleetadapt-coordinator fleetadapt-agent fleetadapt-edge fleetadapt; do
  install -m 0755 "$bin/$exe" "$root/usr/local/bin/$exe"
  if chroot "$root" ldd "/usr/local/bin/$exe" | grep -q "not found"; then
    chroot "$root" ldd "/usr/local/bin/$exe" | grep "not found"; echo "check-runtime: $exe misses libraries"; exit 1
  fi
  echo "$exe: every shared library resolves in the runtime root"
done

# A container has /proc (Swift's runtime reads the arguments from /proc/self/cmdline); so does this root.
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"

# A PostgreSQL on loopback with a password, as a managed database would be.
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
work="$(mktemp -d)"
chown postgres "$work"
password="$(openssl rand -hex 16)"
pgport=$((20000 + RANDOM % 20000)); port=$((40000 + RANDOM % 20000))
cleanup() {
  [ -n "${coordinator:-}" ] && kill "$coordinator" 2> /dev/null || true
  su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -m fast stop" > /dev/null 2>&1 || true
  rm -rf "$work"
  umount "$root/proc" 2> /dev/null || true
}
trap cleanup EXIT
echo "$password" > "$work/pw"; chown postgres "$work/pw"
su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pg -U fleetadapt --pwfile=$work/pw -A scram-sha-256" > /dev/null
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg -l $work/pg.log -o '-p $pgport -k $work -c listen_addresses=127.0.0.1' -w start" > /dev/null
url="postgresql://fleetadapt:$password@127.0.0.1:$pgport/postgres"

# The secrets reach the coordinator through its environment, as the image's users give them.
key="$(openssl rand -hex 24)"
chroot --userspec=10001:10001 "$root" /usr/bin/env -i HOME=/var/lib/fleetadapt DATABASE_URL="$url" \
  FLEETADAPT_ADMIN_KEY="$key" /usr/local/bin/fleetadapt-coordinator serve --bind 127.0.0.1 --port "$port" \
  --data-dir /var/lib/fleetadapt > "$work/coordinator.log" 2>&1 &
coordinator=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
  kill -0 "$coordinator" 2> /dev/null || { cat "$work/coordinator.log"; echo "check-runtime: the coordinator exited"; exit 1; }
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null || { cat "$work/coordinator.log"; exit 1; }
echo "coordinator in the runtime root: /readyz 200"
curl -fsS "http://127.0.0.1:$port/openapi.yaml" | grep -q '^openapi: ' && echo "coordinator serves its compiled-in OpenAPI document"
status="$(curl -sS -o "$work/device.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/devices" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"name":"runtime-check","hardware":{"class":"raspberry-pi-4","gflops":8,"memory_mb":2048},
       "constraints":{"latency_budget_ms":2,"memory_budget_mb":64}}')"
[ "$status" = 201 ] || { echo "check-runtime: registration answered $status: $(cat "$work/device.json")"; exit 1; }
echo "a device registers against the runtime root's coordinator (201)"
if grep -q "$key\|$password" "$work/coordinator.log"; then echo "check-runtime: a secret reached the log"; exit 1; fi
echo "check-runtime: passed"
