#!/usr/bin/env bash
# The whole test suite from a fresh clone (`deno task test` runs it too):
#   1. installs what the tests need (scripts/setup.sh: Debian packages,
#      Deno, the service artifacts; about a second when everything is
#      there), and builds InfluxDB 2 from source the first time
#      (scripts/influxdb2.sh install: 6 to 7 minutes, progress on stderr);
#   2. starts the local services (reused when running), the three-node
#      Kafka cluster too (kafka-cluster, for
#      tests/integration/leader_move_test.ts), the ClickHouse cluster
#      (clickhouse-cluster: zookeeper and four ClickHouse 18.16 nodes, for
#      tests/integration/clickhouse_cluster_test.ts) and InfluxDB 2
#      (scripts/influxdb2.sh, for tests/integration/influxdb2_test.ts);
#   3. runs every test with the pinned Deno (`deno test -A --frozen`,
#      tests/ or the arguments given: a path, --filter NAME ...).
# Tests that need a service fail when it is missing; none skip. A service
# that cannot start is said here, and the run goes on.
# Exits with deno test's status, after a last line on stderr with the time
# taken: "test.sh: took T s: setup S s, InfluxDB 2 build B s, services V s,
# tests D s" (the build only when there was one).
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"

t=$SECONDS
bash scripts/setup.sh all
took="setup $((SECONDS - t)) s"
# Tests run deno themselves (deno test, deno run): the pinned one.
PATH=$REPO_DIR/tools/deno/node_modules/.bin:$PATH

t=$SECONDS
influxd=1
if ! bash scripts/influxdb2.sh install; then
  influxd=0
  echo "test.sh: InfluxDB 2 could not be built (see above); tests/integration/influxdb2_test.ts will fail" >&2
fi
if ((SECONDS - t >= 5)); then took+=", InfluxDB 2 build $((SECONDS - t)) s"; fi

t=$SECONDS
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
# Not after a failed build: start would build again.
if ((influxd)) && ! bash scripts/influxdb2.sh start >/dev/null; then
  echo "test.sh: InfluxDB 2 is not running (see above); tests/integration/influxdb2_test.ts will fail" >&2
fi
took+=", services $((SECONDS - t)) s"

if (($# == 0)); then set -- tests/; fi
t=$SECONDS
rc=0
deno test -A --frozen "$@" || rc=$?
took+=", tests $((SECONDS - t)) s"
echo "test.sh: took $SECONDS s: $took" >&2
exit "$rc"
