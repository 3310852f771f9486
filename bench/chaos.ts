/**
 * The chaos suite (`deno task chaos`): sluice under faults, counted exactly.
 * For each sink and scenario it produces N realistic pmacct records (1% of
 * them poison) to a fresh topic of 8 partitions, runs sluice with its own
 * consumer group, destination and dead-letter topic (`DEAD_LETTER_TOPIC`),
 * does the scenario's harm (SIGKILLs, the sink's server or the broker
 * stopped, more sluice processes, compressed batches; `_chaos/scenarios.ts`),
 * waits until the sink holds every good record, stops sluice with SIGTERM
 * and counts: what the sink holds and how many distinct records (by the
 * `tag` each record carries), and the distinct poison messages in the
 * dead-letter topic.
 *
 * Required: 0 missing everywhere, 0 duplicates except on ClickHouse 18.16
 * (no insert deduplication token: reported only), every poison message
 * dead-lettered (repeats are reported). The exit status is 1 when one is not met.
 *
 * The order: the scenarios without a service fault first (`--parallel` of
 * them at a time), then `sink-down` (the sinks' outages side by side with
 * `--parallel` above 1; they stop different services), then `broker`, whose
 * outages all sinks share. A scenario that stops a service starts it again,
 * also when it fails, and goes on only once the service answers.
 *
 * Usage: deno task chaos [--sink NAME|all] [--records N] [--scenario NAME|all] [--quick]
 *          [--parallel K] [--timeout SECONDS] [--keep] [--logs DIR]
 *
 * - `--sink`: clickhouse26, clickhouse18, elastic, vm, influxdb, or all (in
 *   that order); a comma-separated list works too.
 * - `--scenario`: kill, sink-down, broker, poison, scale, codec-gzip,
 *   codec-snappy, codec-lz4, codec-zstd, or all; a list works too.
 * - `--records`: messages per scenario, default 1,000,000.
 * - `--quick`: outages of 8 s instead of 30 s, a broker stop of 15 s instead
 *   of 180 s, `kill` and `scale` producing over 20 s instead of N/20 ms
 *   (30 s to 120 s), `KAFKA_SESSION_TIMEOUT` 6 s instead of 10 s (sluice's
 *   default), and 3 scenarios at a time (the short run of the tests).
 * - `--parallel K`: scenarios without a service fault run K at a time (default 1, 3 with --quick).
 * - `--timeout`: give up on a scenario after this many seconds.
 * - `--keep`: keep the topics, tables, indexes, series and databases.
 * - `--logs DIR`: write each sluice process's log to `DIR/<sink>-<scenario>-<n>.log`.
 *
 * SLUICE_KAFKA_PORT, SLUICE_CLICKHOUSE_HTTP_PORT, SLUICE_CLICKHOUSE26_HTTP_PORT,
 * SLUICE_ELASTIC_PORT, SLUICE_VM_PORT and SLUICE_INFLUXDB_PORT locate the
 * local services, as for the tests; BENCH_SLUICE_<NAME>=value passes
 * <NAME>=value to every sluice, as for the benchmark. Progress goes to
 * standard error, the table to standard output.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { silenceKafkaJsTimerWarning } from "../lib/kafka.ts";
import { errorText, writeStderr, writeStdout } from "../lib/log.ts";
import { num, progress, table } from "./_measure.ts";
import { killRunningSluices } from "./_sluice.ts";
import { checkKafka, deleteTopicsAndGroups, KAFKA, withAdmin } from "./_chaos/kafka.ts";
import { writeMessages } from "./_chaos/records.ts";
import { PARTITIONS, Run, type RunSettings, type ScenarioResult } from "./_chaos/run.ts";
import { brokerScenario, driverOf, type ScenarioName, SCENARIOS } from "./_chaos/scenarios.ts";
import { restartStopped, setProbe } from "./_chaos/services.ts";
import {
  BATCH,
  CHAOS_SINKS,
  type ChaosSink,
  type ChaosSinkName,
  openChaosSink,
} from "./_chaos/sinks.ts";

/** The suite's options, resolved. */
interface Options {
  sinks: ChaosSinkName[];
  scenarios: ScenarioName[];
  records: number;
  quick: boolean;
  parallel: number;
  timeoutSeconds?: number;
  keep: boolean;
  logs?: string;
}

const USAGE =
  `Usage: deno task chaos [--sink NAME|all] [--records N] [--scenario NAME|all] [--quick]
         [--parallel K] [--timeout SECONDS] [--keep] [--logs DIR]
Sinks: ${CHAOS_SINKS.join(", ")} (all: every one, in this order; or a comma-separated list).
Scenarios: ${SCENARIOS.join(", ")} (all, or a comma-separated list).
--records: messages per scenario (default 1,000,000; 1% of them poison).
--quick: 8 s sink outages instead of 30 s, a 15 s broker stop instead of 180 s, shorter
  paced production, KAFKA_SESSION_TIMEOUT 6 s, 3 scenarios without a service fault at a
  time (--parallel).
--keep: keep topics, tables, indexes, series and databases for inspection.
--logs DIR: write each sluice process's standard error to DIR/<sink>-<scenario>-<n>.log.
`;

function listOption<T extends string>(
  flag: string,
  text: string,
  known: readonly T[],
): T[] {
  if (text.trim() === "all") return [...known];
  const names = text.split(",").map((s) => s.trim());
  const unknown = names.find((s) => !(known as readonly string[]).includes(s));
  if (unknown !== undefined || names.length === 0) {
    throw new RangeError(
      `"--${flag}" must be ${known.join(", ")} or all, or a comma-separated list, got "${text}"`,
    );
  }
  return known.filter((s) => names.includes(s));
}

function intOption(flag: string, text: string, min: number): number {
  const n = Number(text.replaceAll("_", "").replaceAll(",", ""));
  if (!/^\d[\d_,]*$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`"--${flag}" must be an integer >= ${min}, got "${text}"`);
  }
  return n;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      sink: { type: "string", default: "all" },
      records: { type: "string", default: "1000000" },
      scenario: { type: "string", default: "all" },
      quick: { type: "boolean", default: false },
      parallel: { type: "string" },
      timeout: { type: "string" },
      keep: { type: "boolean", default: false },
      logs: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    writeStdout(USAGE);
    return undefined;
  }
  return {
    sinks: listOption("sink", values.sink, CHAOS_SINKS),
    scenarios: listOption("scenario", values.scenario, SCENARIOS),
    records: intOption("records", values.records, 100),
    quick: values.quick,
    parallel: intOption("parallel", values.parallel ?? (values.quick ? "3" : "1"), 1),
    timeoutSeconds: values.timeout === undefined
      ? undefined
      : intOption("timeout", values.timeout, 1),
    keep: values.keep,
    logs: values.logs,
  };
}

// ------------------------------------------------------------- report

const HEADER = [
  "sink",
  "scenario",
  "expected",
  "in sink",
  "missing",
  "duplicates",
  "dead-lettered",
  "wall s",
  "peak RSS",
];

/** Why a scenario's figures fail the requirements (none: it passed). */
function failures(r: ScenarioResult): string[] {
  const out: string[] = [];
  if (r.error !== undefined) out.push(r.error.split("\n")[0]!);
  const held = r.held, dl = r.deadLetters;
  if (held === undefined) out.push("the sink was not counted");
  else {
    const missing = r.expected - held.distinct;
    if (missing > 0) out.push(`${num(missing)} records missing`);
    if (missing < 0) out.push(`${num(-missing)} records more than produced`);
    if (held.rows > held.distinct && !r.duplicatesAllowed) {
      out.push(`${num(held.rows - held.distinct)} duplicates`);
    }
  }
  if (dl === undefined) out.push("the dead-letter topic was not read");
  else {
    if (dl.poisonFound !== r.poison) {
      out.push(`${num(dl.poisonFound)} of ${num(r.poison)} poison messages dead-lettered`);
    }
    if (dl.unexpected.length > 0) {
      out.push(
        `${num(dl.unexpected.length)} good records dead-lettered (${
          dl.unexpected.slice(0, 3).join(", ")
        }${dl.unexpected.length > 3 ? ", ..." : ""})`,
      );
    }
    if (dl.headerless > 0) {
      out.push(`${num(dl.headerless)} dead letters without the sluice.source.* headers`);
    }
  }
  return out;
}

function row(r: ScenarioResult): string[] {
  const held = r.held, dl = r.deadLetters;
  const repeats = dl === undefined ? 0 : dl.messages - dl.headerless - dl.distinct;
  return [
    r.sink,
    r.scenario,
    num(r.expected),
    held === undefined ? "?" : num(held.rows),
    held === undefined ? "?" : num(Math.max(0, r.expected - held.distinct)),
    held === undefined ? "?" : num(held.rows - held.distinct),
    dl === undefined ? "?" : `${num(dl.distinct)} of ${num(r.poison)}` +
      (repeats > 0 ? ` (+${num(repeats)} repeats)` : ""),
    num(r.wallSeconds, 1),
    r.peakRssBytes > 0 ? `${num(r.peakRssBytes / 2 ** 20)} MB` : "?",
  ];
}

function report(
  options: Options,
  settings: RunSettings,
  sinks: readonly ChaosSink[],
  results: readonly ScenarioResult[],
): { text: string; failed: number } {
  const order = (r: ScenarioResult) =>
    CHAOS_SINKS.indexOf(r.sink as ChaosSinkName) * 100 +
    SCENARIOS.indexOf(r.scenario as ScenarioName);
  const sorted = [...results].sort((a, b) => order(a) - order(b));
  const out: string[] = [];
  const poison = settings.messages.poison.size;
  out.push(
    `\nsluice chaos: ${sinks.map((s) => `${s.name} (${s.server})`).join(", ")}; ` +
      `${num(options.records)} messages per scenario (${num(poison)} poison, 1%), ` +
      `${PARTITIONS} partitions, batches of ${num(BATCH)}; sink outages ` +
      `${num(settings.outageMs / 1000)} s, broker stop ${num(settings.brokerStopMs / 1000)} s` +
      `${options.quick ? " (--quick)" : ""}; KAFKA_SESSION_TIMEOUT ` +
      `${settings.sessionTimeoutSeconds} s\n\n`,
  );
  out.push(table(HEADER, sorted.map(row), { markdown: true, left: 2 }));
  const notes: string[] = [];
  let failed = 0;
  for (const r of sorted) {
    const why = failures(r);
    if (why.length > 0) {
      failed++;
      notes.push(`FAILED ${r.sink} ${r.scenario}: ${why.join("; ")}`);
    } else if (r.held !== undefined && r.held.rows > r.held.distinct) {
      notes.push(
        `${r.sink} ${r.scenario}: ${num(r.held.rows - r.held.distinct)} duplicates (allowed)`,
      );
    }
    for (const note of r.notes) notes.push(`${r.sink} ${r.scenario}: ${note}`);
  }
  for (const sink of sinks) notes.push(...sink.notes);
  notes.push(
    "in sink: rows, documents, samples of bytes or points held, duplicates included; " +
      "missing: good records not held (by tag; vm: by series and time); dead-lettered: " +
      "distinct source records (sluice.source.* headers) in the dead-letter topic, of the " +
      "poison messages; peak RSS: the largest VmHWM of the scenario's sluice processes, " +
      "sampled every second; writes resumed: until the sink's count grew, its visibility " +
      "delay included",
  );
  out.push("\n" + notes.map((n) => `- ${n}`).join("\n") + "\n");
  out.push(`\nchaos: ${sorted.length} scenarios, ${failed} failed\n`);
  return { text: out.join(""), failed };
}

// ------------------------------------------------------------- running

/** Runs tasks, at most `limit` at a time, in order of start. */
async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

async function single(
  sink: ChaosSink,
  scenario: Exclude<ScenarioName, "broker">,
  settings: RunSettings,
): Promise<ScenarioResult> {
  const run = new Run(sink, scenario, settings);
  run.event("starting");
  await run.guard(() => run.setup());
  await run.guard(() => driverOf(scenario)(run));
  const result = await run.finish();
  run.event(`done in ${num(result.wallSeconds, 1)} s: ${row(result).join(" | ")}`);
  return result;
}

async function broker(
  sinks: readonly ChaosSink[],
  settings: RunSettings,
): Promise<ScenarioResult[]> {
  const runs = sinks.map((sink) => new Run(sink, "broker", settings));
  for (const run of runs) run.event("starting");
  await Promise.all(runs.map((run) => run.guard(() => run.setup())));
  const going = runs.filter((run) => !run.failed);
  if (going.length > 0) {
    try {
      await brokerScenario(going);
    } catch (error) {
      for (const run of going) run.fail(error);
    }
  }
  return await Promise.all(runs.map(async (run) => {
    const result = await run.finish();
    run.event(`done in ${num(result.wallSeconds, 1)} s: ${row(result).join(" | ")}`);
    return result;
  }));
}

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (options === undefined) return 0;
  const id = String(Date.now());
  const quick = options.quick;
  const faults = options.records / 500 + 120;
  const outageMs = quick ? 8_000 : 30_000;
  const brokerStopMs = quick ? 15_000 : 180_000;

  await checkKafka();
  // Answering is not enough after a restart: the group coordinator must be there too.
  setProbe("kafka", async () => void await withAdmin((admin) => admin.describeGroups([id])));
  const sinks: ChaosSink[] = [];
  for (const name of options.sinks) {
    const sink = await openChaosSink(name, id);
    setProbe(sink.service, () => sink.probe());
    sinks.push(sink);
  }
  const dir = await Deno.makeTempDir({ prefix: "sluice-chaos-" });
  const cwd = `${dir}/run`;
  await Deno.mkdir(cwd);

  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await killRunningSluices();
      await restartStopped();
      if (!options.keep) {
        for (const sink of sinks) await sink.cleanup().catch((e) => progress(errorText(e)));
        const prefix = `sluice-chaos-${id}-`;
        const left = await withAdmin((admin) => admin.listTopics()).catch(() => [] as string[]);
        await deleteTopicsAndGroups(left.filter((t) => t.startsWith(prefix)), []);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  const onSignal = () => {
    progress("interrupted: stopping sluice, starting what was stopped, cleaning up");
    void cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  try {
    progress(`writing ${num(options.records)} messages (1% poison) to ${dir}`);
    const messages = await writeMessages(dir, options.records, 20);
    progress(
      `${num(messages.records)} messages, ${num(messages.poison.size)} of them poison, ` +
        `${
          num(messages.bytes / 2 ** 20, 1)
        } MB in ${messages.chunks.length} files; Kafka ${KAFKA}; ` +
        sinks.map((s) => `${s.name}: ${s.server}`).join("; "),
    );
    const settings: RunSettings = {
      id,
      messages,
      cwd,
      outageMs,
      brokerStopMs,
      // Long enough for three SIGKILLs and restarts (each waits for the session timeout).
      spanMs: quick ? 20_000 : Math.min(120_000, Math.max(30_000, options.records / 20)),
      sessionTimeoutSeconds: quick ? 6 : 10,
      timeoutMs: (options.timeoutSeconds ?? faults + (2 * outageMs + brokerStopMs) / 1000) * 1000,
      stallMs: 60_000,
      keep: options.keep,
      logs: options.logs,
    };
    const chosen = (name: ScenarioName) => options.scenarios.includes(name);
    const results: ScenarioResult[] = [];

    const plain = SCENARIOS.filter((s) =>
      s !== "sink-down" && s !== "broker" && chosen(s)
    ) as Array<
      Exclude<ScenarioName, "broker">
    >;
    const tasks = sinks.flatMap((sink) =>
      plain.map((scenario) => () => single(sink, scenario, settings))
    );
    results.push(...await pool(tasks, options.parallel));

    if (chosen("sink-down")) {
      const downs = sinks.map((sink) => () => single(sink, "sink-down", settings));
      results.push(...await pool(downs, options.parallel > 1 ? downs.length : 1));
    }
    if (chosen("broker")) results.push(...await broker(sinks, settings));

    const { text, failed } = report(options, settings, sinks, results);
    writeStdout(text);
    return failed > 0 ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await cleanup();
  }
}

if (import.meta.main) {
  silenceKafkaJsTimerWarning();
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    await restartStopped();
    writeStderr(`chaos: ${errorText(error)}\n`);
    Deno.exit(1);
  }
}
