/**
 * sluice's memory through a long sink outage, with most of the records
 * still waiting in the topic: N 20-column records (default 1,000,000) are
 * produced to a fresh 3-partition topic; sluice writes them into ClickHouse
 * 18.16 (the local `clickhouse` service) with 10,000 rows per batch and
 * `deno task start`'s V8 flags; once 100,000 rows are in, the server is
 * killed (SIGKILL) for `--outage` seconds (default 300); then it is started
 * again and sluice drains the rest. It prints sluice's RSS every 10 s and its
 * peak (VmHWM) before, during and after the outage, and checks that every
 * record arrived.
 *
 * ```sh
 * deno run -A bench/outage_memory.ts [--records 1000000] [--outage 300]
 * ```
 *
 * It stops the `clickhouse` service: do not run it beside the tests.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { generate, kafkaClient, produce } from "./_dataset.ts";
import { START_V8_FLAGS } from "./_sluice.ts";
import { writeStdout } from "../lib/log.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
const CLICKHOUSE = `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;
const SCHEMA = "as_src:UInt32,as_dst:UInt32,peer_as_dst:UInt32,peer_ip_src:String," +
  "iface_in:UInt32,iface_out:UInt32,ip_src:String,ip_dst:String,mask_src:UInt8,mask_dst:UInt8," +
  "port_src:UInt16,port_dst:UInt16,tcp_flags:UInt8,ip_proto:String,tos:UInt8," +
  "sampling_rate:UInt32,timestamp_start:String,timestamp_end:String,stamp_inserted:DateTime," +
  "stamp_updated:DateTime,flows:UInt64,packets:UInt64,bytes:UInt64,writer_id:String";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function services(command: string): Promise<void> {
  const done = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/services.sh`, command, "clickhouse"],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!done.success) throw new Error(`Cannot ${command} the clickhouse service`);
}

async function rows(database: string): Promise<number | undefined> {
  try {
    const response = await fetch(
      `${CLICKHOUSE}/?query=${encodeURIComponent(`SELECT count() FROM ${database}.flows`)}`,
    );
    return response.ok ? Number(await response.text()) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      records: { type: "string", default: "1000000" },
      outage: { type: "string", default: "300" },
    },
  });
  const n = Number(values.records);
  const outageMs = Number(values.outage) * 1000;
  const topic = `outage-${Date.now()}`;
  const database = `outage_${Date.now()}`;
  const admin = kafkaClient(KAFKA, "outage-admin").admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
  await admin.disconnect();
  await produce(KAFKA, topic, generate(n, 20, 1), 3);
  const cwd = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--v8-flags=${START_V8_FLAGS}`,
      "-A",
      "--config",
      `${ROOT}deno.json`,
      `${ROOT}main.ts`,
    ],
    env: {
      KAFKA_BOOTSTRAP_SERVERS: KAFKA,
      KAFKA_TOPIC: topic,
      KAFKA_CONSUMER_GROUP_ID: `g-${topic}`,
      KAFKA_AUTO_OFFSET_RESET: "earliest",
      CLICKHOUSE_HOST: CLICKHOUSE,
      CLICKHOUSE_DB: database,
      CLICKHOUSE_TABLE: "flows",
      CLICKHOUSE_DATA_SCHEMA: SCHEMA,
      CLICKHOUSE_ORDER_BY: "stamp_inserted, ip_src, ip_dst",
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "10000",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      PROMETHEUS_CLIENT_PORT: "0",
    },
    cwd,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const memory = () => {
    const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
    const mb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)![1]) / 1024;
    return { rss: mb("VmRSS"), peak: mb("VmHWM") };
  };
  const line = (what: string) => {
    const { rss, peak } = memory();
    writeStdout(`${what}: RSS ${rss.toFixed(0)} MB, peak so far ${peak.toFixed(0)} MB\n`);
  };
  try {
    while (((await rows(database)) ?? 0) < 100_000) await sleep(200);
    line(`${(await rows(database))!.toLocaleString("en-US")} rows written, killing ClickHouse`);
    await services("kill");
    const started = Date.now();
    while (Date.now() - started < outageMs) {
      await sleep(10_000);
      line(`outage ${Math.round((Date.now() - started) / 1000)} s`);
    }
    await services("start");
    const back = Date.now();
    for (;;) {
      await sleep(2000);
      const count = await rows(database);
      line(`${(Date.now() - back) / 1000} s after: ${count?.toLocaleString("en-US")} rows`);
      if (count !== undefined && count >= n) break;
      if (Date.now() - back > 600_000) throw new Error(`Cannot see ${n} rows within 600 s`);
    }
    const count = await rows(database);
    if (count !== n) throw new Error(`Expected ${n} rows, found ${count}`);
    writeStdout(
      `every record arrived once: ${n.toLocaleString("en-US")} rows; peak RSS ${
        memory().peak.toFixed(0)
      } MB\n`,
    );
    return 0;
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await fetch(
      `${CLICKHOUSE}/?query=${encodeURIComponent(`DROP DATABASE IF EXISTS ${database}`)}`,
      {
        method: "POST",
      },
    ).then((r) => r.body?.cancel()).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
