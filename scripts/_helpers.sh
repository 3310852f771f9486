# shellcheck shell=bash
# Shell helpers shared by scripts/services.sh and scripts/influxdb2.sh, which
# source this file after setting SCRIPT_NAME (for messages), HOST (the
# loopback address they serve on) and APT_UPDATED=0; scripts/setup.sh
# sources it for the time, version and as_root helpers only.

log() { printf '%s\n' "$*" >&2; }
die() {
  log "$SCRIPT_NAME: $*"
  exit 1
}

# Microseconds since the epoch; EPOCHREALTIME uses the locale's decimal mark.
now_us() {
  local t=${EPOCHREALTIME/[.,]/}
  printf '%s' "$t"
}

# Seconds since $1 (from now_us), one decimal: "7.2".
elapsed_since() {
  local d=$(($(now_us) - $1))
  printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10))
}

# True when version $1 ("1.26.8", "go1.19.8", "1.95.0-nightly") is at
# least major.minor $2 ("1.23").
version_at_least() {
  local have=${1#go} want=$2
  local hmaj=${have%%.*} hmin=${have#*.} wmaj=${want%%.*} wmin=${want#*.}
  hmin=${hmin%%[!0-9]*}
  [[ $hmaj =~ ^[0-9]+$ && $hmin =~ ^[0-9]+$ ]] || return 1
  ((hmaj > wmaj || (hmaj == wmaj && hmin >= wmin)))
}

# apt-get and friends need root; use sudo when not root (CI runners often are).
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

# Installs Debian packages; a fresh machine may have no package lists yet,
# so on failure update them once and retry.
apt_install() {
  log "Installing $* with apt-get ..."
  if as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "$@" >&2; then
    return 0
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    APT_UPDATED=1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "$@" >&2 && return 0
  fi
  die "apt-get install $* failed"
}

# True when something accepts TCP connections on 127.0.0.1:$1 (loopback
# answers or refuses at once, so no timeout is needed).
port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Pid of whatever listens on port $1, if ss can tell (empty otherwise).
port_pid() {
  command -v ss >/dev/null || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

