/**
 * Benchmark of sluice into ClickHouse (`deno task bench`): how fast it
 * drains N pmacct records already waiting in Kafka, and what that costs in
 * CPU and memory.
 *
 * 1. Checks that the local services answer (`bash scripts/services.sh start`).
 * 2. Creates a fresh topic and pre-produces N realistic pmacct records
 *    (the demo's generator, `scripts/demo_feed.ts`).
 * 3. Measures baselines on the same data, for context: the broker read by
 *    kcat, the broker read by a bare kafkajs consumer (sluice's client
 *    library), sluice's per-record CPU work without I/O, and plain HTTP
 *    inserts into ClickHouse.
 * 4. Runs sluice (`deno run -A main.ts`) K times, each with a fresh consumer
 *    group and table; times it from spawn until all N rows are written
 *    (`sluice_records_written_total`, or `count()` in ClickHouse), reads its
 *    CPU time and peak RSS from `/proc` just before stopping it with SIGTERM,
 *    then checks the rows (count and `sum(bytes)`) and the exit status.
 * 5. Prints a table (and the median of K runs), then drops the database,
 *    the topic and the consumer groups.
 *
 * Usage: deno task bench [--records N] [--runs K] [--batch ROWS] [--partitions P]
 *          [--timeout SECONDS] [--no-baselines]
 *
 * Environment: BENCH_RECORDS, BENCH_RUNS, BENCH_BATCH, BENCH_PARTITIONS and
 * BENCH_TIMEOUT (the flags win); BENCH_SLUICE_<NAME>=value passes <NAME>=value
 * to sluice (for example BENCH_SLUICE_CLICKHOUSE_COMPRESSION=NO);
 * SLUICE_KAFKA_PORT and SLUICE_CLICKHOUSE_HTTP_PORT locate the local
 * services, as for the tests.
 *
 * Progress goes to standard error, the results to standard output.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { writeStderr, writeStdout } from "../lib/log.ts";
import { decodePmacct } from "../lib/decode/pmacct.ts";
import { TimeReader } from "../lib/time.ts";
import { compileRowConverter } from "../sinks/clickhouse/convert.ts";
import { parseSchema } from "../sinks/clickhouse/schema.ts";
import { flowRecord } from "../scripts/demo_feed.ts";
import { silenceKafkaJsTimerWarning } from "../lib/kafka_source.ts";
import { clockTicks, cpuSecondsOf, median, num, sampleProcess, table } from "./_measure.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = ROOT + "main.ts";
const CONFIG = ROOT + "deno.json";
const SERVICES_DIR = Deno.env.get("SLUICE_SERVICES_DIR") ?? ROOT + ".services";
const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
const CLICKHOUSE = `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;
const SCHEMA = "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
  "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime,packets:UInt64," +
  "bytes:UInt64";
const ORDER_BY = "stamp_inserted, ip_src, ip_dst";
/** Variables sluice reads: none may leak from the caller's environment into a run. */
const SLUICE_VARIABLE =
  /^(SINK|ENCODER|PMACCT_TIMEZONE|LOG_LEVEL|DEAD_LETTER_FILE|TIMESTAMP_TEMPLATE|KAFKA_.*|CLICKHOUSE_.*|PROMETHEUS_.*|RETRY_.*|SHUTDOWN_TIMEOUT|HEALTH_STALL_TIMEOUT)$/;

interface Options {
  records: number;
  runs: number;
  batch: number;
  partitions: number;
  timeoutSeconds: number;
  baselines: boolean;
}

/** One sluice run's figures. */
interface RunResult {
  records: number;
  /** Spawn until the consumer group was joined. */
  startupSeconds: number;
  /** Spawn until all N rows were written. */
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  /** Time sluice spent waiting for inserts (`sluice_batch_duration_seconds_sum`). */
  insertSeconds: number;
  batches: number;
  children: number;
  kafkaCpu?: number;
  clickhouseCpu?: number;
  machineCpu: number;
}

const progress = (text: string) => writeStderr(`bench: ${text}\n`);

// ---------------------------------------------------------------- options

function intOption(name: string, flag: string | undefined, env: string, fallback: number): number {
  const text = flag ?? Deno.env.get(env) ?? String(fallback);
  const n = Number(text.replaceAll("_", ""));
  if (!/^\d[\d_]*$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`"--${name}" (or ${env}) must be an integer >= 1, got "${text}"`);
  }
  return n;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      records: { type: "string" },
      runs: { type: "string" },
      batch: { type: "string" },
      partitions: { type: "string" },
      timeout: { type: "string" },
      "no-baselines": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    writeStdout(
      "Usage: deno task bench [--records N] [--runs K] [--batch ROWS] [--partitions P]\n" +
        "         [--timeout SECONDS] [--no-baselines]\n" +
        "Defaults: 200000 records (BENCH_RECORDS), 1 run (BENCH_RUNS), 10000 rows per insert\n" +
        "(BENCH_BATCH, sluice's CLICKHOUSE_MAX_SAMPLES_PER_SEND), 3 partitions.\n" +
        "BENCH_SLUICE_<NAME>=value passes <NAME>=value to sluice.\n",
    );
    Deno.exit(0);
  }
  const records = intOption("records", values.records, "BENCH_RECORDS", 200_000);
  return {
    records,
    runs: intOption("runs", values.runs, "BENCH_RUNS", 1),
    batch: intOption("batch", values.batch, "BENCH_BATCH", 10_000),
    partitions: intOption("partitions", values.partitions, "BENCH_PARTITIONS", 3),
    timeoutSeconds: intOption(
      "timeout",
      values.timeout,
      "BENCH_TIMEOUT",
      Math.max(120, Math.ceil(records / 1000)),
    ),
    baselines: !values["no-baselines"],
  };
}

// ------------------------------------------------------------- services

async function ch(sql: string, body?: BodyInit, params = ""): Promise<string> {
  const url = body === undefined
    ? `${CLICKHOUSE}/${params}`
    : `${CLICKHOUSE}/?query=${encodeURIComponent(sql)}${params.replace(/^\?/, "&")}`;
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", body: body ?? sql });
  } catch (error) {
    throw new Error(
      `Cannot reach ClickHouse at ${CLICKHOUSE} for ${JSON.stringify(sql.slice(0, 60))}: ${
        errorText(error)
      } (bash scripts/services.sh status)`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`Cannot run ${JSON.stringify(sql.slice(0, 100))}: ${text.trim()}`);
  }
  return text;
}

async function chNumber(sql: string): Promise<number> {
  return Number((await ch(sql)).trim());
}

function kafkaClient(clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [KAFKA],
    logLevel: logLevel.ERROR,
    logCreator: () => ({ log }) => progress(`Kafka client: ${log.message}`),
    connectionTimeout: 3000,
    retry: { retries: 2 },
  });
}

async function checkServices(): Promise<void> {
  const hint = "start the local services with: bash scripts/services.sh start";
  try {
    const response = await fetch(`${CLICKHOUSE}/ping`, { signal: AbortSignal.timeout(3000) });
    if ((await response.text()).trim() !== "Ok.") throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new Error(`Cannot reach ClickHouse at ${CLICKHOUSE} (${errorText(error)}); ${hint}`);
  }
  const admin = new Kafka({
    clientId: "sluice-bench",
    brokers: [KAFKA],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (error) {
    throw new Error(`Cannot reach Kafka at ${KAFKA} (${errorText(error)}); ${hint}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function servicePid(service: string): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(`${SERVICES_DIR}/${service}/${service}.pid`).trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores), from `/proc/stat`. */
async function machineBusySeconds(): Promise<number> {
  const hz = await clockTicks();
  // proc(5): user nice system idle iowait irq softirq steal (guest time is already in user).
  const first = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/)
    .slice(1, 9).map(Number);
  const total = first.reduce((a, b) => a + b, 0);
  const idle = (first[3] ?? 0) + (first[4] ?? 0);
  return (total - idle) / hz;
}

// ------------------------------------------------------------- producing

/** The N messages and the sums the table must show afterwards. */
interface Dataset {
  messages: string[];
  bytes: number;
  packets: number;
}

function generate(records: number): Dataset {
  const now = Date.now();
  const messages: string[] = new Array(records);
  let bytes = 0, packets = 0;
  for (let i = 0; i < records; i++) {
    const flow = flowRecord(i, now);
    bytes += flow.bytes;
    packets += flow.packets;
    messages[i] = JSON.stringify(flow);
  }
  return { messages, bytes, packets };
}

async function produce(topic: string, data: Dataset, partitions: number): Promise<number> {
  const producer = kafkaClient("sluice-bench-producer").producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const started = Date.now();
  let sent = 0, lastReport = started;
  try {
    const chunk = 5000, parallel = 4;
    const chunks: number[] = [];
    for (let start = 0; start < data.messages.length; start += chunk) chunks.push(start);
    const worker = async () => {
      for (let start = chunks.shift(); start !== undefined; start = chunks.shift()) {
        const end = Math.min(start + chunk, data.messages.length);
        const messages = [];
        for (let i = start; i < end; i++) {
          messages.push({ value: data.messages[i]!, partition: i % partitions });
        }
        await producer.send({ topic, acks: 1, messages });
        sent += end - start;
        if (Date.now() - lastReport >= 1000) {
          lastReport = Date.now();
          progress(
            `produced ${num(sent)} of ${num(data.messages.length)} ` +
              `(${num(sent / ((lastReport - started) / 1000))} records/s)`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    await producer.disconnect();
  }
  return (Date.now() - started) / 1000;
}

// ------------------------------------------------------------- baselines

interface Baseline {
  label: string;
  seconds: number;
  records: number;
  note?: string;
}

/** kcat reading the whole topic from the beginning to the end; `undefined` without kcat. */
async function baselineKcat(topic: string, records: number): Promise<Baseline | undefined> {
  const started = Date.now();
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      'command -v kcat >/dev/null || exit 127; kcat -C -b "$1" -t "$2" -o beginning -e -q -f "x\\n" | wc -l',
      "kcat",
      KAFKA,
      topic,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (Date.now() - started) / 1000;
  if (out.code === 127) {
    progress("kcat is not installed: no kcat baseline");
    return undefined;
  }
  const got = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || got !== records) {
    throw new Error(
      `Cannot read the topic with kcat: ${got} of ${records} messages; ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return {
    label: "Kafka read by kcat (librdkafka), to the end of the topic",
    seconds,
    records,
    note: "process start included",
  };
}

/** A kafkajs consumer group member that only counts messages. */
async function baselineKafkajs(topic: string, records: number, group: string): Promise<Baseline> {
  const consumer = kafkaClient("sluice-bench-consumer").consumer({ groupId: group });
  const started = Date.now();
  let joined = started, count = 0;
  const done = Promise.withResolvers<void>();
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = Date.now()));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: ({ batch }) => {
      count += batch.messages.length;
      if (count >= records) done.resolve();
      return Promise.resolve();
    },
  });
  const timer = setTimeout(() => done.reject(new Error("timed out")), 120_000);
  try {
    await done.promise;
  } finally {
    clearTimeout(timer);
  }
  const finished = Date.now();
  await consumer.disconnect();
  return {
    label: "Kafka read by a bare kafkajs consumer (eachBatch, counting only)",
    seconds: (finished - joined) / 1000,
    records: count,
    note: `after the group join (${num((joined - started) / 1000, 2)} s)`,
  };
}

/** sluice's per-record work without I/O: decode, convert, JSON encode for the insert. */
function baselineCpu(data: Dataset): Baseline {
  const { columns } = parseSchema(SCHEMA);
  const convert = compileRowConverter(columns, { time: new TimeReader("UTC") });
  const encoder = new TextEncoder();
  const bytes = data.messages.map((m) => encoder.encode(m));
  const started = performance.now();
  let ok = 0;
  for (const value of bytes) {
    for (const { record } of decodePmacct(value).records) {
      const prepared = convert(record);
      if (prepared.ok && JSON.stringify(prepared.row).length > 0) ok++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (ok !== data.messages.length) {
    throw new Error(`Cannot convert every record: ${ok} of ${data.messages.length}`);
  }
  return {
    label: "sluice's decode + convert + JSON encode alone (in this process, no I/O)",
    seconds,
    records: ok,
    note: "CPU-bound, one core",
  };
}

/** Plain HTTP inserts of the same JSON lines, one request at a time. */
async function baselineInsert(db: string, data: Dataset, batch: number): Promise<Baseline> {
  const columns = SCHEMA.split(",").map((c) => c.split(":")).map(([n, t]) => `${n} ${t}`);
  await ch(
    `CREATE TABLE ${db}.raw_insert (${
      columns.join(", ")
    }) ENGINE = MergeTree() ORDER BY (${ORDER_BY})`,
  );
  const started = Date.now();
  for (let start = 0; start < data.messages.length; start += batch) {
    const body = data.messages.slice(start, start + batch).join("\n") + "\n";
    await ch(
      `INSERT INTO ${db}.raw_insert FORMAT JSONEachRow`,
      body,
      "?input_format_skip_unknown_fields=1",
    );
  }
  const seconds = (Date.now() - started) / 1000;
  const count = await chNumber(`SELECT count() FROM ${db}.raw_insert`);
  if (count !== data.messages.length) {
    throw new Error(`Cannot insert every row directly: ${count} of ${data.messages.length}`);
  }
  await ch(`DROP TABLE ${db}.raw_insert`);
  return {
    label: `ClickHouse alone: HTTP INSERT FORMAT JSONEachRow, ${num(batch)} rows per request`,
    seconds,
    records: count,
    note: "one request at a time, uncompressed",
  };
}

// ------------------------------------------------------------- sluice

interface Sluice {
  child: Deno.ChildProcess;
  /** Log lines with the time they arrived. */
  logs: Array<{ at: number; line: Record<string, unknown> }>;
  raw: string[];
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
}

function sluiceEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const overrides: Record<string, string> = {};
  for (const [name, value] of Object.entries(Deno.env.toObject())) {
    if (name.startsWith("BENCH_SLUICE_")) overrides[name.slice("BENCH_SLUICE_".length)] = value;
    else if (!SLUICE_VARIABLE.test(name)) env[name] = value;
  }
  return { ...env, ...settings, ...overrides };
}

function spawnSluice(env: Record<string, string>, cwd: string): Sluice {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN],
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const sluice: Sluice = { child, logs: [], raw: [], status: child.status, exited: false };
  const pump = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const text of parts) {
        sluice.raw.push(text);
        try {
          sluice.logs.push({ at: Date.now(), line: JSON.parse(text) });
        } catch {
          sluice.logs.push({ at: Date.now(), line: { msg: text } });
        }
      }
    }
  })();
  sluice.status = child.status.then(async (s) => {
    sluice.exited = true;
    await pump;
    return s;
  });
  return sluice;
}

function logTail(sluice: Sluice): string {
  return sluice.raw.slice(-15).join("\n");
}

async function metricsText(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch (error) {
    throw new Error(`Cannot read sluice's /metrics on port ${port}: ${errorText(error)}`);
  }
}

function metricValue(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runSluice(
  run: number,
  options: Options,
  names: { topic: string; db: string; group: string },
  data: Dataset,
  cwd: string,
): Promise<RunResult> {
  const n = data.messages.length;
  const table = `flows_${run}`;
  const env = sluiceEnv({
    SINK: "clickhouse",
    KAFKA_BOOTSTRAP_SERVERS: KAFKA,
    KAFKA_TOPIC: names.topic,
    KAFKA_CONSUMER_GROUP_ID: names.group,
    CLICKHOUSE_HOST: CLICKHOUSE,
    CLICKHOUSE_DB: names.db,
    CLICKHOUSE_TABLE: table,
    CLICKHOUSE_DATA_SCHEMA: SCHEMA,
    CLICKHOUSE_ORDER_BY: ORDER_BY,
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: String(options.batch),
    CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    PROMETHEUS_CLIENT_PORT: "0",
    PROMETHEUS_CLIENT_HOST: "127.0.0.1",
    LOG_LEVEL: "info",
  });
  const kafkaPid = servicePid("kafka"), clickhousePid = servicePid("clickhouse");
  const kafkaCpu0 = kafkaPid ? await cpuSecondsOf(kafkaPid) : undefined;
  const clickhouseCpu0 = clickhousePid ? await cpuSecondsOf(clickhousePid) : undefined;
  const machine0 = await machineBusySeconds();

  const started = Date.now();
  const sluice = spawnSluice(env, cwd);
  const deadline = started + options.timeoutSeconds * 1000;
  try {
    let port = 0;
    while (port === 0) {
      const line = sluice.logs.find((l) => l.line["msg"] === "Starting sluice");
      if (line) port = Number(line.line["metrics_port"]);
      else if (sluice.exited) throw new Error(`sluice exited at start:\n${logTail(sluice)}`);
      else if (Date.now() > deadline) throw new Error(`sluice did not start:\n${logTail(sluice)}`);
      else await sleep(20);
    }
    let written = 0, count = 0, polls = 0, lastReport = started;
    while (written < n && count < n) {
      // count() every 50 ms costs ClickHouse a little; /metrics costs sluice
      // itself (prom-client renders every metric), so it is read less often.
      await sleep(50);
      if (sluice.exited) throw new Error(`sluice exited during the run:\n${logTail(sluice)}`);
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot see ${num(n)} rows within ${options.timeoutSeconds} s ` +
            `(written ${num(written)}, count ${num(count)}):\n${logTail(sluice)}`,
        );
      }
      count = await chNumber(`SELECT count() FROM ${names.db}.${table}`).catch(() => 0);
      if (++polls % 10 === 0) {
        written = metricValue(await metricsText(port), "sluice_records_written_total");
      }
      if (Date.now() - lastReport >= 2000) {
        lastReport = Date.now();
        progress(
          `run ${run}: ${num(count)} of ${num(n)} rows in ClickHouse after ${
            num((lastReport - started) / 1000, 1)
          } s`,
        );
      }
    }
    const finished = Date.now();
    const sample = await sampleProcess(sluice.child.pid);
    const machine1 = await machineBusySeconds();
    const kafkaCpu1 = kafkaPid ? await cpuSecondsOf(kafkaPid) : undefined;
    const clickhouseCpu1 = clickhousePid ? await cpuSecondsOf(clickhousePid) : undefined;
    const text = await metricsText(port);
    const mb = (name: string) => num(metricValue(text, name) / 2 ** 20);
    progress(
      `run ${run}: at the end: RSS ${num(sample.rssBytes / 2 ** 20)} MB, V8 heap used ` +
        `${mb("sluice_nodejs_heap_size_used_bytes")} of ${
          mb("sluice_nodejs_heap_size_total_bytes")
        } MB, external ${mb("sluice_nodejs_external_memory_bytes")} MB`,
    );
    const joined = sluice.logs.find((l) => l.line["msg"] === "Joined consumer group");

    sluice.child.kill("SIGTERM");
    const status = await sluice.status;
    if (status.code !== 0) {
      throw new Error(
        `sluice exited with status ${status.code} after SIGTERM:\n${logTail(sluice)}`,
      );
    }
    const [rows, bytes] = (await ch(
      `SELECT count(), sum(bytes) FROM ${names.db}.${table} FORMAT TSV`,
    )).trim().split("\t").map(Number);
    if (rows !== n || bytes !== data.bytes) {
      throw new Error(
        `Cannot verify the rows: count ${rows} (want ${n}), ` +
          `sum(bytes) ${bytes} (want ${data.bytes})`,
      );
    }
    await ch(`DROP TABLE ${names.db}.${table}`);
    return {
      records: n,
      startupSeconds: ((joined?.at ?? finished) - started) / 1000,
      seconds: (finished - started) / 1000,
      cpuSeconds: sample.cpuSeconds,
      peakRssBytes: sample.peakRssBytes,
      insertSeconds: metricValue(text, "sluice_batch_duration_seconds_sum"),
      batches: metricValue(text, "sluice_batches_total"),
      children: sample.children,
      kafkaCpu: kafkaCpu0 !== undefined && kafkaCpu1 !== undefined
        ? kafkaCpu1 - kafkaCpu0
        : undefined,
      clickhouseCpu: clickhouseCpu0 !== undefined && clickhouseCpu1 !== undefined
        ? clickhouseCpu1 - clickhouseCpu0
        : undefined,
      machineCpu: machine1 - machine0,
    };
  } finally {
    if (!sluice.exited) {
      try {
        sluice.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await sluice.status;
    }
  }
}

// ------------------------------------------------------------- report

function resultRow(label: string, r: RunResult): string[] {
  const after = r.seconds - r.startupSeconds;
  return [
    label,
    num(r.records),
    num(r.startupSeconds, 2),
    num(r.seconds, 2),
    num(r.records / r.seconds),
    num(after > 0 ? r.records / after : 0),
    num(r.cpuSeconds, 2),
    num(r.cpuSeconds / r.records * 1e6, 2),
    num(r.peakRssBytes / 2 ** 20, 0),
    num(r.insertSeconds, 2),
  ];
}

const RESULT_HEADER = [
  "run",
  "records",
  "startup s",
  "seconds",
  "records/s",
  "rec/s after join",
  "CPU s",
  "CPU s/M rec",
  "peak RSS MB",
  "insert wait s",
];

function medianResult(results: readonly RunResult[]): RunResult {
  const m = (f: (r: RunResult) => number) => median(results.map(f));
  return {
    records: results[0]!.records,
    startupSeconds: m((r) => r.startupSeconds),
    seconds: m((r) => r.seconds),
    cpuSeconds: m((r) => r.cpuSeconds),
    peakRssBytes: m((r) => r.peakRssBytes),
    insertSeconds: m((r) => r.insertSeconds),
    batches: m((r) => r.batches),
    children: 0,
    machineCpu: m((r) => r.machineCpu),
  };
}

// ------------------------------------------------------------- main

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  const id = `${Date.now()}`;
  const names = {
    topic: `sluice-bench-${id}`,
    db: `sluice_bench_${id}`,
    group: `sluice-bench-${id}`,
  };
  const groups: string[] = [];
  const cores = navigator.hardwareConcurrency;

  await checkServices();
  // sluice runs in an empty directory, so that no .env file is read.
  const cwd = await Deno.makeTempDir({ prefix: "sluice-bench-" });
  progress(
    `${num(options.records)} records, ${options.runs} run(s), ${num(options.batch)} rows per ` +
      `insert, ${options.partitions} partitions; Kafka ${KAFKA}, ClickHouse ${CLICKHOUSE} ` +
      `(${(await ch("SELECT version()")).trim()}), ${cores} CPU cores`,
  );
  const admin = kafkaClient("sluice-bench-admin").admin();
  await admin.connect();
  const cleanup = async () => {
    await ch(`DROP DATABASE IF EXISTS ${names.db}`).catch((e) => progress(errorText(e)));
    await admin.deleteTopics({ topics: [names.topic] }).catch((e) => progress(errorText(e)));
    // A group whose member was killed is not empty until its session times
    // out and cannot be deleted yet; the broker expires it later anyway.
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
    await admin.disconnect().catch(() => {});
    await Deno.remove(cwd, { recursive: true }).catch(() => {});
  };
  const onSignal = () => {
    progress("interrupted; cleaning up");
    void cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);

  try {
    await admin.createTopics({
      topics: [{ topic: names.topic, numPartitions: options.partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    await ch(`CREATE DATABASE ${names.db}`);
    progress(`generating ${num(options.records)} pmacct records`);
    const data = generate(options.records);
    const avgSize = data.messages.reduce((a, m) => a + m.length, 0) / data.messages.length;
    progress(`producing them to topic ${names.topic} (${num(avgSize)} bytes per message)`);
    const produceSeconds = await produce(names.topic, data, options.partitions);
    progress(
      `produced ${num(options.records)} in ${num(produceSeconds, 1)} s ` +
        `(${num(options.records / produceSeconds)} records/s)`,
    );

    const baselines: Baseline[] = [];
    if (options.baselines) {
      progress("baseline: kcat reads the topic");
      const kcat = await baselineKcat(names.topic, options.records);
      if (kcat) baselines.push(kcat);
      progress("baseline: a bare kafkajs consumer reads the topic");
      groups.push(`${names.group}-kafkajs`);
      baselines.push(await baselineKafkajs(names.topic, options.records, groups.at(-1)!));
      progress("baseline: decode + convert + encode in-process");
      baselines.push(baselineCpu(data));
      progress("baseline: plain HTTP inserts into ClickHouse");
      baselines.push(await baselineInsert(names.db, data, options.batch));
    }

    const results: RunResult[] = [];
    for (let run = 1; run <= options.runs; run++) {
      progress(`run ${run} of ${options.runs}: starting sluice`);
      const group = `${names.group}-run${run}`;
      groups.push(group);
      const result = await runSluice(run, options, { ...names, group }, data, cwd);
      results.push(result);
      progress(
        `run ${run}: ${num(result.records)} records in ${num(result.seconds, 2)} s, ` +
          `${num(result.records / result.seconds)} records/s, CPU ${
            num(result.cpuSeconds, 2)
          } s, ` +
          `peak RSS ${num(result.peakRssBytes / 2 ** 20)} MB` +
          (result.children > 0 ? `, ${result.children} child process(es) included` : ""),
      );
    }

    const out: string[] = [];
    out.push(
      `\nsluice -> ClickHouse: ${num(options.records)} pmacct records pre-produced to ` +
        `${options.partitions} partitions, ${num(options.batch)} rows per insert ` +
        `(CLICKHOUSE_MAX_SAMPLES_PER_SEND), ${cores} CPU cores\n\n`,
    );
    const rows = results.map((r, i) => resultRow(String(i + 1), r));
    if (results.length > 1) rows.push(resultRow("median", medianResult(results)));
    out.push(table(RESULT_HEADER, rows));
    out.push(
      "\n  seconds: from spawning sluice until all N rows were in ClickHouse; startup s: until it\n" +
        "  joined the consumer group; CPU s: user + system time of the sluice process until then\n" +
        "  (all its threads, plus child processes if it had any); peak RSS: its VmHWM; insert\n" +
        "  wait s: time inside the sink's writes (sluice_batch_duration_seconds_sum: the client's\n" +
        "  JSON encoding and gzip, then ClickHouse's work); the next batch is decoded meanwhile.\n",
    );
    out.push("\nCPU seconds spent meanwhile by the other processes (same runs):\n\n");
    out.push(table(
      ["run", "sluice", "Kafka broker", "ClickHouse", "whole machine", "machine capacity"],
      results.map((r, i) => [
        String(i + 1),
        num(r.cpuSeconds, 2),
        r.kafkaCpu === undefined ? "n/a" : num(r.kafkaCpu, 2),
        r.clickhouseCpu === undefined ? "n/a" : num(r.clickhouseCpu, 2),
        num(r.machineCpu, 2),
        num(r.seconds * cores, 2),
      ]),
    ));
    if (baselines.length > 0) {
      out.push("\nBaselines on the same records, for context (not sluice):\n\n");
      out.push(table(
        ["what", "records", "seconds", "records/s", "note"],
        baselines.map((b) => [
          b.label,
          num(b.records),
          num(b.seconds, 2),
          num(b.records / b.seconds),
          b.note ?? "",
        ]),
      ));
    }
    writeStdout(out.join(""));
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await cleanup();
  }
}

if (import.meta.main) {
  silenceKafkaJsTimerWarning();
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    writeStderr(`bench: ${errorText(error)}\n`);
    Deno.exit(1);
  }
}
