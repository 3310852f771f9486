/**
 * Throughput as sluice processes and ClickHouse shards are added: N
 * 20-column records (default 200,000) in a topic of 6 partitions, read by 1,
 * 2 and 3 sluice processes of one consumer group, written into one
 * ClickHouse 18.16 (the `clickhouse` service: 1 shard) and into the local
 * cluster (`clickhouse-cluster`: 2 shards x 2 replicas, through the
 * Distributed table). For each it prints the records/s from the first spawn
 * until every row is in, the CPU seconds of all the sluice processes, that
 * per million records, and the servers' CPU seconds meanwhile.
 *
 * Everything shares the machine's cores: the per-instance CPU per record is
 * what predicts scaling on hardware with a core per process.
 *
 * ```sh
 * bash scripts/services.sh start kafka clickhouse clickhouse-cluster
 * deno run -A bench/scaling.ts [--records 200000] [--instances 1,2,3]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeStdout } from "../lib/log.ts";
import { generate, kafkaClient, produce } from "./_dataset.ts";
import { num, servicePid, table } from "./_measure.ts";
import { START_V8_FLAGS } from "./_sluice.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SERVICES_DIR = Deno.env.get("SLUICE_SERVICES_DIR") ?? ROOT + ".services";
const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
const SINGLE = `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;
const CLUSTER_URLS = [18131, 18132, 18133, 18134].map((p) => `http://127.0.0.1:${p}`);
const SCHEMA = "as_src:UInt32,as_dst:UInt32,peer_as_dst:UInt32,peer_ip_src:String," +
  "iface_in:UInt32,iface_out:UInt32,ip_src:String,ip_dst:String,mask_src:UInt8,mask_dst:UInt8," +
  "port_src:UInt16,port_dst:UInt16,tcp_flags:UInt8,ip_proto:String,tos:UInt8," +
  "sampling_rate:UInt32,timestamp_start:String,timestamp_end:String,stamp_inserted:DateTime," +
  "stamp_updated:DateTime,flows:UInt64,packets:UInt64,bytes:UInt64,writer_id:String";

/** User plus system CPU seconds of a process, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function clusterPid(service: string): number | undefined {
  try {
    const pid = Number(
      Deno.readTextFileSync(`${SERVICES_DIR}/clickhouse-cluster/${service}.pid`).trim(),
    );
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function count(url: string, sql: string): Promise<number> {
  try {
    const response = await fetch(`${url}/?query=${encodeURIComponent(sql)}`);
    return response.ok ? Number(await response.text()) : 0;
  } catch {
    return 0;
  }
}

interface Result {
  target: string;
  instances: number;
  seconds: number;
  cpu: number;
  serverCpu: number;
}

async function run(
  target: "1 shard" | "2 shards",
  instances: number,
  topic: string,
  n: number,
): Promise<Result> {
  const id = `${Date.now()}`;
  const database = `scaling_${id}`;
  const cluster = target === "2 shards";
  const env: Record<string, string> = {
    KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    KAFKA_TOPIC: topic,
    KAFKA_CONSUMER_GROUP_ID: `scaling-${id}`,
    KAFKA_AUTO_OFFSET_RESET: "earliest",
    CLICKHOUSE_HOST: cluster ? CLUSTER_URLS.join(",") : SINGLE,
    CLICKHOUSE_DB: database,
    CLICKHOUSE_TABLE: "flows",
    CLICKHOUSE_DATA_SCHEMA: SCHEMA,
    CLICKHOUSE_ORDER_BY: "stamp_inserted, ip_src, ip_dst",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "10000",
    CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    PROMETHEUS_CLIENT_PORT: "0",
    ...(cluster ? { CLICKHOUSE_CLUSTER: "sluice" } : {}),
  };
  const servers: number[] = [];
  for (
    const service of cluster ? [1, 2, 3, 4].map((i) => `clickhouse-cluster-${i}`) : ["clickhouse"]
  ) {
    // The cluster's pid files are all in one folder, clickhouse-cluster/.
    const pid = cluster ? clusterPid(service) : servicePid(SERVICES_DIR, service);
    if (pid !== undefined) servers.push(pid);
  }
  const serversCpu = () => servers.reduce((a: number, pid) => a + cpuSeconds(pid), 0);
  const serverCpu0 = serversCpu();
  const cwd = await Deno.makeTempDir();
  const started = performance.now();
  const children = Array.from({ length: instances }, () =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--v8-flags=${START_V8_FLAGS}`,
        "-A",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}main.ts`,
      ],
      env,
      clearEnv: true,
      cwd,
      stdout: "null",
      stderr: "null",
    }).spawn());
  const query = `SELECT count() FROM ${database}.flows`;
  const url = cluster ? CLUSTER_URLS[0]! : SINGLE;
  let cpu = 0;
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (await count(url, query) >= n) break;
      if (performance.now() - started > 600_000) throw new Error(`Cannot see ${n} rows in 600 s`);
    }
    cpu = children.reduce((a, c) => a + cpuSeconds(c.pid), 0);
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map((c) => c.status));
  }
  const seconds = (performance.now() - started) / 1000;
  const serverCpu = serversCpu() - serverCpu0;
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
    },
  });
  const n = Number(values.records);
  const counts = values.instances.split(",").map(Number);
  const topic = `scaling-${Date.now()}`;
  const admin = kafkaClient(KAFKA, "scaling-admin").admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 6, replicationFactor: 1 }] });
  await admin.disconnect();
  await produce(KAFKA, topic, generate(n, 20, 1), 6);
  const results: Result[] = [];
  for (const target of ["1 shard", "2 shards"] as const) {
    for (const instances of counts) {
      const result = await run(target, instances, topic, n);
      writeStdout(
        `${target}, ${instances} instance(s): ${num(n / result.seconds)} records/s, ` +
          `sluice CPU ${num(result.cpu, 2)} s\n`,
      );
      results.push(result);
    }
  }
  writeStdout(
    `\n${num(n)} 20-column records, 6 partitions, 10,000 rows per batch, ` +
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
