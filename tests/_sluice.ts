/**
 * Runs sluice as a real process (`deno run main.ts`), the way users run it,
 * with its JSON log lines parsed and its `/metrics` readable.
 *
 * @module
 */

import { clickhouseUrl, kafkaBrokers } from "./_services.ts";
import { allCommitted, offsets } from "./_kafka.ts";
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;
const CONFIG = new URL("deno.json", ROOT).pathname;

/** The arguments of `deno run` that start sluice's entry point, as the tests run it. */
export const MAIN_ARGS: readonly string[] = ["run", "-A", "--config", CONFIG, MAIN];

/** A running sluice process. */
export interface SluiceProcess {
  /** The child process. */
  child: Deno.ChildProcess;
  /** Parsed log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Port of `/metrics`. */
  metricsPort: number;
  /** Resolves with the exit status. */
  status: Promise<Deno.CommandStatus>;
  /**
   * Reads one metric's value (summed over label sets matching `labels`).
   *
   * @param name The metric name.
   * @param labels Label values that must match.
   * @returns The value, 0 when absent.
   */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /**
   * Sends a signal.
   *
   * @param signal The signal.
   */
  kill(signal: Deno.Signal): void;
}

/** Environment every test run starts from: no inherited sluice variables. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    const sluiceVariable =
      /^(KAFKA_|CLICKHOUSE_|ELASTIC_|ELASTC_|VM_|SINK$|ENCODER$|PROMETHEUS_|PMACCT_|RETRY_|SHUTDOWN_|HEALTH_|DEAD_LETTER_FILE|DEAD_LETTER_TOPIC$|TIMESTAMP_TEMPLATE$|LOG_LEVEL$|LOG_FORMAT$|INFLUXDB_|GRAPHITE_|BUFFER_|BENCHMARK|STATISTICS$|VERBOSE$)/;
    if (sluiceVariable.test(k)) {
      continue;
    }
    env[k] = v;
  }
  return env;
}

/**
 * Starts sluice and waits until it serves metrics.
 *
 * @param env Its configuration.
 * @param options Extra flags, and a startup timeout.
 * @returns The running process.
 */
export async function startSluice(
  env: Record<string, string>,
  options: { args?: string[]; timeoutMs?: number } = {},
): Promise<SluiceProcess> {
  const cwd = await Deno.makeTempDir({ prefix: "sluice-test-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [...MAIN_ARGS, ...(options.args ?? [])],
    cwd,
    env: { ...baseEnv(), PROMETHEUS_CLIENT_PORT: "0", PROMETHEUS_CLIENT_HOST: "127.0.0.1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const pump = async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream());
    let rest = "";
    for await (const chunk of lines) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        raw.push(line);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ msg: line });
        }
      }
    }
  };
  const pumping = pump();
  void child.stdout.cancel();
  const status = child.status.then(async (s) => {
    await pumping;
    return s;
  });
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let metricsPort = 0;
  while (metricsPort === 0) {
    const started = logs.find((l) => l["msg"] === "Starting sluice");
    if (started) metricsPort = Number(started["metrics_port"]);
    else if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(
        `Cannot start sluice within the timeout; its output:\n${raw.slice(-30).join("\n")}`,
      );
    } else {
      const exited = await Promise.race([
        status,
        new Promise((r) => setTimeout(() => r(undefined), 100)),
      ]);
      // A process that fails soon after starting (a refused TLS handshake)
      // may end before this loop saw its start line: look once more.
      if (exited && !logs.some((l) => l["msg"] === "Starting sluice")) {
        throw new Error(`sluice exited at start; its output:\n${raw.slice(-30).join("\n")}`);
      }
    }
  }
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const set = m[2] ?? "";
      if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) {
        sum += Number(m[3]);
      }
    }
    return sum;
  };
  return { child, logs, metricsPort, status, metric, kill: (signal) => child.kill(signal) };
}

/**
 * Polls until `probe` returns something truthy.
 *
 * @param probe The check.
 * @param what What is awaited, for the error.
 * @param timeoutMs How long.
 * @returns The truthy value.
 * @throws {Error} When time runs out, with the last value seen.
 */
export async function waitFor<T>(
  probe: () => Promise<T> | T,
  what: string,
  timeoutMs = 60_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `Cannot see ${what} within ${timeoutMs / 1000} s; last value ${JSON.stringify(last)}`,
  );
}

/**
 * Stops a sluice process with SIGTERM and returns its exit code.
 *
 * @param sluice The process.
 * @param timeoutMs How long to wait before SIGKILL.
 * @returns The exit code.
 */
export async function stopSluice(sluice: SluiceProcess, timeoutMs = 40_000): Promise<number> {
  try {
    sluice.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  const timer = setTimeout(() => {
    try {
      sluice.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  const status = await sluice.status;
  clearTimeout(timer);
  return status.code;
}

/**
 * The environment that points sluice at a topic and a database of the local
 * ClickHouse (table `flows`), for integration tests to extend.
 *
 * @param options The topic, group, database and schema; brokers default to the local plaintext listener.
 * @returns The variables.
 */
export function clickhouseSinkEnv(
  options: { topic: string; group: string; database: string; schema: string; brokers?: string },
): Record<string, string> {
  return {
    KAFKA_BOOTSTRAP_SERVERS: options.brokers ?? kafkaBrokers(),
    KAFKA_TOPIC: options.topic,
    KAFKA_CONSUMER_GROUP_ID: options.group,
    CLICKHOUSE_HOST: clickhouseUrl(),
    CLICKHOUSE_DB: options.database,
    CLICKHOUSE_TABLE: "flows",
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: "",
    CLICKHOUSE_DATA_SCHEMA: options.schema,
  };
}

/**
 * Stops a sluice process if there is one, ignoring errors (for `finally`).
 *
 * @param sluice The process, if it was started.
 */
export async function stopQuietly(sluice: SluiceProcess | undefined): Promise<void> {
  if (sluice) await stopSluice(sluice).catch(() => {});
}

/**
 * What sluice logged above info level, its last 20 lines, for error messages.
 *
 * @param sluice The process.
 * @returns JSON lines.
 */
export function warnings(sluice: SluiceProcess): string {
  return sluice.logs.filter((l) => l["level"] !== "info" && l["level"] !== "debug").slice(-20)
    .map((l) => JSON.stringify(l)).join("\n");
}

/**
 * Runs a wait; when it fails, adds sluice's warnings and the group's offsets
 * to the error, so that a failure can be understood.
 *
 * @param wait The wait.
 * @param sluice The process.
 * @param f The consumer group and topic, and their brokers when not the local broker.
 * @throws {Error} The wait's error, explained.
 */
export async function explained(
  wait: () => Promise<unknown>,
  sluice: SluiceProcess,
  f: { group: string; topic: string; brokers?: string },
): Promise<void> {
  try {
    await wait();
  } catch (error) {
    const state = await offsets(f.group, f.topic, f.brokers).catch((e) => String(e));
    throw new Error(
      `${(error as Error).message}\noffsets: ${JSON.stringify(state)}\nsluice said:\n${
        warnings(sluice)
      }`,
      { cause: error },
    );
  }
}

/**
 * Waits until sluice has written `rows` rows (points), committed every
 * offset and reports a lag of 0; a failure is {@link explained}.
 *
 * @param sluice The process.
 * @param f The consumer group and topic, and their brokers when not the local broker.
 * @param rows How many rows must be written.
 * @param timeoutMs How long each step may take.
 */
export async function drained(
  sluice: SluiceProcess,
  f: { group: string; topic: string; brokers?: string },
  rows: number,
  timeoutMs = 45_000,
): Promise<void> {
  await explained(
    async () => {
      await waitFor(
        async () => (await sluice.metric("sluice_records_written_total")) >= rows,
        `${rows} points written`,
        timeoutMs,
      );
      await waitFor(
        () => allCommitted(f.group, f.topic, f.brokers),
        "every offset committed",
        timeoutMs,
      );
      await waitFor(
        async () => (await sluice.metric("sluice_consumer_lag")) === 0,
        "consumer lag 0",
        timeoutMs,
      );
    },
    sluice,
    f,
  );
}

/**
 * Checks a dead-letter file: one entry per refused record, each found by a
 * marker in its data, set aside as `server` with the server's reason.
 *
 * @param path The file.
 * @param refused Per record, the marker its data holds and the reason expected.
 */
export async function assertDeadLetters(
  path: string,
  refused: ReadonlyArray<readonly [string, RegExp]>,
): Promise<void> {
  const letters = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assertEquals(letters.length, refused.length, "one dead letter per refused point");
  for (const [marker, reason] of refused) {
    const letter = letters.find((l) => JSON.stringify(l["data"]).includes(marker));
    assert(letter, `${marker} is in the dead-letter file`);
    assertEquals(letter["reason"], "server");
    assert(reason.test(String(letter["error"])), `the server's reason: ${letter["error"]}`);
  }
}

/**
 * Runs sluice to its exit, for a start that fails: it may exit before
 * {@link startSluice} could watch it.
 *
 * @param env Its configuration (a clean environment besides PATH and HOME).
 * @returns The exit code and the JSON log lines it wrote.
 */
export async function runToExit(
  env: Record<string, string>,
): Promise<{ code: number; stderr: string; logs: Array<Record<string, unknown>> }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", "--config", CONFIG, MAIN],
    cwd: await Deno.makeTempDir({ prefix: "sluice-test-" }),
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      ...env,
      PROMETHEUS_CLIENT_PORT: "0",
    },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const logs = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  return { code: out.code, stderr, logs };
}
