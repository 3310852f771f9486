/**
 * Throughput as sluice processes and ClickHouse shards are added: N
 * 20-column records (default 200,000) in a topic of 6 partitions, read by 1,
 * 2 and 3 sluice processes of one consumer group, written into one
 * ClickHouse 18.16 (the `clickhouse` service: 1 shard) and into the local
 * cluster (`clickhouse-cluster`: 2 shards x 2 replicas), through the
 * Distributed table and straight to each shard's local table
 * (`CLICKHOUSE_WRITE_PATH=direct`). For each it prints the records/s from the first spawn
 * until every row is in, the CPU seconds of all the sluice processes, that
 * per million records, and the servers' CPU seconds meanwhile.
 *
 * Everything shares the machine's cores: the per-instance CPU per record is
 * what predicts scaling on hardware with a core per process.
 *
 * ```sh
 * bash scripts/services.sh start kafka clickhouse clickhouse-cluster
 * deno run -A bench/scaling.ts [--records 200000] [--instances 1,2,3] [--batch 10000] \
 *   [--settle 15] \
 *   [--targets "1 shard,2 shards,2 shards direct"]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeStdout } from "../lib/log.ts";
import { freshTopic } from "./_dataset.ts";
import { cpuSecondsOf, num, servicePid, sleep, table } from "./_measure.ts";
import { sluiceEnv, spawnSluice, START_V8_FLAGS } from "./_sluice.ts";
import { chNumber, ORDER_BY, SCHEMAS } from "./_targets/clickhouse.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SERVICES_DIR = Deno.env.get("SLUICE_SERVICES_DIR") ?? ROOT + ".services";
const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
const SINGLE = `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;
const CLUSTER_URLS = [18131, 18132, 18133, 18134].map((p) => `http://127.0.0.1:${p}`);

/** The CPU seconds of these processes so far (0 for one that is gone). */
async function cpuOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await cpuSecondsOf(pid) ?? 0;
  return total;
}

interface Result {
  target: string;
  instances: number;
  seconds: number;
  cpu: number;
  serverCpu: number;
}

/** Where the rows go. */
const TARGETS = ["1 shard", "2 shards", "2 shards direct"] as const;
type Target = typeof TARGETS[number];

async function run(
  target: Target,
  instances: number,
  topic: string,
  n: number,
  batch: number,
): Promise<Result> {
  const id = `${Date.now()}`;
  const database = `scaling_${id}`;
  const cluster = target !== "1 shard";
  const env = sluiceEnv({
    KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    KAFKA_TOPIC: topic,
    KAFKA_CONSUMER_GROUP_ID: `scaling-${id}`,
    KAFKA_AUTO_OFFSET_RESET: "earliest",
    CLICKHOUSE_HOST: cluster ? CLUSTER_URLS.join(",") : SINGLE,
    CLICKHOUSE_DB: database,
    CLICKHOUSE_TABLE: "flows",
    CLICKHOUSE_DATA_SCHEMA: SCHEMAS[20],
    CLICKHOUSE_ORDER_BY: ORDER_BY,
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: String(batch),
    CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    PROMETHEUS_CLIENT_PORT: "0",
    ...(cluster ? { CLICKHOUSE_CLUSTER: "sluice" } : {}),
    ...(target === "2 shards direct" ? { CLICKHOUSE_WRITE_PATH: "direct" } : {}),
  });
  const servers =
    (cluster
      ? [1, 2, 3, 4].map((i) =>
        servicePid(SERVICES_DIR, `clickhouse-cluster-${i}`, "clickhouse-cluster")
      )
      : [servicePid(SERVICES_DIR, "clickhouse")]).filter((pid) => pid !== undefined);
  const serverCpu0 = await cpuOf(servers);
  const cwd = await Deno.makeTempDir();
  const started = performance.now();
  const sluices = Array.from(
    { length: instances },
    () => spawnSluice(env, cwd, [`--v8-flags=${START_V8_FLAGS}`]),
  );
  const pids = sluices.map((s) => s.child.pid);
  const url = cluster ? CLUSTER_URLS[0]! : SINGLE;
  const rows = () => chNumber(url, `SELECT count() FROM ${database}.flows`).catch(() => 0);
  let cpu = 0;
  let seconds = 0;
  try {
    while (await rows() < n) {
      await sleep(50);
      if (performance.now() - started > 600_000) throw new Error(`Cannot see ${n} rows in 600 s`);
    }
    // Until every row is in: the stop that follows is not timed.
    seconds = (performance.now() - started) / 1000;
    cpu = await cpuOf(pids);
  } finally {
    for (const sluice of sluices) sluice.child.kill("SIGTERM");
    await Promise.all(sluices.map((s) => s.status));
  }
  const serverCpu = await cpuOf(servers) - serverCpu0;
  const drop = `DROP DATABASE IF EXISTS ${database}${cluster ? " ON CLUSTER sluice" : ""}`;
  await fetch(url, { method: "POST", body: drop }).then((r) => r.body?.cancel());
  return { target, instances, seconds, cpu, serverCpu };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      records: { type: "string", default: "200000" },
      instances: { type: "string", default: "1,2,3" },
      targets: { type: "string", default: TARGETS.join(",") },
      batch: { type: "string", default: "10000" },
      settle: { type: "string", default: "15" },
    },
  });
  const targets = values.targets.split(",").map((t) => t.trim());
  for (const t of targets) {
    if (!(TARGETS as readonly string[]).includes(t)) {
      throw new Error(`Cannot measure target ${JSON.stringify(t)}: one of ${TARGETS.join(", ")}`);
    }
  }
  const n = Number(values.records);
  const batch = Number(values.batch);
  const settle = Number(values.settle);
  const counts = values.instances.split(",").map(Number);
  const topic = `scaling-${Date.now()}`;
  await freshTopic(KAFKA, topic, 6, n);
  const results: Result[] = [];
  for (const target of targets as Target[]) {
    for (const instances of counts) {
      // The servers merge and clean up after the last run: not on this one's clock.
      if (results.length > 0) await sleep(settle * 1000);
      const result = await run(target, instances, topic, n, batch);
      writeStdout(
        `${target}, ${instances} instance(s): ${num(n / result.seconds)} records/s, ` +
          `sluice CPU ${num(result.cpu, 2)} s\n`,
      );
      results.push(result);
    }
  }
  writeStdout(
    `\n${num(n)} 20-column records, 6 partitions, ${num(batch)} rows per batch, ` +
      `${navigator.hardwareConcurrency} CPU cores shared by all:\n\n` +
      table(
        [
          "ClickHouse",
          "instances",
          "seconds",
          "records/s",
          "sluice CPU s",
          "CPU s/M",
          "records/s per instance",
          "server CPU s",
        ],
        results.map((r) => [
          r.target,
          String(r.instances),
          num(r.seconds, 2),
          num(n / r.seconds),
          num(r.cpu, 2),
          num(r.cpu / n * 1e6, 2),
          num(n / r.seconds / r.instances),
          num(r.serverCpu, 2),
        ]),
      ),
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
