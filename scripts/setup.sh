#!/usr/bin/env bash
# Installs everything sluice's tests and demo need on a Debian machine:
# the pinned Deno (from npm, tools/deno/package.json), the Debian packages of
# the real servers and producers, the Kafka broker and OpenSearch node jars
# (Maven), the current ClickHouse (PyPI's chdb-core 26.9.0 in a venv, unless a
# `clickhouse` binary >= 22 is installed), and the npm dependencies recorded
# in deno.lock. Safe to run again: it skips what is there.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"

log() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# Debian packages: servers (clickhouse, victoria-metrics, influxdb), producers
# (pmacct, softflowd, collectd-core), capture tools (tcpdump), Kafka's client
# (kcat), the runtime of Kafka and of the search node (a JDK:
# scripts/elasticsearch/Runner.java runs in Java's source-file mode, which
# needs the compiler), maven, python3-venv (the venv of the current
# ClickHouse, service clickhouse26), systemd (systemd-analyze, which checks
# deploy/systemd/sluice.service in tests/systemd_test.ts), graphviz (dot,
# which draws docs/architecture.svg: deno task architecture), docker-compose
# (its `config` validates deploy/compose/docker-compose.yml in
# tests/compose_test.ts; no Docker engine is needed) and prometheus
# (prometheus and promtool: tests/integration/monitoring_test.ts runs its own
# Prometheus on a free port against the dashboard and alert rules of deploy/;
# apt enables the package's prometheus.service: disabled below, with the
# other units apt enables).
PACKAGES=(clickhouse-server clickhouse-client victoria-metrics influxdb pmacct softflowd
  collectd-core tcpdump kcat default-jdk-headless maven python3-venv systemd graphviz
  docker-compose prometheus)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may already have a JDK and Maven from elsewhere.
java --list-modules 2>/dev/null | grep -q '^jdk\.compiler@' &&
  missing=("${missing[@]/default-jdk-headless/}")
command -v mvn >/dev/null && missing=("${missing[@]/maven/}")
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]} > 0)); then
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  # The servers sluice is tested against run from scripts/services.sh on
  # their own ports; the units apt enabled for the packages installed here
  # would start system-wide servers on the default ports at boot. They are
  # disabled (and stopped, on a running systemd); units of packages that
  # were installed before are left as they were.
  declare -A units=([clickhouse-server]=clickhouse-server [influxdb]=influxdb
    [victoria-metrics]=victoria-metrics [softflowd]=softflowd [collectd-core]=collectd
    [prometheus]=prometheus)
  if command -v systemctl >/dev/null; then
    for p in "${missing[@]}"; do
      unit=${units[$p]:-}
      [[ -n $unit ]] || continue
      now=()
      [[ -d /run/systemd/system ]] && now=(--now)
      if as_root systemctl disable "${now[@]}" "$unit.service" >/dev/null 2>&1; then
        log "disabled the $unit unit that apt enabled (scripts/services.sh runs its own)"
      fi
    done
  fi
fi

# Deno, pinned in tools/deno/package-lock.json.
want=$(sed -n 's/.*"deno": "\([0-9.]*\)".*/\1/p' tools/deno/package.json)
have=$(tools/deno/node_modules/.bin/deno --version 2>/dev/null | sed -n '1s/^deno \([0-9.]*\).*/\1/p' || true)
if [[ "$have" != "$want" ]]; then
  log "installing Deno $want from npm"
  # npm install, not ci: the lock holds only this platform's optional binary
  # package, which npm ci rejects as out of sync; package.json pins the version.
  npm install --prefix tools/deno --no-audit --no-fund >&2
fi
export PATH=$REPO_DIR/tools/deno/node_modules/.bin:$PATH

log "fetching the npm dependencies in deno.lock"
deno install --frozen >&2

log "installing the local test services (Kafka and search node jars, ClickHouse 26.x from PyPI)"
bash scripts/services.sh install

log "ready: put $REPO_DIR/tools/deno/node_modules/.bin on PATH (deno $(deno --version | sed -n '1s/deno \([0-9.]*\).*/\1/p'))"
