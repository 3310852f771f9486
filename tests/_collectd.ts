/**
 * Runs the real collectd (Debian `collectd-core` 5.12) for end-to-end tests:
 * the `load`, `memory`, `cpu` and `interface` (`lo` only) plugins read every
 * second and `write_kafka` sends what they read to a topic, as Graphite
 * lines or as collectd's JSON. Also reads those messages back the way a test
 * must understand them, without sluice's code.
 *
 * Facts this module depends on, all seen with collectd 5.12 and its
 * librdkafka:
 * - write_kafka sends one message per value list, keyed with 8 random hex
 *   digits (so messages spread over the partitions). Graphite: one line per
 *   data source, `<prefix><host><postfix>.<plugin>[-<plugin instance>].<type>[-<type instance>][.<ds name>] <value> <unix seconds>\r\n`
 *   (the ds name only for types with several, e.g. `load.load.shortterm`,
 *   `interface-lo.if_octets.rx`); JSON: an array holding one object with
 *   `values`, `dstypes`, `dsnames`, `time` (seconds, 3 decimals),
 *   `interval`, `host`, `plugin`, `plugin_instance`, `type`, `type_instance`.
 * - write_kafka's Graphite escape character is `.` (write_graphite's is
 *   `_`): spaces, commas and dots in the host name and in the prefix all
 *   become `.`. {@link CollectdOptions.hostname} defaults to a name without
 *   them; give `graphiteEscapeChar` otherwise.
 * - `GraphitePostfix` is appended to the host name, not to the whole path.
 * - `StoreRates` is off by default in write_kafka: the cpu and interface
 *   values are the raw counters. With it on (the default here) they are
 *   rates, and the first of each is `nan` in Graphite and `null` in JSON.
 *   The cpu plugin dispatches nothing on its first read.
 * - Without a log plugin collectd logs to its standard error; it is ready
 *   once it logs `Initialization complete, entering read-loop.` and exits 0
 *   on SIGTERM (`Exiting normally.`).
 * - `-t` checks the configuration and exits; `-T` runs every read once and
 *   *writes* the values (to the topic), so it is not a dry check.
 * - It runs unprivileged when `BaseDir` and `PIDFile` are writable; here
 *   both are in the run's own directory.
 *
 * @module
 */

import { join } from "node:path";
import { kafkaBrokers } from "./_services.ts";

/** `Format` of the write_kafka topic. */
export type CollectdFormat = "Graphite" | "JSON";

/** Options of {@link startCollectd}. */
export interface CollectdOptions {
  /** Topic to write to; create it first (the tests' broker auto-creates, with 3 partitions). */
  topic: string;
  /** `Format` of the topic. */
  format: CollectdFormat;
  /**
   * `metadata.broker.list`.
   * @default {kafkaBrokers()}
   */
  brokers?: string;
  /**
   * `Hostname`, the `host` of every value.
   * @default A unique name like `it-cd-12345-ab12cd`.
   */
  hostname?: string;
  /**
   * `StoreRates`: counters and derives as rates (first value nan/null).
   * @default {true}
   */
  storeRates?: boolean;
  /** `GraphitePrefix` (Graphite only). */
  graphitePrefix?: string;
  /** `GraphitePostfix` (Graphite only). */
  graphitePostfix?: string;
  /** `GraphiteEscapeChar` (Graphite only); collectd's default is `.`. */
  graphiteEscapeChar?: string;
  /**
   * `Interval`, seconds.
   * @default {1}
   */
  intervalSec?: number;
  /**
   * Directory for the configuration, pid file and `BaseDir`.
   * @default A new temporary directory, removed by {@link Collectd.close}.
   */
  dir?: string;
  /**
   * Milliseconds to wait for `Initialization complete`.
   * @default {10000}
   */
  startTimeoutMs?: number;
  /**
   * The collectd program.
   * @default `/usr/sbin/collectd` when it exists (not on every PATH), else `collectd`.
   */
  binary?: string;
}

/** What {@link collectdConfig} needs, everything resolved. */
export interface CollectdConfigInput {
  /** Its directory (`BaseDir`, `PIDFile`). */
  dir: string;
  /** `Hostname`. */
  hostname: string;
  /** `Interval`, seconds. */
  intervalSec: number;
  /** `metadata.broker.list`. */
  brokers: string;
  /** The topic. */
  topic: string;
  /** Its format. */
  format: CollectdFormat;
  /** `StoreRates`. */
  storeRates: boolean;
  /** `GraphitePrefix`. */
  graphitePrefix?: string;
  /** `GraphitePostfix`. */
  graphitePostfix?: string;
  /** `GraphiteEscapeChar`. */
  graphiteEscapeChar?: string;
}

/** A running collectd. */
export interface Collectd {
  /** Its process id. */
  readonly pid: number;
  /** Its directory. */
  readonly dir: string;
  /** The configuration file. */
  readonly configPath: string;
  /** The configuration text. */
  readonly config: string;
  /** The `Hostname` its values carry. */
  readonly hostname: string;
  /**
   * What it wrote to standard output and error so far (its log).
   *
   * @returns The text.
   */
  output(): string;
  /**
   * Whether it still runs.
   *
   * @returns `false` once it exited.
   */
  running(): boolean;
  /**
   * Stops it with SIGTERM and waits until it exited. Calling it again does nothing.
   *
   * @param timeoutMs How long to wait before SIGKILL.
   * @throws {Error} When it had to be killed or exited with an error, with its log.
   */
  stop(timeoutMs?: number): Promise<void>;
  /**
   * Stops it if needed, then deletes its directory when {@link startCollectd}
   * created it.
   *
   * @throws {Error} As {@link Collectd.stop}; the directory is deleted anyway.
   */
  close(): Promise<void>;
  /** {@link Collectd.close} for `await using`; never throws. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The plugins loaded, and nothing else (no log plugin: the log goes to stderr). */
export const COLLECTD_PLUGINS: readonly string[] = ["load", "memory", "cpu", "interface"];

const decoder = new TextDecoder();

/** A string in collectd's configuration syntax (liboconfig: `\` escapes). */
function quote(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Writes the collectd configuration: the four read plugins, `interface`
 * limited to `lo`, and one write_kafka topic.
 *
 * @param input Everything resolved.
 * @returns The configuration file text.
 * @throws {RangeError} When a value cannot be written into collectd's syntax.
 */
export function collectdConfig(input: CollectdConfigInput): string {
  const problems: string[] = [];
  const strings: Array<[string, string | undefined]> = [
    ["dir", input.dir],
    ["hostname", input.hostname],
    ["brokers", input.brokers],
    ["topic", input.topic],
    ["graphitePrefix", input.graphitePrefix],
    ["graphitePostfix", input.graphitePostfix],
    ["graphiteEscapeChar", input.graphiteEscapeChar],
  ];
  for (const [name, value] of strings) {
    if (value !== undefined && /[\n\r\0]/.test(value)) {
      problems.push(`${name} must be one line, got ${JSON.stringify(value)}`);
    }
  }
  if (input.hostname === "") problems.push("hostname must not be empty");
  if (!/^[A-Za-z0-9._-]+$/.test(input.topic)) {
    problems.push(`topic must be a plain Kafka topic name, got "${input.topic}"`);
  }
  if (!Number.isFinite(input.intervalSec) || input.intervalSec <= 0) {
    problems.push(`interval must be a number > 0, got ${input.intervalSec}`);
  }
  if (input.graphiteEscapeChar !== undefined && input.graphiteEscapeChar.length !== 1) {
    problems.push(`graphiteEscapeChar must be one character, got "${input.graphiteEscapeChar}"`);
  }
  const graphite = [input.graphitePrefix, input.graphitePostfix, input.graphiteEscapeChar];
  if (input.format !== "Graphite" && graphite.some((v) => v !== undefined)) {
    problems.push("the Graphite options need format Graphite");
  }
  if (problems.length > 0) {
    throw new RangeError(`Cannot write collectd config: ${problems.join("; ")}`);
  }
  const topic = [
    `    Format ${input.format}`,
    `    StoreRates ${input.storeRates}`,
  ];
  if (input.graphitePrefix !== undefined) {
    topic.push(`    GraphitePrefix ${quote(input.graphitePrefix)}`);
  }
  if (input.graphitePostfix !== undefined) {
    topic.push(`    GraphitePostfix ${quote(input.graphitePostfix)}`);
  }
  if (input.graphiteEscapeChar !== undefined) {
    topic.push(`    GraphiteEscapeChar ${quote(input.graphiteEscapeChar)}`);
  }
  return [
    "# Generated by tests/_collectd.ts",
    `Hostname ${quote(input.hostname)}`,
    "FQDNLookup false",
    `BaseDir ${quote(input.dir)}`,
    `PIDFile ${quote(join(input.dir, "collectd.pid"))}`,
    `Interval ${input.intervalSec}`,
    ...COLLECTD_PLUGINS.map((p) => `LoadPlugin ${p}`),
    "LoadPlugin write_kafka",
    "<Plugin interface>",
    '  Interface "lo"',
    "</Plugin>",
    "<Plugin write_kafka>",
    `  Property "metadata.broker.list" ${quote(input.brokers)}`,
    `  <Topic ${quote(input.topic)}>`,
    ...topic,
    "  </Topic>",
    "</Plugin>",
    "",
  ].join("\n");
}

/** Collects everything a child writes to one pipe (collectd says little). */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  })().catch(() => {});
  return { text: () => text, done };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function defaultBinary(): string {
  try {
    Deno.statSync("/usr/sbin/collectd");
    return "/usr/sbin/collectd";
  } catch {
    return "collectd";
  }
}

/** Runs `collectd -C config -t` and fails with its output when the configuration is refused. */
async function checkConfig(binary: string, configPath: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(binary, {
      args: ["-C", configPath, "-t"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`Cannot start collectd: cannot run "${binary}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!out.success) {
    throw new Error(
      `Cannot start collectd: "${binary} -C ${configPath} -t" refused the configuration (code ${out.code})\n` +
        decoder.decode(out.stdout) + decoder.decode(out.stderr),
    );
  }
}

/**
 * Checks the configuration (`-t`), then starts collectd in the foreground
 * (`-f`) and waits until it entered its read loop.
 *
 * @param options What to run; see {@link CollectdOptions}.
 * @returns The running collectd; stop it with {@link Collectd.stop}.
 * @throws {RangeError} When an option is invalid.
 * @throws {Error} When the configuration is refused, or collectd exits or is
 *   not ready in time; the message carries its output.
 */
export async function startCollectd(options: CollectdOptions): Promise<Collectd> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "sluice_collectd_" });
  const configPath = join(dir, "collectd.conf");
  const binary = options.binary ?? defaultBinary();
  const hostname = options.hostname ??
    `it-cd-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
  let config: string, child: Deno.ChildProcess;
  try {
    config = collectdConfig({
      dir,
      hostname,
      intervalSec: options.intervalSec ?? 1,
      brokers: options.brokers ?? kafkaBrokers(),
      topic: options.topic,
      format: options.format,
      storeRates: options.storeRates ?? true,
      graphitePrefix: options.graphitePrefix,
      graphitePostfix: options.graphitePostfix,
      graphiteEscapeChar: options.graphiteEscapeChar,
    });
    await Deno.writeTextFile(configPath, config);
    await checkConfig(binary, configPath);
    child = new Deno.Command(binary, {
      args: ["-C", configPath, "-f"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  let status: Deno.CommandStatus | undefined;
  const exited = child.status.then((s) => (status = s));
  const output = () => out.text() + err.text();

  let stopped: Promise<void> | undefined;
  const stop = (timeoutMs = 15_000): Promise<void> => {
    stopped ??= (async () => {
      if (status === undefined) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), timeoutMs)),
      ]).finally(() => clearTimeout(timer));
      if (killed) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone meanwhile */ }
        await exited;
      }
      await Promise.all([out.done, err.done]);
      if (killed) {
        throw new Error(
          `Cannot stop collectd: still running ${timeoutMs} ms after SIGTERM, killed\n${output()}`,
        );
      }
      if (!status!.success) {
        throw new Error(
          `Cannot stop collectd: it exited with ${
            status!.signal ?? `code ${status!.code}`
          }\n${output()}`,
        );
      }
    })();
    return stopped;
  };
  const close = async (): Promise<void> => {
    try {
      await stop();
    } finally {
      if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
  const handle: Collectd = {
    pid: child.pid,
    dir,
    configPath,
    config,
    hostname,
    output,
    running: () => status === undefined,
    stop,
    close,
    [Symbol.asyncDispose]: () => close().catch(() => {}),
  };

  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  while (!output().includes("Initialization complete, entering read-loop.")) {
    const failure = status !== undefined
      ? `it exited with ${status.signal ?? `code ${status.code}`}`
      : Date.now() > deadline
      ? `not ready after ${timeoutMs} ms`
      : undefined;
    if (failure) {
      await close().catch(() => {});
      throw new Error(`Cannot start collectd: ${failure}\n${output()}`);
    }
    await sleep(50);
  }
  return handle;
}

/** What {@link runCollectd} observed. */
export interface CollectdRun {
  /** The `Hostname` the values carry. */
  hostname: string;
  /** The configuration used. */
  config: string;
  /** collectd's log. */
  output: string;
}

/**
 * Starts collectd, lets it read and write for `seconds`, then stops it
 * (SIGTERM) and waits until it exited: everything it wrote is then in Kafka.
 *
 * @param options What to run, and for how long.
 * @returns The host name, configuration and log.
 * @throws {Error} When starting or stopping fails.
 */
export async function runCollectd(
  options: CollectdOptions & { seconds: number },
): Promise<CollectdRun> {
  const collectd = await startCollectd(options);
  try {
    await sleep(options.seconds * 1000);
    if (!collectd.running()) {
      throw new Error(`Cannot run collectd: it exited early\n${collectd.output()}`);
    }
    await collectd.stop();
    return { hostname: collectd.hostname, config: collectd.config, output: collectd.output() };
  } finally {
    await collectd[Symbol.asyncDispose]();
  }
}

/** One Kafka message as kcat returned it. */
export interface KafkaMessage {
  /** Its partition. */
  partition: number;
  /** Its offset. */
  offset: number;
  /** Its value; `null` for none. */
  payload: string | null;
}

/**
 * Reads every message of a topic with kcat (JSON envelope per message, so a
 * payload's newlines stay inside it): independent of the Kafka client sluice uses.
 *
 * @param topic The topic.
 * @param brokers The bootstrap broker.
 * @returns The messages, partition by partition in offset order.
 * @throws {Error} When kcat cannot run, fails or times out.
 */
export async function readTopic(topic: string, brokers = kafkaBrokers()): Promise<KafkaMessage[]> {
  const args = ["-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-J"];
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("kcat", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).output();
  } catch (error) {
    throw new Error(`Cannot read Kafka topic "${topic}" with kcat: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
  if (!out.success) {
    throw new Error(
      `Cannot read Kafka topic "${topic}": kcat ${args.join(" ")} exited with ${
        out.signal ?? `code ${out.code}`
      }\n${decoder.decode(out.stderr)}`,
    );
  }
  const messages = decoder.decode(out.stdout).split("\n").filter((l) => l.trim() !== "").map(
    (l) => JSON.parse(l) as KafkaMessage,
  );
  return messages.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** One Graphite line: `<path> <value> <unix seconds>`. */
export interface GraphiteLine {
  /** The metric path, prefix and postfix included. */
  path: string;
  /** The value as written (`nan` for a rate's first interval). */
  text: string;
  /** The value; `NaN` for `nan`. */
  value: number;
  /** Unix seconds. */
  time: number;
}

/**
 * Reads the Graphite lines of one write_kafka message (`\r\n`-terminated).
 *
 * @param payload The message value.
 * @param source Named in errors.
 * @returns The lines.
 * @throws {SyntaxError} When a line is not `<path> <number|nan> <integer>`.
 */
export function parseGraphite(payload: string, source = "message"): GraphiteLine[] {
  const lines: GraphiteLine[] = [];
  for (const line of payload.split(/\r?\n/)) {
    if (line === "") continue;
    const m = /^(\S+) (\S+) (\d+)$/.exec(line);
    const value = m ? (/^-?nan$/i.test(m[2]!) ? NaN : Number(m[2])) : NaN;
    if (!m || (Number.isNaN(value) && !/^-?nan$/i.test(m[2]!))) {
      throw new SyntaxError(
        `Cannot read collectd Graphite output: ${source}: ${JSON.stringify(line)}`,
      );
    }
    lines.push({ path: m[1]!, text: m[2]!, value, time: Number(m[3]) });
  }
  return lines;
}

/** One value list of collectd's JSON output. */
export interface CollectdValueList {
  /** One value per data source; `null` for a rate's first interval. */
  values: Array<number | null>;
  /** `gauge`, `derive`, `counter`, `absolute`. */
  dstypes: string[];
  /** The data source names (`value` for single-value types). */
  dsnames: string[];
  /** Unix seconds with milliseconds. */
  time: number;
  /** Seconds. */
  interval: number;
  /** The host. */
  host: string;
  /** The plugin. */
  plugin: string;
  /** The plugin instance, often empty. */
  plugin_instance: string;
  /** The type. */
  type: string;
  /** The type instance, often empty. */
  type_instance: string;
}

/**
 * Reads the value lists of one write_kafka JSON message.
 *
 * @param payload The message value (a JSON array).
 * @param source Named in errors.
 * @returns The value lists.
 * @throws {SyntaxError} When it is not an array of value lists.
 */
export function parseCollectdJson(payload: string, source = "message"): CollectdValueList[] {
  const fail = (why: string) =>
    new SyntaxError(
      `Cannot read collectd JSON output: ${source}: ${why}: ${payload.slice(0, 300)}`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    throw fail("not JSON");
  }
  if (!Array.isArray(parsed)) throw fail("not an array");
  for (const v of parsed as Array<Partial<CollectdValueList>>) {
    const ok = typeof v === "object" && v !== null && Array.isArray(v.values) &&
      Array.isArray(v.dsnames) && v.values.length === v.dsnames.length &&
      v.values.every((x) => x === null || typeof x === "number") &&
      typeof v.time === "number" && typeof v.host === "string" && typeof v.plugin === "string" &&
      typeof v.plugin_instance === "string" && typeof v.type === "string" &&
      typeof v.type_instance === "string";
    if (!ok) throw fail("not a value list");
  }
  return parsed as CollectdValueList[];
}
