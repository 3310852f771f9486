#!/usr/bin/env bash
# sluice end to end on the local services, for a first look, from a fresh
# clone (`deno task demo` runs it too):
#
#   0. install what is missing (scripts/setup.sh demo: Node.js and npm when
#      there is no npm, the pinned Deno, a Java runtime, ClickHouse, the
#      Kafka jars; about a second when everything is there)
#   1. start a local Kafka broker and ClickHouse (scripts/services.sh start)
#   2. create a fresh Kafka topic
#   3. start sluice in the background, pointed at both
#   4. feed a few hundred pmacct flow records (some IPv6, current timestamps)
#      and one poison message, and watch the rows arrive in ClickHouse
#   5. query what landed: flows per minute, top talkers, top services
#   6. show sluice's /metrics counters and the poison message set aside
#   7. stop sluice with SIGTERM and check that it exits 0
#
# Exits non-zero as soon as a step fails. The services are left running;
# `bash scripts/services.sh stop` stops them. The files of the run (sluice's
# env file and JSON log, the dead-letter file) stay in $DEMO_DIR.
#
# Settings (environment):
#   DEMO_DIR   where the run's files go (emptied first); default a new private
#              directory, ${TMPDIR:-/tmp}/sluice-demo.XXXXXX
#   The SLUICE_* settings of scripts/services.sh (ports, versions) apply too.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
bash scripts/setup.sh demo
# How the hints at the end name Deno: as the caller's PATH finds it, or by
# its path in the checkout, which needs no PATH change.
DENO_CMD=tools/deno/node_modules/.bin/deno
[[ $(command -v deno || true) == "$REPO_DIR/$DENO_CMD" ]] && DENO_CMD=deno
PATH=$REPO_DIR/tools/deno/node_modules/.bin:$PATH

DEMO_DIR=${DEMO_DIR:-}
RUN_ID=$(date +%s)
TOPIC=sluice-demo-$RUN_ID
DB=pmacct
TABLE=sluice_demo
STEPS=7
# Records per feeding wave; the poison message goes with the second.
WAVES=(120 100 80)
SCHEMA="peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,\
ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime,packets:UInt64,bytes:UInt64"

SLUICE_PID=""
STARTED=$EPOCHREALTIME
BOLD="" RED="" PLAIN=""
if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[1;31m' PLAIN=$'\033[0m'; fi
STEP=0

# ------------------------------------------------------------------ helpers

# Seconds since the start of the demo, one decimal.
elapsed() {
  local now=${EPOCHREALTIME/[.,]/} start=${STARTED/[.,]/}
  local d=$((now - start))
  printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10))
}

header() {
  STEP=$((STEP + 1))
  printf '\n%s== [%d/%d] %s%s  (t=%s s)\n' "$BOLD" "$STEP" "$STEPS" "$*" "$PLAIN" "$(elapsed)"
}

info() { printf '   %s\n' "$*"; }

fail() {
  printf '\n%sdemo failed:%s %s\n' "$RED" "$PLAIN" "$*" >&2
  if [[ -s ${LOG_FILE:-} ]]; then
    printf -- '---- last lines of the sluice log (%s)\n' "$LOG_FILE" >&2
    tail -n 15 "$LOG_FILE" >&2
  fi
  exit 1
}

# Stops a sluice that is still running when the demo ends early.
cleanup() {
  if [[ -n $SLUICE_PID ]] && kill -0 "$SLUICE_PID" 2>/dev/null; then
    kill -TERM "$SLUICE_PID" 2>/dev/null || true
    wait "$SLUICE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM

# Runs SQL on ClickHouse over HTTP and prints the answer; fails on an error.
ch() {
  local out code
  out=$(curl -sS --data-binary "$1" -w '\n%{http_code}' "$CH_URL/") ||
    fail "cannot reach ClickHouse at $CH_URL"
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 200 ]] || fail "ClickHouse refused: $1: $out"
  printf '%s\n' "$out"
}

# Prints a title, the query ($2) on one line, and its result as a table.
show() {
  printf '   %s%s:%s %s\n' "$BOLD" "$1" "$PLAIN" "$(tr -s ' \n' ' ' <<<"$2")"
  ch "$2 FORMAT PrettyCompactNoEscapes" | sed '/^$/d; s/^/   /'
}

row_count() { ch "SELECT count() FROM $DB.$TABLE"; }

# Lines cut at 220 characters, with "..." where something was cut.
shorten() { awk '{ if (length($0) > 220) print substr($0, 1, 217) "..."; else print }'; }

# Prints the lines of sluice's JSON log whose "msg" is one of the arguments.
log_lines() {
  local msg
  for msg in "$@"; do
    grep -F "\"msg\":\"$msg\"" "$LOG_FILE" | shorten | sed 's/^/   log: /' || true
  done
}

metrics() { curl -sS "http://127.0.0.1:$METRICS_PORT/metrics"; }

# Sum of one metric's samples whose labels contain $2 (e.g. reason="decode").
metric_value() {
  metrics | awk -v name="$1" -v want="${2:-}" '
    $1 == name || index($1, name "{") == 1 { if (want == "" || index($1, want)) sum += $2 }
    END { printf "%d\n", sum }'
}

# Waits until the table holds $1 rows, printing the count as it grows.
wait_rows() {
  local want=$1 since=${EPOCHREALTIME/[.,]/} last=-1 n now
  while true; do
    n=$(row_count)
    now=${EPOCHREALTIME/[.,]/}
    if [[ $n != "$last" ]]; then
      printf '   +%4d ms  %4d rows in %s.%s\n' $(((now - since) / 1000)) "$n" "$DB" "$TABLE"
      last=$n
    fi
    [[ $n -ge $want ]] && break
    kill -0 "$SLUICE_PID" 2>/dev/null || fail "sluice exited while $want rows were awaited"
    ((now - since < 20000000)) || fail "only $n of $want rows arrived within 20 s"
    sleep 0.25
  done
  [[ $n -eq $want ]] || fail "$n rows arrived, $want expected"
}

feed() { deno run -A --config deno.json scripts/demo_feed.ts --brokers "$KAFKA" --topic "$TOPIC" "$@"; }

# ------------------------------------------------------------------- steps

command -v deno >/dev/null || fail "no deno in tools/deno/node_modules/.bin after scripts/setup.sh demo"
command -v curl >/dev/null || fail "curl is needed"
if [[ -n $DEMO_DIR ]]; then
  rm -rf "$DEMO_DIR"
  mkdir -p "$DEMO_DIR"
else
  DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
fi
ENV_FILE=$DEMO_DIR/sluice.env
LOG_FILE=$DEMO_DIR/sluice.log
DEAD_LETTERS=$DEMO_DIR/dead_letters.jsonl

header "Local services: Kafka and ClickHouse (scripts/services.sh start kafka clickhouse)"
services_env=$(bash scripts/services.sh start kafka clickhouse) ||
  fail "scripts/services.sh start kafka clickhouse failed"
KAFKA="" CH_URL="" CH_TCP_PORT=""
while IFS='=' read -r name value; do
  case $name in
    KAFKA_BOOTSTRAP_SERVERS) KAFKA=$value ;;
    CLICKHOUSE_URL) CH_URL=$value ;;
    SLUICE_CLICKHOUSE_TCP_PORT) CH_TCP_PORT=$value ;;
  esac
done <<<"$services_env"
[[ -n $KAFKA && -n $CH_URL ]] || fail "scripts/services.sh start printed no addresses"
info "Kafka      $KAFKA"
info "ClickHouse $CH_URL (ClickHouse $(ch "SELECT version()"))"

header "A fresh topic, and an empty table"
feed --create --partitions 3 --drop-prefix sluice-demo- | sed 's/^/   /' ||
  fail "cannot create topic $TOPIC"
ch "CREATE DATABASE IF NOT EXISTS $DB" >/dev/null
ch "DROP TABLE IF EXISTS $DB.$TABLE" >/dev/null
info "Dropped $DB.$TABLE if it was there: sluice creates it at start (CLICKHOUSE_CREATE_TABLE)"

header "Start sluice in the background"
cat >"$ENV_FILE" <<EOF
## sluice configuration of the demo ($0); rerun with:
##   $DENO_CMD run -A main.ts --env-file $ENV_FILE
SINK=clickhouse
KAFKA_BOOTSTRAP_SERVERS=$KAFKA
KAFKA_TOPIC=$TOPIC
KAFKA_CONSUMER_GROUP_ID=sluice-demo
CLICKHOUSE_HOST=$CH_URL
CLICKHOUSE_DB=$DB
CLICKHOUSE_TABLE=$TABLE
CLICKHOUSE_DATA_SCHEMA=$SCHEMA
CLICKHOUSE_ORDER_BY=stamp_inserted, ip_src, ip_dst
CLICKHOUSE_PARTITION_BY=toYYYYMMDD(stamp_inserted)
## Flush at least every 2 s, so the rows show up quickly.
CLICKHOUSE_MAX_TIME_TO_SEND=2
DEAD_LETTER_FILE=$DEAD_LETTERS
## Any free port; the "Starting sluice" log line says which.
PROMETHEUS_CLIENT_PORT=0
PROMETHEUS_CLIENT_HOST=127.0.0.1
EOF
sed -n '/^[A-Z]/s/^/   /p' "$ENV_FILE"
# The environment wins over the env file: sluice's own variables from the
# caller's shell must not leak in.
(
  while IFS= read -r name; do unset "$name"; done < <(compgen -e |
    grep -E '^(SINK|ENCODER|PMACCT_TIMEZONE|LOG_LEVEL|DEAD_LETTER_FILE|TIMESTAMP_TEMPLATE|KAFKA_.*|CLICKHOUSE_.*|PROMETHEUS_.*|RETRY_.*|SHUTDOWN_TIMEOUT|HEALTH_STALL_TIMEOUT)$' || true)
  exec deno run -A --config deno.json main.ts --env-file "$ENV_FILE"
) </dev/null >/dev/null 2>"$LOG_FILE" &
SLUICE_PID=$!
info "sluice pid $SLUICE_PID, JSON log in $LOG_FILE"
for ((i = 0; ; i++)); do
  grep -qF '"msg":"Joined consumer group"' "$LOG_FILE" && break
  kill -0 "$SLUICE_PID" 2>/dev/null || fail "sluice exited at start"
  ((i < 300)) || fail "sluice did not join the consumer group within 30 s"
  sleep 0.1
done
METRICS_PORT=$(grep -F '"msg":"Starting sluice"' "$LOG_FILE" | grep -o '"metrics_port":[0-9]*' |
  cut -d: -f2)
[[ -n $METRICS_PORT ]] || fail "no metrics_port in the \"Starting sluice\" log line"
log_lines "Starting sluice" "Created ClickHouse table" "Connected to ClickHouse" \
  "Joined consumer group"
info "metrics: http://127.0.0.1:$METRICS_PORT/metrics"

header "Feed pmacct flows into Kafka, watch them arrive in ClickHouse"
total=0
for wave in "${!WAVES[@]}"; do
  n=${WAVES[$wave]}
  extra=()
  [[ $wave -eq 1 ]] && extra=(--poison)
  feed --records "$n" --first "$total" "${extra[@]}" | sed 's/^/   /' ||
    fail "cannot send records to $TOPIC"
  total=$((total + n))
  wait_rows "$total"
done

header "What landed in ClickHouse"
# Aliases differ from column names: ClickHouse resolves a name to the alias first.
show "Totals" "SELECT count() AS flows, countIf(position(ip_src, ':') > 0) AS ipv6_flows,
  sum(packets) AS pkts, formatReadableSize(sum(bytes)) AS traffic,
  min(stamp_updated) AS first_seen, max(stamp_updated) AS last_seen FROM $DB.$TABLE"
show "Flows per minute" "SELECT toStartOfMinute(stamp_updated) AS minute, count() AS flows,
  sum(packets) AS pkts, formatReadableSize(sum(bytes)) AS traffic
  FROM $DB.$TABLE GROUP BY minute ORDER BY minute"
show "Top talkers" "SELECT ip_src AS talker, count() AS flows, formatReadableSize(sum(bytes)) AS traffic
  FROM $DB.$TABLE GROUP BY talker ORDER BY sum(bytes) DESC LIMIT 5"
show "Top services" "SELECT ip_proto AS proto, least(port_src, port_dst) AS service, count() AS flows,
  formatReadableSize(sum(bytes)) AS traffic
  FROM $DB.$TABLE GROUP BY proto, service ORDER BY sum(bytes) DESC LIMIT 5"

header "sluice's /metrics, and the poison message set aside"
metrics | grep -E '^(samples_count_total|sluice_records_written_total|sluice_records_rejected_total|sluice_batches_total|sluice_sink_up|sluice_consumer_lag)[{ ]' |
  sed 's/^/   /' || fail "no sluice metrics at http://127.0.0.1:$METRICS_PORT/metrics"
written=$(metric_value sluice_records_written_total)
rejected=$(metric_value sluice_records_rejected_total 'reason="decode"')
[[ $written -eq $total ]] || fail "sluice_records_written_total is $written, $total expected"
[[ $rejected -eq 1 ]] || fail "sluice_records_rejected_total{reason=\"decode\"} is $rejected, 1 expected"
log_lines "Record set aside"
[[ -s $DEAD_LETTERS ]] || fail "the dead-letter file $DEAD_LETTERS is empty"
info "dead-letter file $DEAD_LETTERS:"
shorten <"$DEAD_LETTERS" | sed 's/^/   /'

header "Stop sluice with SIGTERM"
kill -TERM "$SLUICE_PID"
stop_started=$EPOCHREALTIME
rc=0
wait "$SLUICE_PID" || rc=$?
SLUICE_PID=""
log_lines "Stopping: no more fetching, writing the last batch" "Stopped"
stop_ms=$(((${EPOCHREALTIME/[.,]/} - ${stop_started/[.,]/}) / 1000))
[[ $rc -eq 0 ]] || fail "sluice exited with status $rc after SIGTERM"
info "sluice exited with status 0 in $stop_ms ms"

printf '\n%sDemo done in %s s:%s %d flows went Kafka -> sluice -> ClickHouse, 1 poison message set aside.\n' \
  "$BOLD" "$(elapsed)" "$PLAIN" "$total"
cat <<EOF
   Query the rows:    curl -sS --data-binary 'SELECT * FROM $DB.$TABLE LIMIT 5 FORMAT PrettyCompact' $CH_URL/
                      (or: clickhouse-client --port $CH_TCP_PORT -q 'SELECT ...')
   Run sluice again:  $DENO_CMD run -A main.ts --env-file $ENV_FILE
   Feed more flows:   $DENO_CMD run -A scripts/demo_feed.ts --brokers $KAFKA --topic $TOPIC --records 500
   The services keep running; stop them with: bash scripts/services.sh stop
EOF
