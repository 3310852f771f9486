#!/usr/bin/env bash
# Installs what sluice's demo or its tests need on a Debian machine (12 or
# later) that has nothing beyond the base system; scripts/demo.sh and
# scripts/test.sh run it first, so nobody needs to. Safe to run again: it
# skips what is there, and takes about a second when everything is.
#
# Usage: scripts/setup.sh [all|demo]
#   all (default)  what scripts/test.sh needs:
#     - Debian packages: the servers and producers the tests run
#       (clickhouse-server and -client, victoria-metrics, influxdb, pmacct,
#       softflowd, collectd-core, zookeeper, prometheus), the tools they
#       call (kcat, tcpdump, openssl, curl, systemd's systemd-analyze,
#       graphviz's dot, docker-compose's `config`; no Docker engine), Java
#       with its compiler module (Kafka, and scripts/elasticsearch/
#       Runner.java in source-file mode: default-jdk-headless, unless a java
#       has it, as Debian's JRE does), maven (the Kafka and OpenSearch
#       jars), python3-venv (the venv of clickhouse26), Node.js and npm
#       when there is no npm (for Deno), and what the InfluxDB 2 build
#       lacks (golang-go when there is no go at all, rustc-web and
#       cargo-web when cargo is missing or older than 1.72, gcc,
#       pkg-config: scripts/influxdb2.sh packages);
#     - Deno, the version pinned in tools/deno/package-lock.json, with
#       `npm ci` into tools/deno/node_modules;
#     - the npm packages of deno.lock (`deno install --frozen`);
#     - the service artifacts (scripts/services.sh install, zookeeper
#       too): Kafka and OpenSearch jars from Maven, ClickHouse 26.x from
#       PyPI's chdb-core;
#     - until influxd is built (scripts/test.sh builds it, once, with
#       scripts/influxdb2.sh install: 6 to 7 minutes), its build
#       toolchain (scripts/influxdb2.sh toolchain): Go >= 1.23, Go 1.26.8
#       from the Go module proxy into .services/toolchains/ when the go on
#       PATH is older.
#   demo  what scripts/demo.sh needs: Node.js and npm when missing, Deno,
#         curl, kcat, a Java runtime, maven, openssl, clickhouse-server and
#         -client, the npm packages of deno.lock, the Kafka jars.
#
# The servers are run by scripts/services.sh on ports of their own; the
# systemd units that apt enables for the servers installed here (and starts,
# on a running systemd) would run system-wide copies on the default ports at
# every boot, so setup disables and stops them. Units of packages that were
# installed before are left as they were.
#
# Everything goes to .services/, node_modules/ and tools/deno/node_modules/
# (git-ignored) or to the system (apt): the checkout stays clean.
#
# One line per step on stderr ("setup: ..."), with its time; the output of
# apt-get, npm and the service installs goes to stderr too.
#
# The settings (environment) of scripts/services.sh and
# scripts/influxdb2.sh apply.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
cd "$REPO_DIR"

# now_us, elapsed_since, as_root; log and die are setup's own.
# shellcheck source=_helpers.sh
source "$SCRIPT_DIR/_helpers.sh"

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

MODE=${1:-all}
case $MODE in
  all | demo) ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
(($# <= 1)) || usage

DENO_BIN=$REPO_DIR/tools/deno/node_modules/.bin
SETUP_T0=$(now_us)

# Runs step function $2 under the name $1, then prints "setup: <name>:
# <the step's DONE> (<seconds> s)". A step prints a "setup: ..." line of its
# own first when it starts something that takes a while.
DONE=""
step() {
  local name=$1 t0 took
  shift
  t0=$(now_us)
  DONE=""
  "$@"
  took=$(elapsed_since "$t0")
  log "$name: $DONE ($took s)"
}

# ------------------------------------------------------- Debian packages

DEMO_PACKAGES=(curl ca-certificates openssl kcat clickhouse-server clickhouse-client)
ALL_PACKAGES=("${DEMO_PACKAGES[@]}" victoria-metrics influxdb pmacct softflowd collectd-core
  zookeeper prometheus tcpdump python3-venv systemd graphviz docker-compose)

# The boot units of each package that apt enables and starts.
declare -A UNITS=([clickhouse-server]=clickhouse-server [influxdb]=influxdb
  [victoria-metrics]=victoria-metrics [softflowd]=softflowd [collectd-core]=collectd
  [prometheus]=prometheus [pmacct]="pmacctd nfacctd sfacctd uacctd")

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Prints the packages of this mode that are missing, one a line.
missing_packages() {
  local p wanted=("${DEMO_PACKAGES[@]}")
  [[ $MODE == all ]] && wanted=("${ALL_PACKAGES[@]}")
  for p in "${wanted[@]}"; do installed "$p" || echo "$p"; done
  # Deno comes from npm: Debian 12's npm is 9.2 (Node.js 18), enough for it.
  command -v npm >/dev/null || printf '%s\n' nodejs npm
  # A JDK or JRE and Maven from elsewhere will do.
  if [[ $MODE == all ]]; then
    # Debian's JRE has the compiler module too (source-file mode works).
    local modules
    modules=$(java --list-modules 2>/dev/null || true)
    grep -q '^jdk\.compiler@' <<<"$modules" || echo default-jdk-headless
  else
    command -v java >/dev/null || echo default-jre-headless
  fi
  command -v mvn >/dev/null || echo maven
  if [[ $MODE == all ]]; then
    local build
    build=$(bash scripts/influxdb2.sh packages) || die "scripts/influxdb2.sh packages failed"
    read -r -a build <<<"$build"
    ((${#build[@]} == 0)) || printf '%s\n' "${build[@]}"
  fi
}

# Disables (and, on a running systemd, stops) the enabled boot units of the
# packages $@ that were just installed. Without systemctl (a container, a
# chroot) the links that apt's deb-systemd-helper made are removed, which
# it takes for a unit the administrator disabled.
disable_units() {
  local p unit now=() done=()
  [[ -d /run/systemd/system ]] && now=(--now)
  for p in "$@"; do
    for unit in ${UNITS[$p]:-}; do
      if command -v systemctl >/dev/null; then
        systemctl is-enabled --quiet "$unit.service" 2>/dev/null || continue
        as_root systemctl disable "${now[@]}" "$unit.service" >/dev/null 2>&1 || continue
      else
        local links
        mapfile -t links < <(find /etc/systemd/system -path "*.wants/$unit.service" -type l 2>/dev/null)
        ((${#links[@]} > 0)) || continue
        as_root rm -f "${links[@]}"
      fi
      done+=("$unit")
    done
  done
  ((${#done[@]} == 0)) ||
    log "disabled the boot units apt enabled: ${done[*]} (scripts/services.sh runs its own servers)"
}

step_packages() {
  local list missing
  list=$(missing_packages)
  mapfile -t missing < <(sed '/^$/d' <<<"$list" | sort -u)
  if ((${#missing[@]} == 0)); then
    DONE="all there"
    return 0
  fi
  log "installing Debian packages with apt-get: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  disable_units "${missing[@]}"
  DONE="installed ${missing[*]}"
}

# ----------------------------------------------------------------- Deno

step_deno() {
  local want have
  want=$(sed -n 's/.*"deno": "\([0-9.]*\)".*/\1/p' tools/deno/package.json)
  have=$("$DENO_BIN/deno" --version 2>/dev/null | sed -n '1s/^deno \([0-9.]*\).*/\1/p' || true)
  if [[ $have == "$want" ]]; then
    DONE="$want there"
    return 0
  fi
  command -v npm >/dev/null || die "npm not found: apt-get install nodejs npm"
  log "installing Deno $want from npm into tools/deno (npm $(npm --version), Node.js $(node --version))"
  # npm ci installs what the committed lock says and never writes it
  # (npm install would rewrite it for npm versions that record other
  # fields, such as npm 9's dropping "libc").
  npm ci --prefix tools/deno --no-audit --no-fund >&2
  have=$("$DENO_BIN/deno" --version 2>/dev/null | sed -n '1s/^deno \([0-9.]*\).*/\1/p' || true)
  [[ $have == "$want" ]] || die "tools/deno/node_modules/.bin/deno is not Deno $want after npm ci"
  DONE="$want installed in tools/deno"
}

step_npm_deps() {
  "$DENO_BIN/deno" install --frozen >&2
  DONE="node_modules/ as deno.lock says"
}

# ------------------------------------------------------------- services

step_services() {
  if [[ $MODE == demo ]]; then
    bash scripts/services.sh install kafka clickhouse
    DONE="kafka clickhouse"
  else
    bash scripts/services.sh install
    bash scripts/services.sh install zookeeper
    DONE="kafka clickhouse clickhouse26 victoriametrics elasticsearch influxdb zookeeper"
  fi
}

step_influxdb2_toolchain() {
  bash scripts/influxdb2.sh toolchain
  DONE="ready"
}

# ----------------------------------------------------------------- main

step "Debian packages" step_packages
step "Deno" step_deno
step "npm packages of deno.lock" step_npm_deps
step "service artifacts" step_services
if [[ $MODE == all ]]; then step "InfluxDB 2 build toolchain" step_influxdb2_toolchain; fi
log "$MODE: ready in $(elapsed_since "$SETUP_T0") s (deno: $DENO_BIN/deno)"
