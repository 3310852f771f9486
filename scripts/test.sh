#!/usr/bin/env bash
# `deno task test`: starts the local services (reused when running), the
# three-node Kafka cluster too (kafka-cluster, for
# tests/integration/leader_move_test.ts) and the ClickHouse cluster
# (clickhouse-cluster: zookeeper and four ClickHouse 18.16 nodes, for
# tests/integration/clickhouse_cluster_test.ts), and runs every test. Tests
# that need a service fail when it is missing; none skip.
# InfluxDB 2 (scripts/influxdb2.sh) is built from source the first time
# (Go >= 1.23 and cargo; several minutes, progress on stderr); when it cannot
# be built or started, that is said here and the tests on it fail.
# Extra arguments go to `deno test` (e.g. a path or --filter NAME).
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
bash scripts/services.sh start >/dev/null
# Not in the default set of services.sh (three JVMs); when it cannot start,
# that is said here and the tests on it fail.
if ! bash scripts/services.sh start kafka-cluster >/dev/null; then
  echo "test.sh: kafka-cluster is not running (see above); tests/integration/leader_move_test.ts will fail" >&2
fi
# Not in the default set either (four servers and ZooKeeper); the same.
if ! bash scripts/services.sh start clickhouse-cluster >/dev/null; then
  echo "test.sh: clickhouse-cluster is not running (see above); tests/integration/clickhouse_cluster_test.ts will fail" >&2
fi
echo "test.sh: InfluxDB 2 for tests/integration/influxdb2_test.ts (scripts/influxdb2.sh install, start) ..." >&2
if ! bash scripts/influxdb2.sh install || ! bash scripts/influxdb2.sh start >/dev/null; then
  echo "test.sh: InfluxDB 2 is not running (see above); tests/integration/influxdb2_test.ts will fail" >&2
fi
if (($# == 0)); then set -- tests/; fi
exec deno test -A --frozen "$@"
