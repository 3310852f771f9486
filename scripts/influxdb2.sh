#!/usr/bin/env bash
# A local InfluxDB 2.x OSS server (influxd) for the tests of sluice's
# /api/v2/write sink. Loopback only.
#
# There is no influxd package or prebuilt binary among the registries the
# project reaches, so install builds it from source: the Go module
# github.com/influxdata/influxdb/v2 from the Go module proxy, plus Flux's
# Rust library libflux, which InfluxData's pkg-config wrapper
# (github.com/influxdata/pkg-config) builds with cargo from the flux Go
# module's Rust sources (crates from the crate registry). Built without the
# UI assets. About 6 minutes on 2 cores from empty caches (seen: 369 s,
# of which 77 s fetching Go modules and building the pkg-config wrapper,
# 292 s of go build with cargo inside; the caches grow by 1.6 GB of Go
# modules and 55 MB of crates); the binary (~90 MB) is kept in <state>/bin/,
# each build's time is added to <state>/logs/build-times.log, and the build
# tree (~1.4 GB) is removed.
# Once the binary is there, install needs neither Go nor cargo.
#
# Two things make the 2023-era Flux sources build with today's Rust:
#   - flux pins Rust 1.72 in rust-toolchain.toml, which rustup cannot fetch
#     here: RUSTUP_TOOLCHAIN overrides it (default: stable);
#   - flux-core and flux say #![deny(warnings)], and newer rustc warns about
#     more: a RUSTC_WRAPPER caps lints at "warn" (for the host build-script
#     crates too, which RUSTFLAGS does not reach when cargo gets --target).
#
# Usage: scripts/influxdb2.sh install|start|stop|status|env|toolchain|packages
#   install  build influxd if <state>/bin has none (progress on stderr),
#            installing the build toolchain first when it is missing
#   start    install if needed, start in the background, wait until ready,
#            run the initial setup once (user sluice / sluice-secret, org
#            sluice, bucket sluice, operator token sluice-token), then print
#            the client variables on stdout
#   stop     stop the server this script started (kill -9 after a timeout)
#   status   one line; exit 3 if not running
#   env      print the client variables only:
#            SLUICE_INFLUXDB2_URL, _ORG, _BUCKET, _TOKEN
#   toolchain  install the build toolchain (below), unless influxd is built
#   packages   print the Debian packages install would apt-get (one line,
#            empty once influxd is built): scripts/setup.sh installs them
#            with its own in one apt-get run
#
# The build toolchain, each part installed when missing:
#   - Go >= 1.23: the go on PATH when it is new enough, else Go
#     $SLUICE_GO_TOOLCHAIN_VERSION in <root>/toolchains/go<version>: the
#     module golang.org/toolchain, which any go command (Debian 12's
#     golang-go 1.19 too, apt-get installed when there is no go at all)
#     fetches from the Go module proxy with `go mod download`;
#   - cargo and rustc >= 1.72: the ones on PATH when new enough, else
#     Debian's rustc-web and cargo-web (Debian 12's plain rustc is 1.63);
#   - a C compiler, pkg-config, curl: from apt-get.
# The build itself runs with GOTOOLCHAIN=local: Go downloads no other
# toolchain on its own.
#
# Settings (environment):
#   SLUICE_SERVICES_DIR              state root (<repo>/.services); this
#                                    service lives in <root>/influxdb2
#   SLUICE_INFLUXDB2_PORT            18087 (HTTP, 127.0.0.1)
#   SLUICE_INFLUXDB2_VERSION         v2.7.12 (a version of the Go module)
#   SLUICE_INFLUXDB2_RUST_TOOLCHAIN  stable (rustup toolchain for libflux)
#   SLUICE_GO_TOOLCHAIN_VERSION      1.26.8 (the Go fetched when the go on
#                                    PATH is missing or older than 1.23)
#   SLUICE_INFLUXDB2_KEEP_BUILD      1 keeps <state>/build (Go cache, cargo
#                                    target) after a successful install
#   SLUICE_SERVICES_TIMEOUT          90 (seconds to wait for a start)
#   SLUICE_SERVICES_STOP_TIMEOUT     30 (seconds before kill -9)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
SERVICES_DIR=${SLUICE_SERVICES_DIR:-$REPO_DIR/.services}
STATE_DIR=$SERVICES_DIR/influxdb2

HOST=127.0.0.1
PORT=${SLUICE_INFLUXDB2_PORT:-18087}
VERSION=${SLUICE_INFLUXDB2_VERSION:-v2.7.12}
[[ $VERSION == v* ]] || VERSION=v$VERSION
RUST_TOOLCHAIN=${SLUICE_INFLUXDB2_RUST_TOOLCHAIN:-stable}
KEEP_BUILD=${SLUICE_INFLUXDB2_KEEP_BUILD:-0}
GO_MIN=1.23
RUST_MIN=1.72
GO_TOOLCHAIN_VERSION=${SLUICE_GO_TOOLCHAIN_VERSION:-1.26.8}
GO_TOOLCHAIN_VERSION=${GO_TOOLCHAIN_VERSION#go}
TOOLCHAINS_DIR=$SERVICES_DIR/toolchains
GO_DIR=$TOOLCHAINS_DIR/go$GO_TOOLCHAIN_VERSION
START_TIMEOUT=${SLUICE_SERVICES_TIMEOUT:-90}
STOP_TIMEOUT=${SLUICE_SERVICES_STOP_TIMEOUT:-30}

MODULE=github.com/influxdata/influxdb/v2
ORG=sluice
BUCKET=sluice
TOKEN=sluice-token
ADMIN_USER=sluice
ADMIN_PASSWORD=sluice-secret

BIN_DIR=$STATE_DIR/bin
BIN=$BIN_DIR/influxd-$VERSION
BUILD_DIR=$STATE_DIR/build
# Data per version: a newer influxd may migrate the bolt/sqlite metadata
# so that an older one cannot open it.
DATA_DIR=$STATE_DIR/data/$VERSION
LOG_DIR=$STATE_DIR/logs
PID_FILE=$STATE_DIR/influxd.pid
APT_UPDATED=0

# ---------------------------------------------------------------- helpers

# shellcheck source=_helpers.sh
SCRIPT_NAME=influxdb2.sh
source "$SCRIPT_DIR/_helpers.sh"

url() { printf 'http://%s:%s' "$HOST" "$PORT"; }

# The host:port that process $1 (our influxd) was told to listen on.
bind_address() {
  tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null |
    sed -n '/^--http-bind-address$/{n;p;q}' || true
}

# Pid of the running influxd this script started; fails (and drops a stale
# pid file) when there is none. The command line must name our binary dir,
# so a reused pid of another process is never taken for ours.
our_pid() {
  [[ -s $PID_FILE ]] || return 1
  local pid
  pid=$(<"$PID_FILE")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$BIN_DIR/influxd-"; then
    printf '%s' "$pid"
    return 0
  fi
  rm -f "$PID_FILE"
  return 1
}

# Runs a command that may take minutes ($3...), its output to log file $1,
# printing a line every 30 s so a CI log shows it is alive; $2 names it.
# On failure prints the log's tail and dies.
run_logged() {
  local logfile=$1 what=$2 t0 pid rc=0 n=0
  shift 2
  t0=$(now_us)
  "$@" >"$logfile" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    n=$((n + 1))
    ((n % 30 == 0)) && log "  ... $what: $(elapsed_since "$t0") s"
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    log "---- tail of $logfile"
    tail -n 40 "$logfile" >&2
    die "$what failed (exit $rc; full log: $logfile)"
  fi
  log "  $what done in $(elapsed_since "$t0") s"
}

# ---------------------------------------------------------------- install

# The version of go $1 ("1.26.8"), empty when it does not run.
go_version() {
  local v
  v=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 0
  printf '%s' "${v#go}"
}

# The version cargo $1 or rustc $1 prints ("cargo 1.95.0 (...)": 1.95.0).
rust_version() {
  "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true
}

# True when the go on PATH can build influxd.
path_go_ok() {
  command -v go >/dev/null && version_at_least "$(go_version go)" "$GO_MIN"
}

# True when cargo and rustc in directory $1 (or on PATH, with no $1) can
# build libflux.
rust_ok() {
  local dir=${1:+$1/}
  version_at_least "$(rust_version "${dir}cargo")" "$RUST_MIN" &&
    version_at_least "$(rust_version "${dir}rustc")" "$RUST_MIN"
}

# The Rust packages to install: rustc-web and cargo-web (Debian 12, whose
# plain rustc is 1.63), unless the package lists know rustc but no
# rustc-web (a later Debian).
rust_packages() {
  if apt-cache show rustc >/dev/null 2>&1 && ! apt-cache show rustc-web >/dev/null 2>&1; then
    printf '%s\n' rustc cargo
  else
    printf '%s\n' rustc-web cargo-web
  fi
}

# Prints the Debian packages that the toolchain still lacks, one a line.
missing_packages() {
  path_go_ok || [[ -x $GO_DIR/bin/go ]] || command -v go >/dev/null || echo golang-go
  rust_ok || rust_ok /usr/bin || rust_packages
  command -v cc >/dev/null || printf '%s\n' gcc libc6-dev
  command -v pkg-config >/dev/null || echo pkg-config
  command -v curl >/dev/null || printf '%s\n' curl ca-certificates
}

# Fetches Go $GO_TOOLCHAIN_VERSION into $GO_DIR with the go on PATH (any
# version that knows modules): the toolchain module's files arrive
# read-only and without execute bits, as the go command's own toolchain
# switch gets them, and are made runnable the same way.
fetch_go() {
  local t0 tmp goos goarch mod json dir
  t0=$(now_us)
  goos=$(GOTOOLCHAIN=local go env GOOS)
  goarch=$(GOTOOLCHAIN=local go env GOARCH)
  mod=golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN_VERSION.$goos-$goarch
  log "Fetching Go $GO_TOOLCHAIN_VERSION ($mod) with $(command -v go) $(go_version go) from the Go module proxy into $GO_DIR ..."
  tmp=$TOOLCHAINS_DIR/.download
  [[ -d $tmp ]] && chmod -R u+w "$tmp" && rm -rf "$tmp"
  mkdir -p "$tmp/work"
  # Outside any module, in a module cache of its own that is dropped after.
  json=$(cd "$tmp/work" && GOTOOLCHAIN=local GOFLAGS='' GOPATH=$tmp/gopath GOMODCACHE=$tmp/mod \
    go mod download -json "$mod" 2>&1) ||
    die "go mod download $mod failed: $json"
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  [[ -n $dir && -f $dir/bin/go ]] || die "go mod download $mod gave no Go: $json"
  chmod -R u+w "$dir"
  chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/*
  rm -rf "$GO_DIR"
  mv "$dir" "$GO_DIR"
  chmod -R u+w "$tmp"
  rm -rf "$tmp"
  [[ $(go_version "$GO_DIR/bin/go") == "$GO_TOOLCHAIN_VERSION" ]] ||
    die "$GO_DIR/bin/go does not run as Go $GO_TOOLCHAIN_VERSION"
  log "  Go $GO_TOOLCHAIN_VERSION in $GO_DIR ($(du -sh "$GO_DIR" | cut -f1), $(elapsed_since "$t0") s)"
}

# Installs what the build lacks and puts it first on PATH (for this
# process: callers run it in the build's subshell, or for "toolchain").
toolchain() {
  local t0 missing
  t0=$(now_us)
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
  # Rust first: /usr/bin in front must not hide the Go put in front next.
  if ! rust_ok; then
    # Debian's rustc-web behind an older cargo earlier on PATH (rustup's).
    rust_ok /usr/bin ||
      die "cargo/rustc $(rust_version cargo) are older than $RUST_MIN and Debian's are too: update them (rustup update stable), or apt-get install $(rust_packages | tr '\n' ' ')"
    PATH=/usr/bin:$PATH
  fi
  if ! path_go_ok; then
    [[ -x $GO_DIR/bin/go ]] || fetch_go
    PATH=$GO_DIR/bin:$PATH
    path_go_ok ||
      die "$GO_DIR/bin/go is not Go >= $GO_MIN: remove $GO_DIR and run bash scripts/influxdb2.sh toolchain"
  fi
  command -v cc >/dev/null || die "no C compiler (cc) after installing gcc"
  command -v pkg-config >/dev/null || die "pkg-config not found after installing it"
  log "Build toolchain: go $(go_version go) ($(command -v go)), cargo $(rust_version cargo) ($(command -v cargo)), rustc $(rust_version rustc), $(cc --version | head -n1) ($(elapsed_since "$t0") s)"
}

cmd_install() {
  if [[ -x $BIN ]]; then
    log "influxd $VERSION already built: $BIN"
    return 0
  fi
  # A subshell: the build's PATH and Go/cargo settings stay out of the
  # server's environment when start installs first.
  (
    toolchain
    build
  )
}

cmd_toolchain() {
  if [[ -x $BIN ]]; then
    log "influxd $VERSION already built ($BIN): no build toolchain needed"
    return 0
  fi
  toolchain
}

cmd_packages() {
  [[ -x $BIN ]] && return 0
  missing_packages | tr '\n' ' ' | sed 's/ $//'
  echo
}

build() {
  local t0 src gomod pkgver
  t0=$(now_us)
  mkdir -p "$BIN_DIR" "$LOG_DIR"
  rm -rf "$BUILD_DIR"
  mkdir -p "$BUILD_DIR"
  # Builds use the local Go only, a cache of their own (pkg-config copies
  # the flux sources into it and runs cargo there) and the default module
  # cache (read-only, shared, reused by the next install).
  export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOCACHE=$BUILD_DIR/gocache
  export GOBIN=$BUILD_DIR/bin CGO_ENABLED=1
  log "Building influxd $VERSION from the Go module $MODULE (libflux with cargo; several minutes) ..."

  log "  fetching $MODULE@$VERSION ..."
  src=$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' || true)
  [[ -n $src && -f $src/go.mod ]] ||
    die "go mod download $MODULE@$VERSION failed (versions: go list -m -versions $MODULE)"
  # A writable copy: building in the module's own directory keeps its
  # go.mod replace directives, which a dependent module would not get.
  cp -r "$src" "$BUILD_DIR/src"
  chmod -R u+w "$BUILD_DIR/src"
  gomod=$BUILD_DIR/src/go.mod
  pkgver=$(awk '$1 == "github.com/influxdata/pkg-config" { print $2; exit }' "$gomod")
  [[ -n $pkgver ]] || die "$gomod names no github.com/influxdata/pkg-config version"
  # build runs in a subshell: the cd stays there.
  cd "$BUILD_DIR/src"
  run_logged "$LOG_DIR/build-deps.log" "go mod download (dependencies)" go mod download
  run_logged "$LOG_DIR/build-pkg-config.log" "go install github.com/influxdata/pkg-config@$pkgver" \
    go install "github.com/influxdata/pkg-config@$pkgver"

  # See the header: the rustc wrapper caps lints, the toolchain override
  # replaces flux's pinned 1.72. LTO off: the release profile's full LTO
  # costs minutes on 2 cores and only makes the library smaller.
  cat >"$BUILD_DIR/rustc-caplints" <<'EOF'
#!/usr/bin/env bash
# cargo runs: rustc-caplints <rustc> <args>; dependencies already come with
# --cap-lints allow from cargo, everything else gets --cap-lints warn.
rustc=$1
shift
for a in "$@"; do [[ $a == --cap-lints ]] && exec "$rustc" "$@"; done
exec "$rustc" --cap-lints warn "$@"
EOF
  chmod +x "$BUILD_DIR/rustc-caplints"

  log "  compiling influxd and libflux (go build, cargo inside; log $LOG_DIR/build.log) ..."
  run_logged "$LOG_DIR/build.log" "go build ./cmd/influxd" \
    env -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET PKG_CONFIG="$GOBIN/pkg-config" RUSTUP_TOOLCHAIN="$RUST_TOOLCHAIN" \
    RUSTC_WRAPPER="$BUILD_DIR/rustc-caplints" CARGO_PROFILE_RELEASE_LTO=false \
    go build -tags sqlite_foreign_keys,sqlite_json \
    -ldflags "-s -w -X main.version=$VERSION -X main.commit=$VERSION" -o "$BIN.tmp" ./cmd/influxd
  "$BIN.tmp" version >&2 || die "the built influxd does not run"
  mv "$BIN.tmp" "$BIN"
  local size
  size=$(du -sh "$BUILD_DIR" | cut -f1)
  if [[ $KEEP_BUILD == 1 ]]; then
    log "  build tree kept: $BUILD_DIR ($size)"
  else
    rm -rf "$BUILD_DIR"
    log "  build tree removed ($size)"
  fi
  local took
  took=$(elapsed_since "$t0")
  printf '%s influxd %s built in %s s (go %s, cargo %s, %s cores)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$VERSION" "$took" "$(go_version go)" "$(rust_version cargo)" "$(nproc 2>/dev/null || echo ?)" \
    >>"$LOG_DIR/build-times.log"
  log "influxd $VERSION built in $took s: $BIN ($(du -h "$BIN" | cut -f1))"
}

# ------------------------------------------------------------------ start

# Prints the version when an InfluxDB 2.x answers /health with "pass"
# (1.8 answers /health too, with a 1.x version).
health_version() {
  local body ver
  body=$(curl -s --max-time 2 "$(url)/health" 2>/dev/null) || return 1
  [[ $body == *'"status":"pass"'* || $body == *'"status": "pass"'* ]] || return 1
  ver=$(printf '%s' "$body" | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')
  [[ $ver =~ ^v?2\. ]] || return 1
  printf '%s' "$ver"
}

log_tail() {
  local f=$LOG_DIR/influxd.log
  [[ -s $f ]] || return 0
  log "---- tail of $f"
  tail -n 40 "$f" >&2
}

launch() {
  local pid
  if pid=$(our_pid); then
    local addr
    addr=$(bind_address "$pid")
    # One server per state dir: a second one could not open the data dir.
    [[ $addr == "$HOST:$PORT" ]] ||
      die "the influxd of influxdb2.sh already runs on ${addr:-?} (pid $pid), not $HOST:$PORT: stop it first"
    log "influxd already running on $HOST:$PORT (pid $pid), reusing it"
    return 0
  fi
  if health_version >/dev/null; then
    log "InfluxDB already answers on $HOST:$PORT (pid $(port_pid "$PORT"), not started by influxdb2.sh): reusing it"
    return 0
  fi
  port_open "$PORT" &&
    die "port $HOST:$PORT is taken by pid $(port_pid "$PORT") (not InfluxDB 2); set SLUICE_INFLUXDB2_PORT"

  cmd_install
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  log "Starting influxd $VERSION on $HOST:$PORT (data $DATA_DIR) ..."
  # cwd is the data dir (influxd reads a config.{toml,yaml,json} from its
  # cwd; there is none there). INFLUXD_* settings from the caller's
  # environment are dropped so that the flags below are what counts.
  local envs=() v
  for v in $(compgen -e); do [[ $v == INFLUXD_* ]] && envs+=(-u "$v"); done
  rm -f "$PID_FILE"
  # Detached (own session), the pid written by the child itself (setsid
  # may fork). The & must apply to setsid alone: a backgrounded "cd && ..."
  # list would leave a subshell waiting on the server that keeps fd 9 (the
  # lock) and the caller's stdout open.
  (
    cd "$DATA_DIR" || exit 1
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    setsid env "${envs[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      "$BIN" --http-bind-address "$HOST:$PORT" \
      --bolt-path "$DATA_DIR/influxd.bolt" --sqlite-path "$DATA_DIR/influxd.sqlite" \
      --engine-path "$DATA_DIR/engine" --reporting-disabled --ui-disabled \
      --log-level info </dev/null >"$LOG_DIR/influxd.log" 2>&1 9>&- &
  )
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $PID_FILE ]] && return 0
    sleep 0.1
  done
  die "could not start $BIN"
}

wait_ready() {
  local t0=$1 deadline pid
  deadline=$(($(now_us) + START_TIMEOUT * 1000000))
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  until health_version >/dev/null; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      log_tail
      die "influxd (pid $pid) exited during startup"
    fi
    if (($(now_us) > deadline)); then
      log_tail
      die "influxd not ready after $START_TIMEOUT s (pid ${pid:-?})"
    fi
    sleep 0.2
  done
  log "influxdb2 ready in $(elapsed_since "$t0") s"
}

# The initial setup (user, org, bucket, operator token), once per data dir;
# a server already set up must accept our token for our bucket.
setup() {
  local allowed out code
  allowed=$(curl -s --max-time 10 "$(url)/api/v2/setup") || die "GET /api/v2/setup failed"
  if [[ $allowed == *'"allowed": true'* || $allowed == *'"allowed":true'* ]]; then
    log "Setting up InfluxDB: user $ADMIN_USER, org $ORG, bucket $BUCKET, token $TOKEN ..."
    out=$(curl -s --max-time 30 -w '\n%{http_code}' -X POST "$(url)/api/v2/setup" \
      -H 'Content-Type: application/json' \
      -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\",\"org\":\"$ORG\",\"bucket\":\"$BUCKET\",\"token\":\"$TOKEN\"}")
    code=${out##*$'\n'}
    [[ $code == 201 ]] || die "POST /api/v2/setup answered $code: ${out%$'\n'*}"
    return 0
  fi
  code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' \
    -H "Authorization: Token $TOKEN" "$(url)/api/v2/buckets?org=$ORG&name=$BUCKET")
  if [[ $code != 200 ]]; then
    log "warning: InfluxDB on $HOST:$PORT was set up before, and token $TOKEN cannot list bucket $BUCKET of org $ORG (HTTP $code)"
  fi
}

cmd_start() {
  local t0
  t0=$(now_us)
  mkdir -p "$STATE_DIR"
  launch
  wait_ready "$t0"
  setup
  cmd_env
}

# ------------------------------------------------------------- stop/status

cmd_stop() {
  local pid t0 i
  t0=$(now_us)
  if ! pid=$(our_pid); then
    if port_open "$PORT"; then
      log "influxdb2 on $HOST:$PORT was not started by influxdb2.sh (pid $(port_pid "$PORT")); leaving it running"
    else
      log "influxdb2 is not running"
    fi
    return 0
  fi
  log "Stopping influxdb2 (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "influxdb2 still running after $STOP_TIMEOUT s: kill -9"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  log "influxdb2 stopped in $(elapsed_since "$t0") s"
}

cmd_status() {
  local pid state extra="" ver
  if pid=$(our_pid); then
    state=running
    extra=" version $(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || echo ?)" | sed 's/^influxd-//')"
    local addr
    addr=$(bind_address "$pid")
    if [[ -n $addr && $addr != "$HOST:$PORT" ]]; then
      printf '%-15s %-8s http %s pid %s%s (not on %s:%s)\n' influxdb2 running "$addr" "$pid" "$extra" "$HOST" "$PORT"
      return 0
    fi
    port_open "$PORT" || state="running (port not answering yet)"
  elif port_open "$PORT"; then
    state=running
    pid=$(port_pid "$PORT")
    ver=$(health_version || true)
    extra="${ver:+ version $ver} (not started by influxdb2.sh)"
  else
    printf '%-15s %-8s http %s:%s pid -\n' influxdb2 stopped "$HOST" "$PORT"
    return 3
  fi
  printf '%-15s %-8s http %s:%s pid %s%s\n' influxdb2 "$state" "$HOST" "$PORT" "${pid:--}" "$extra"
}

cmd_env() {
  printf 'SLUICE_INFLUXDB2_URL=%s\n' "$(url)"
  printf 'SLUICE_INFLUXDB2_ORG=%s\n' "$ORG"
  printf 'SLUICE_INFLUXDB2_BUCKET=%s\n' "$BUCKET"
  printf 'SLUICE_INFLUXDB2_TOKEN=%s\n' "$TOKEN"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

main() {
  [[ $# -eq 1 ]] || usage
  local action=$1
  # One install/start/stop at a time (a lock of its own: a build takes
  # minutes and must not hold up services.sh).
  if [[ $action == @(start|stop|install|toolchain) ]] && command -v flock >/dev/null; then
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w $((START_TIMEOUT + STOP_TIMEOUT + 1800)) 9 || die "could not lock $STATE_DIR/.lock"
  fi
  case $action in
    install) cmd_install ;;
    toolchain) cmd_toolchain ;;
    packages) cmd_packages ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
  esac
}

main "$@"
