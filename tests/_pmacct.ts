/**
 * Runs the real NetFlow producer chain for end-to-end tests:
 * softflowd replays a capture file as NetFlow v9 (or IPFIX) to nfacctd
 * (pmacct 1.7.7), which aggregates the flows and writes them both to Kafka
 * (kafka plugin) and to a JSON-lines file (print plugin), so a test can
 * compare what reached Kafka, and later ClickHouse, with what pmacct itself
 * reported.
 *
 * Facts this module depends on, all checked against the Debian packages
 * (pmacct 1.7.7, softflowd 1.1.0):
 * - nfacctd ignores SIGTERM; SIGINT makes every plugin purge its whole cache
 *   and exit (3 to 5 seconds).
 * - With `*_history`, an entry is purged at the first refresh after it
 *   arrives only if its time bin is the current one or older; flows stamped
 *   in a future bin wait until nfacctd stops (pmacct `P_cache_mark_flush()`),
 *   so stamp captures a little in the past (`startSec` = now - 60 s, say;
 *   with `-a` the flow times are the capture's). Each purge writes
 *   the counters gathered since the previous purge, so one flow can appear
 *   in several records that must be summed.
 * - softflowd needs `-a` when reading a file: without it the flow times are
 *   relative to the wall clock at start, the NetFlow v9 `first_switched`
 *   underflows and nfacctd bins the flows 2^32 ms (49.7 days) in the future.
 * - nfacctd reads the NetFlow v9 header `count` as a number of FlowSets and
 *   stops after that many, while softflowd writes the number of flow
 *   records there. softflowd's first packet carries 4 templates, an options
 *   template and an options record (6 FlowSets) before the data, so its data
 *   records are dropped unless the packet holds at least 6 more records than
 *   data FlowSets. {@link replayCapture} therefore puts {@link GUARD_FLOWS}
 *   in front of the capture for v9, and {@link nfacctdConfig} filters them
 *   out again with `aggregate_filter`.
 * - The core hands records to a plugin through a shared ring and writes to
 *   the plugin's pipe only when the plugin has armed its wake-up flag, which
 *   it does each time it goes back to `poll()` (pmacct `plugin_hooks.c`
 *   `exec_plugins()`, `status->wakeup`). The flag is clear until the plugin
 *   reaches its main loop, some time after it logs `cache entries=`. Records
 *   that arrive before that wait in the ring, unseen, until the core writes
 *   to the pipe again: at the next record, or when nfacctd stops. A replay
 *   started as soon as `cache entries=` was logged therefore left the print
 *   output empty for as long as nfacctd ran (2 runs in 50 back to back on a
 *   2-CPU machine, more under load; all records appeared at the stop).
 *   {@link startNfacctd} therefore waits for each plugin's first refresh
 *   (`Purging cache - START`), which comes after its first `poll()`. The
 *   same lost wake-up can in principle strike the last records of a burst,
 *   if a plugin is descheduled between finding the ring empty and arming the
 *   flag; {@link runNetflowPipeline} then still gets them, from the purge at
 *   stop.
 *
 * @module
 */

import dgram from "node:dgram";
import { join } from "node:path";
import {
  concatCaptures,
  type ExpectedFlow,
  flowKey,
  type FlowSpec,
  makeCapture,
  parseCapture,
} from "./_pcap.ts";

/** Primitives aggregated by default: the 5-tuple, TOS and the exporter address. */
export const DEFAULT_AGGREGATE: readonly string[] = [
  "src_host",
  "dst_host",
  "src_port",
  "dst_port",
  "proto",
  "tos",
  "peer_src_ip",
];

/**
 * Network of the guard flows, RFC 2544 benchmarking space; test flows must
 * not use it.
 */
export const GUARD_NET = "198.18.0.0/15";

/** Number of guard flows put in front of a NetFlow v9 replay. */
export const GUARD_FLOWS = 8;

/** The Kafka plugin part of an nfacctd run. */
export interface KafkaPluginOptions {
  /** Bootstrap broker(s), `host:port` or a comma-separated list of them. */
  brokers: string;
  /**
   * Topic to write to (`kafka_topic`). Messages carry no key and land on
   * random partitions (pmacct 1.7.7 did not honour `kafka_partition` here);
   * create the topic with one partition first when the order matters.
   */
  topic: string;
  /**
   * `kafka_multi_values`: buffer size in bytes; several newline-separated
   * JSON records per Kafka message. 0 means one record per message.
   * @default {0}
   */
  multiValues?: number;
  /**
   * `kafka_markers`: a `purge_init` and a `purge_close` message around every
   * purge (also empty ones, once per refresh).
   * @default {false}
   */
  markers?: boolean;
}

/** Options of {@link startNfacctd}. */
export interface NfacctdOptions {
  /** The Kafka plugin; without it only the print plugin runs. */
  kafka?: KafkaPluginOptions;
  /**
   * `aggregate` of both plugins.
   * @default {DEFAULT_AGGREGATE}
   */
  aggregate?: readonly string[];
  /**
   * `*_history`: time bin length.
   * @default {"5m"}
   */
  history?: string;
  /**
   * `*_history_roundoff`.
   * @default {"m"}
   */
  historyRoundoff?: string;
  /**
   * `*_refresh_time` of both plugins, seconds.
   * @default {1}
   */
  refreshTimeSec?: number;
  /**
   * `print_markers` of the print plugin.
   * @default {false}
   */
  printMarkers?: boolean;
  /**
   * `timestamps_utc`: print times in UTC whatever the machine's zone.
   * @default {true}
   */
  utc?: boolean;
  /**
   * UDP port nfacctd listens on at 127.0.0.1.
   * @default A free port.
   */
  port?: number;
  /**
   * Directory for the configuration, log and print output.
   * @default A new temporary directory.
   */
  dir?: string;
  /** More `key: value` configuration lines, written after the generated ones. */
  extraConfig?: Readonly<Record<string, string>>;
  /**
   * Milliseconds to wait for nfacctd and its plugins to be ready, on top of
   * one refresh time (readiness includes each plugin's first refresh).
   * @default {10000}
   */
  startTimeoutMs?: number;
  /**
   * The nfacctd program.
   * @default {"nfacctd"}
   */
  binary?: string;
}

/** What {@link nfacctdConfig} needs, everything resolved. */
export interface NfacctdConfigInput {
  /** UDP port at 127.0.0.1. */
  port: number;
  /** Log file path. */
  logPath: string;
  /** Print plugin output path (no `%` or `$`: pmacct expands those). */
  printOutputPath: string;
  /** Aggregation primitives. */
  aggregate: readonly string[];
  /** History bin length. */
  history: string;
  /** History round-off. */
  historyRoundoff: string;
  /** Refresh time, seconds. */
  refreshTimeSec: number;
  /** Print plugin markers. */
  printMarkers: boolean;
  /** `timestamps_utc`. */
  utc: boolean;
  /** Kafka plugin, if any. */
  kafka?: KafkaPluginOptions;
  /** Extra lines. */
  extraConfig?: Readonly<Record<string, string>>;
}

/** A running nfacctd. */
export interface Nfacctd {
  /** Process id of the core process. */
  readonly pid: number;
  /** UDP port it listens on at 127.0.0.1. */
  readonly port: number;
  /** Its directory. */
  readonly dir: string;
  /** The configuration file. */
  readonly configPath: string;
  /** The configuration text. */
  readonly config: string;
  /** pmacct's log file. */
  readonly logPath: string;
  /** The print plugin's JSON-lines output (appended at every purge). */
  readonly printOutputPath: string;
  /**
   * The last lines of the log and of the process's own output.
   *
   * @param lines How many lines of each.
   * @returns Text for error messages.
   */
  logTail(lines?: number): Promise<string>;
  /**
   * Whether the core process is still running.
   *
   * @returns `false` once it exited.
   */
  running(): boolean;
  /**
   * Stops nfacctd with SIGINT, so both plugins purge their caches, and waits
   * until the core and all its plugin and writer processes are gone.
   * Calling it again does nothing.
   *
   * @param timeoutMs How long to wait before killing with SIGKILL.
   * @throws {Error} When it had to be killed, or exited with an error.
   */
  stop(timeoutMs?: number): Promise<void>;
  /**
   * Stops nfacctd if needed, then deletes its directory when
   * {@link startNfacctd} created it (not when `dir` was given).
   *
   * @throws {Error} As {@link Nfacctd.stop}; the directory is deleted anyway.
   */
  close(): Promise<void>;
  /** {@link Nfacctd.close} for `await using`; never throws. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link replayCapture}. */
export interface ReplayOptions {
  /**
   * Export protocol: 9 (NetFlow v9, with guard flows) or 10 (IPFIX).
   * @default {9}
   */
  version?: 9 | 10;
  /**
   * Put {@link GUARD_FLOWS} guard flows in front (NetFlow v9 only).
   * @default {true}
   */
  guard?: boolean;
  /**
   * Milliseconds before softflowd is killed.
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * Directory for the guarded copy of the capture and softflowd's pid file.
   * @default A new temporary directory, removed afterwards.
   */
  dir?: string;
  /**
   * The softflowd program.
   * @default {"softflowd"}
   */
  binary?: string;
}

/** What softflowd reported after a replay. */
export interface ReplayResult {
  /** Packets softflowd read. */
  packetsProcessed: number;
  /** Flows it exported (a flow seen both ways counts once). */
  flowsExported: number;
  /** Flow records it sent (one per direction with traffic). */
  records: number;
  /** NetFlow/IPFIX datagrams it sent. */
  datagrams: number;
  /** Guard flows among `flowsExported`. */
  guardFlows: number;
  /** softflowd's standard output and error, for error messages. */
  output: string;
}

/** One JSON object pmacct wrote (a flow record or a marker). */
export type PmacctRecord = Record<string, unknown> & { event_type?: unknown };

/** Packets and bytes summed per 5-tuple. */
export interface FlowTotals {
  /** Packets. */
  packets: number;
  /** Bytes. */
  bytes: number;
  /** Number of pmacct records summed. */
  records: number;
}

/** Options of {@link waitForFlows}. */
export interface WaitOptions {
  /**
   * Milliseconds to wait.
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * Milliseconds between polls.
   * @default {250}
   */
  intervalMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Finds a UDP port on 127.0.0.1 that is free right now.
 *
 * @returns The port.
 */
export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => resolve());
    });
    return socket.address().port;
  } finally {
    socket.close();
  }
}

function kafkaBrokerLines(brokers: string): string[] {
  const list = brokers.split(",").map((b) => b.trim()).filter((b) => b !== "");
  const single = list.length === 1 ? /^([^:\[\]]+|\[[^\]]+\]):(\d+)$/.exec(list[0]!) : null;
  if (single) {
    // One broker: host and port go to separate keys (pmacct's legacy syntax).
    return [
      `kafka_broker_host[k]: ${single[1]!.replace(/^\[|\]$/g, "")}`,
      `kafka_broker_port[k]: ${single[2]}`,
    ];
  }
  return [`kafka_broker_host[k]: ${list.join(",")}`];
}

/**
 * Writes the nfacctd configuration: a `kafka[k]` plugin (when asked) and a
 * `print[p]` plugin with the same primitives, history and refresh time, both
 * dropping the guard flows.
 *
 * @param input Everything resolved.
 * @returns The configuration file text.
 * @throws {RangeError} When a value cannot be written into pmacct's syntax.
 */
export function nfacctdConfig(input: NfacctdConfigInput): string {
  const problems: string[] = [];
  if (/[%$\n]/.test(input.printOutputPath)) {
    problems.push(
      `print output path must not contain "%", "$" or newlines, got "${input.printOutputPath}"`,
    );
  }
  if (input.aggregate.length === 0 || input.aggregate.some((a) => !/^[a-z0-9_]+$/.test(a))) {
    problems.push(`aggregate must be primitive names, got ${JSON.stringify(input.aggregate)}`);
  }
  if (!Number.isInteger(input.refreshTimeSec) || input.refreshTimeSec < 1) {
    problems.push(`refresh time must be an integer >= 1, got ${input.refreshTimeSec}`);
  }
  if (!/^\d+[smhdwM]?$/.test(input.history)) {
    problems.push(`history must be like "5m", got "${input.history}"`);
  }
  if (!/^[mhdwM]$/.test(input.historyRoundoff)) {
    problems.push(`history round-off must be one of m h d w M, got "${input.historyRoundoff}"`);
  }
  const k = input.kafka;
  if (k) {
    if (!/^[A-Za-z0-9._-]+$/.test(k.topic)) {
      problems.push(`Kafka topic must be a plain name, got "${k.topic}"`);
    }
    if (!/^[^\s,]+(,[^\s,]+)*$/.test(k.brokers)) {
      problems.push(`Kafka brokers must be host:port[,...], got "${k.brokers}"`);
    }
    const mv = k.multiValues ?? 0;
    if (!Number.isInteger(mv) || mv < 0) {
      problems.push(`Kafka multi values must be an integer >= 0, got ${mv}`);
    }
  }
  for (const [key, value] of Object.entries(input.extraConfig ?? {})) {
    if (!/^[a-z0-9_]+(\[[a-z0-9_]+\])?$/.test(key) || /\n/.test(value)) {
      problems.push(
        `extra config line must be "key[plugin]: value" on one line, got ${JSON.stringify(key)}`,
      );
    }
  }
  if (problems.length > 0) {
    throw new RangeError(`Cannot write nfacctd config: ${problems.join("; ")}`);
  }

  const aggregate = input.aggregate.join(", ");
  // The guard flows only make the NetFlow v9 packet readable; keep them out.
  const filter = `not (src net ${GUARD_NET})`;
  const lines = [
    "! Generated by tests/_pmacct.ts",
    "daemonize: false",
    `logfile: ${input.logPath}`,
    `nfacctd_ip: 127.0.0.1`,
    `nfacctd_port: ${input.port}`,
    `timestamps_utc: ${input.utc}`,
    `plugins: ${k ? "kafka[k], " : ""}print[p]`,
  ];
  if (k) {
    lines.push(
      `aggregate[k]: ${aggregate}`,
      `aggregate_filter[k]: ${filter}`,
      ...kafkaBrokerLines(k.brokers),
      `kafka_topic[k]: ${k.topic}`,
      "kafka_output[k]: json",
      `kafka_refresh_time[k]: ${input.refreshTimeSec}`,
      `kafka_history[k]: ${input.history}`,
      `kafka_history_roundoff[k]: ${input.historyRoundoff}`,
      `kafka_markers[k]: ${k.markers ?? false}`,
    );
    if ((k.multiValues ?? 0) > 0) lines.push(`kafka_multi_values[k]: ${k.multiValues}`);
  }
  lines.push(
    `aggregate[p]: ${aggregate}`,
    `aggregate_filter[p]: ${filter}`,
    "print_output[p]: json",
    `print_output_file[p]: ${input.printOutputPath}`,
    "print_output_file_append[p]: true",
    `print_refresh_time[p]: ${input.refreshTimeSec}`,
    `print_history[p]: ${input.history}`,
    `print_history_roundoff[p]: ${input.historyRoundoff}`,
    `print_markers[p]: ${input.printMarkers}`,
  );
  for (const [key, value] of Object.entries(input.extraConfig ?? {})) {
    lines.push(`${key}: ${value}`);
  }
  return lines.join("\n") + "\n";
}

/** Keeps the last `max` bytes a child writes, draining the pipe so it never blocks. */
class OutputTail {
  #chunks: Uint8Array[] = [];
  #size = 0;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>, readonly max = 64 * 1024) {
    this.done = (async () => {
      for await (const chunk of stream) {
        this.#chunks.push(chunk);
        this.#size += chunk.length;
        while (this.#size > this.max && this.#chunks.length > 1) {
          this.#size -= this.#chunks.shift()!.length;
        }
      }
    })().catch(() => {});
  }

  text(): string {
    const all = new Uint8Array(this.#size);
    let at = 0;
    for (const c of this.#chunks) {
      all.set(c, at);
      at += c.length;
    }
    return decoder.decode(all);
  }
}

function lastLines(text: string, n: number): string {
  return text.split("\n").filter((l) => l.trim() !== "").slice(-n).join("\n");
}

async function readTextOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return fallback;
    throw error;
  }
}

/** Environment variable that marks every process of one nfacctd run. */
const RUN_MARKER = "SLUICE_NFACCTD_RUN";

/** State letter of a process from `/proc/<pid>/stat`, or undefined when gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // "pid (comm) state ...": comm may contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** Whether a process still runs; a zombie (exited, not reaped) does not. */
function alive(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== "Z" && state !== "X";
}

/**
 * Live processes of one run: nfacctd forks plugins and, at every refresh,
 * writer processes that may outlive the core; all inherit the marker
 * variable, which finds them even once orphaned.
 */
function runProcesses(marker: string): number[] {
  const needle = encoder.encode(`${RUN_MARKER}=${marker}\0`);
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid) continue;
    let environ: Uint8Array;
    try {
      environ = Deno.readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // gone, or not ours to read
    }
    if (indexOf(environ, needle) >= 0 && alive(pid)) pids.push(pid);
  }
  return pids;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts nfacctd in the foreground, listening for NetFlow/IPFIX on
 * 127.0.0.1, with a print plugin and optionally a Kafka plugin, and waits
 * until the core and the plugins are ready.
 *
 * @param options What to run; see {@link NfacctdOptions}.
 * @returns The running nfacctd; stop it with {@link Nfacctd.stop}.
 * @throws {RangeError} When an option is invalid.
 * @throws {Error} When nfacctd exits or is not ready in time; the message
 *   carries the tail of its log.
 */
export async function startNfacctd(options: NfacctdOptions = {}): Promise<Nfacctd> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "sluice_nfacctd_" });
  const configPath = join(dir, "nfacctd.conf");
  const logPath = join(dir, "nfacctd.log");
  const printOutputPath = join(dir, "print.jsonl");
  const binary = options.binary ?? "nfacctd";
  const marker = `${Deno.pid}-${crypto.randomUUID()}`;
  let port: number, config: string, child: Deno.ChildProcess;
  try {
    port = options.port ?? await freeUdpPort();
    config = nfacctdConfig({
      port,
      logPath,
      printOutputPath,
      aggregate: options.aggregate ?? DEFAULT_AGGREGATE,
      history: options.history ?? "5m",
      historyRoundoff: options.historyRoundoff ?? "m",
      refreshTimeSec: options.refreshTimeSec ?? 1,
      printMarkers: options.printMarkers ?? false,
      utc: options.utc ?? true,
      kafka: options.kafka,
      extraConfig: options.extraConfig,
    });
    await Deno.writeTextFile(configPath, config);
    // A reused directory must not show the previous run's log or records.
    for (const stale of [logPath, printOutputPath]) await Deno.remove(stale).catch(() => {});
    try {
      child = new Deno.Command(binary, {
        args: ["-f", configPath],
        env: { [RUN_MARKER]: marker },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new Error(`Cannot start nfacctd: cannot run "${binary}": ${(error as Error).message}`, {
        cause: error,
      });
    }
  } catch (error) {
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  const out = new OutputTail(child.stdout);
  const err = new OutputTail(child.stderr);
  let status: Deno.CommandStatus | undefined;
  const exited = child.status.then((s) => (status = s));

  const logTail = async (lines = 30): Promise<string> => {
    // Leave out the long line of build options nfacctd logs at start.
    const log = lastLines((await readTextOr(logPath, "")).replace(/^.*'--build=.*$/gm, ""), lines);
    const own = lastLines(out.text() + "\n" + err.text(), lines);
    return [
      `--- ${logPath} ---`,
      log || "(empty)",
      "--- nfacctd stdout/stderr ---",
      own || "(empty)",
    ].join("\n");
  };

  let stopped: Promise<void> | undefined;
  const stop = (timeoutMs = 20_000): Promise<void> => {
    stopped ??= (async () => {
      if (status === undefined) {
        try {
          child.kill("SIGINT");
        } catch { /* already gone */ }
      }
      // The core exits first; plugin writers may still be flushing to Kafka.
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && (status === undefined || runProcesses(marker).length > 0)) {
        await sleep(100);
      }
      const left = runProcesses(marker);
      if (status === undefined || left.length > 0) {
        for (const pid of status === undefined ? [child.pid, ...left] : left) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone meanwhile */ }
        }
        await exited;
        await Promise.all([out.done, err.done]);
        throw new Error(
          `Cannot stop nfacctd: still running ${timeoutMs} ms after SIGINT, killed ${
            status === undefined ? "the core and " : ""
          }pids [${left.join(", ")}]\n${await logTail()}`,
        );
      }
      await Promise.all([out.done, err.done]);
      if (!status.success) {
        throw new Error(
          `Cannot stop nfacctd: it exited with code ${status.code}\n${await logTail()}`,
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

  const handle: Nfacctd = {
    pid: child.pid,
    port,
    dir,
    configPath,
    config,
    logPath,
    printOutputPath,
    logTail,
    running: () => status === undefined,
    stop,
    close,
    [Symbol.asyncDispose]: () => close().catch(() => {}),
  };

  // Ready when the core listens and each plugin has been through its first
  // refresh: only then is its wake-up flag armed (see the module doc).
  const plugins = options.kafka ? ["k/kafka", "p/print"] : ["p/print"];
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const waitMs = startTimeoutMs + (options.refreshTimeSec ?? 1) * 1000;
  const deadline = Date.now() + waitMs;
  let failure: string | undefined;
  try {
    while (failure === undefined) {
      const log = await readTextOr(logPath, "");
      const ready = log.includes(`waiting for NetFlow/IPFIX data on 127.0.0.1:${port}`) &&
        plugins.every((p) => log.includes(`INFO ( ${p} ): *** Purging cache - START`));
      if (ready) return handle;
      if (status !== undefined) {
        await Promise.all([out.done, err.done]);
        failure = `it exited with code ${status.code}`;
      } else if (Date.now() > deadline) failure = `not ready after ${waitMs} ms`;
      else await sleep(50);
    }
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  const tail = await logTail();
  await close().catch(() => {});
  throw new Error(`Cannot start nfacctd: ${failure}\n${tail}`);
}

/**
 * The guard flows put in front of a NetFlow v9 replay: {@link GUARD_FLOWS}
 * one-packet UDP flows from {@link GUARD_NET}, all before `beforeSec`, so
 * softflowd exports them first, in one data FlowSet of softflowd's first
 * (template-carrying) packet, which gives that packet enough records for
 * nfacctd to read all its FlowSets.
 *
 * @param beforeSec Unix time of the first real packet.
 * @returns Flow specs for {@link makeCapture}.
 */
export function guardFlows(beforeSec: number): FlowSpec[] {
  return Array.from({ length: GUARD_FLOWS }, (_, i) => ({
    src: `198.18.0.${i + 1}`,
    dst: "198.18.255.254",
    srcPort: 9,
    dstPort: 9,
    proto: "udp" as const,
    packets: 1,
    bytesPerPacket: 28,
    // Expiry order is by the last packet's second: 2 s earlier is always first.
    startSec: Math.floor(beforeSec) - 2,
  }));
}

/**
 * Whether a pmacct record, or a flow, belongs to the guard flows.
 *
 * @param record A pmacct record (`ip_src`) or an expected flow (`src`).
 * @returns `true` for guard traffic.
 */
export function isGuard(record: Readonly<Record<string, unknown>>): boolean {
  const src = record.ip_src ?? record.src;
  return typeof src === "string" && /^198\.1[89]\./.test(src);
}

/** Equal timeouts make softflowd's export order "by last packet second". */
const SOFTFLOWD_TIMEOUTS = ["tcp", "tcp.rst", "tcp.fin", "udp", "icmp", "general"]
  .flatMap((name) => ["-t", `${name}=3600`]).concat(["-t", "maxlife=0"]);

/**
 * Replays a capture file with softflowd to nfacctd at 127.0.0.1:`port` and
 * waits for softflowd to exit. softflowd reads the whole file (`-r`, with
 * `-a` so the flow times are the capture's), then expires every flow at
 * end of file and sends them all. For NetFlow v9 the guard flows are put in
 * front of the capture first (see the module documentation).
 *
 * @param capturePath The `.pcap` file.
 * @param port nfacctd's UDP port.
 * @param options Protocol version, guard, timeout.
 * @returns softflowd's statistics.
 * @throws {Error} When softflowd fails, times out, or reports export failures;
 *   the message carries its output.
 */
export async function replayCapture(
  capturePath: string,
  port: number,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const version = options.version ?? 9;
  const guard = version === 9 && (options.guard ?? true);
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "sluice_softflowd_" });
  const timeoutMs = options.timeoutMs ?? 30_000;
  try {
    let input = capturePath;
    if (guard) {
      const original = await Deno.readFile(capturePath);
      const first = parseCapture(original).packets.reduce(
        (min, p) => Math.min(min, p.sec + p.usec / 1e6),
        Infinity,
      );
      if (!Number.isFinite(first)) {
        throw new Error(`Cannot replay capture: "${capturePath}" has no packets`);
      }
      input = join(dir, "guarded.pcap");
      await Deno.writeFile(input, concatCaptures(makeCapture(guardFlows(first)), original));
    }
    const args = [
      "-a",
      "-r",
      input,
      "-n",
      `127.0.0.1:${port}`,
      "-v",
      String(version),
      // softflowd unlinks its pid file at exit, even when it did not write one.
      "-p",
      join(dir, "softflowd.pid"),
      ...SOFTFLOWD_TIMEOUTS,
    ];
    const binary = options.binary ?? "softflowd";
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "piped" })
        .spawn();
    } catch (error) {
      throw new Error(
        `Cannot replay capture: cannot run "${binary}": ${(error as Error).message}`,
        { cause: error },
      );
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }, timeoutMs);
    const result = await child.output().finally(() => clearTimeout(timer));
    const output = decoder.decode(result.stdout) + decoder.decode(result.stderr);
    const describe = `softflowd ${args.join(" ")}\n${output}`;
    if (!result.success) {
      throw new Error(
        `Cannot replay capture: softflowd exited with ${
          result.signal ?? `code ${result.code}`
        }\n${describe}`,
      );
    }
    const num = (re: RegExp): number | undefined => {
      const m = re.exec(output);
      return m ? Number(m[1]) : undefined;
    };
    const exported = /Flows exported: (\d+) \((\d+) records\) in (\d+) packets \((\d+) failures\)/
      .exec(output);
    const packetsProcessed = num(/Packets processed: (\d+)/);
    if (!exported || packetsProcessed === undefined) {
      throw new Error(`Cannot replay capture: no statistics in softflowd's output\n${describe}`);
    }
    const [flowsExported, records, datagrams, failures] = exported.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    const active = num(/Number of active flows: (\d+)/) ?? 0;
    if (failures > 0 || active > 0) {
      throw new Error(
        `Cannot replay capture: softflowd left ${active} flows and had ${failures} send failures\n${describe}`,
      );
    }
    return {
      packetsProcessed,
      flowsExported,
      records,
      datagrams,
      guardFlows: guard ? GUARD_FLOWS : 0,
      output,
    };
  } finally {
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Reads JSON-lines output of pmacct (the print plugin's file, or Kafka
 * messages joined with newlines). A last line without its newline is
 * skipped: the writer may still be writing it.
 *
 * @param path The file; a missing file reads as no records.
 * @returns Every JSON object, markers included, in file order.
 * @throws {SyntaxError} When a complete line is not a JSON object.
 */
export async function readPrintOutput(path: string): Promise<PmacctRecord[]> {
  const text = await readTextOr(path, "");
  const complete = text.endsWith("\n") ? text : text.slice(0, text.lastIndexOf("\n") + 1);
  return parseJsonLines(complete, path);
}

/**
 * Parses newline-separated JSON objects (one pmacct message or file).
 *
 * @param text The text; blank lines are ignored.
 * @param source Named in errors.
 * @returns The objects.
 * @throws {SyntaxError} When a line is not a JSON object.
 */
export function parseJsonLines(text: string, source = "input"): PmacctRecord[] {
  const records: PmacctRecord[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new SyntaxError(
        `Cannot read pmacct output: ${source} line ${i + 1} is not JSON: ${line.slice(0, 200)}`,
        {
          cause: error,
        },
      );
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new SyntaxError(
        `Cannot read pmacct output: ${source} line ${i + 1} is not an object: ${
          line.slice(0, 200)
        }`,
      );
    }
    records.push(value as PmacctRecord);
  }
  return records;
}

/**
 * The key of a pmacct flow record, comparable with {@link flowKey} of an
 * {@link ExpectedFlow}.
 *
 * @param record A record with `ip_src`, `ip_dst`, `port_src`, `port_dst`, `ip_proto`.
 * @returns The key.
 * @throws {TypeError} When a field is missing.
 */
export function recordFlowKey(record: PmacctRecord): string {
  const { ip_src, ip_dst, port_src, port_dst, ip_proto } = record;
  if (
    typeof ip_src !== "string" || typeof ip_dst !== "string" || typeof port_src !== "number" ||
    typeof port_dst !== "number" || typeof ip_proto !== "string"
  ) {
    throw new TypeError(
      `Cannot key pmacct record: 5-tuple fields missing in ${JSON.stringify(record)}`,
    );
  }
  return flowKey({
    src: ip_src,
    dst: ip_dst,
    srcPort: port_src,
    dstPort: port_dst,
    proto: ip_proto,
  });
}

/**
 * Sums packets and bytes of flow records (`event_type` `purge`) per 5-tuple,
 * over all time bins and purges; markers and guard flows are left out.
 *
 * @param records pmacct records.
 * @returns Totals by {@link recordFlowKey}.
 * @throws {TypeError} When a flow record lacks its 5-tuple or counters.
 */
export function sumByFlow(records: readonly PmacctRecord[]): Map<string, FlowTotals> {
  const totals = new Map<string, FlowTotals>();
  for (const record of records) {
    if (record.event_type !== "purge" || isGuard(record)) continue;
    const key = recordFlowKey(record);
    const { packets, bytes } = record;
    if (typeof packets !== "number" || typeof bytes !== "number") {
      throw new TypeError(
        `Cannot sum pmacct record: "packets"/"bytes" missing in ${JSON.stringify(record)}`,
      );
    }
    const t = totals.get(key) ?? { packets: 0, bytes: 0, records: 0 };
    t.packets += packets;
    t.bytes += bytes;
    t.records += 1;
    totals.set(key, t);
  }
  return totals;
}

/**
 * Compares expected flows with summed totals.
 *
 * @param expected From {@link expectedFlows}.
 * @param actual From {@link sumByFlow}.
 * @returns One line per missing, unexpected or different flow; empty when equal.
 */
export function diffFlows(
  expected: readonly ExpectedFlow[],
  actual: ReadonlyMap<string, FlowTotals>,
): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const flow of expected) {
    const key = flowKey(flow);
    seen.add(key);
    const got = actual.get(key);
    if (!got) problems.push(`missing ${key} (${flow.packets} packets, ${flow.bytes} bytes)`);
    else if (got.packets !== flow.packets || got.bytes !== flow.bytes) {
      problems.push(
        `${key}: expected ${flow.packets} packets ${flow.bytes} bytes, got ${got.packets} packets ${got.bytes} bytes`,
      );
    }
  }
  for (const [key, got] of actual) {
    if (!seen.has(key)) {
      problems.push(`unexpected ${key} (${got.packets} packets, ${got.bytes} bytes)`);
    }
  }
  return problems;
}

/**
 * Polls the print plugin's output until it holds exactly the expected flows
 * (packets and bytes per 5-tuple), i.e. pmacct has purged them.
 *
 * @param nfacctd The running nfacctd.
 * @param expected From {@link expectedFlows}.
 * @param options Timeout and poll interval.
 * @returns All records of the print output at that moment.
 * @throws {Error} On timeout, when nfacctd exits, or when more than expected
 *   arrived; the message lists the differences and the log tail.
 */
export async function waitForFlows(
  nfacctd: Nfacctd,
  expected: readonly ExpectedFlow[],
  options: WaitOptions = {},
): Promise<PmacctRecord[]> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const wanted = new Map(expected.map((flow) => [flowKey(flow), flow]));
  for (;;) {
    const records = await readPrintOutput(nfacctd.printOutputPath);
    const totals = sumByFlow(records);
    const problems = diffFlows(expected, totals);
    if (problems.length === 0) return records;
    // Counters only grow: more than expected will not get better by waiting.
    const excess = [...totals].some(([key, got]) => {
      const want = wanted.get(key);
      return !want || got.packets > want.packets || got.bytes > want.bytes;
    });
    const why = excess
      ? "more than expected arrived"
      : !nfacctd.running()
      ? "nfacctd exited"
      : Date.now() > deadline
      ? `not all flows arrived within ${timeoutMs} ms`
      : undefined;
    if (why) {
      const shown = problems.slice(0, 20).join("\n");
      const more = problems.length > 20 ? `\n... and ${problems.length - 20} more` : "";
      const tail = await nfacctd.logTail();
      throw new Error(
        `Cannot wait for pmacct flows: ${why}; ${problems.length} differences:\n${shown}${more}\n${tail}`,
      );
    }
    await sleep(options.intervalMs ?? 250);
  }
}

/** Options of {@link runNetflowPipeline}. */
export interface PipelineOptions extends NfacctdOptions, WaitOptions {
  /** softflowd options. */
  replay?: Omit<ReplayOptions, "dir">;
}

/** What {@link runNetflowPipeline} observed. */
export interface PipelineResult {
  /** softflowd's statistics. */
  replay: ReplayResult;
  /** The print plugin's records after nfacctd stopped (markers included). */
  printRecords: PmacctRecord[];
  /** The nfacctd configuration used. */
  config: string;
  /** nfacctd's log (its directory is deleted afterwards). */
  log: string;
}

/**
 * The whole producer side in one call: writes the capture of `flows`,
 * starts nfacctd, replays the capture with softflowd, waits until the print
 * plugin reports exactly the expected flows, stops nfacctd (which makes the
 * Kafka plugin purge too) and returns the print plugin's records. When the
 * wait times out, the print output after the stop must hold exactly the
 * expected flows instead (see the module doc on lost wake-ups).
 *
 * @param capture The `.pcap` bytes, e.g. from {@link makeCapture}.
 * @param expected From {@link expectedFlows} of the same flows.
 * @param options nfacctd, softflowd and waiting options.
 * @returns softflowd's statistics and pmacct's records.
 * @throws {Error} When any step fails; nfacctd is stopped in any case.
 */
export async function runNetflowPipeline(
  capture: Uint8Array,
  expected: readonly ExpectedFlow[],
  options: PipelineOptions = {},
): Promise<PipelineResult> {
  const nfacctd = await startNfacctd(options);
  try {
    const capturePath = join(nfacctd.dir, "capture.pcap");
    await Deno.writeFile(capturePath, capture);
    const replay = await replayCapture(capturePath, nfacctd.port, {
      ...options.replay,
      dir: nfacctd.dir,
    });
    let waitError: unknown;
    try {
      await waitForFlows(nfacctd, expected, options);
    } catch (error) {
      // Records whose wake-up was lost (module doc) reach the plugins when
      // nfacctd stops: judge by the output after the stop.
      waitError = error;
    }
    try {
      await nfacctd.stop();
    } catch (error) {
      throw waitError ?? error;
    }
    const printRecords = await readPrintOutput(nfacctd.printOutputPath);
    if (waitError !== undefined && diffFlows(expected, sumByFlow(printRecords)).length > 0) {
      throw waitError;
    }
    const log = await readTextOr(nfacctd.logPath, "");
    return { replay, printRecords, config: nfacctd.config, log };
  } finally {
    await nfacctd[Symbol.asyncDispose]();
  }
}
