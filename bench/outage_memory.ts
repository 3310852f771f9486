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
import { writeStdout } from "../lib/log.ts";
import { freshTopic } from "./_dataset.ts";
import { num, sampleProcess, sleep } from "./_measure.ts";
import { sluiceEnv, spawnSluice, START_V8_FLAGS } from "./_sluice.ts";
import { chNumber, ORDER_BY, SCHEMAS } from "./_targets/clickhouse.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
const CLICKHOUSE = `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;

async function services(command: string): Promise<void> {
  const done = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/services.sh`, command, "clickhouse"],
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (!done.success) throw new Error(`Cannot ${command} the clickhouse service`);
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
  await freshTopic(KAFKA, topic, 3, n);
  const sluice = spawnSluice(
    sluiceEnv({
      KAFKA_BOOTSTRAP_SERVERS: KAFKA,
      KAFKA_TOPIC: topic,
      KAFKA_CONSUMER_GROUP_ID: `g-${topic}`,
      KAFKA_AUTO_OFFSET_RESET: "earliest",
      CLICKHOUSE_HOST: CLICKHOUSE,
      CLICKHOUSE_DB: database,
      CLICKHOUSE_TABLE: "flows",
      CLICKHOUSE_DATA_SCHEMA: SCHEMAS[20],
      CLICKHOUSE_ORDER_BY: ORDER_BY,
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "10000",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      PROMETHEUS_CLIENT_PORT: "0",
    }),
    await Deno.makeTempDir(),
    [`--v8-flags=${START_V8_FLAGS}`],
  );
  // 0 while the server is away or the table not made yet.
  const rows = () => chNumber(CLICKHOUSE, `SELECT count() FROM ${database}.flows`).catch(() => 0);
  const line = async (what: string) => {
    const sample = await sampleProcess(sluice.child.pid);
    writeStdout(
      `${what}: RSS ${num(sample.rssBytes / 2 ** 20)} MB, ` +
        `peak so far ${num(sample.peakRssBytes / 2 ** 20)} MB\n`,
    );
    return sample;
  };
  try {
    while (await rows() < 100_000) await sleep(200);
    await line(`${num(await rows())} rows written, killing ClickHouse`);
    await services("kill");
    const started = Date.now();
    while (Date.now() - started < outageMs) {
      await sleep(10_000);
      await line(`outage ${Math.round((Date.now() - started) / 1000)} s`);
    }
    await services("start");
    const back = Date.now();
    for (let count = 0; count < n;) {
      await sleep(2000);
      count = await rows();
      await line(`${num((Date.now() - back) / 1000, 1)} s after: ${num(count)} rows`);
      if (Date.now() - back > 600_000) throw new Error(`Cannot see ${n} rows within 600 s`);
    }
    const count = await rows();
    if (count !== n) throw new Error(`Expected ${n} rows, found ${count}`);
    const { peakRssBytes } = await line(`every record arrived once: ${num(n)} rows`);
    writeStdout(`peak RSS over the run: ${num(peakRssBytes / 2 ** 20)} MB\n`);
    return 0;
  } finally {
    sluice.child.kill("SIGTERM");
    await sluice.status;
    await fetch(CLICKHOUSE, { method: "POST", body: `DROP DATABASE IF EXISTS ${database}` })
      .then((r) => r.body?.cancel()).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
