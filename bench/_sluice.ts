/**
 * One measured sluice run: spawns `deno run -A main.ts` with a clean
 * environment in an empty directory (so no `.env` is read), waits until it
 * wrote all N records, samples its CPU time and peak RSS from `/proc` just
 * before stopping it with SIGTERM, and has the destination checked.
 *
 * With `RunOptions.profileDir`, sluice runs under the V8 inspector and its
 * main thread is sampled from right after the spawn until all N records are
 * written (`_profile.ts`).
 *
 * "Written" is seen two ways: `sluice_records_written_total` on sluice's
 * `/metrics` (prom-client renders every metric on each read, which costs
 * sluice CPU, so it is read every 250 ms at most), and, where the
 * destination offers a cheap count (ClickHouse's `count()`), that count.
 *
 * @module
 */

import { allVariables } from "../lib/config.ts";
import { errorText } from "../lib/log.ts";
import {
  cpuSecondsOf,
  machineBusySeconds,
  num,
  progress,
  sampleProcess,
  sleep,
} from "./_measure.ts";
import { type CpuProfile, freePort, type Profiler, startProfiler } from "./_profile.ts";
import type { RunTarget } from "./_targets/mod.ts";
import { REGISTRIES } from "../sinks/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = ROOT + "main.ts";
const CONFIG = ROOT + "deno.json";

/** Variables sluice reads: none may leak from the caller's environment into a run. */
const SLUICE_VARIABLE =
  /^(SINK|ENCODER|PMACCT_TIMEZONE|LOG_LEVEL|DEAD_LETTER_FILE|TIMESTAMP_TEMPLATE|KAFKA_.*|CLICKHOUSE_.*|ELASTIC_.*|ELASTC_.*|VM_.*|PROMETHEUS_.*|RETRY_.*|SHUTDOWN_TIMEOUT|HEALTH_STALL_TIMEOUT)$/;
const SLUICE_VARIABLES = new Set(allVariables(REGISTRIES).map((v) => v.name));

/**
 * The environment of a sluice run: the caller's environment without any
 * variable sluice reads, then `settings`, then the `BENCH_SLUICE_<NAME>`
 * overrides as `<NAME>`.
 *
 * @param settings The run's variables.
 * @returns The whole environment.
 */
export function sluiceEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const overrides: Record<string, string> = {};
  for (const [name, value] of Object.entries(Deno.env.toObject())) {
    if (name.startsWith("BENCH_SLUICE_")) overrides[name.slice("BENCH_SLUICE_".length)] = value;
    else if (!SLUICE_VARIABLE.test(name) && !SLUICE_VARIABLES.has(name)) env[name] = value;
  }
  return { ...env, ...settings, ...overrides };
}

/** A sluice child process and what it logged. */
export interface Sluice {
  /** The process. */
  child: Deno.ChildProcess;
  /** Log lines with the time they arrived. */
  logs: Array<{ at: number; line: Record<string, unknown> }>;
  /** Its standard error, line by line. */
  raw: string[];
  /** Resolves with the exit status once its standard error is read to the end. */
  status: Promise<Deno.CommandStatus>;
  /** Whether it exited. */
  exited: boolean;
}

/** The V8 flags of `deno task start`, the binaries and the container (see deno.json). */
export const START_V8_FLAGS = "--max-semi-space-size=2";

/** sluice processes not yet exited, for {@link killRunningSluices}. */
const running = new Set<Sluice>();

/**
 * Kills the sluice processes still running (on an interrupt), so that
 * nothing writes to a destination while it is cleaned up.
 *
 * @returns Resolves when they exited.
 */
export async function killRunningSluices(): Promise<void> {
  for (const sluice of running) {
    try {
      sluice.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await sluice.status;
  }
}

/**
 * Starts `deno run -A main.ts` with exactly this environment, its JSON log
 * lines collected; {@link killRunningSluices} knows it until it exits.
 *
 * @param env The whole environment (see {@link sluiceEnv}).
 * @param cwd The directory to run in (an empty one, so that no `.env` is read).
 * @param denoFlags Further flags of `deno run`, e.g. `--inspect=127.0.0.1:9229`.
 * @returns The running process.
 */
export function spawnSluice(
  env: Record<string, string>,
  cwd: string,
  denoFlags: readonly string[] = [],
): Sluice {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...denoFlags, "--config", CONFIG, MAIN],
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
  running.add(sluice);
  sluice.status = child.status.then(async (s) => {
    sluice.exited = true;
    running.delete(sluice);
    await pump;
    return s;
  });
  return sluice;
}

/**
 * The last lines sluice wrote to standard error, for error messages.
 *
 * @param sluice The process.
 * @param lines How many.
 * @returns The lines, joined.
 */
export function logTail(sluice: Sluice, lines = 15): string {
  return sluice.raw.slice(-lines).join("\n");
}

async function metricsText(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch (error) {
    throw new Error(`Cannot read sluice's /metrics on port ${port}: ${errorText(error)}`);
  }
}

/**
 * The sum of a metric over all its label sets, from Prometheus text.
 *
 * @param text The exposition text.
 * @param name The metric (a histogram's `_sum`, say).
 * @returns The sum, 0 when absent.
 */
export function metricValue(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) sum += Number(m[3]);
  }
  return sum;
}

/** One sluice run's figures. */
export interface RunResult {
  /** The sink (`SINK`). */
  sink: string;
  records: number;
  /** Spawn until the consumer group was joined. */
  startupSeconds: number;
  /** Spawn until all N records were written. */
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  /** Time sluice spent waiting for writes (`sluice_batch_duration_seconds_sum`). */
  writeSeconds: number;
  batches: number;
  children: number;
  kafkaCpu?: number;
  /** CPU seconds of the destination's server process meanwhile. */
  serverCpu?: number;
  machineCpu: number;
  /** The CPU profile of the run, with `RunOptions.profileDir`. */
  profile?: { file: string; profile: CpuProfile };
}

/** What {@link runSluice} needs. */
export interface RunOptions {
  /** Names the run in progress messages, e.g. `elastic run 2`. */
  label: string;
  /** The sink, for the report. */
  sink: string;
  /** The destination: sluice's variables, how to see progress, the check. */
  destination: RunTarget;
  /** N: the records waiting in the topic. */
  records: number;
  /** Give up after this long. */
  timeoutSeconds: number;
  /** An empty directory to run sluice in. */
  cwd: string;
  /** The Kafka broker's pid, for its CPU time. */
  kafkaPid?: number;
  /** The destination server's pid, for its CPU time. */
  serverPid?: number;
  /**
   * Profile the run into `<profileDir>/<sink>-run<N>.cpuprofile` (see
   * `_profile.ts`); the inspector costs sluice a little CPU.
   */
  profileDir?: string;
  /** N in the profile's file name. */
  run?: number;
  /**
   * V8 flags for sluice (`deno run --v8-flags=`), e.g. `--max-old-space-size=160`;
   * unset: {@link START_V8_FLAGS}, as `deno task start` runs it; `""`: none.
   */
  v8Flags?: string;
}

/**
 * Runs sluice until it wrote every record, measures it, stops it and
 * checks the destination.
 *
 * @param options The run.
 * @returns Its figures.
 * @throws {Error} When sluice fails, times out, sets records aside or
 *   exits unclean, or the destination does not hold exactly the records.
 */
export async function runSluice(options: RunOptions): Promise<RunResult> {
  const { label, destination, records: n } = options;
  const env = destination.env;
  const kafkaCpu0 = options.kafkaPid ? await cpuSecondsOf(options.kafkaPid) : undefined;
  const serverCpu0 = options.serverPid ? await cpuSecondsOf(options.serverPid) : undefined;
  const machine0 = await machineBusySeconds();

  const started = Date.now();
  const inspectPort = options.profileDir === undefined ? undefined : freePort();
  const sluice = spawnSluice(
    env,
    options.cwd,
    [
      ...(inspectPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`]),
      ...((options.v8Flags ?? START_V8_FLAGS) === ""
        ? []
        : [`--v8-flags=${options.v8Flags ?? START_V8_FLAGS}`]),
    ],
  );
  const deadline = started + options.timeoutSeconds * 1000;
  let profiler: Profiler | undefined;
  try {
    if (inspectPort !== undefined) {
      // As early as the inspector answers: startup is part of the measured time.
      profiler = await startProfiler(inspectPort, { deadline, alive: () => !sluice.exited });
    }
    let port = 0;
    while (port === 0) {
      const line = sluice.logs.find((l) => l.line["msg"] === "Starting sluice");
      if (line) port = Number(line.line["metrics_port"]);
      else if (sluice.exited) throw new Error(`sluice exited at start:\n${logTail(sluice)}`);
      else if (Date.now() > deadline) throw new Error(`sluice did not start:\n${logTail(sluice)}`);
      else await sleep(20);
    }
    let written = 0, rejected = 0, visible = 0, polls = 0, lastReport = started;
    while (written + rejected < n && visible < n) {
      await sleep(destination.pollMs);
      if (sluice.exited) throw new Error(`sluice exited during the run:\n${logTail(sluice)}`);
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot see ${num(n)} records written within ${options.timeoutSeconds} s ` +
            `(written ${num(written)}, set aside ${num(rejected)}, ` +
            `${destination.unit} ${num(visible)}):\n${logTail(sluice)}`,
        );
      }
      if (destination.visible) visible = await destination.visible().catch(() => 0);
      if (++polls % destination.metricsEvery === 0) {
        const text = await metricsText(port);
        written = metricValue(text, "sluice_records_written_total");
        rejected = metricValue(text, "sluice_records_rejected_total");
      }
      if (Date.now() - lastReport >= 2000) {
        lastReport = Date.now();
        const seen = destination.visible
          ? `${num(visible)} of ${num(n)} ${destination.unit}`
          : `${num(written)} of ${num(n)} records written`;
        progress(`${label}: ${seen} after ${num((lastReport - started) / 1000, 1)} s`);
      }
    }
    const finished = Date.now();
    const sample = await sampleProcess(sluice.child.pid);
    const machine1 = await machineBusySeconds();
    const kafkaCpu1 = options.kafkaPid ? await cpuSecondsOf(options.kafkaPid) : undefined;
    const serverCpu1 = options.serverPid ? await cpuSecondsOf(options.serverPid) : undefined;
    let profile: RunResult["profile"];
    if (profiler) {
      const file = `${options.profileDir}/${options.sink}-run${options.run ?? 1}.cpuprofile`;
      profile = { file, profile: await profiler.stop(file) };
      profiler = undefined;
    }
    const text = await metricsText(port);
    const mb = (name: string) => num(metricValue(text, name) / 2 ** 20);
    progress(
      `${label}: at the end: RSS ${num(sample.rssBytes / 2 ** 20)} MB, V8 heap used ` +
        `${mb("nodejs_heap_size_used_bytes")} of ${
          mb("nodejs_heap_size_total_bytes")
        } MB, external ${mb("nodejs_external_memory_bytes")} MB`,
    );
    const joined = sluice.logs.find((l) => l.line["msg"] === "Joined consumer group");

    sluice.child.kill("SIGTERM");
    const status = await sluice.status;
    if (status.code !== 0) {
      throw new Error(
        `sluice exited with status ${status.code} after SIGTERM:\n${logTail(sluice)}`,
      );
    }
    const setAside = metricValue(text, "sluice_records_rejected_total");
    if (setAside > 0) {
      throw new Error(
        `sluice set ${num(setAside)} of ${num(n)} records aside:\n${logTail(sluice)}`,
      );
    }
    progress(`${label}: ${await destination.verify()}`);
    await destination.drop();
    return {
      sink: options.sink,
      records: n,
      startupSeconds: ((joined?.at ?? finished) - started) / 1000,
      seconds: (finished - started) / 1000,
      cpuSeconds: sample.cpuSeconds,
      peakRssBytes: sample.peakRssBytes,
      writeSeconds: metricValue(text, "sluice_batch_duration_seconds_sum"),
      batches: metricValue(text, "sluice_batches_total"),
      children: sample.children,
      kafkaCpu: kafkaCpu0 !== undefined && kafkaCpu1 !== undefined
        ? kafkaCpu1 - kafkaCpu0
        : undefined,
      serverCpu: serverCpu0 !== undefined && serverCpu1 !== undefined
        ? serverCpu1 - serverCpu0
        : undefined,
      machineCpu: machine1 - machine0,
      profile,
    };
  } finally {
    profiler?.close();
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
