/**
 * Benchmark of sluice into each of its sinks (`deno task bench`): how fast
 * it drains N pmacct records already waiting in Kafka into ClickHouse,
 * Elasticsearch/OpenSearch, VictoriaMetrics and InfluxDB, and what that
 * costs in CPU and memory, sluice's and the servers'.
 *
 * 1. Checks that Kafka and the selected sinks' servers answer
 *    (`bash scripts/services.sh start`).
 * 2. Creates a fresh topic and pre-produces N realistic pmacct records,
 *    once for every sink, of one shape (`--columns`): 20, nfacctd's kafka
 *    plugin with a typical aggregate (25 fields, about 540 bytes of JSON;
 *    `_records.ts`), or 11, the demo's records (`scripts/demo_feed.ts`, 12
 *    fields, about 250 bytes). Each target configures sluice for the shape
 *    (`_targets/`: the ClickHouse columns, the VictoriaMetrics labels, the
 *    InfluxDB tags). One record per Kafka message, or with `--per-message K`
 *    K records per message, one JSON object per line as pmacct's
 *    `kafka_multi_values` packs them: N stays the number of records, in
 *    ceil(N / K) messages.
 * 3. Measures baselines on the same data, for context: the broker read by
 *    kcat and by a bare kafkajs consumer (sluice's client library), which
 *    count messages and report records (K per message); then,
 *    right before each sink's runs, sluice's per-record CPU work for that
 *    sink without I/O and the server alone taking the same bodies over
 *    plain HTTP.
 * 4. For each sink in turn, runs sluice (`deno run -A main.ts`) R times,
 *    each with a fresh consumer group and destination (see `_targets/`);
 *    times it from spawn until all N records are written
 *    (`sluice_records_written_total`, or `count()` in ClickHouse), reads its
 *    CPU time and peak RSS from `/proc` just before stopping it with
 *    SIGTERM, then checks the destination (count and sums) and the exit
 *    status. The Kafka broker's and the server's CPU time are read from
 *    `/proc` too (pids from the services' pid files).
 * 5. Prints one table with every run and each sink's median, then drops the
 *    database, indexes, series, the topic and the consumer groups.
 * 6. With `--profile`, run 1 of each sink runs sluice under the V8 inspector
 *    (`--inspect`) and samples its main thread every 200 µs from right after
 *    the spawn until all N records are written (`_profile.ts`); the profile
 *    goes to `<dir>/<sink>-run1.cpuprofile` (`--profile-dir`, a new temporary
 *    directory by default; Chrome DevTools opens it), and after the main
 *    table one table per sink says where sluice's main-thread CPU went, by
 *    stage (fetch + decompress, decode, prepare, encode body, batch +
 *    pipeline, send, metrics + logs, GC), with the top functions by self
 *    time. The inspector costs a little, so run 1's records/s are then not
 *    comparable with unprofiled runs.
 *
 * Usage: deno task bench [--sink clickhouse|clickhouse26|elastic|vm|influxdb|all] [--records N]
 *          [--runs R] [--batch ROWS] [--partitions P] [--timeout SECONDS]
 *          [--columns 20|11] [--per-message K] [--no-baselines]
 *          [--profile [--profile-dir DIR]] [--v8-flags FLAGS]
 *
 * Environment: BENCH_SINK, BENCH_RECORDS, BENCH_RUNS, BENCH_BATCH,
 * BENCH_PARTITIONS, BENCH_TIMEOUT, BENCH_COLUMNS, BENCH_PER_MESSAGE (1 to
 * 1000, default 1), BENCH_PROFILE=1 and BENCH_PROFILE_DIR (the flags win;
 * the record shape defaults to 20);
 * BENCH_SLUICE_<NAME>=value
 * passes <NAME>=value to sluice (for example BENCH_SLUICE_CLICKHOUSE_COMPRESSION=NO);
 * SLUICE_KAFKA_PORT, SLUICE_CLICKHOUSE_HTTP_PORT, SLUICE_ELASTIC_PORT,
 * SLUICE_VM_PORT, SLUICE_INFLUXDB_PORT and SLUICE_SERVICES_DIR locate the
 * local services, as for the tests.
 *
 * Progress goes to standard error, the results to standard output.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorText, writeStderr, writeStdout } from "../lib/log.ts";
import { silenceKafkaJsTimerWarning } from "../lib/kafka.ts";
import {
  baselineKafkajs,
  baselineKcat,
  checkKafka,
  type Dataset,
  generate,
  kafkaClient,
  MAX_PER_MESSAGE,
  produce,
  RECORD_SHAPES,
  type RecordShape,
} from "./_dataset.ts";
import { type Baseline, median, num, progress, servicePid, table } from "./_measure.ts";
import { killRunningSluices, type RunResult, runSluice } from "./_sluice.ts";
import { SAMPLING_INTERVAL_US, summarizeProfile, summaryTables } from "./_profile.ts";
import {
  openTarget,
  SINK_NAMES,
  type SinkName,
  type Target,
  type TargetContext,
} from "./_targets/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SERVICES_DIR = Deno.env.get("SLUICE_SERVICES_DIR") ?? ROOT + ".services";
const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;

interface Options {
  sinks: SinkName[];
  records: number;
  runs: number;
  batch: number;
  partitions: number;
  timeoutSeconds: number;
  columns: RecordShape;
  /** Records per Kafka message (`--per-message`), packed as `kafka_multi_values` does. */
  perMessage: number;
  baselines: boolean;
  /** Profile run 1 of each sink (`--profile`). */
  profile: boolean;
  /** Where the profiles go (`--profile-dir`); a new temporary directory when unset. */
  profileDir: string | undefined;
  /** V8 flags for sluice's runs (`--v8-flags`), as `deno run --v8-flags=` takes them. */
  v8Flags: string | undefined;
}

// ---------------------------------------------------------------- options

function intOption(
  name: string,
  flag: string | undefined,
  env: string,
  fallback: number,
  max?: number,
): number {
  const text = flag ?? Deno.env.get(env) ?? String(fallback);
  const n = Number(text.replaceAll("_", ""));
  if (
    !/^\d[\d_]*$/.test(text) || !Number.isSafeInteger(n) || n < 1 ||
    (max !== undefined && n > max)
  ) {
    throw new RangeError(
      `"--${name}" (or ${env}) must be an integer ${
        max === undefined ? ">= 1" : `from 1 to ${max}`
      }, got "${text}"`,
    );
  }
  return n;
}

function sinkOption(flag: string | undefined): SinkName[] {
  const text = flag ?? Deno.env.get("BENCH_SINK") ?? "all";
  if (text.trim() === "all") return [...SINK_NAMES];
  const names = text.split(",").map((s) => s.trim());
  const unknown = names.find((s) => !(SINK_NAMES as readonly string[]).includes(s));
  if (unknown !== undefined || names.length === 0) {
    throw new RangeError(
      `"--sink" (or BENCH_SINK) must be ${SINK_NAMES.join(", ")} or all, ` +
        `or a comma-separated list, got "${text}"`,
    );
  }
  return SINK_NAMES.filter((s) => names.includes(s));
}

function columnsOption(flag: string | undefined): RecordShape {
  const text = flag ?? Deno.env.get("BENCH_COLUMNS") ?? "20";
  const shape = RECORD_SHAPES.find((n) => String(n) === text.trim());
  if (shape === undefined) {
    throw new RangeError(
      `"--columns" (or BENCH_COLUMNS) must be ${RECORD_SHAPES.join(" or ")}, got "${text}"`,
    );
  }
  return shape;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      sink: { type: "string" },
      records: { type: "string" },
      runs: { type: "string" },
      batch: { type: "string" },
      partitions: { type: "string" },
      timeout: { type: "string" },
      columns: { type: "string" },
      "per-message": { type: "string" },
      "no-baselines": { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "profile-dir": { type: "string" },
      "v8-flags": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    writeStdout(
      "Usage: deno task bench [--sink clickhouse|clickhouse26|elastic|vm|influxdb|all] [--records N]\n" +
        "         [--runs R] [--batch ROWS] [--partitions P] [--timeout SECONDS]\n" +
        "         [--columns 20|11] [--per-message K] [--no-baselines]\n" +
        "         [--profile [--profile-dir DIR]] [--v8-flags FLAGS]\n" +
        "Defaults: every sink one after the other (BENCH_SINK; a comma-separated list works too),\n" +
        "200000 records (BENCH_RECORDS), 1 run per sink (BENCH_RUNS), 10000 records per write\n" +
        "(BENCH_BATCH: CLICKHOUSE_, ELASTIC_, VM_MAX_SAMPLES_PER_SEND and BUFFER_SIZE),\n" +
        "3 partitions, 20-column records (BENCH_COLUMNS): nfacctd's kafka plugin with a typical\n" +
        "aggregate, 25 fields, about 540 bytes each; 11: the demo's records, about 250 bytes.\n" +
        "--per-message K (BENCH_PER_MESSAGE, 1 to 1000, default 1): K records per Kafka message,\n" +
        "one JSON object per line as pmacct's kafka_multi_values packs them; N (--records) stays\n" +
        "the number of records, in ceil(N/K) messages.\n" +
        "BENCH_SLUICE_<NAME>=value passes <NAME>=value to sluice.\n" +
        "--profile (BENCH_PROFILE=1): run 1 of each sink under the V8 inspector, its main thread\n" +
        "sampled every 200 us; prints its CPU by stage and its top functions, and writes\n" +
        "<sink>-run1.cpuprofile (Chrome DevTools) into --profile-dir (BENCH_PROFILE_DIR; default a\n" +
        "new temporary directory). Run 1's records/s are then not comparable with other runs.\n" +
        "--v8-flags: V8 flags for sluice's runs, as deno run --v8-flags= takes them (e.g.\n" +
        "--max-semi-space-size=2,--max-old-space-size=160); default those of deno task start\n" +
        '(--max-semi-space-size=2), "" for none.\n',
    );
    Deno.exit(0);
  }
  const records = intOption("records", values.records, "BENCH_RECORDS", 200_000);
  const profileEnv = Deno.env.get("BENCH_PROFILE");
  if (profileEnv !== undefined && !["", "0", "1"].includes(profileEnv)) {
    throw new RangeError(`"BENCH_PROFILE" must be 1 or 0, got "${profileEnv}"`);
  }
  const profile = values.profile || profileEnv === "1";
  const profileDir = values["profile-dir"] ?? Deno.env.get("BENCH_PROFILE_DIR");
  if (values["profile-dir"] !== undefined && !profile) {
    throw new RangeError(`"--profile-dir" needs "--profile", got only "${values["profile-dir"]}"`);
  }
  return {
    sinks: sinkOption(values.sink),
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
    columns: columnsOption(values.columns),
    perMessage: intOption(
      "per-message",
      values["per-message"],
      "BENCH_PER_MESSAGE",
      1,
      MAX_PER_MESSAGE,
    ),
    baselines: !values["no-baselines"],
    profile,
    profileDir: profileDir === "" ? undefined : profileDir,
    v8Flags: values["v8-flags"],
  };
}

// ------------------------------------------------------------- report

const RESULT_HEADER = [
  "sink",
  "run",
  "records",
  "startup s",
  "seconds",
  "records/s",
  "rec/s after join",
  "CPU s",
  "CPU s/M rec",
  "peak RSS MB",
  "write wait s",
  "server CPU s",
];

function resultRow(label: string, r: RunResult): string[] {
  const after = r.seconds - r.startupSeconds;
  return [
    r.sink,
    r.profile ? `${label} (profiled)` : label,
    num(r.records),
    num(r.startupSeconds, 2),
    num(r.seconds, 2),
    num(r.records / r.seconds),
    num(after > 0 ? r.records / after : 0),
    num(r.cpuSeconds, 2),
    num(r.cpuSeconds / r.records * 1e6, 2),
    num(r.peakRssBytes / 2 ** 20, 0),
    num(r.writeSeconds, 2),
    r.serverCpu === undefined ? "n/a" : num(r.serverCpu, 2),
  ];
}

function medianResult(results: readonly RunResult[]): RunResult {
  const m = (f: (r: RunResult) => number) => median(results.map(f));
  const optional = (f: (r: RunResult) => number | undefined) => {
    const values = results.map(f);
    return values.every((v) => v !== undefined) ? median(values as number[]) : undefined;
  };
  return {
    sink: results[0]!.sink,
    records: results[0]!.records,
    startupSeconds: m((r) => r.startupSeconds),
    seconds: m((r) => r.seconds),
    cpuSeconds: m((r) => r.cpuSeconds),
    peakRssBytes: m((r) => r.peakRssBytes),
    writeSeconds: m((r) => r.writeSeconds),
    batches: m((r) => r.batches),
    children: 0,
    kafkaCpu: optional((r) => r.kafkaCpu),
    serverCpu: optional((r) => r.serverCpu),
    machineCpu: m((r) => r.machineCpu),
  };
}

/** What the title and the log call the records of a shape. */
function shapeName(columns: RecordShape): string {
  return columns === 20 ? "20-column nfacctd records" : "11-column demo records";
}

/**
 * How the records were produced, for the report's first line: the packing
 * when there are several records per message.
 */
function producedAs(options: Options, data: Dataset): string {
  const to = `pre-produced to ${options.partitions} partitions`;
  if (data.perMessage === 1) return to;
  return `${to} as ${num(data.messages.length)} messages of ${
    num(data.perMessage)
  } records, as kafka_multi_values packs them,`;
}

/** Average bytes per Kafka message (the JSON is ASCII, so characters are bytes). */
function averageSize(data: Dataset): number {
  return data.messages.reduce((a, m) => a + m.length, 0) / Math.max(1, data.messages.length);
}

function percent(share: number): string {
  return `${num(share * 100, 1)}%`;
}

/**
 * The CPU profile section: per profiled run, its stages and top functions.
 *
 * @param dir Where the profiles are.
 * @param runs The profiled runs.
 * @returns The section, or `""` without profiled runs.
 */
function profileReport(dir: string, runs: readonly RunResult[]): string {
  const profiled = runs.filter((r) => r.profile !== undefined);
  if (profiled.length === 0) return "";
  const out: string[] = [];
  out.push(
    `\nWhere sluice's CPU went: run 1 of each sink was profiled (V8's sampling profiler through\n` +
      `--inspect, every ${SAMPLING_INTERVAL_US} µs, from right after the spawn until all records ` +
      `were written).\nThe inspector costs a little, so run 1's records/s are not comparable ` +
      `with unprofiled runs.\nOnly sluice's main JavaScript thread is sampled: tokio's I/O ` +
      `threads and V8's background\ncompiler and GC threads are in "CPU s" but not here. A ` +
      `sample lasts until the next one, so\non a loaded machine the time the thread waits for ` +
      `a core counts for the frame it was in.\nA builtin or Deno-internal frame counts for its ` +
      `nearest caller with a stage. Profiles\n` +
      `(Chrome DevTools, Performance, "Load profile"): ${dir}\n`,
  );
  for (const r of profiled) {
    const summary = summarizeProfile(r.profile!.profile);
    const window = num(summary.totalMs / 1000, 2);
    const busy = summary.totalMs > 0 ? summary.busyMs / summary.totalMs : 0;
    out.push(
      `\n${r.sink} run 1: ${num(summary.samples)} samples over ${window} s; main thread busy ` +
        `${num(summary.busyMs / 1000, 2)} s (${percent(busy)}); sluice's CPU s, all threads, ` +
        `from the spawn: ${num(r.cpuSeconds, 2)}\nprofile: ${r.profile!.file}\n\n`,
    );
    out.push(summaryTables(summary));
  }
  return out.join("");
}

function report(
  options: Options,
  data: Dataset,
  targets: readonly Target[],
  results: ReadonlyMap<SinkName, RunResult[]>,
  baselines: readonly Baseline[],
  profileDir: string | undefined,
): string {
  const cores = navigator.hardwareConcurrency;
  const out: string[] = [];
  out.push(
    `\nsluice -> ${targets.map((t) => t.product).join(", ")}: ${num(options.records)} pmacct ` +
      `records ${producedAs(options, data)} (${shapeName(options.columns)}, ` +
      `${num(averageSize(data))} bytes per message on average), ${num(options.batch)} records ` +
      `per write (${[...new Set(targets.map((t) => t.batchVariable))].join(", ")}), ${cores} ` +
      "CPU cores\n\n",
  );
  const rows: string[][] = [];
  for (const target of targets) {
    const runs = results.get(target.name) ?? [];
    rows.push(...runs.map((r, i) => resultRow(String(i + 1), r)));
    if (runs.length > 1) rows.push(resultRow("median", medianResult(runs)));
  }
  out.push(table(RESULT_HEADER, rows));
  out.push(
    "\n  seconds: from spawning sluice until all N records were written (ClickHouse: its count(),\n" +
      "  or sluice_records_written_total; the others: sluice_records_written_total); startup s:\n" +
      "  until it joined the consumer group; CPU s: user + system time of the sluice process until\n" +
      "  then (all its threads, plus child processes if it had any); peak RSS: its VmHWM; write\n" +
      "  wait s: time inside the sink's writes (sluice_batch_duration_seconds_sum: the request's\n" +
      "  encoding and compression, then the server's work); the next batch is decoded meanwhile.\n" +
      "  server CPU s: the server process meanwhile (ClickHouse, the OpenSearch JVM,\n" +
      "  victoria-metrics). Each median row is the median of each column on its own.\n",
  );
  out.push("\nCPU seconds spent meanwhile by the other processes (same runs):\n\n");
  const cpuRows: string[][] = [];
  for (const target of targets) {
    (results.get(target.name) ?? []).forEach((r, i) =>
      cpuRows.push([
        r.sink,
        String(i + 1),
        num(r.cpuSeconds, 2),
        r.kafkaCpu === undefined ? "n/a" : num(r.kafkaCpu, 2),
        target.product,
        r.serverCpu === undefined ? "n/a" : num(r.serverCpu, 2),
        num(r.machineCpu, 2),
        num(r.seconds * cores, 2),
      ])
    );
  }
  out.push(table(
    [
      "sink",
      "run",
      "sluice",
      "Kafka broker",
      "server",
      "server CPU s",
      "whole machine",
      "machine capacity",
    ],
    cpuRows,
  ));
  if (baselines.length > 0) {
    out.push("\nBaselines on the same records, for context (not sluice):\n\n");
    // sluice's median records/s over the baseline's: Kafka's for every target, a server's for its own.
    const share = (b: Baseline) =>
      targets.filter((t) => b.target === undefined || b.target === t.name).map((t) => {
        const runs = results.get(t.name) ?? [];
        if (runs.length === 0) return "";
        const rate = median(runs.map((r) => r.records / r.seconds));
        const ratio = num(rate / (b.records / b.seconds), 2);
        return b.target === undefined && targets.length > 1 ? `${t.name} ${ratio}` : ratio;
      }).filter((text) => text !== "").join(", ");
    out.push(table(
      ["what", "records", "seconds", "records/s", "sluice / this", "note"],
      baselines.map((b) => [
        b.label,
        num(b.records),
        num(b.seconds, 2),
        num(b.records / b.seconds),
        share(b),
        b.note ?? "",
      ]),
    ));
    out.push(
      "\n  sluice / this: sluice's median records/s over the baseline's (for Kafka's, per sink).\n",
    );
  }
  if (profileDir !== undefined) {
    out.push(profileReport(profileDir, targets.flatMap((t) => results.get(t.name) ?? [])));
  }
  return out.join("");
}

// ------------------------------------------------------------- main

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  const id = `${Date.now()}`;
  const topic = `sluice-bench-${id}`;
  const groups: string[] = [];
  const hint = "start the local services with: bash scripts/services.sh start";
  let data: Dataset = { records: [], messages: [], perMessage: 1, bytes: 0, packets: 0 };
  const ctx: TargetContext = {
    id,
    topic,
    partitions: options.partitions,
    columns: options.columns,
    batch: options.batch,
    get data() {
      return data;
    },
    common: (group) => ({
      KAFKA_BOOTSTRAP_SERVERS: KAFKA,
      KAFKA_TOPIC: topic,
      KAFKA_CONSUMER_GROUP_ID: group,
      PROMETHEUS_CLIENT_PORT: "0",
      PROMETHEUS_CLIENT_HOST: "127.0.0.1",
      LOG_LEVEL: "info",
    }),
  };

  await checkKafka(KAFKA, hint);
  const targets: Target[] = [];
  for (const name of options.sinks) targets.push(await openTarget(name, ctx));
  // sluice runs in an empty directory, so that no .env file is read.
  const cwd = await Deno.makeTempDir({ prefix: "sluice-bench-" });
  let profileDir: string | undefined;
  if (options.profile) {
    if (options.profileDir === undefined) {
      profileDir = await Deno.makeTempDir({ prefix: "sluice-profile-" });
    } else {
      profileDir = options.profileDir;
      await Deno.mkdir(profileDir, { recursive: true });
    }
    progress(`profiling run 1 of each sink; the profiles go to ${profileDir}`);
  }
  progress(
    `${num(options.records)} records, ${options.runs} run(s) per sink, ${num(options.batch)} ` +
      `records per write, ${options.partitions} partitions` +
      (options.perMessage === 1 ? "" : `, ${num(options.perMessage)} records per message`) +
      `; Kafka ${KAFKA}; ` +
      `${targets.map((t) => t.server).join("; ")}; ${navigator.hardwareConcurrency} CPU cores`,
  );
  const admin = kafkaClient(KAFKA, "sluice-bench-admin").admin();
  await admin.connect();
  // Once, whether the runs end or an interrupt comes first.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await killRunningSluices();
      for (const target of targets) await target.cleanup().catch((e) => progress(errorText(e)));
      await admin.deleteTopics({ topics: [topic] }).catch((e) => progress(errorText(e)));
      // A group whose member was killed is not empty until its session times
      // out and cannot be deleted yet; the broker expires it later anyway.
      if (groups.length > 0) await admin.deleteGroups(groups).catch(() => {});
      await admin.disconnect().catch(() => {});
      await Deno.remove(cwd, { recursive: true }).catch(() => {});
    })();
  const onSignal = () => {
    progress("interrupted; cleaning up");
    void cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);

  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: options.partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    for (const target of targets) await target.setup();
    progress(`generating ${num(options.records)} ${shapeName(options.columns)}`);
    data = generate(options.records, options.columns, options.perMessage);
    progress(
      `producing them to topic ${topic} (` +
        (data.perMessage === 1
          ? ""
          : `${num(data.messages.length)} messages of ${num(data.perMessage)} records, `) +
        `${num(averageSize(data))} bytes per message)`,
    );
    const produceSeconds = await produce(KAFKA, topic, data, options.partitions);
    progress(
      `produced ${num(options.records)} in ${num(produceSeconds, 1)} s ` +
        `(${num(options.records / produceSeconds)} records/s)`,
    );

    const baselines: Baseline[] = [];
    if (options.baselines) {
      progress("baseline: kcat reads the topic");
      const kcat = await baselineKcat(KAFKA, topic, data);
      if (kcat) baselines.push(kcat);
      progress("baseline: a bare kafkajs consumer reads the topic");
      groups.push(`${topic}-kafkajs`);
      baselines.push(await baselineKafkajs(KAFKA, topic, data, groups.at(-1)!));
    }

    const results = new Map<SinkName, RunResult[]>();
    for (const target of targets) {
      if (options.baselines) {
        // Right before the sink's runs, so that the server is in the same state.
        progress(`baseline: ${target.product}: sluice's CPU work alone, then the server alone`);
        baselines.push(...(await target.baselines()).map((b) => ({ ...b, target: target.name })));
      }
      const runs: RunResult[] = [];
      results.set(target.name, runs);
      for (let run = 1; run <= options.runs; run++) {
        const label = `${target.name} run ${run}`;
        progress(`${label} of ${options.runs}: starting sluice`);
        const group = `${topic}-${target.name}-run${run}`;
        groups.push(group);
        const result = await runSluice({
          label,
          sink: target.name,
          destination: target.run(run, group),
          records: options.records,
          timeoutSeconds: options.timeoutSeconds,
          cwd,
          // Read per run: someone may restart a service between runs.
          kafkaPid: servicePid(SERVICES_DIR, "kafka"),
          serverPid: servicePid(SERVICES_DIR, target.service),
          profileDir: run === 1 ? profileDir : undefined,
          run,
          v8Flags: options.v8Flags,
        });
        runs.push(result);
        progress(
          `${label}: ${num(result.records)} records in ${num(result.seconds, 2)} s, ` +
            `${num(result.records / result.seconds)} records/s, CPU ${
              num(result.cpuSeconds, 2)
            } s, peak RSS ${num(result.peakRssBytes / 2 ** 20)} MB` +
            (result.children > 0 ? `, ${result.children} child process(es) included` : "") +
            (result.profile ? `; profiled into ${result.profile.file}` : ""),
        );
      }
    }
    writeStdout(report(options, data, targets, results, baselines, profileDir));
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
