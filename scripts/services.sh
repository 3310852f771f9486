#!/usr/bin/env bash
# Local test services for sluice: a single-node Apache Kafka broker (KRaft,
# jars from Maven Central, no distribution tarball needed), a ClickHouse
# test instance, a VictoriaMetrics single node and an InfluxDB 1.x server
# (Debian packages, own config and data dir), one OpenSearch or
# Elasticsearch node (server jars from Maven Central, run by
# scripts/elasticsearch/Runner.java.tmpl), and a current ClickHouse (26.x)
# beside the Debian 18.16: a `clickhouse` binary >= 22 when one is on PATH,
# else the server inside PyPI's chdb-core wheel (a venv in the state dir,
# run by scripts/clickhouse26/launcher.py). Loopback only.
#
# Besides PLAINTEXT the broker has authenticated listeners for the client
# tests: SASL_PLAINTEXT and SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512;
# user sluice, password sluice-secret) and SSL (certificate of a CA made
# once in the state dir; clients verify with <state>/kafka/tls/ca.pem).
#
# kafka-cluster is three more Kafka nodes (KRaft, each broker and
# controller, PLAINTEXT only) forming one cluster, for tests of partition
# leaders moving between brokers: replication factor 3 by default, min ISR
# 2. It runs the same jars and $SLUICE_KAFKA_VERSION as kafka, on ports of
# its own, with its data under <state>/kafka-cluster/. It costs three JVMs,
# so it starts only when named. kafka-cluster-1, -2 and -3 name one node
# each: `stop kafka-cluster-2` shuts that node down cleanly (SIGTERM: its
# leaderships move to the others first), `kill kafka-cluster-2` ends it
# the way a crash would (SIGKILL: the controller notices when its session
# expires), `start kafka-cluster-2` brings it back and waits until it is a
# live broker of the cluster again (with the Kafka version the other nodes
# run, when SLUICE_KAFKA_VERSION is not set).
#
# zookeeper is one standalone ZooKeeper server (Debian's `zookeeper`
# package: its jars only, run here in the foreground; the package has no
# init script or unit, Debian's `zookeeperd` would, and is not installed),
# with its data and logs under <state>/zookeeper/.
#
# clickhouse-cluster is four Debian ClickHouse 18.16 servers forming the
# cluster `sluice` of remote_servers: 2 shards x 2 replicas, node 1 and 2
# shard 01, node 3 and 4 shard 02, replicas named clickhouse-cluster-N (the
# {shard} and {replica} macros), replicated through zookeeper (started
# first) and interserver HTTP, with the distributed_ddl queue for ON
# CLUSTER queries (scripts/clickhouse-cluster/config.xml.tmpl). Each node
# has its own config, data and logs under <state>/clickhouse-cluster/node-N/.
# It costs four servers, so it starts only when named (and zookeeper with
# it). clickhouse-cluster-1 to -4 name one node each: `stop` (SIGTERM, a
# clean shutdown), `kill` (SIGKILL, as a crash: its ZooKeeper session lives
# on for 10 s, until then a restarted replica waits to become active) and
# `start` (waits until it answers and reaches ZooKeeper; a replica fetches
# the parts it missed by itself).
#
# Usage: scripts/services.sh start|stop|kill|status|install|env [SERVICE]...
#   SERVICE: kafka, clickhouse, clickhouse26, victoriametrics, elasticsearch,
#            influxdb, kafka-cluster (kafka-cluster-1, -2, -3: one node),
#            zookeeper, clickhouse-cluster (clickhouse-cluster-1 to -4: one
#            node; starting one starts zookeeper too)
#   No service named means all of them but kafka-cluster, zookeeper and
#   clickhouse-cluster; `stop` with no service stops those too, and the
#   InfluxDB 2 of scripts/influxdb2.sh.
#   start    install what is missing, start in the background, wait until
#            ready, then print on stdout the variables a client needs
#   stop     stop what this script started (pid file), kill -9 after a timeout
#   kill     kill -9 what this script started, at once, as a crash would
#   status   one line per service (per node of kafka-cluster and
#            clickhouse-cluster); exit 3 if one is not running
#   install  install what is missing (apt-get, Maven, pip), start nothing
#   env      print the client variables only
#
# Settings (environment):
#   SLUICE_SERVICES_DIR             state: data, logs, pid files, jars (<repo>/.services)
#   SLUICE_KAFKA_VERSION            3.9.1 (4.x works too)
#   SLUICE_KAFKA_PORT               19092
#   SLUICE_KAFKA_CONTROLLER_PORT    19093
#   SLUICE_KAFKA_SASL_PORT          19094 (SASL_PLAINTEXT listener)
#   SLUICE_KAFKA_TLS_PORT           19095 (SSL listener)
#   SLUICE_KAFKA_SASL_TLS_PORT      19096 (SASL_SSL listener)
#   SLUICE_KAFKA_PARTITIONS         3 (num.partitions of auto-created topics)
#   SLUICE_KAFKA_HEAP_OPTS          -Xms256m -Xmx768m
#   SLUICE_KAFKA_CLUSTER_PORT       19192 (kafka-cluster: node N's PLAINTEXT
#                                   listener is this + N - 1: 19192-19194)
#   SLUICE_KAFKA_CLUSTER_CONTROLLER_PORT  19292 (node N's: 19292-19294)
#   SLUICE_KAFKA_CLUSTER_HEAP_OPTS  -Xms128m -Xmx384m (per node)
#   SLUICE_CLICKHOUSE_HTTP_PORT     18123
#   SLUICE_CLICKHOUSE_TCP_PORT      19000
#   SLUICE_CLICKHOUSE26_HTTP_PORT   28123 (the current ClickHouse, clickhouse26)
#   SLUICE_CLICKHOUSE26_TCP_PORT    29000
#   SLUICE_ZOOKEEPER_PORT           12181 (zookeeper's client port)
#   SLUICE_ZOOKEEPER_HEAP_OPTS      -Xms64m -Xmx256m
#   SLUICE_CLICKHOUSE_CLUSTER_HTTP_PORT         18131 (clickhouse-cluster: node
#                                   N's is this + N - 1: 18131-18134)
#   SLUICE_CLICKHOUSE_CLUSTER_TCP_PORT          19131 (node N's: 19131-19134)
#   SLUICE_CLICKHOUSE_CLUSTER_INTERSERVER_PORT  19231 (node N's: 19231-19234)
#   SLUICE_VM_PORT                  18428 (VictoriaMetrics HTTP)
#   SLUICE_VM_RETENTION             100y (-retentionPeriod; tests use old timestamps)
#   SLUICE_ELASTIC_FLAVOR           opensearch (default) or elasticsearch
#   SLUICE_ELASTIC_VERSION          opensearch: 2.19.6 (2.x; 3.x needs Java 21)
#                                   elasticsearch: 7.17.29 (7.x; Maven Central lacks
#                                   the 8.x module that serves GET /)
#   SLUICE_ELASTIC_PORT             19200 (HTTP)
#   SLUICE_ELASTIC_TRANSPORT_PORT   19300
#   SLUICE_ELASTIC_HEAP_OPTS        -Xms512m -Xmx512m
#   SLUICE_INFLUXDB_PORT            18086 (InfluxDB HTTP)
#   SLUICE_INFLUXDB_RPC_PORT        18088 (InfluxDB RPC bind-address, backup/restore)
#   SLUICE_SERVICES_TIMEOUT         90 (seconds to wait for a start)
#   SLUICE_SERVICES_STOP_TIMEOUT    30 (seconds before kill -9)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
SERVICES_DIR=${SLUICE_SERVICES_DIR:-$REPO_DIR/.services}

HOST=127.0.0.1
KAFKA_VERSION=${SLUICE_KAFKA_VERSION:-3.9.1}
KAFKA_PORT=${SLUICE_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${SLUICE_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_SASL_PORT=${SLUICE_KAFKA_SASL_PORT:-19094}
KAFKA_TLS_PORT=${SLUICE_KAFKA_TLS_PORT:-19095}
KAFKA_SASL_TLS_PORT=${SLUICE_KAFKA_SASL_TLS_PORT:-19096}
# The test user of the SASL listeners, for every mechanism.
KAFKA_SASL_USER=sluice
KAFKA_SASL_PASSWORD=sluice-secret
KAFKA_SCRAM_MECHANISMS=(SCRAM-SHA-256 SCRAM-SHA-512)
KAFKA_PARTITIONS=${SLUICE_KAFKA_PARTITIONS:-3}
KAFKA_HEAP_OPTS=${SLUICE_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KCLUSTER_PORT=${SLUICE_KAFKA_CLUSTER_PORT:-19192}
KCLUSTER_CONTROLLER_PORT=${SLUICE_KAFKA_CLUSTER_CONTROLLER_PORT:-19292}
KCLUSTER_HEAP_OPTS=${SLUICE_KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx384m}
# The node ids of kafka-cluster; service kafka-cluster-N is node N.
KCLUSTER_NODES=(1 2 3)
CH_HTTP_PORT=${SLUICE_CLICKHOUSE_HTTP_PORT:-18123}
CH_TCP_PORT=${SLUICE_CLICKHOUSE_TCP_PORT:-19000}
CH26_HTTP_PORT=${SLUICE_CLICKHOUSE26_HTTP_PORT:-28123}
CH26_TCP_PORT=${SLUICE_CLICKHOUSE26_TCP_PORT:-29000}
ZK_PORT=${SLUICE_ZOOKEEPER_PORT:-12181}
ZK_HEAP_OPTS=${SLUICE_ZOOKEEPER_HEAP_OPTS:--Xms64m -Xmx256m}
CHC_HTTP_PORT=${SLUICE_CLICKHOUSE_CLUSTER_HTTP_PORT:-18131}
CHC_TCP_PORT=${SLUICE_CLICKHOUSE_CLUSTER_TCP_PORT:-19131}
CHC_INTERSERVER_PORT=${SLUICE_CLICKHOUSE_CLUSTER_INTERSERVER_PORT:-19231}
# The nodes of clickhouse-cluster; service clickhouse-cluster-N is node N,
# of shard (N + 1) / 2. The cluster's name in remote_servers:
CHC_NODES=(1 2 3 4)
CHC_CLUSTER=sluice
# The PyPI wheel whose library holds the server, when no binary is installed.
CH26_CHDB_VERSION=26.9.0
# The oldest major version of a `clickhouse` binary taken instead of
# chdb-core (insert_deduplication_token came with 22.2).
CH26_MIN_BINARY_MAJOR=22
VM_PORT=${SLUICE_VM_PORT:-18428}
VM_RETENTION=${SLUICE_VM_RETENTION:-100y}
ES_FLAVOR=${SLUICE_ELASTIC_FLAVOR:-opensearch}
case $ES_FLAVOR in
  opensearch) ES_DEFAULT_VERSION=2.19.6 ;;
  elasticsearch) ES_DEFAULT_VERSION=7.17.29 ;;
  *) ES_DEFAULT_VERSION="" ;; # refused in es_launch/es_install
esac
ES_VERSION=${SLUICE_ELASTIC_VERSION:-$ES_DEFAULT_VERSION}
ES_PORT=${SLUICE_ELASTIC_PORT:-19200}
ES_TRANSPORT_PORT=${SLUICE_ELASTIC_TRANSPORT_PORT:-19300}
ES_HEAP_OPTS=${SLUICE_ELASTIC_HEAP_OPTS:--Xms512m -Xmx512m}
INFLUX_PORT=${SLUICE_INFLUXDB_PORT:-18086}
INFLUX_RPC_PORT=${SLUICE_INFLUXDB_RPC_PORT:-18088}
START_TIMEOUT=${SLUICE_SERVICES_TIMEOUT:-90}
STOP_TIMEOUT=${SLUICE_SERVICES_STOP_TIMEOUT:-30}

ALL_SERVICES=(kafka clickhouse clickhouse26 victoriametrics elasticsearch influxdb)
# Started, installed and shown only when named; stopped by `stop` with no service.
OPTIONAL_SERVICES=(kafka-cluster clickhouse-cluster zookeeper)
APT_UPDATED=0
declare -A T0=() # start time of each service, see cmd_start

# ---------------------------------------------------------------- helpers

# shellcheck source=_helpers.sh
SCRIPT_NAME=services.sh
source "$SCRIPT_DIR/_helpers.sh"

# The nodes of kafka-cluster share one state dir, so do those of
# clickhouse-cluster.
svc_dir() {
  local name=${1/#kafka-cluster-*/kafka-cluster}
  printf '%s/%s' "$SERVICES_DIR" "${name/#clickhouse-cluster-*/clickhouse-cluster}"
}
pid_file() { printf '%s/%s.pid' "$(svc_dir "$1")" "$1"; }

# What the command line of our process of service $1 contains; guards
# against killing an unrelated process that reused a stale pid.
pid_marker() {
  case $1 in
    kafka) printf 'kafka.Kafka' ;;
    clickhouse) printf 'clickhouse' ;;
    # The python launcher and a binary both name a path in the state dir.
    clickhouse26) printf 'clickhouse26' ;;
    victoriametrics) printf 'victoria-metrics' ;;
    elasticsearch) printf 'Runner.java' ;;
    influxdb) printf 'influxd' ;;
    kafka-cluster-*) printf '%s' "kafka-cluster/node-${1#kafka-cluster-}.properties" ;;
    zookeeper) printf '%s' "zookeeper/zoo.cfg" ;;
    clickhouse-cluster-*) printf '%s' "clickhouse-cluster/node-${1#clickhouse-cluster-}/config.xml" ;;
  esac
}

# The prefix of the functions of service $1 (ch_ready, vm_launch, ...).
svc_fn() {
  case $1 in
    clickhouse) printf 'ch' ;;
    clickhouse26) printf 'ch26' ;;
    victoriametrics) printf 'vm' ;;
    elasticsearch) printf 'es' ;;
    influxdb) printf 'influx' ;;
    kafka-cluster-*) printf 'kcluster' ;;
    zookeeper) printf 'zk' ;;
    clickhouse-cluster-*) printf 'chc' ;;
    *) printf '%s' "$1" ;;
  esac
}

# The port that tells whether service $1 runs.
svc_port() {
  case $1 in
    kafka) printf '%s' "$KAFKA_PORT" ;;
    clickhouse) printf '%s' "$CH_HTTP_PORT" ;;
    clickhouse26) printf '%s' "$CH26_HTTP_PORT" ;;
    victoriametrics) printf '%s' "$VM_PORT" ;;
    elasticsearch) printf '%s' "$ES_PORT" ;;
    influxdb) printf '%s' "$INFLUX_PORT" ;;
    kafka-cluster-*) kcluster_port "${1#kafka-cluster-}" ;;
    zookeeper) printf '%s' "$ZK_PORT" ;;
    clickhouse-cluster-*) chc_http_port "${1#clickhouse-cluster-}" ;;
  esac
}

# Prints the pid of the running process this script started for service $1;
# fails (and drops a stale pid file) when there is none.
our_pid() {
  local file pid
  file=$(pid_file "$1")
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(pid_marker "$1")"; then
    printf '%s' "$pid"
    return 0
  fi
  rm -f "$file"
  return 1
}

# Runs "$@" detached (own session, so it outlives this shell and a closed
# terminal), stdout/stderr to $2 (truncated: it only holds what the process
# says before its own log is set up), pid written to $1 by the child itself
# (setsid may fork, so $! would not always be the server's pid). Fds 9, 8
# and 6 (the locks of main) are closed so the server does not hold them
# forever.
spawn() {
  local pidfile=$1 logfile=$2
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >"$logfile" 2>&1 9>&- 8>&- 6>&- &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "could not start $1"
}

# Fills the @NAME@ placeholders of template $1 from the NAME=value pairs that
# follow and writes the result to stdout (pure bash: values may hold any
# character, e.g. | or & in paths).
render() {
  local text pair
  text=$(<"$1")
  shift
  for pair in "$@"; do
    text=${text//@${pair%%=*}@/${pair#*=}}
  done
  printf '%s\n' "$text"
}

# ------------------------------------------------------------------ kafka

kafka_major() { printf '%s' "${KAFKA_VERSION%%.*}"; }
kafka_lib_dir() { printf '%s/kafka/lib/%s' "$SERVICES_DIR" "$KAFKA_VERSION"; }
# Data is kept per version: a log dir formatted by a newer Kafka (newer
# metadata.version) cannot be opened by an older one.
kafka_data_dir() { printf '%s/kafka/data/%s' "$SERVICES_DIR" "$KAFKA_VERSION"; }
kafka_log_dir() { printf '%s/kafka/logs' "$SERVICES_DIR"; }

kafka_install() {
  command -v java >/dev/null || apt_install default-jre-headless
  command -v kcat >/dev/null || apt_install kcat
  local lib
  lib=$(kafka_lib_dir)
  # .complete is written last, so an interrupted download is redone.
  [[ -f $lib/.complete ]] && return 0
  # kafka and kafka-cluster start under different locks (see main), and
  # both fetch these jars: one download at a time. Fd 7 closes at the end.
  mkdir -p "$(dirname "$lib")"
  if command -v flock >/dev/null; then
    exec 7>"$lib.lock"
    flock -w 1800 7 || die "could not lock $lib.lock"
    if [[ -f $lib/.complete ]]; then
      exec 7>&-
      return 0
    fi
  fi
  command -v mvn >/dev/null || apt_install maven

  # Kafka 3.x logs with log4j 1 (reload4j), 4.x with log4j2: see pom.xml.
  local profile=kafka3
  [[ $(kafka_major) -ge 4 ]] && profile=kafka4
  local tmp=$lib.tmp mvn_log
  mvn_log=$(kafka_log_dir)/mvn-$KAFKA_VERSION.log
  mkdir -p "$(kafka_log_dir)"
  rm -rf "$tmp"
  log "Downloading Kafka $KAFKA_VERSION jars with Maven ..."
  local t0
  t0=$(now_us)
  if ! mvn -B -q -Dstyle.color=never -f "$SCRIPT_DIR/kafka/pom.xml" \
    -P "$profile" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    # Maven colours its output even with -B; strip that for the terminal.
    tail -n 30 "$mvn_log" | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (does that version exist? mvn dependency:get -Dartifact=org.apache.kafka:kafka_2.13:$KAFKA_VERSION)"
  fi
  rm -rf "$lib"
  mv "$tmp" "$lib"
  touch "$lib/.complete"
  exec 7>&-
  log "Kafka $KAFKA_VERSION jars in $lib ($(find "$lib" -name '*.jar' | wc -l) jars, $(elapsed_since "$t0") s)"
}

# JVM options shared by the brokers and the tools; $1 is where the log goes
# (default: the broker's log dir), $2 the heap options (default: the broker's).
kafka_java_opts() {
  local logs=${1:-$(kafka_log_dir)} heap=${2:-$KAFKA_HEAP_OPTS}
  # Word splitting of the heap options is wanted ("-Xms256m -Xmx768m").
  # shellcheck disable=SC2086
  printf '%s\n' $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "-Dkafka.logs.dir=$logs"
  if [[ $(kafka_major) -ge 4 ]]; then
    printf '%s\n' "-Dlog4j2.configurationFile=$SCRIPT_DIR/kafka/log4j2.xml"
  else
    printf '%s\n' "-Dlog4j.configuration=file:$SCRIPT_DIR/kafka/log4j.properties"
  fi
  printf '%s\n' -cp "$(kafka_lib_dir)/*"
}

kafka_config_file() { printf '%s/kafka/server.properties' "$SERVICES_DIR"; }
kafka_tls_dir() { printf '%s/kafka/tls' "$SERVICES_DIR"; }
kafka_ca_file() { printf '%s/ca.pem' "$(kafka_tls_dir)"; }

# Makes a CA and a broker certificate it signs, once per state dir (every
# Kafka version uses them). The broker reads its key and chain from one PEM
# file (ssl.keystore.type=PEM, KIP-651); clients trust ca.pem. The
# certificate names IP 127.0.0.1: a client checks the address it dialled
# against the subjectAltName (RFC 6125), and the listeners advertise
# 127.0.0.1. The CA key is dropped once it has signed.
kafka_tls_setup() {
  local dir tmp out
  dir=$(kafka_tls_dir)
  # .complete is written last, so an interrupted run is redone.
  [[ -f $dir/.complete ]] && return 0
  command -v openssl >/dev/null || apt_install openssl
  tmp=$dir.tmp
  out=$(kafka_log_dir)/tls.log
  rm -rf "$tmp"
  mkdir -p "$tmp" "$(kafka_log_dir)"
  log "Making the CA and broker certificate of the Kafka TLS listeners in $dir ..."
  printf '%s\n' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' \
    'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$tmp/broker.ext"
  if ! (
    umask 077
    cd "$tmp" &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sluice test CA" \
        -addext 'basicConstraints=critical,CA:TRUE' \
        -addext 'keyUsage=critical,keyCertSign,cRLSign' -keyout ca.key -out ca.pem &&
      openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout broker.key -out broker.csr &&
      openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 3650 -extfile broker.ext -out broker.crt &&
      cat broker.key broker.crt ca.pem >broker.pem
  ) >"$out" 2>&1; then
    cat "$out" >&2
    die "openssl could not make the Kafka TLS certificates (see $out)"
  fi
  rm -f "$tmp"/{ca.key,ca.srl,broker.key,broker.csr,broker.crt,broker.ext}
  chmod 644 "$tmp/ca.pem"
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

kafka_write_config() {
  local data
  data=$(kafka_data_dir)
  mkdir -p "$data" "$(kafka_log_dir)"
  render "$SCRIPT_DIR/kafka/server.properties.tmpl" \
    "PORT=$KAFKA_PORT" "CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" \
    "SASL_PORT=$KAFKA_SASL_PORT" "TLS_PORT=$KAFKA_TLS_PORT" \
    "SASL_TLS_PORT=$KAFKA_SASL_TLS_PORT" "KEYSTORE=$(kafka_tls_dir)/broker.pem" \
    "SASL_USER=$KAFKA_SASL_USER" "SASL_PASSWORD=$KAFKA_SASL_PASSWORD" \
    "DATA_DIR=$data" "PARTITIONS=$KAFKA_PARTITIONS" >"$(kafka_config_file)"
}

# SCRAM users live in the cluster metadata, not in the config. This file,
# next to the data dir (Kafka owns the inside), records which ones the data
# dir has; it holds what kafka_scram_spec prints.
kafka_scram_marker() { printf '%s.scram-users' "$(kafka_data_dir)"; }
kafka_scram_spec() {
  printf '%s:%s %s\n' "$KAFKA_SASL_USER" "$KAFKA_SASL_PASSWORD" "${KAFKA_SCRAM_MECHANISMS[*]}"
}

# KRaft log dirs must be formatted with a cluster id once, before the first
# start; later starts reuse them (and keep the topics).
kafka_format() {
  local data opts id out
  data=$(kafka_data_dir)
  [[ -f $data/meta.properties ]] && return 0
  mapfile -t opts < <(kafka_java_opts)
  out=$(kafka_log_dir)/format.log
  id=$(java "${opts[@]}" kafka.tools.StorageTool random-uuid 2>>"$out" | tail -n1)
  [[ -n $id ]] || {
    cat "$out" >&2
    die "kafka.tools.StorageTool random-uuid failed"
  }
  # The SCRAM users go in with the first metadata records (KIP-900).
  local scram=() mech
  for mech in "${KAFKA_SCRAM_MECHANISMS[@]}"; do
    scram+=(--add-scram "$mech=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]")
  done
  log "Formatting Kafka storage $data (cluster id $id) ..."
  java "${opts[@]}" kafka.tools.StorageTool format -t "$id" \
    -c "$(kafka_config_file)" "${scram[@]}" >>"$out" 2>&1 || {
    tail -n 20 "$out" >&2
    die "kafka.tools.StorageTool format failed"
  }
  kafka_scram_spec >"$(kafka_scram_marker)"
}

# A data dir formatted before services.sh added the SCRAM users gets them
# from kafka-configs (ConfigCommand) once the broker answers. One call per
# mechanism: a KRaft controller refuses two credentials of one user in one
# request ("A user credential cannot be altered twice in the same request").
# Setting the same credentials again is harmless, so an interrupted run
# just redoes it.
kafka_add_scram_users() {
  local marker out mech opts
  marker=$(kafka_scram_marker)
  [[ -f $marker && $(<"$marker") == "$(kafka_scram_spec)" ]] && return 0
  # The tool's own log goes to a dir of its own, not into the broker's.
  mapfile -t opts < <(kafka_java_opts "$(kafka_log_dir)/tools")
  out=$(kafka_log_dir)/scram.log
  : >"$out"
  log "Adding SCRAM user $KAFKA_SASL_USER to kafka (data dir formatted without it) ..."
  for mech in "${KAFKA_SCRAM_MECHANISMS[@]}"; do
    java "${opts[@]}" kafka.admin.ConfigCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
      --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
      --add-config "$mech=[password=$KAFKA_SASL_PASSWORD]" >>"$out" 2>&1 || {
      tail -n 20 "$out" >&2
      die "kafka.admin.ConfigCommand could not add the $mech user $KAFKA_SASL_USER"
    }
  done
  kafka_scram_spec >"$marker"
}

# The authenticated listeners that do not answer, as "NAME host:port, ...".
kafka_missing_listeners() {
  local pair missing=""
  for pair in "SASL_PLAINTEXT=$KAFKA_SASL_PORT" "SSL=$KAFKA_TLS_PORT" \
    "SASL_SSL=$KAFKA_SASL_TLS_PORT"; do
    port_open "${pair#*=}" || missing+="${missing:+, }${pair%%=*} $HOST:${pair#*=}"
  done
  printf '%s' "$missing"
}

# Fails when our broker runs without the authenticated listeners: it was
# started by an older services.sh or with other SLUICE_KAFKA_*_PORT values.
# It is not restarted here, someone may be using it. A broker services.sh
# did not start only gets a warning: the tests that need those fail.
kafka_require_listeners() {
  local missing pid
  missing=$(kafka_missing_listeners)
  [[ -z $missing ]] && return 0
  if pid=$(our_pid kafka); then
    die "kafka is running on $HOST:$KAFKA_PORT (pid $pid) without the SASL/TLS listeners (missing: $missing); run 'scripts/services.sh stop kafka', then start"
  fi
  log "warning: kafka on $HOST:$KAFKA_PORT (not started by services.sh) has no SASL/TLS listeners (missing: $missing); the Kafka auth tests will fail"
}

# Once the broker answers: the listeners check, and the SCRAM users for a
# data dir of ours.
kafka_after_ready() {
  kafka_require_listeners
  our_pid kafka >/dev/null || return 0
  kafka_add_scram_users
}

# Ready means the broker answers a metadata request and lists itself. The
# port check first: kcat retries a refused connection until its -m timeout,
# which would slow down the polling of the other services.
kafka_ready() {
  port_open "$KAFKA_PORT" &&
    kcat -b "$HOST:$KAFKA_PORT" -L -m 2 2>/dev/null | grep -q "broker 1 at"
}

# The last 40 lines of each log file of service $1 written since its start:
# logs older than the pid file are from an earlier run, not shown.
tail_since_start() {
  local svc=$1 f
  shift
  for f in "$@"; do
    [[ -s $f && ! $f -ot $(pid_file "$svc") ]] || continue
    log "---- tail of $f"
    tail -n 40 "$f" >&2
  done
}

kafka_log_tail() {
  tail_since_start kafka "$(kafka_log_dir)/kafka.out" "$(kafka_log_dir)/server.log"
}

# Starts the broker unless it already runs; returns 0 when it was launched or
# found, the caller then waits for it to be ready.
kafka_launch() {
  local pid running_version
  if pid=$(our_pid kafka); then
    running_version=$(cat "$(svc_dir kafka)/kafka.version" 2>/dev/null || true)
    if [[ -n $running_version && $running_version != "$KAFKA_VERSION" ]]; then
      die "kafka $running_version is running (pid $pid); run 'scripts/services.sh stop kafka' first to switch to $KAFKA_VERSION"
    fi
    # Still booting when its port is closed: checked again once ready.
    if port_open "$KAFKA_PORT"; then kafka_require_listeners; fi
    log "kafka ${running_version:-$KAFKA_VERSION} already running on $HOST:$KAFKA_PORT (pid $pid), reusing it"
    return 0
  fi
  if port_open "$KAFKA_PORT"; then
    log "Port $HOST:$KAFKA_PORT already answers (pid ${pid:-$(port_pid "$KAFKA_PORT")}, not started by services.sh): reusing it as kafka"
    return 0
  fi
  local name var
  for name in CONTROLLER SASL TLS SASL_TLS; do
    var=KAFKA_${name}_PORT
    port_open "${!var}" &&
      die "$name port $HOST:${!var} is taken by pid $(port_pid "${!var}"); set SLUICE_$var"
  done

  kafka_install
  kafka_tls_setup
  kafka_write_config
  kafka_format
  log "Starting kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT, sasl $KAFKA_SASL_PORT, tls $KAFKA_TLS_PORT, sasl+tls $KAFKA_SASL_TLS_PORT) ..."
  local opts
  mapfile -t opts < <(kafka_java_opts)
  printf '%s\n' "$KAFKA_VERSION" >"$(svc_dir kafka)/kafka.version"
  # cwd is the state dir: a JVM crash file (hs_err_pid*.log) lands there.
  (cd "$(svc_dir kafka)" &&
    spawn "$(pid_file kafka)" "$(kafka_log_dir)/kafka.out" \
      java "${opts[@]}" kafka.Kafka "$(kafka_config_file)")
}

# ---------------------------------------------------------- kafka-cluster

# Three KRaft nodes, each broker and controller, with a static quorum of
# the three (as the single broker's: works with 3.x and 4.x, no
# --standalone format), PLAINTEXT on loopback, the jars of kafka_install and
# scripts/kafka/cluster.properties.tmpl. Service kafka-cluster-N is node N;
# main turns kafka-cluster into all of them.

kcluster_dir() { svc_dir kafka-cluster; }
kcluster_port() { printf '%s' $((KCLUSTER_PORT + $1 - 1)); }
kcluster_controller_port() { printf '%s' $((KCLUSTER_CONTROLLER_PORT + $1 - 1)); }

# host:port of every node's PLAINTEXT listener, comma-separated.
kcluster_brokers() {
  local n list=""
  for n in "${KCLUSTER_NODES[@]}"; do list+="${list:+,}$HOST:$(kcluster_port "$n")"; done
  printf '%s' "$list"
}

# controller.quorum.voters: id@host:port of every node's controller listener.
kcluster_voters() {
  local n list=""
  for n in "${KCLUSTER_NODES[@]}"; do
    list+="${list:+,}$n@$HOST:$(kcluster_controller_port "$n")"
  done
  printf '%s' "$list"
}

# Data is kept per version, as kafka's: data/<version>/node-N, and the
# cluster id every node of that version is formatted with.
kcluster_data_dir() { printf '%s/data/%s' "$(kcluster_dir)" "$KAFKA_VERSION"; }
kcluster_node_data_dir() { printf '%s/node-%s' "$(kcluster_data_dir)" "$1"; }
kcluster_log_dir() { printf '%s/logs/node-%s' "$(kcluster_dir)" "$1"; }
# The generated config; pid_marker finds a node by this path.
kcluster_config_file() { printf '%s/node-%s.properties' "$(kcluster_dir)" "$1"; }
# The Kafka version the nodes were last started with.
kcluster_version_file() { printf '%s/kafka.version' "$(kcluster_dir)"; }

# The Kafka version of the running nodes of ours; fails when none runs.
kcluster_running_version() {
  local n
  for n in "${KCLUSTER_NODES[@]}"; do
    our_pid "kafka-cluster-$n" >/dev/null || continue
    cat "$(kcluster_version_file)" 2>/dev/null
    return
  done
  return 1
}

kcluster_write_config() {
  local n=$1
  mkdir -p "$(kcluster_node_data_dir "$n")" "$(kcluster_log_dir "$n")"
  render "$SCRIPT_DIR/kafka/cluster.properties.tmpl" "NODE_ID=$n" \
    "PORT=$(kcluster_port "$n")" "CONTROLLER_PORT=$(kcluster_controller_port "$n")" \
    "VOTERS=$(kcluster_voters)" "DATA_DIR=$(kcluster_node_data_dir "$n")" \
    "PARTITIONS=$KAFKA_PARTITIONS" >"$(kcluster_config_file "$n")"
}

# Formats node $1's log dir once, with the cluster id of this version's
# cluster (made by the first node formatted).
kcluster_format() {
  local n=$1 data id_file id out opts
  data=$(kcluster_node_data_dir "$n")
  [[ -f $data/meta.properties ]] && return 0
  out=$(kcluster_dir)/logs/format.log
  mapfile -t opts < <(kafka_java_opts "$(kcluster_dir)/logs/tools" "$KCLUSTER_HEAP_OPTS")
  id_file=$(kcluster_data_dir)/cluster.id
  if [[ ! -s $id_file ]]; then
    id=$(java "${opts[@]}" kafka.tools.StorageTool random-uuid 2>>"$out" | tail -n1)
    [[ -n $id ]] || {
      tail -n 20 "$out" >&2
      die "kafka.tools.StorageTool random-uuid failed"
    }
    printf '%s\n' "$id" >"$id_file"
  fi
  id=$(<"$id_file")
  log "Formatting kafka-cluster node $n storage $data (cluster id $id) ..."
  java "${opts[@]}" kafka.tools.StorageTool format -t "$id" \
    -c "$(kcluster_config_file "$n")" >>"$out" 2>&1 || {
    tail -n 20 "$out" >&2
    die "kafka.tools.StorageTool format failed for kafka-cluster node $n"
  }
}

# Ready means node $1 (kafka-cluster-N) answers a metadata request that
# lists it: the controller has unfenced it, it is a live broker of the
# cluster. The port check first, as in kafka_ready.
kcluster_ready() {
  local n=${1#kafka-cluster-} port
  port=$(kcluster_port "$n")
  port_open "$port" &&
    kcat -b "$HOST:$port" -L -m 2 2>/dev/null | grep -q "broker $n at"
}

kcluster_log_tail() {
  local dir
  dir=$(kcluster_log_dir "${1#kafka-cluster-}")
  tail_since_start "$1" "$dir/kafka.out" "$dir/server.log"
}

# Starts node $1 unless it already runs. A node never joins nodes of
# another Kafka version: they keep their data apart and would not be one
# cluster.
kcluster_launch() {
  local n=$1 svc=kafka-cluster-$1 pid running other port
  running=$(cat "$(kcluster_version_file)" 2>/dev/null || true)
  for other in "${KCLUSTER_NODES[@]}"; do
    pid=$(our_pid "kafka-cluster-$other") || continue
    if [[ -n $running && $running != "$KAFKA_VERSION" ]]; then
      die "kafka-cluster $running is running (kafka-cluster-$other pid $pid); run 'scripts/services.sh stop kafka-cluster' first to switch to $KAFKA_VERSION"
    fi
  done
  if pid=$(our_pid "$svc"); then
    log "$svc (Kafka ${running:-$KAFKA_VERSION}) already running on $HOST:$(kcluster_port "$n") (pid $pid), reusing it"
    return 0
  fi
  port=$(kcluster_port "$n")
  if port_open "$port"; then
    log "Port $HOST:$port already answers (pid $(port_pid "$port"), not started by services.sh): reusing it as $svc"
    return 0
  fi
  port=$(kcluster_controller_port "$n")
  port_open "$port" &&
    die "controller port $HOST:$port of $svc is taken by pid $(port_pid "$port"); set SLUICE_KAFKA_CLUSTER_CONTROLLER_PORT"

  kafka_install
  kcluster_write_config "$n"
  kcluster_format "$n"
  log "Starting $svc (Kafka $KAFKA_VERSION) on $HOST:$(kcluster_port "$n") (controller $port) ..."
  local opts
  mapfile -t opts < <(kafka_java_opts "$(kcluster_log_dir "$n")" "$KCLUSTER_HEAP_OPTS")
  printf '%s\n' "$KAFKA_VERSION" >"$(kcluster_version_file)"
  # cwd is the state dir: a JVM crash file (hs_err_pid*.log) lands there.
  (cd "$(kcluster_dir)" &&
    spawn "$(pid_file "$svc")" "$(kcluster_log_dir "$n")/kafka.out" \
      java "${opts[@]}" kafka.Kafka "$(kcluster_config_file "$n")")
}

# ------------------------------------------------------------- clickhouse

ch_dir() { svc_dir clickhouse; }

# Debian installs the server in /usr/sbin, which is not on every PATH; the
# upstream packages have a single `clickhouse` binary.
ch_server_cmd() {
  if command -v clickhouse-server >/dev/null; then
    command -v clickhouse-server
  elif [[ -x /usr/sbin/clickhouse-server ]]; then
    printf '/usr/sbin/clickhouse-server'
  elif command -v clickhouse >/dev/null; then
    printf '%s server' "$(command -v clickhouse)"
  else
    return 1
  fi
}

# 18.16's server has no --version; its client does.
ch_version() {
  clickhouse-client --version 2>/dev/null | grep -o '[0-9][0-9.]*[0-9]' | head -n1 || true
}

ch_install() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  if ch_server_cmd >/dev/null && command -v clickhouse-client >/dev/null; then
    return 0
  fi
  apt_install clickhouse-server clickhouse-client
  ch_server_cmd >/dev/null || die "clickhouse-server not found after install"
}

# True when a ClickHouse answers /ping on HTTP port $1.
ch_pings() {
  [[ $(curl -s --max-time 2 "http://$HOST:$1/ping" 2>/dev/null) == "Ok." ]]
}

ch_ready() { ch_pings "$CH_HTTP_PORT"; }

# The tail of the logs of ClickHouse service $1 (clickhouse, clickhouse26)
# written since its start: its stdout and the server's error log.
ch_logs_tail() {
  tail_since_start "$1" "$(svc_dir "$1")/logs/stdout.log" \
    "$(svc_dir "$1")/logs/clickhouse-server.err.log"
}

ch_log_tail() { ch_logs_tail clickhouse; }

# The start of launching ClickHouse service $1 with HTTP port $2 and TCP
# port $3: returns 0 when it already runs (ours, or any ClickHouse answering
# on $2, reused), fails when a port is taken by something else ($4: the
# variables that move them), returns 1 when it is to be launched.
ch_running() {
  local svc=$1 http=$2 tcp=$3 pid port
  if pid=$(our_pid "$svc"); then
    log "$svc already running on $HOST:$http (pid $pid), reusing it"
    return 0
  fi
  if ch_pings "$http"; then
    log "ClickHouse already answers on $HOST:$http (pid $(port_pid "$http"), not started by services.sh): reusing it as $svc"
    return 0
  fi
  for port in "$http" "$tcp"; do
    port_open "$port" &&
      die "port $HOST:$port is taken by pid $(port_pid "$port") (not ClickHouse); set $4"
  done
  return 1
}

# Writes config.xml of ClickHouse service $1 (HTTP port $2, TCP port $3)
# from scripts/$1/config.xml.tmpl into its state dir, and makes its dirs.
ch_render_config() {
  local dir data
  dir=$(svc_dir "$1")
  data=$dir/data
  mkdir -p "$data/tmp" "$data/user_files" "$data/format_schemas" "$dir/logs"
  render "$SCRIPT_DIR/$1/config.xml.tmpl" "HTTP_PORT=$2" "TCP_PORT=$3" \
    "DATA_DIR=$data" "LOG_DIR=$dir/logs" >"$dir/config.xml"
}

ch_write_config() {
  ch_render_config clickhouse "$CH_HTTP_PORT" "$CH_TCP_PORT"
  cp "$SCRIPT_DIR/clickhouse/users.xml" "$(ch_dir)/users.xml"
}

ch_launch() {
  ch_running clickhouse "$CH_HTTP_PORT" "$CH_TCP_PORT" \
    "SLUICE_CLICKHOUSE_HTTP_PORT / SLUICE_CLICKHOUSE_TCP_PORT" && return 0
  ch_install
  ch_write_config
  local server_cmd
  read -r -a server_cmd <<<"$(ch_server_cmd)"
  log "Starting clickhouse $(ch_version) on $HOST:$CH_HTTP_PORT (http), $HOST:$CH_TCP_PORT (tcp) ..."
  # cwd is the state dir: the server writes preprocessed configs next to it.
  (cd "$(ch_dir)" &&
    spawn "$(pid_file clickhouse)" "$(ch_dir)/logs/stdout.log" \
      "${server_cmd[@]}" --config-file="$(ch_dir)/config.xml")
}

# ----------------------------------------------------------- clickhouse26

# A current ClickHouse beside the Debian 18.16, for the types and settings
# 18.16 lacks (IPv4/IPv6, DateTime64, Bool, insert_deduplication_token).
# No Debian, npm or Maven package ships a current
# server; PyPI's chdb-core does, inside its engine library: launcher.py opens
# the library's HTTP and TCP listeners (../shared/SERVICES.md has what was
# seen working). A real `clickhouse` binary on PATH is preferred.

ch26_dir() { svc_dir clickhouse26; }
ch26_venv() { printf '%s/venv' "$(ch26_dir)"; }
# Written last by ch26_install, so an interrupted install is redone.
ch26_venv_marker() { printf '%s/.complete-chdb-core-%s' "$(ch26_venv)" "$CH26_CHDB_VERSION"; }

# The version a `clickhouse` binary prints ("ClickHouse local version
# 24.3.1.2672 (official build)." gives 24.3.1.2672), empty when it prints
# none. No `server --version`: a server without that flag would start.
ch26_binary_version() {
  timeout 10 "$1" --version </dev/null 2>/dev/null |
    grep -o '[0-9][0-9]*\.[0-9][0-9.]*[0-9]' | head -n1 || true
}

# Prints the path of a `clickhouse` binary on PATH of major version >=
# CH26_MIN_BINARY_MAJOR; fails when there is none.
ch26_binary() {
  local bin version
  bin=$(command -v clickhouse) || return 1
  version=$(ch26_binary_version "$bin")
  [[ -n $version && ${version%%.*} -ge $CH26_MIN_BINARY_MAJOR ]] || return 1
  printf '%s' "$bin"
}

# What the running server says it is ("26.9.2.1"), or "?".
ch26_version() {
  local v
  v=$(curl -s --max-time 2 "http://$HOST:$CH26_HTTP_PORT/?query=SELECT%20version()" 2>/dev/null || true)
  [[ $v =~ ^[0-9][0-9.]*$ ]] && printf '%s' "$v" || printf '?'
}

# Runs pip ("$@"), its output going to $1 and, as it comes, to stderr, with a
# line every 10 s while it is silent (the 533 MB download of the wheel is).
ch26_pip() {
  local out=$1 pid shown waited=0 rc=0
  shift
  : >"$out"
  "$@" >>"$out" 2>&1 &
  pid=$!
  tail -n +1 -f --pid="$pid" "$out" 2>/dev/null | sed -u 's/^/  pip: /' >&2 &
  shown=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if ((waited % 10 == 0)); then log "  ... still installing chdb-core ($waited s)"; fi
  done
  wait "$pid" || rc=$?
  wait "$shown" 2>/dev/null || true
  return "$rc"
}

# Nothing to do when a binary will be used; otherwise a venv with chdb-core
# (Debian's python3, with python3-venv from apt-get when it lacks venv).
ch26_install() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  ch26_binary >/dev/null && return 0
  [[ -f $(ch26_venv_marker) ]] && return 0
  local py=/usr/bin/python3 venv logs t0
  "$py" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  "$py" -c 'import venv, ensurepip' 2>/dev/null ||
    die "$py cannot make a venv (import venv, ensurepip failed) after installing python3-venv"
  venv=$(ch26_venv)
  logs=$(ch26_dir)/logs
  mkdir -p "$logs"
  rm -rf "$venv"
  log "Installing chdb-core $CH26_CHDB_VERSION (ClickHouse 26.x for clickhouse26: a 182 MB wheel, 533 MB installed, 15 to 30 s) with pip into $venv ..."
  t0=$(now_us)
  "$py" -m venv "$venv" >"$logs/venv.log" 2>&1 || {
    cat "$logs/venv.log" >&2
    die "$py -m venv $venv failed"
  }
  # --no-deps: launcher.py loads the engine library only; the package's
  # dependencies (pandas, pyarrow, numpy: 280 MB) serve chdb's Python API.
  ch26_pip "$logs/pip.log" "$venv/bin/python" -m pip install --no-deps --no-input \
    --progress-bar off "chdb-core==$CH26_CHDB_VERSION" ||
    die "pip could not install chdb-core==$CH26_CHDB_VERSION (see $logs/pip.log)"
  "$venv/bin/python" -c 'import importlib.util as u, os, sys; s = u.find_spec("chdb"); sys.exit(not (s and os.path.isfile(os.path.join(list(s.submodule_search_locations)[0], "_chdb.abi3.so"))))' ||
    die "chdb-core $CH26_CHDB_VERSION in $venv has no chdb/_chdb.abi3.so"
  touch "$(ch26_venv_marker)"
  log "chdb-core $CH26_CHDB_VERSION in $venv ($(du -sm "$venv" | cut -f1) MB, $(elapsed_since "$t0") s)"
}

ch26_ready() { ch_pings "$CH26_HTTP_PORT"; }

ch26_log_tail() { ch_logs_tail clickhouse26; }

# $1: binary or chdb. clickhouse-local (chdb) forces default_format=CSV and
# implicit_select=1; the users profile sets them back to a server's defaults.
ch26_write_config() {
  local local_settings=""
  ch_render_config clickhouse26 "$CH26_HTTP_PORT" "$CH26_TCP_PORT"
  if [[ $1 == chdb ]]; then
    local_settings=$'\n      <default_format>TabSeparated</default_format>'
    local_settings+=$'\n      <implicit_select>0</implicit_select>'
  fi
  render "$SCRIPT_DIR/clickhouse26/users.xml.tmpl" "LOCAL_SETTINGS=$local_settings" \
    >"$(ch26_dir)/users.xml"
}

ch26_launch() {
  ch_running clickhouse26 "$CH26_HTTP_PORT" "$CH26_TCP_PORT" \
    "SLUICE_CLICKHOUSE26_HTTP_PORT / SLUICE_CLICKHOUSE26_TCP_PORT" && return 0
  ch26_install
  local dir bin
  dir=$(ch26_dir)
  # cwd is the state dir: clickhouse-local reads ./config.xml, and a server
  # writes its preprocessed configs next to it.
  if bin=$(ch26_binary); then
    ch26_write_config binary
    log "Starting clickhouse26 ($bin $(ch26_binary_version "$bin")) on $HOST:$CH26_HTTP_PORT (http), $HOST:$CH26_TCP_PORT (tcp) ..."
    (cd "$dir" &&
      spawn "$(pid_file clickhouse26)" "$dir/logs/stdout.log" \
        "$bin" server --config-file="$dir/config.xml")
  else
    ch26_write_config chdb
    log "Starting clickhouse26 (ClickHouse in chdb-core $CH26_CHDB_VERSION) on $HOST:$CH26_HTTP_PORT (http), $HOST:$CH26_TCP_PORT (tcp) ..."
    (cd "$dir" &&
      spawn "$(pid_file clickhouse26)" "$dir/logs/stdout.log" \
        "$(ch26_venv)/bin/python" "$SCRIPT_DIR/clickhouse26/launcher.py" "$dir/data")
  fi
}

# -------------------------------------------------------------- zookeeper

# One standalone server (ZooKeeperServerMain) for clickhouse-cluster, from
# the jars of Debian's `zookeeper` package, logging with log4j 1.2 (both
# dependencies of libzookeeper-java) to logs/zookeeper.log.

zk_dir() { svc_dir zookeeper; }
# The generated config; pid_marker finds the server by this path.
zk_config_file() { printf '%s/zoo.cfg' "$(zk_dir)"; }
ZK_JARS=(/usr/share/java/zookeeper.jar /usr/share/java/slf4j-log4j12.jar
  /usr/share/java/log4j-1.2.jar)

# The `zookeeper` package, not `zookeeperd`: the latter adds the init script
# and systemd unit that start a system-wide server on port 2181 (the
# package alone starts nothing, services.sh runs the server itself).
zk_install() {
  command -v java >/dev/null || apt_install default-jre-headless
  local jar
  for jar in "${ZK_JARS[@]}"; do
    [[ -f $jar ]] && continue
    apt_install zookeeper
    break
  done
  for jar in "${ZK_JARS[@]}"; do
    [[ -f $jar ]] || die "$jar not found after installing zookeeper"
  done
}

# Sends four-letter command $1 to the server and prints its answer (srvr is
# allowed by zk_write_config's 4lw.commands.whitelist).
zk_four_letter() {
  local port=$ZK_PORT
  # shellcheck disable=SC2016 # $0, $1, $2 belong to the inner shell
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf %s "$2" >&3 && cat <&3' \
    "$HOST" "$port" "$1" 2>/dev/null || true
}

# "3.8.0", from the server's srvr answer, or "?".
zk_version() {
  local v
  v=$(zk_four_letter srvr | sed -n 's/^Zookeeper version: \([0-9][0-9.]*\).*/\1/p')
  printf '%s' "${v:-?}"
}

# Ready means it serves requests: srvr answers "Mode: standalone" (a server
# still loading its database says it is not serving).
zk_ready() {
  port_open "$ZK_PORT" && zk_four_letter srvr | grep -q '^Mode: '
}

zk_log_tail() {
  tail_since_start zookeeper "$(zk_dir)/logs/zookeeper.out" "$(zk_dir)/logs/zookeeper.log"
}

# Loopback only, no admin server (Jetty on 8080 by default), the snapshots
# and transaction logs under data/, purged every hour down to the last 3.
zk_write_config() {
  local dir
  dir=$(zk_dir)
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$(zk_config_file)" <<ZOOCFG
# Generated by scripts/services.sh at every start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=$HOST
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
ZOOCFG
}

zk_launch() {
  local pid
  if pid=$(our_pid zookeeper); then
    log "zookeeper already running on $HOST:$ZK_PORT (pid $pid), reusing it"
    return 0
  fi
  if zk_ready; then
    log "ZooKeeper already answers on $HOST:$ZK_PORT (pid $(port_pid "$ZK_PORT"), not started by services.sh): reusing it"
    return 0
  fi
  port_open "$ZK_PORT" &&
    die "port $HOST:$ZK_PORT is taken by pid $(port_pid "$ZK_PORT") (not ZooKeeper); set SLUICE_ZOOKEEPER_PORT"

  zk_install
  zk_write_config
  local dir cp
  dir=$(zk_dir)
  cp=$(
    IFS=:
    printf '%s' "${ZK_JARS[*]}"
  )
  log "Starting zookeeper on $HOST:$ZK_PORT ..."
  # cwd is the state dir: a JVM crash file (hs_err_pid*.log) lands there.
  # Word splitting of the heap options is wanted ("-Xms64m -Xmx256m").
  # shellcheck disable=SC2086
  (cd "$dir" &&
    spawn "$(pid_file zookeeper)" "$dir/logs/zookeeper.out" \
      java $ZK_HEAP_OPTS -XX:+UseSerialGC -Djava.awt.headless=true \
      "-Dzookeeper.log.dir=$dir/logs" \
      "-Dlog4j.configuration=file:$SCRIPT_DIR/clickhouse-cluster/zookeeper-log4j.properties" \
      -cp "$cp" org.apache.zookeeper.server.ZooKeeperServerMain "$(zk_config_file)")
}

# ----------------------------------------------------- clickhouse-cluster

# Four Debian ClickHouse 18.16 servers, 2 shards x 2 replicas: node N is
# service clickhouse-cluster-N, of shard (N + 1) / 2, replica name
# clickhouse-cluster-N. main turns clickhouse-cluster into all of them, and
# puts zookeeper before them in a start.

chc_dir() { svc_dir clickhouse-cluster; }
chc_node_dir() { printf '%s/node-%s' "$(chc_dir)" "$1"; }
chc_http_port() { printf '%s' $((CHC_HTTP_PORT + $1 - 1)); }
chc_tcp_port() { printf '%s' $((CHC_TCP_PORT + $1 - 1)); }
chc_interserver_port() { printf '%s' $((CHC_INTERSERVER_PORT + $1 - 1)); }
# Node N's shard, as the {shard} macro: 01, 02.
chc_shard() { printf '%02d' $((($1 + 1) / 2)); }

# The HTTP URL of every node, comma-separated, node 1 first.
chc_urls() {
  local n list=""
  for n in "${CHC_NODES[@]}"; do list+="${list:+,}http://$HOST:$(chc_http_port "$n")"; done
  printf '%s' "$list"
}

# The <shard> elements of remote_servers: the nodes of each shard, in order.
chc_shards_xml() {
  local n shard last="" xml=""
  for n in "${CHC_NODES[@]}"; do
    shard=$(chc_shard "$n")
    if [[ $shard != "$last" ]]; then
      [[ -n $last ]] && xml+=$'            </shard>\n'
      xml+=$'            <shard>\n                <internal_replication>true</internal_replication>\n'
      last=$shard
    fi
    xml+="                <replica><host>$HOST</host><port>$(chc_tcp_port "$n")</port></replica>"$'\n'
  done
  xml+='            </shard>'
  printf '%s' "$xml"
}

chc_write_config() {
  local n=$1 dir
  dir=$(chc_node_dir "$n")
  mkdir -p "$dir/data/tmp" "$dir/data/user_files" "$dir/data/format_schemas" "$dir/logs"
  render "$SCRIPT_DIR/clickhouse-cluster/config.xml.tmpl" "NODE=$n" \
    "HTTP_PORT=$(chc_http_port "$n")" "TCP_PORT=$(chc_tcp_port "$n")" \
    "INTERSERVER_PORT=$(chc_interserver_port "$n")" "DATA_DIR=$dir/data" \
    "LOG_DIR=$dir/logs" "SHARD=$(chc_shard "$n")" "REPLICA=clickhouse-cluster-$n" \
    "CLUSTER=$CHC_CLUSTER" "SHARDS=$(chc_shards_xml)" "ZK_PORT=$ZK_PORT" >"$dir/config.xml"
  cp "$SCRIPT_DIR/clickhouse-cluster/users.xml" "$dir/users.xml"
}

# Ready means node $1 (clickhouse-cluster-N) answers and reaches ZooKeeper
# (system.zookeeper reads through its session): its replicated tables can
# take inserts.
chc_ready() {
  local port
  port=$(chc_http_port "${1#clickhouse-cluster-}")
  ch_pings "$port" &&
    [[ $(curl -s --max-time 3 --data-binary \
      "SELECT count() > 0 FROM system.zookeeper WHERE path = '/'" \
      "http://$HOST:$port/" 2>/dev/null) == 1 ]]
}

chc_log_tail() {
  local dir
  dir=$(chc_node_dir "${1#clickhouse-cluster-}")
  tail_since_start "$1" "$dir/logs/stdout.log" "$dir/logs/clickhouse-server.err.log"
}

# Starts node $1 unless it already runs (ours, or a ClickHouse answering on
# its HTTP port, reused).
chc_launch() {
  local n=$1 svc=clickhouse-cluster-$1 pid http port var
  http=$(chc_http_port "$n")
  if pid=$(our_pid "$svc"); then
    log "$svc already running on $HOST:$http (pid $pid), reusing it"
    return 0
  fi
  if ch_pings "$http"; then
    log "ClickHouse already answers on $HOST:$http (pid $(port_pid "$http"), not started by services.sh): reusing it as $svc"
    return 0
  fi
  for var in HTTP TCP INTERSERVER; do
    port=$("chc_${var,,}_port" "$n")
    port_open "$port" &&
      die "port $HOST:$port of $svc is taken by pid $(port_pid "$port") (not ClickHouse); set SLUICE_CLICKHOUSE_CLUSTER_${var}_PORT"
  done

  ch_install
  chc_write_config "$n"
  local server_cmd dir
  read -r -a server_cmd <<<"$(ch_server_cmd)"
  dir=$(chc_node_dir "$n")
  log "Starting $svc (ClickHouse $(ch_version), shard $(chc_shard "$n")) on $HOST:$http (http), $HOST:$(chc_tcp_port "$n") (tcp), $HOST:$(chc_interserver_port "$n") (interserver) ..."
  # cwd is the node dir: the server writes preprocessed configs next to it.
  (cd "$dir" &&
    spawn "$(pid_file "$svc")" "$dir/logs/stdout.log" \
      "${server_cmd[@]}" --config-file="$dir/config.xml")
}

# -------------------------------------------------------- victoriametrics

vm_dir() { svc_dir victoriametrics; }

# The Debian build prints an empty -version; the package knows it.
vm_version() {
  dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null | sed 's/+.*//' || true
}

vm_install() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  command -v victoria-metrics >/dev/null && return 0
  apt_install victoria-metrics
  command -v victoria-metrics >/dev/null || die "victoria-metrics not found after install"
}

vm_ready() {
  [[ $(curl -s --max-time 2 "http://$HOST:$VM_PORT/health" 2>/dev/null) == "OK" ]]
}

vm_log_tail() {
  tail_since_start victoriametrics "$(vm_dir)/logs/victoria-metrics.log"
}

vm_launch() {
  local pid
  if pid=$(our_pid victoriametrics); then
    log "victoriametrics already running on $HOST:$VM_PORT (pid $pid), reusing it"
    return 0
  fi
  if vm_ready; then
    log "VictoriaMetrics already answers on $HOST:$VM_PORT (pid $(port_pid "$VM_PORT"), not started by services.sh): reusing it"
    return 0
  fi
  port_open "$VM_PORT" &&
    die "port $HOST:$VM_PORT is taken by pid $(port_pid "$VM_PORT") (not VictoriaMetrics); set SLUICE_VM_PORT"

  vm_install
  local dir
  dir=$(vm_dir)
  mkdir -p "$dir/data" "$dir/logs"
  log "Starting victoriametrics $(vm_version) on $HOST:$VM_PORT (retention $VM_RETENTION) ..."
  # The default retention (1 month) silently drops older samples, which the
  # import still answers with 204; tests write fixed old timestamps.
  # -dedup.minScrapeInterval=1ms keeps one sample per series and
  # millisecond, as docs/FAILURES.md advises: a replayed import (the same
  # samples written again after a crash) is then stored once.
  # -search.maxUniqueTimeseries: the chaos suite's records are each their own
  # series (its flows differ in address and port), and a query over more than
  # the default 300,000 series fails; its 1,000,000-record runs count them.
  # cwd is the state dir; the log is its stderr (no log file option).
  (cd "$dir" &&
    spawn "$(pid_file victoriametrics)" "$dir/logs/victoria-metrics.log" \
      victoria-metrics "-storageDataPath=$dir/data" "-httpListenAddr=$HOST:$VM_PORT" \
      "-retentionPeriod=$VM_RETENTION" -dedup.minScrapeInterval=1ms \
      -search.maxUniqueTimeseries=5000000)
}

# ---------------------------------------------------------- elasticsearch

# One node of either server, per flavour and version: jars, config and data
# of one never meet another (an OpenSearch data dir cannot be opened by
# Elasticsearch, nor by an older release of itself).
es_id() { printf '%s-%s' "$ES_FLAVOR" "$ES_VERSION"; }
es_dir() { svc_dir elasticsearch; }
es_node_dir() { printf '%s/%s' "$(es_dir)" "$(es_id)"; }
es_lib_dir() { printf '%s/lib' "$(es_node_dir)"; }
es_log_dir() { printf '%s/logs' "$(es_dir)"; }
# Java package of the server classes, for Runner.java.tmpl.
es_package() { printf 'org.%s' "$ES_FLAVOR"; }

es_check_flavor() {
  [[ $ES_FLAVOR == @(opensearch|elasticsearch) ]] ||
    die "SLUICE_ELASTIC_FLAVOR must be opensearch or elasticsearch, got \"$ES_FLAVOR\""
}

# Runner.java runs in Java's source-file mode, which compiles it in memory:
# that needs the jdk.compiler module, which a JRE package lacks.
es_has_compiler() {
  java --list-modules 2>/dev/null | grep -q '^jdk\.compiler@'
}

es_install() {
  es_check_flavor
  command -v curl >/dev/null || apt_install curl ca-certificates
  es_has_compiler || apt_install default-jdk-headless
  es_has_compiler || die "java has no jdk.compiler module (a JRE?); Runner.java needs a JDK"
  local lib
  lib=$(es_lib_dir)
  # .complete is written last, so an interrupted download is redone.
  [[ -f $lib/.complete ]] && return 0
  command -v mvn >/dev/null || apt_install maven

  local tmp=$lib.tmp mvn_log t0
  mvn_log=$(es_log_dir)/mvn-$(es_id).log
  mkdir -p "$(es_log_dir)"
  rm -rf "$tmp"
  log "Downloading $ES_FLAVOR $ES_VERSION jars with Maven ..."
  t0=$(now_us)
  if ! mvn -B -q -Dstyle.color=never -f "$SCRIPT_DIR/elasticsearch/pom.xml" \
    -P "$ES_FLAVOR" -Dsearch.version="$ES_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    tail -n 30 "$mvn_log" | sed 's/\x1b\[[0-9;]*m//g' >&2
    die "could not fetch $(es_package):$ES_FLAVOR:$ES_VERSION and its transport-netty4 module (does that version exist? mvn dependency:get -Dartifact=$(es_package):$ES_FLAVOR:$ES_VERSION)"
  fi
  rm -rf "$lib"
  mv "$tmp" "$lib"
  touch "$lib/.complete"
  log "$ES_FLAVOR $ES_VERSION jars in $lib ($(find "$lib" -name '*.jar' | wc -l) jars, $(elapsed_since "$t0") s)"
}

# What `GET /` says about a server on the port: "opensearch 2.19.6",
# "elasticsearch 7.17.29"; empty when nothing answers as one.
es_running_id() {
  local body number flavor=elasticsearch
  body=$(curl -s --max-time 2 "http://$HOST:$ES_PORT/" 2>/dev/null) || return 0
  number=$(grep -o '"number" *: *"[^"]*"' <<<"$body" | head -n1 | cut -d'"' -f4)
  [[ -n $number ]] || return 0
  grep -q '"distribution" *: *"opensearch"' <<<"$body" && flavor=opensearch
  printf '%s %s' "$flavor" "$number"
}

# Ready means the cluster state is recovered and every primary shard is
# assigned (yellow: a single node never assigns replicas).
es_ready() {
  curl -s --max-time 3 \
    "http://$HOST:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null |
    grep -q '"status":"\(green\|yellow\)"'
}

es_log_tail() {
  tail_since_start elasticsearch "$(es_log_dir)/runner.out" "$(es_log_dir)/server.log"
}

es_write_config() {
  local node config
  node=$(es_node_dir)
  config=$node/config
  mkdir -p "$config" "$node/data" "$(es_log_dir)"
  # The config file name tells the server which it is (InternalSettingsPreparer).
  render "$SCRIPT_DIR/elasticsearch/node.yml.tmpl" \
    "HTTP_PORT=$ES_PORT" "TRANSPORT_PORT=$ES_TRANSPORT_PORT" \
    "DATA_DIR=$node/data" "LOG_DIR=$(es_log_dir)" >"$config/$ES_FLAVOR.yml"
  render "$SCRIPT_DIR/elasticsearch/log4j2.properties.tmpl" \
    "LOG_DIR=$(es_log_dir)" "PKG=$(es_package)" >"$config/log4j2.properties"
  render "$SCRIPT_DIR/elasticsearch/Runner.java.tmpl" "PKG=$(es_package)" >"$node/Runner.java"
}

# The JVM options of the servers' own jvm.options that matter here.
es_java_opts() {
  # Word splitting of the heap options is wanted ("-Xms512m -Xmx512m").
  # shellcheck disable=SC2086
  printf '%s\n' $ES_HEAP_OPTS -XX:+UseG1GC -Xss1m -XX:-OmitStackTraceInFastThrow \
    -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -Dlog4j2.formatMsgNoLookups=true
  # Date formats parse as in Java 8 (both servers' jvm.options for JDK 9+).
  printf '%s\n' -Djava.locale.providers=SPI,COMPAT
  printf '%s\n' -cp "$(es_lib_dir)/*"
}

es_launch() {
  es_check_flavor
  local pid running
  if pid=$(our_pid elasticsearch); then
    running=$(cat "$(es_dir)/elasticsearch.version" 2>/dev/null || true)
    if [[ -n $running && $running != "$(es_id)" ]]; then
      die "$running is running (pid $pid); run 'scripts/services.sh stop elasticsearch' first to switch to $(es_id)"
    fi
    log "elasticsearch (${running:-$(es_id)}) already running on $HOST:$ES_PORT (pid $pid), reusing it"
    return 0
  fi
  running=$(es_running_id)
  if [[ -n $running ]]; then
    log "$running already answers on $HOST:$ES_PORT (pid $(port_pid "$ES_PORT"), not started by services.sh): reusing it as elasticsearch"
    return 0
  fi
  port_open "$ES_PORT" &&
    die "port $HOST:$ES_PORT is taken by pid $(port_pid "$ES_PORT") (not Elasticsearch); set SLUICE_ELASTIC_PORT"
  port_open "$ES_TRANSPORT_PORT" &&
    die "transport port $HOST:$ES_TRANSPORT_PORT is taken by pid $(port_pid "$ES_TRANSPORT_PORT"); set SLUICE_ELASTIC_TRANSPORT_PORT"

  es_install
  es_write_config
  log "Starting $ES_FLAVOR $ES_VERSION on $HOST:$ES_PORT (transport $ES_TRANSPORT_PORT) ..."
  local opts node
  mapfile -t opts < <(es_java_opts)
  node=$(es_node_dir)
  es_id >"$(es_dir)/elasticsearch.version"
  # cwd is the node dir: a JVM crash file (hs_err_pid*.log) lands there.
  (cd "$node" &&
    spawn "$(pid_file elasticsearch)" "$(es_log_dir)/runner.out" \
      java "${opts[@]}" Runner.java "$node" "$node/config")
}

# --------------------------------------------------------------- influxdb

influx_dir() { svc_dir influxdb; }

# The Debian package installs /usr/bin/influxd; `influxd version` prints
# "InfluxDB v1.6.7~rc0 (git: unknown unknown)".
influx_version() {
  influxd version 2>/dev/null | sed -n 's/^InfluxDB v\([^ ]*\).*/\1/p' || true
}

influx_install() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  command -v influxd >/dev/null && return 0
  apt_install influxdb
  command -v influxd >/dev/null || die "influxd not found after install"
}

# The HTTP service opens after the meta store and every shard are loaded;
# `GET /ping` answers 204 from then on.
influx_ready() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    "http://$HOST:$INFLUX_PORT/ping" 2>/dev/null) == 204 ]]
}

influx_log_tail() {
  tail_since_start influxdb "$(influx_dir)/logs/influxd.log"
}

# Everything under the state dir, loopback only, no usage reporting, no
# _internal monitor database, and only warnings in the log (no line per
# request, no query log). The data survives a stop and start: the shards and
# the WAL stay in data/ and wal/, the databases in meta/.
influx_write_config() {
  local dir
  dir=$(influx_dir)
  mkdir -p "$dir/meta" "$dir/data" "$dir/wal" "$dir/logs"
  cat >"$dir/influxdb.conf" <<EOF
# Generated by scripts/services.sh at every start.
reporting-disabled = true
bind-address = "$HOST:$INFLUX_RPC_PORT"

[meta]
  dir = "$dir/meta"
  logging-enabled = false

[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "$HOST:$INFLUX_PORT"
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  log-enabled = false
EOF
}

influx_launch() {
  local pid
  if pid=$(our_pid influxdb); then
    log "influxdb already running on $HOST:$INFLUX_PORT (pid $pid), reusing it"
    return 0
  fi
  if influx_ready; then
    log "InfluxDB already answers on $HOST:$INFLUX_PORT (pid $(port_pid "$INFLUX_PORT"), not started by services.sh): reusing it"
    return 0
  fi
  port_open "$INFLUX_PORT" &&
    die "port $HOST:$INFLUX_PORT is taken by pid $(port_pid "$INFLUX_PORT") (not InfluxDB); set SLUICE_INFLUXDB_PORT"
  port_open "$INFLUX_RPC_PORT" &&
    die "RPC port $HOST:$INFLUX_RPC_PORT is taken by pid $(port_pid "$INFLUX_RPC_PORT"); set SLUICE_INFLUXDB_RPC_PORT"

  influx_install
  influx_write_config
  local dir
  dir=$(influx_dir)
  log "Starting influxdb $(influx_version) on $HOST:$INFLUX_PORT (rpc $INFLUX_RPC_PORT) ..."
  # cwd is the state dir; the log is its stderr (1.x has no log file option).
  (cd "$dir" &&
    spawn "$(pid_file influxdb)" "$dir/logs/influxd.log" \
      influxd -config "$dir/influxdb.conf")
}

# ---------------------------------------------------------------- commands

# Waits until every service named is ready, polling them side by side so
# each one's time is its own; on timeout or early exit prints the tail of
# its logs and fails. T0[svc] holds each start time (now_us). The ready and
# log tail functions get the service's name (kafka-cluster-N tells the node).
wait_ready() {
  local svc deadline pid file
  local -a pending=("$@")
  local -A pids=()
  deadline=$(($(now_us) + START_TIMEOUT * 1000000))
  # The raw pid file, not our_pid: a process that already died must still
  # be seen as ours, to report its exit at once instead of timing out.
  for svc in "$@"; do
    file=$(pid_file "$svc")
    pids[$svc]=$(cat "$file" 2>/dev/null || true)
  done
  while ((${#pending[@]} > 0)); do
    local -a still=()
    for svc in "${pending[@]}"; do
      pid=${pids[$svc]}
      if "$(svc_fn "$svc")_ready" "$svc"; then
        log "$svc ready in $(elapsed_since "${T0[$svc]}") s"
        continue
      fi
      if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
        "$(svc_fn "$svc")_log_tail" "$svc"
        die "$svc (pid $pid) exited during startup"
      fi
      if (($(now_us) > deadline)); then
        "$(svc_fn "$svc")_log_tail" "$svc"
        die "$svc not ready after ${START_TIMEOUT} s (pid ${pid:-?})"
      fi
      still+=("$svc")
    done
    pending=("${still[@]}")
    ((${#pending[@]} == 0)) || sleep 0.2
  done
}

print_env() {
  local svc cluster=0 ch_cluster=0
  for svc in "$@"; do
    case $svc in
      kafka-cluster*)
        # Once, whichever nodes are named.
        ((cluster)) && continue
        cluster=1
        printf 'SLUICE_KAFKA_CLUSTER_BROKERS=%s\n' "$(kcluster_brokers)"
        ;;
      clickhouse-cluster*)
        ((ch_cluster)) && continue
        ch_cluster=1
        printf 'SLUICE_CLICKHOUSE_CLUSTER=%s\n' "$CHC_CLUSTER"
        printf 'SLUICE_CLICKHOUSE_CLUSTER_URLS=%s\n' "$(chc_urls)"
        printf 'SLUICE_CLICKHOUSE_CLUSTER_HTTP_PORT=%s\n' "$CHC_HTTP_PORT"
        printf 'SLUICE_CLICKHOUSE_CLUSTER_TCP_PORT=%s\n' "$CHC_TCP_PORT"
        printf 'SLUICE_CLICKHOUSE_CLUSTER_INTERSERVER_PORT=%s\n' "$CHC_INTERSERVER_PORT"
        ;;
      zookeeper)
        printf 'SLUICE_ZOOKEEPER=%s:%s\n' "$HOST" "$ZK_PORT"
        printf 'SLUICE_ZOOKEEPER_PORT=%s\n' "$ZK_PORT"
        ;;
      kafka)
        printf 'KAFKA_BOOTSTRAP_SERVERS=%s:%s\n' "$HOST" "$KAFKA_PORT"
        printf 'SLUICE_KAFKA_PORT=%s\n' "$KAFKA_PORT"
        printf 'SLUICE_KAFKA_SASL_PORT=%s\n' "$KAFKA_SASL_PORT"
        printf 'SLUICE_KAFKA_TLS_PORT=%s\n' "$KAFKA_TLS_PORT"
        printf 'SLUICE_KAFKA_SASL_TLS_PORT=%s\n' "$KAFKA_SASL_TLS_PORT"
        printf 'SLUICE_KAFKA_CA_FILE=%s\n' "$(kafka_ca_file)"
        printf 'SLUICE_KAFKA_SASL_USERNAME=%s\n' "$KAFKA_SASL_USER"
        printf 'SLUICE_KAFKA_SASL_PASSWORD=%s\n' "$KAFKA_SASL_PASSWORD"
        ;;
      clickhouse)
        printf 'CLICKHOUSE_HOST=%s\n' "$HOST"
        printf 'CLICKHOUSE_PORT=%s\n' "$CH_HTTP_PORT"
        printf 'CLICKHOUSE_URL=http://%s:%s\n' "$HOST" "$CH_HTTP_PORT"
        printf 'SLUICE_CLICKHOUSE_HTTP_PORT=%s\n' "$CH_HTTP_PORT"
        printf 'SLUICE_CLICKHOUSE_TCP_PORT=%s\n' "$CH_TCP_PORT"
        ;;
      clickhouse26)
        printf 'SLUICE_CLICKHOUSE26_URL=http://%s:%s\n' "$HOST" "$CH26_HTTP_PORT"
        printf 'SLUICE_CLICKHOUSE26_HTTP_PORT=%s\n' "$CH26_HTTP_PORT"
        printf 'SLUICE_CLICKHOUSE26_TCP_PORT=%s\n' "$CH26_TCP_PORT"
        ;;
      victoriametrics)
        printf 'VM_URL=http://%s:%s\n' "$HOST" "$VM_PORT"
        printf 'SLUICE_VM_PORT=%s\n' "$VM_PORT"
        ;;
      elasticsearch)
        printf 'ELASTIC_HOSTS=%s:%s\n' "$HOST" "$ES_PORT"
        printf 'SLUICE_ELASTIC_PORT=%s\n' "$ES_PORT"
        ;;
      influxdb)
        printf 'INFLUXDB_URL=http://%s:%s\n' "$HOST" "$INFLUX_PORT"
        printf 'SLUICE_INFLUXDB_PORT=%s\n' "$INFLUX_PORT"
        printf 'SLUICE_INFLUXDB_RPC_PORT=%s\n' "$INFLUX_RPC_PORT"
        ;;
    esac
  done
}

cmd_install() {
  local svc
  for svc in "$@"; do
    case $svc in
      kafka) kafka_install ;;
      clickhouse) ch_install ;;
      clickhouse26) ch26_install ;;
      victoriametrics) vm_install ;;
      elasticsearch) es_install ;;
      influxdb) influx_install ;;
      kafka-cluster*) kafka_install ;;
      zookeeper) zk_install ;;
      clickhouse-cluster*) ch_install ;;
    esac
  done
  log "installed: $*"
}

cmd_start() {
  local svc
  mkdir -p "$SERVICES_DIR"
  # Launch everything first, then wait: the services boot side by side.
  # Each time counts from the launch of that service (install included).
  # The nodes of clickhouse-cluster are launched once zookeeper is ready
  # (main puts it in the list when one is named): their replicated tables
  # would start read-only without it.
  local -a nodes=() rest=()
  for svc in "$@"; do
    T0[$svc]=$(now_us)
    case $svc in
      kafka) kafka_launch ;;
      clickhouse) ch_launch ;;
      clickhouse26) ch26_launch ;;
      victoriametrics) vm_launch ;;
      elasticsearch) es_launch ;;
      influxdb) influx_launch ;;
      kafka-cluster-*) kcluster_launch "${svc#kafka-cluster-}" ;;
      zookeeper) zk_launch ;;
      clickhouse-cluster-*) nodes+=("$svc") ;;
    esac
    [[ $svc == @(zookeeper|clickhouse-cluster-*) ]] || rest+=("$svc")
  done
  if ((${#nodes[@]} > 0)); then
    wait_ready zookeeper
    for svc in "${nodes[@]}"; do
      T0[$svc]=$(now_us)
      chc_launch "${svc#clickhouse-cluster-}"
    done
    rest+=("${nodes[@]}")
  elif [[ " $* " == *" zookeeper "* ]]; then
    rest+=(zookeeper)
  fi
  ((${#rest[@]} == 0)) || wait_ready "${rest[@]}"
  if [[ " $* " == *" kafka "* ]]; then kafka_after_ready; fi
  print_env "$@"
}

# Sends SIGTERM to service $1 if this script started it (Kafka shuts down
# cleanly, ClickHouse finishes running queries) and prints its pid; prints
# nothing when there is nothing of ours to stop.
stop_signal() {
  local svc=$1 pid port
  if ! pid=$(our_pid "$svc"); then
    port=$(svc_port "$svc")
    if port_open "$port"; then
      log "$svc on $HOST:$port was not started by services.sh (pid $(port_pid "$port")); leaving it running"
    else
      log "$svc is not running"
    fi
    return 0
  fi
  log "Stopping $svc (pid $pid) ..."
  kill -TERM "$pid" 2>/dev/null || true
  printf '%s' "$pid"
}

# Waits for pid $2 of service $1 to exit; kill -9 after STOP_TIMEOUT.
stop_wait() {
  local svc=$1 pid=$2 t0=$3 i
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$svc still running after ${STOP_TIMEOUT} s: kill -9"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$(pid_file "$svc")"
  log "$svc stopped in $(elapsed_since "$t0") s"
}

# Signals every service first, then waits: they shut down side by side.
# zookeeper goes last, once the ClickHouse nodes have closed their sessions.
cmd_stop() {
  local svc t0 zk=0
  local -A pids=()
  t0=$(now_us)
  for svc in "$@"; do
    if [[ $svc == zookeeper ]]; then
      zk=1
      continue
    fi
    pids[$svc]=$(stop_signal "$svc")
  done
  for svc in "$@"; do
    [[ -n ${pids[$svc]:-} ]] && stop_wait "$svc" "${pids[$svc]}" "$t0"
  done
  if ((zk)); then
    pids[zookeeper]=$(stop_signal zookeeper)
    [[ -n ${pids[zookeeper]} ]] && stop_wait zookeeper "${pids[zookeeper]}" "$t0"
  fi
  return 0
}

# SIGKILL, at once, to what this script started: a crash, for tests that
# need one (a Kafka node that gets no chance to hand its leaderships on).
cmd_kill() {
  local svc pid
  for svc in "$@"; do
    if ! pid=$(our_pid "$svc"); then
      log "$svc is not running, or not started by services.sh: nothing to kill"
      continue
    fi
    log "Killing $svc (pid $pid) with SIGKILL ..."
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$(pid_file "$svc")"
    log "$svc killed"
  done
}

# One line per service on stdout; exit 3 (as LSB status does) when one is
# not running, so `services.sh status kafka && ...` works.
cmd_status() {
  local svc pid state where extra rc=0 port id n
  for svc in "$@"; do
    extra=""
    case $svc in
      kafka)
        port=$KAFKA_PORT
        where="$HOST:$KAFKA_PORT sasl $KAFKA_SASL_PORT tls $KAFKA_TLS_PORT sasl+tls $KAFKA_SASL_TLS_PORT"
        ;;
      clickhouse)
        port=$CH_HTTP_PORT
        where="http $HOST:$CH_HTTP_PORT tcp $HOST:$CH_TCP_PORT"
        ;;
      clickhouse26)
        port=$CH26_HTTP_PORT
        where="http $HOST:$CH26_HTTP_PORT tcp $HOST:$CH26_TCP_PORT"
        ;;
      victoriametrics)
        port=$VM_PORT
        where="http $HOST:$VM_PORT"
        ;;
      elasticsearch)
        port=$ES_PORT
        where="http $HOST:$ES_PORT transport $ES_TRANSPORT_PORT"
        ;;
      influxdb)
        port=$INFLUX_PORT
        where="http $HOST:$INFLUX_PORT rpc $INFLUX_RPC_PORT"
        ;;
      kafka-cluster-*)
        port=$(kcluster_port "${svc#kafka-cluster-}")
        where="$HOST:$port controller $(kcluster_controller_port "${svc#kafka-cluster-}")"
        ;;
      zookeeper)
        port=$ZK_PORT
        where="$HOST:$ZK_PORT"
        ;;
      clickhouse-cluster-*)
        n=${svc#clickhouse-cluster-}
        port=$(chc_http_port "$n")
        where="http $HOST:$port tcp $(chc_tcp_port "$n") interserver $(chc_interserver_port "$n") shard $(chc_shard "$n")"
        ;;
    esac
    if pid=$(our_pid "$svc"); then
      state=running
      case $svc in
        kafka) extra=" version $(cat "$(svc_dir kafka)/kafka.version" 2>/dev/null || echo '?')" ;;
        clickhouse26) extra=" version $(ch26_version)" ;;
        victoriametrics) extra=" version $(vm_version)" ;;
        elasticsearch) extra=" version $(cat "$(es_dir)/elasticsearch.version" 2>/dev/null || echo '?')" ;;
        influxdb) extra=" version $(influx_version)" ;;
        kafka-cluster-*) extra=" version $(cat "$(kcluster_version_file)" 2>/dev/null || echo '?')" ;;
        zookeeper) extra=" version $(zk_version)" ;;
        clickhouse-cluster-*) extra=" version $(ch_version)" ;;
      esac
      port_open "$port" || state="running (port not answering yet)"
    elif port_open "$port"; then
      state=running
      pid=$(port_pid "$port")
      extra=" (not started by services.sh)"
      if [[ $svc == elasticsearch ]]; then
        id=$(es_running_id)
        [[ -n $id ]] && extra=" $id$extra"
      fi
    else
      state=stopped
      pid=""
      rc=3
    fi
    if [[ $svc == kafka && $state == running && -n $(kafka_missing_listeners) ]]; then
      extra+=" (without the SASL/TLS listeners)"
    fi
    printf '%-20s %-8s %s pid %s%s\n' "$svc" "$state" "$where" "${pid:--}" "$extra"
  done
  return "$rc"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

main() {
  [[ $# -ge 1 ]] || usage
  local action=$1 svc n
  shift
  local services=("$@") known=("${ALL_SERVICES[@]}" "${OPTIONAL_SERVICES[@]}") bare=0
  [[ $# -eq 0 ]] && bare=1
  for n in "${KCLUSTER_NODES[@]}"; do known+=("kafka-cluster-$n"); done
  for n in "${CHC_NODES[@]}"; do known+=("clickhouse-cluster-$n"); done
  if [[ ${#services[@]} -eq 0 ]]; then
    [[ $action == kill ]] && die "kill needs a service named (known: ${known[*]})"
    services=("${ALL_SERVICES[@]}")
    [[ $action == stop ]] && services+=("${OPTIONAL_SERVICES[@]}")
  fi
  for svc in "${services[@]}"; do
    [[ " ${known[*]} " == *" $svc "* ]] || die "unknown service '$svc' (known: ${known[*]})"
  done
  # kafka-cluster and clickhouse-cluster are their nodes, each a service of
  # its own (pid file, readiness, status line); install and env need them
  # only once. A start of a clickhouse-cluster node starts zookeeper first.
  local expanded=()
  for svc in "${services[@]}"; do
    case $svc in
      kafka-cluster)
        for n in "${KCLUSTER_NODES[@]}"; do expanded+=("kafka-cluster-$n"); done
        ;;
      clickhouse-cluster)
        [[ $action == @(start|install) ]] && expanded+=(zookeeper)
        for n in "${CHC_NODES[@]}"; do expanded+=("clickhouse-cluster-$n"); done
        ;;
      clickhouse-cluster-*)
        [[ $action == @(start|install) ]] && expanded+=(zookeeper)
        expanded+=("$svc")
        ;;
      *) expanded+=("$svc") ;;
    esac
  done
  services=()
  for svc in "${expanded[@]}"; do
    [[ " ${services[*]} " == *" $svc "* ]] || services+=("$svc")
  done
  # Nodes started beside running ones join them with their Kafka version
  # (a test restarting a node need not know it); an explicit
  # SLUICE_KAFKA_VERSION is still checked against them in kcluster_launch.
  if [[ $action == start && -z ${SLUICE_KAFKA_VERSION:-} && " ${services[*]} " != *" kafka "* ]]; then
    local running
    if running=$(kcluster_running_version) && [[ -n $running ]]; then KAFKA_VERSION=$running; fi
  fi
  # A bad flavour fails before anything starts.
  if [[ $action == @(start|install) && " ${services[*]} " == *" elasticsearch "* ]]; then
    es_check_flavor
  fi
  # One start/stop/install at a time per services dir: parallel test runs
  # calling start together must not launch a second broker. kafka-cluster
  # has a lock of its own (fd 8), and so have clickhouse-cluster with its
  # zookeeper (fd 6), so that a test stopping and starting one of their
  # nodes neither waits for nor delays a start or stop of the other
  # services; a command naming several takes each, in this order.
  if [[ $action == @(start|stop|kill|install) ]] && command -v flock >/dev/null; then
    local others=0 cluster=0 ch_cluster=0 wait=$((START_TIMEOUT + STOP_TIMEOUT + 600))
    for svc in "${services[@]}"; do
      case $svc in
        kafka-cluster-*) cluster=1 ;;
        zookeeper | clickhouse-cluster-*) ch_cluster=1 ;;
        *) others=1 ;;
      esac
    done
    mkdir -p "$SERVICES_DIR"
    if ((others)); then
      exec 9>"$SERVICES_DIR/.lock"
      flock -w "$wait" 9 || die "could not lock $SERVICES_DIR/.lock"
    fi
    if ((cluster)); then
      exec 8>"$SERVICES_DIR/.lock-kafka-cluster"
      flock -w "$wait" 8 || die "could not lock $SERVICES_DIR/.lock-kafka-cluster"
    fi
    if ((ch_cluster)); then
      exec 6>"$SERVICES_DIR/.lock-clickhouse-cluster"
      flock -w "$wait" 6 || die "could not lock $SERVICES_DIR/.lock-clickhouse-cluster"
    fi
  fi
  case $action in
    start) cmd_start "${services[@]}" ;;
    stop)
      cmd_stop "${services[@]}"
      # InfluxDB 2 has a script of its own (scripts/influxdb2.sh), which
      # deno task test starts: a bare stop stops it too.
      if ((bare)) && [[ -f $REPO_DIR/scripts/influxdb2.sh ]]; then
        bash "$REPO_DIR/scripts/influxdb2.sh" stop || true
      fi
      ;;
    kill) cmd_kill "${services[@]}" ;;
    status) cmd_status "${services[@]}" ;;
    install) cmd_install "${services[@]}" ;;
    env) print_env "${services[@]}" ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
  esac
}

main "$@"
