/**
 * A CPU profile of a running sluice, for `deno task bench --profile`, and
 * where its time goes, stage by stage.
 *
 * Deno has no `--cpu-prof`; sluice is started with
 * `--inspect=127.0.0.1:<port>` instead (not `--inspect-wait`, so it runs as
 * usual) and {@link startProfiler} drives V8's sampling profiler over the
 * Chrome DevTools Protocol: `GET /json/list` names the inspector's WebSocket,
 * then `Profiler.enable`, `Profiler.setSamplingInterval`, `Profiler.start`,
 * and `Profiler.stop` returns the profile
 * (https://chromedevtools.github.io/devtools-protocol/tot/Profiler/), written
 * as a `.cpuprofile` file that Chrome DevTools (Performance panel, "Load
 * profile") opens. Deno runs TypeScript transpiled, so V8's line numbers
 * are those of the emitted JavaScript; once the sampling stopped, the
 * debugger is enabled to get each script's source map and the file holds
 * the TypeScript positions ({@link mapToSource}).
 *
 * V8 samples the main JavaScript thread only: the CPU of Deno's other
 * threads (tokio's I/O, V8's concurrent compiler and GC helpers) is not in the
 * profile, and time the thread spends waiting in the event loop is `(idle)`.
 *
 * {@link summarizeProfile} is pure: self time per node from the samples and
 * their time deltas, grouped into the stages of one record's path
 * (`ARCHITECTURE.md`) by each frame's script and function; a frame of no
 * known stage (a builtin such as `JSON.stringify`, Deno's own `ext:` code,
 * a helper such as `lib/text.ts`) counts for the stage of its nearest caller
 * that has one.
 *
 * @module
 */

import { errorText } from "../lib/log.ts";
import { num, sleep, table } from "./_measure.ts";

// ---------------------------------------------------------------- profile format

/** Where a profile node's code is (CDP `Runtime.CallFrame`). */
export interface CallFrame {
  /** The function's name; `""` for an anonymous one, `(root)`, `(idle)` and the like for V8's own nodes. */
  functionName: string;
  scriptId: string;
  /** The script's URL; `""` for builtins and V8's own nodes. */
  url: string;
  /** 0-based; -1 when unknown. */
  lineNumber: number;
  /** 0-based; -1 when unknown. */
  columnNumber: number;
}

/** One node of the call tree (CDP `Profiler.ProfileNode`). */
export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  /** Samples whose top frame was this node. */
  hitCount?: number;
  /** The ids of the nodes it called. */
  children?: number[];
}

/** A CPU profile (CDP `Profiler.Profile`), as a `.cpuprofile` file holds it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds, on the profiler's clock. */
  startTime: number;
  /** Microseconds, on the profiler's clock. */
  endTime: number;
  /** The node id of each sample's top frame, in time order. */
  samples?: number[];
  /** Microseconds from the previous sample (the first: from `startTime`). */
  timeDeltas?: number[];
}

// ---------------------------------------------------------------- profiler

/** The sampling interval the benchmark asks for, in microseconds (V8's default is 1000). */
export const SAMPLING_INTERVAL_US = 200;

/**
 * A port nothing listens on now, for `--inspect=127.0.0.1:<port>`.
 *
 * @returns The port.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A started profiler: {@link Profiler.stop} ends it. */
export interface Profiler {
  /**
   * Stops sampling, maps the positions to the TypeScript sources, writes
   * the profile and disconnects.
   *
   * @param file Where to write it (`<dir>/<sink>-run<N>.cpuprofile`).
   * @returns The profile.
   * @throws {Error} When the inspector does not answer or the file cannot be written.
   */
  stop(file: string): Promise<CpuProfile>;
  /** Disconnects without a profile (after a failed run); never throws. */
  close(): void;
}

/** What {@link startProfiler} needs. */
export interface ProfilerOptions {
  /** Give up waiting for the inspector at this time (`Date.now()` milliseconds). */
  deadline: number;
  /** Whether the profiled process still runs (the wait ends early when not). */
  alive: () => boolean;
  /** Sampling interval in microseconds; {@link SAMPLING_INTERVAL_US} by default. */
  intervalUs?: number;
}

/** One message of the inspector: an answer (`id` with `result` or `error`) or an event (CDP JSON-RPC). */
interface Message {
  id?: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
  method?: string;
  params?: Record<string, unknown>;
}

/**
 * Connects to the V8 inspector of a process started with
 * `--inspect=127.0.0.1:<port>` and starts sampling.
 *
 * @param port The inspector's port.
 * @param options The deadline, the process's liveness, the interval.
 * @returns The profiler, sampling.
 * @throws {Error} When the inspector does not appear before the deadline or
 *   refuses a command.
 */
export async function startProfiler(port: number, options: ProfilerOptions): Promise<Profiler> {
  const base = `http://127.0.0.1:${port}`;
  // The inspector's HTTP side answers an empty list until the main module's
  // isolate registered, so ask until a target appears.
  let url: string | undefined;
  let lastError = "no target listed";
  while (url === undefined) {
    if (!options.alive()) throw new Error(`Cannot profile: the process exited before ${base}`);
    if (Date.now() > options.deadline) {
      throw new Error(`Cannot reach the V8 inspector at ${base}/json/list: ${lastError}`);
    }
    try {
      const list = await (await fetch(`${base}/json/list`)).json() as Array<
        { webSocketDebuggerUrl?: string }
      >;
      url = list.find((t) => typeof t.webSocketDebuggerUrl === "string")?.webSocketDebuggerUrl;
    } catch (error) {
      lastError = errorText(error);
    }
    if (url === undefined) await sleep(20);
  }

  const ws = new WebSocket(url);
  const pending = new Map<number, { resolve: (r: Message) => void; reject: (e: Error) => void }>();
  let onEvent: ((method: string, params: Record<string, unknown>) => void) | undefined;
  let closed: Error | undefined;
  const fail = (error: Error) => {
    closed ??= error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as Message;
    if (typeof message.id !== "number") {
      if (typeof message.method === "string") onEvent?.(message.method, message.params ?? {});
      return;
    }
    pending.get(message.id)?.resolve(message);
    pending.delete(message.id);
  };
  ws.onclose = () => fail(new Error(`The V8 inspector at ${url} closed the connection`));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (event) =>
      reject(
        new Error(
          `Cannot connect to the V8 inspector at ${url}: ${
            event instanceof ErrorEvent ? event.message : "WebSocket error"
          }`,
        ),
      );
  });
  ws.onerror = () => fail(new Error(`The V8 inspector connection at ${url} failed`));

  let nextId = 0;
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      if (closed) return reject(closed);
      const id = ++nextId;
      pending.set(id, {
        resolve: (reply) =>
          reply.error
            ? reject(new Error(`Cannot ${method}: ${reply.error.message} (${reply.error.code})`))
            : resolve(reply.result ?? {}),
        reject,
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const close = () => {
    try {
      ws.close();
    } catch {
      // Already closed.
    }
  };

  try {
    await send("Profiler.enable");
    await send("Profiler.setSamplingInterval", {
      interval: options.intervalUs ?? SAMPLING_INTERVAL_US,
    });
    await send("Profiler.start");
  } catch (error) {
    close();
    throw error;
  }
  return {
    async stop(file) {
      try {
        const { profile: raw } = await send("Profiler.stop") as { profile: CpuProfile };
        // Deno runs TypeScript transpiled, so V8's positions are the emitted
        // JavaScript's. The debugger, enabled only now (after the sampling),
        // reports every script with its source map (an inline `data:` URL).
        const wanted = new Set(
          raw.nodes.filter((n) => n.callFrame.url.startsWith("file:")).map((n) =>
            n.callFrame.scriptId
          ),
        );
        const maps = new Map<string, SourceMap>();
        onEvent = (method, params) => {
          const id = String(params["scriptId"]);
          const mapUrl = params["sourceMapURL"];
          if (method !== "Debugger.scriptParsed" || !wanted.has(id)) return;
          if (typeof mapUrl !== "string" || !mapUrl.startsWith("data:")) return;
          const map = parseDataSourceMap(mapUrl);
          if (map) maps.set(id, map);
        };
        // V8 sends scriptParsed for the scripts already loaded before it answers.
        await send("Debugger.enable");
        onEvent = undefined;
        await send("Debugger.disable");
        const profile = mapToSource(raw, maps);
        await Deno.writeTextFile(file, JSON.stringify(profile));
        return profile;
      } finally {
        close();
      }
    },
    close,
  };
}

// ---------------------------------------------------------------- source maps

/** The parts of a source map (v3) the profile needs. */
export interface SourceMap {
  sources: string[];
  /** Base64 VLQ segments, lines separated by `;` (https://tc39.es/ecma426/). */
  mappings: string;
}

/** A source map from an inline `data:application/json;base64,...` URL, or `undefined`. */
function parseDataSourceMap(url: string): SourceMap | undefined {
  try {
    const comma = url.indexOf(",");
    const body = url.slice(comma + 1);
    const text = url.slice(0, comma).endsWith(";base64")
      ? new TextDecoder().decode(Uint8Array.from(atob(body), (c) => c.charCodeAt(0)))
      : decodeURIComponent(body);
    const map = JSON.parse(text) as Partial<SourceMap>;
    return Array.isArray(map.sources) && typeof map.mappings === "string"
      ? { sources: map.sources, mappings: map.mappings }
      : undefined;
  } catch {
    return undefined;
  }
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * The segments of a source map's mappings, per generated line: `[generated
 * column, source index, source line, source column]`, columns ascending.
 */
function decodeMappings(mappings: string): Array<Array<[number, number, number, number]>> {
  const lines: Array<Array<[number, number, number, number]>> = [];
  let source = 0, sourceLine = 0, sourceColumn = 0;
  for (const text of mappings.split(";")) {
    const segments: Array<[number, number, number, number]> = [];
    let column = 0;
    for (const segment of text.split(",")) {
      if (segment === "") continue;
      const values: number[] = [];
      let value = 0, shift = 0;
      for (const char of segment) {
        const digit = BASE64.indexOf(char);
        value += (digit & 31) * 2 ** shift;
        if (digit & 32) shift += 5;
        else {
          values.push(value % 2 === 1 ? -(value - 1) / 2 : value / 2);
          value = 0;
          shift = 0;
        }
      }
      column += values[0] ?? 0;
      if (values.length < 4) continue;
      source += values[1]!;
      sourceLine += values[2]!;
      sourceColumn += values[3]!;
      segments.push([column, source, sourceLine, sourceColumn]);
    }
    lines.push(segments);
  }
  return lines;
}

/**
 * The profile with each frame's position moved from the emitted JavaScript
 * to the source (TypeScript) through its script's source map. Pure: frames
 * of scripts without a map, or at a position the map does not cover, stay
 * as they are.
 *
 * @param profile The profile as V8 gave it.
 * @param maps Source maps by script id.
 * @returns A new profile.
 */
export function mapToSource(profile: CpuProfile, maps: ReadonlyMap<string, SourceMap>): CpuProfile {
  const decoded = new Map<string, ReturnType<typeof decodeMappings>>();
  const nodes = profile.nodes.map((node) => {
    const frame = node.callFrame;
    const map = maps.get(frame.scriptId);
    if (map === undefined || frame.lineNumber < 0) return node;
    let lines = decoded.get(frame.scriptId);
    if (lines === undefined) decoded.set(frame.scriptId, lines = decodeMappings(map.mappings));
    const segments = lines[frame.lineNumber] ?? [];
    // The last segment starting at or before the column, else the line's first.
    const segment = segments.findLast((s) => s[0] <= frame.columnNumber) ?? segments[0];
    if (segment === undefined) return node;
    const source = map.sources[segment[1]];
    return {
      ...node,
      callFrame: {
        ...frame,
        url: source !== undefined && source.startsWith("file:") ? source : frame.url,
        lineNumber: segment[2],
        columnNumber: segment[3],
      },
    };
  });
  return { ...profile, nodes };
}

// ---------------------------------------------------------------- stages

/** The stages CPU time is grouped into, in report order. */
export const STAGES = [
  "fetch + decompress",
  "decode",
  "prepare (convert)",
  "encode body",
  "batch + pipeline",
  "send (HTTP client, compression)",
  "metrics + logs",
  "GC",
  "other",
  "idle",
] as const;

/** A stage of {@link STAGES}. */
export type Stage = (typeof STAGES)[number];

const FETCH: Stage = "fetch + decompress";
const PREPARE: Stage = "prepare (convert)";
const ENCODE: Stage = "encode body";
const PIPELINE: Stage = "batch + pipeline";
const SEND: Stage = "send (HTTP client, compression)";
const METRICS: Stage = "metrics + logs";

/** npm packages by stage; others take their caller's stage. */
const PACKAGE_STAGES: Record<string, Stage> = {
  "kafkajs": FETCH,
  "lz4js": FETCH,
  "snappyjs": FETCH,
  "fzstd": FETCH,
  "@clickhouse/client": SEND,
  "@clickhouse/client-common": SEND,
  "prom-client": METRICS,
  // prom-client's summaries.
  "tdigest": METRICS,
  "bintrees": METRICS,
};

/** sluice's own files by stage (paths from the repository root); others take their caller's. */
const FILE_STAGES: Array<[RegExp, Stage]> = [
  [/^lib\/(kafka|kafka_codecs|source)\.ts$/, FETCH],
  [/^lib\/(decode\/.*|json\.ts|decoder\.ts)$/, "decode"],
  [/^lib\/(time|fields)\.ts$/, PREPARE],
  [/^lib\/(batcher\.ts|ranges\.ts|retry\.ts|dead_letter\.ts|pipeline\/.*)$/, PIPELINE],
  [/^lib\/http\.ts$/, SEND],
  [/^sinks\/[^/]+\/client\.ts$/, SEND],
  [/^sinks\/influxdb\/line_protocol\.ts$/, ENCODE],
  [/^lib\/(metrics|log)\.ts$/, METRICS],
];

/** The sink contract's methods in `sinks/<name>/mod.ts` (`lib/sink.ts`). */
const SINK_METHOD_STAGES: Record<string, Stage> = {
  prepare: PREPARE,
  encode: ENCODE,
  write: SEND,
};

/**
 * An npm package's name and the file's path inside it, from a script URL:
 * `.../node_modules/.deno/kafkajs@2.2.4/node_modules/kafkajs/src/x.js` or
 * Deno's global cache `.../npm/<registry host>/kafkajs/2.2.4/src/x.js`.
 */
function npmFile(url: string): { name: string; path: string } | undefined {
  const at = url.lastIndexOf("/node_modules/");
  const local = at < 0 ? null : /^((?:@[^/]+\/)?[^/.][^/]*)\/(.*)$/.exec(url.slice(at + 14));
  if (local) return { name: local[1]!, path: local[2]! };
  const cached = /\/npm\/[^/]+\/((?:@[^/]+\/)?[^/]+)\/\d[^/]*\/(.*)$/.exec(url);
  return cached ? { name: cached[1]!, path: cached[2]! } : undefined;
}

/** A sluice file's path from the repository root, from a `file:` URL. */
function projectFile(url: string): string | undefined {
  if (!url.startsWith("file://") || npmFile(url) !== undefined) return undefined;
  const at = Math.max(url.lastIndexOf("/lib/"), url.lastIndexOf("/sinks/"));
  if (at >= 0) return url.slice(at + 1);
  const main = /\/(main\.ts)$/.exec(url);
  return main ? main[1] : undefined;
}

/** A function's name without its class (`Sink.prepare` is `prepare`). */
function baseName(functionName: string): string {
  return functionName.slice(functionName.lastIndexOf(".") + 1);
}

/**
 * The stage of one frame, given its caller's.
 *
 * @param frame The frame.
 * @param caller The stage of the calling node (`other` at the root).
 * @returns Its own stage, or the caller's when the frame has none.
 */
function frameStage(frame: CallFrame, caller: Stage): Stage {
  const { url, functionName } = frame;
  if (url === "") {
    // V8's own nodes; builtins such as `stringify` or `map` count for their caller.
    if (functionName === "(garbage collector)") return "GC";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(program)") return "other";
    return caller;
  }
  const pkg = npmFile(url);
  if (pkg !== undefined) {
    // @clickhouse/client serialises the JSONEachRow values itself
    // (NodeValuesEncoder.encodeValues -> encodeJSON -> JSON.stringify): that is the body.
    if (pkg.name.startsWith("@clickhouse/")) {
      if (/(^|\/)utils\/encoder\.js$/.test(pkg.path) || functionName === "encodeJSON") {
        return ENCODE;
      }
    }
    return PACKAGE_STAGES[pkg.name] ?? caller;
  }
  if (url.startsWith("ext:") || url.startsWith("node:")) {
    // Deno's zlib and CompressionStream: kafkajs's gzip codec decompresses
    // with node:zlib; everything else compresses a request body.
    if (/zlib|_compression\.js$/.test(url)) return caller === FETCH ? FETCH : SEND;
    return caller;
  }
  const file = projectFile(url);
  if (file === undefined) return caller;
  const rule = FILE_STAGES.find(([pattern]) => pattern.test(file));
  if (rule) return rule[1];
  if (/^sinks\/[^/]+\/encode\.ts$/.test(file)) {
    // The body encoders are the exported encodeLines/encodeBulk; the rest of
    // the file (the compiled converters, mostly anonymous or local closures
    // such as InfluxDB's `encode`) prepares records, except what an encoder
    // or a write calls (a `rows.map((r) => ...)` callback, InfluxDB's
    // overwrittenLines on the body sent).
    if (/^encode[A-Z]/.test(baseName(functionName))) return ENCODE;
    return caller === ENCODE || caller === SEND ? ENCODE : PREPARE;
  }
  if (/^sinks\/[^/]+\/mod\.ts$/.test(file)) {
    return SINK_METHOD_STAGES[baseName(functionName)] ?? caller;
  }
  return caller;
}

// ---------------------------------------------------------------- summary

/** The CPU time of one stage. */
export interface StageTime {
  stage: Stage;
  /** Self time of its frames, in milliseconds. */
  ms: number;
  /** Its part of the non-idle time (0..1); `undefined` for `idle`. */
  share: number | undefined;
}

/** The self time of one function, all its call sites together. */
export interface FunctionTime {
  /** Its name, `(anonymous)` for an anonymous one. */
  functionName: string;
  /** `file:line` (1-based), e.g. `lib/decode/pmacct.ts:120` or `kafkajs/src/x.js:5`; `(native)` for builtins. */
  location: string;
  /** Its stage (that of its callers, for a builtin). */
  stage: Stage;
  /** Milliseconds. */
  ms: number;
  /** Its part of the non-idle time (0..1). */
  share: number;
}

/** Where a profile's time went. */
export interface ProfileSummary {
  /** How many samples it holds. */
  samples: number;
  /** The sampled time, in milliseconds. */
  totalMs: number;
  /** The non-idle part of it: the sum of every stage but `idle`. */
  busyMs: number;
  /** Every stage of {@link STAGES}, in that order, idle included. */
  stages: StageTime[];
  /** The functions with the most self time (idle left out), most first. */
  top: FunctionTime[];
}

/** A script URL shortened for the report: a repository or package path, or the `ext:` URL. */
function shortUrl(url: string): string {
  const pkg = npmFile(url);
  if (pkg) return `${pkg.name}/${pkg.path}`;
  return projectFile(url) ?? url;
}

function locationOf(frame: CallFrame): string {
  if (frame.url === "") return "(native)";
  const file = shortUrl(frame.url);
  return frame.lineNumber >= 0 ? `${file}:${frame.lineNumber + 1}` : file;
}

/**
 * Self time per node in microseconds. Each sample lasts until the next one
 * (the last: until `endTime`), as Chrome DevTools counts it; a profile
 * without samples falls back to `hitCount` times the average interval.
 */
function selfTimes(profile: CpuProfile): { times: Map<number, number>; samples: number } {
  const times = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    let at = profile.startTime;
    const stamps = deltas.map((d) => at += d);
    for (let i = 0; i < samples.length; i++) {
      const next = i + 1 < stamps.length ? stamps[i + 1]! : Math.max(profile.endTime, stamps[i]!);
      // V8 may record a sample slightly out of order: never count negative time.
      const us = Math.max(0, next - stamps[i]!);
      times.set(samples[i]!, (times.get(samples[i]!) ?? 0) + us);
    }
    return { times, samples: samples.length };
  }
  const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const interval = hits > 0 ? (profile.endTime - profile.startTime) / hits : 0;
  for (const node of profile.nodes) {
    if (node.hitCount) times.set(node.id, node.hitCount * interval);
  }
  return { times, samples: hits };
}

/**
 * Where a CPU profile's time went: self time per stage and the functions
 * with the most self time. Pure and deterministic; the profile is not
 * changed.
 *
 * @param profile A profile from `Profiler.stop` (or a `.cpuprofile` file).
 * @param topCount How many functions to list.
 * @returns The stages in {@link STAGES} order, their shares of the non-idle
 *   time, and the top functions.
 */
export function summarizeProfile(profile: CpuProfile, topCount = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const called = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  // Each node's stage, from the roots down (iteratively: call trees can be deep).
  const stageOf = new Map<number, Stage>();
  const stack: Array<[ProfileNode, Stage]> = profile.nodes
    .filter((n) => !called.has(n.id))
    .map((n) => [n, "other"]);
  while (stack.length > 0) {
    const [node, caller] = stack.pop()!;
    if (stageOf.has(node.id)) continue;
    const stage = frameStage(node.callFrame, caller);
    stageOf.set(node.id, stage);
    for (const child of node.children ?? []) {
      const next = byId.get(child);
      if (next) stack.push([next, stage]);
    }
  }

  const { times, samples } = selfTimes(profile);
  const stageUs = new Map<Stage, number>(STAGES.map((s) => [s, 0]));
  const functions = new Map<string, { frame: CallFrame; stage: Stage; us: number }>();
  // In node order, so that ties and float sums come out the same every time.
  for (const node of profile.nodes) {
    const us = times.get(node.id);
    if (!us) continue;
    const stage = stageOf.get(node.id) ?? "other";
    stageUs.set(stage, stageUs.get(stage)! + us);
    if (stage === "idle") continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    // A builtin is listed once per stage that called it.
    const key = url === ""
      ? `${functionName}\0${stage}`
      : `${functionName}\0${url}\0${lineNumber}\0${columnNumber}`;
    const entry = functions.get(key);
    if (entry) entry.us += us;
    else functions.set(key, { frame: node.callFrame, stage, us });
  }

  const busyUs = STAGES.filter((s) => s !== "idle").reduce((a, s) => a + stageUs.get(s)!, 0);
  const totalUs = busyUs + stageUs.get("idle")!;
  const share = (us: number) => busyUs > 0 ? us / busyUs : 0;
  const top = [...functions.values()]
    .map((f) => ({
      functionName: f.frame.functionName === "" ? "(anonymous)" : f.frame.functionName,
      location: locationOf(f.frame),
      stage: f.stage,
      ms: f.us / 1000,
      share: share(f.us),
    }))
    .sort((a, b) =>
      b.ms - a.ms || a.location.localeCompare(b.location) ||
      a.functionName.localeCompare(b.functionName) || a.stage.localeCompare(b.stage)
    )
    .slice(0, topCount);
  return {
    samples,
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    stages: STAGES.map((stage) => ({
      stage,
      ms: stageUs.get(stage)! / 1000,
      share: stage === "idle" ? undefined : share(stageUs.get(stage)!),
    })),
    top,
  };
}

/**
 * The report of a summary: a table of the stages (CPU ms and share of the
 * non-idle time, their total, then idle apart) and one of the top functions.
 *
 * @param summary What {@link summarizeProfile} found.
 * @returns Both tables, as plain text.
 */
export function summaryTables(summary: ProfileSummary): string {
  const percent = (share: number) => `${num(share * 100, 1)}%`;
  const rows = summary.stages
    .filter((s) => s.stage !== "idle")
    .map((s) => [s.stage, num(s.ms), percent(s.share ?? 0)]);
  rows.push(["non-idle total", num(summary.busyMs), percent(summary.busyMs > 0 ? 1 : 0)]);
  const idle = summary.stages.find((s) => s.stage === "idle")?.ms ?? 0;
  rows.push(["idle (not in the shares)", num(idle), ""]);
  return table(["stage", "CPU ms", "share"], rows) +
    `\nTop ${summary.top.length} functions by self time (share of non-idle):\n\n` +
    table(
      ["function", "file:line", "stage", "ms", "share"],
      summary.top.map((f) => [f.functionName, f.location, f.stage, num(f.ms, 1), percent(f.share)]),
      { left: 3 },
    );
}
