/**
 * `summarizeProfile()` on hand-made profiles: self time from samples and
 * time deltas, the stage of each frame, builtins counted for their caller,
 * idle time outside the shares (`deno test -A tests/bench/profile_test.ts`).
 *
 * @module
 */

import { assertEquals, assertStrictEquals } from "../_assert.ts";
import {
  type CallFrame,
  type CpuProfile,
  mapToSource,
  type ProfileNode,
  summarizeProfile,
} from "../../bench/_profile.ts";

const REPO = "file:///work/sluice";
const KAFKAJS =
  `${REPO}/node_modules/.deno/kafkajs@2.2.4/node_modules/kafkajs/src/consumer/runner.js`;
const CLICKHOUSE_ENCODER = `${REPO}/node_modules/.deno/@clickhouse+client@1.23.1/node_modules/` +
  "@clickhouse/client/dist/utils/encoder.js";

function frame(functionName: string, url = "", lineNumber = -1): CallFrame {
  return { functionName, scriptId: "0", url, lineNumber, columnNumber: 0 };
}

function node(id: number, callFrame: CallFrame, children?: number[]): ProfileNode {
  return children === undefined ? { id, callFrame } : { id, callFrame, children };
}

/**
 * A profile whose samples last 1 ms each: sample i's top frame is `ids[i]`.
 */
function profileOf(nodes: ProfileNode[], ids: number[]): CpuProfile {
  return {
    nodes,
    startTime: 5_000,
    endTime: 5_000 + 100 + ids.length * 1000,
    samples: ids,
    timeDeltas: ids.map((_, i) => i === 0 ? 100 : 1000),
  };
}

/** Milliseconds per stage, the stages with none left out. */
function stageMs(profile: CpuProfile): Record<string, number> {
  return Object.fromEntries(
    summarizeProfile(profile).stages.filter((s) => s.ms > 0).map((s) => [s.stage, s.ms]),
  );
}

const TINY = profileOf([
  node(1, frame("(root)"), [2, 3, 4]),
  node(2, frame("(idle)")),
  node(3, frame("(garbage collector)")),
  node(4, frame("encodeLines", `${REPO}/sinks/clickhouse/encode.ts`, 145), [5]),
  node(5, frame("stringify")),
], [2, 5, 5, 4, 3, 2]);

Deno.test("summarizeProfile() counts stringify under a body encoder as encode body, GC apart, idle outside the shares", () => {
  const summary = summarizeProfile(TINY);
  assertStrictEquals(summary.samples, 6);
  assertStrictEquals(summary.totalMs, 6);
  assertStrictEquals(summary.busyMs, 4);
  const byStage = Object.fromEntries(summary.stages.map((s) => [s.stage, s]));
  assertEquals(byStage["encode body"], { stage: "encode body", ms: 3, share: 0.75 });
  assertEquals(byStage["GC"], { stage: "GC", ms: 1, share: 0.25 });
  assertEquals(byStage["idle"], { stage: "idle", ms: 2, share: undefined });
  assertStrictEquals(byStage["other"]!.ms, 0);
  const shares = summary.stages.reduce((a, s) => a + (s.share ?? 0), 0);
  assertStrictEquals(shares, 1);
  assertEquals(summary.top, [
    {
      functionName: "stringify",
      location: "(native)",
      stage: "encode body",
      ms: 2,
      share: 0.5,
    },
    {
      functionName: "(garbage collector)",
      location: "(native)",
      stage: "GC",
      ms: 1,
      share: 0.25,
    },
    {
      functionName: "encodeLines",
      location: "sinks/clickhouse/encode.ts:146",
      stage: "encode body",
      ms: 1,
      share: 0.25,
    },
  ]);
});

Deno.test("summarizeProfile() is pure and deterministic", () => {
  const before = structuredClone(TINY);
  const first = summarizeProfile(TINY);
  assertEquals(summarizeProfile(TINY), first);
  assertEquals(TINY, before);
});

Deno.test("summarizeProfile() counts a builtin or Deno-internal frame for its nearest caller with a stage", () => {
  const profile = profileOf([
    node(1, frame("(root)"), [2, 8, 12, 15, 17, 20]),
    // kafkajs hands a batch to the pipeline, which decodes and prepares it.
    node(2, frame("fetch", KAFKAJS, 10), [3, 7]),
    node(3, frame("handle", `${REPO}/lib/pipeline/mod.ts`, 50), [4, 6]),
    node(4, frame("prepare", `${REPO}/sinks/clickhouse/mod.ts`, 180), [5]),
    // The converter compiled in encode.ts stringifies a row to count its bytes.
    node(5, frame("", `${REPO}/sinks/clickhouse/encode.ts`, 109), [16]),
    node(16, frame("stringify")),
    node(6, frame("decodePmacct", `${REPO}/lib/decode/pmacct.ts`, 20)),
    // kafkajs's gzip codec decompresses with node:zlib.
    node(7, frame("unzip", "ext:deno_node/_zlib.mjs", 300)),
    // The request body is gzipped, its JSON serialised by @clickhouse/client.
    node(8, frame("insert", `${REPO}/sinks/clickhouse/client.ts`, 70), [9, 10]),
    node(9, frame("gzip", "ext:deno_node/_zlib.mjs", 200)),
    node(10, frame("encodeValues", CLICKHOUSE_ENCODER, 15), [11]),
    node(11, frame("stringify")),
    // Deno's timers with no sluice frame above them, and V8 outside JavaScript.
    node(12, frame("processTimers", "ext:core/02_timers.js", 234), [13]),
    node(13, frame("render", `${REPO}/node_modules/prom-client/lib/registry.js`, 40), [14]),
    node(14, frame("join")),
    node(15, frame("(program)")),
    // InfluxDB prepares a record with a local closure named `encode` that
    // calls the line protocol; its write checks the body sent for collisions.
    node(17, frame("prepare", `${REPO}/sinks/influxdb/mod.ts`, 200), [18]),
    node(18, frame("encode", `${REPO}/sinks/influxdb/encode.ts`, 307), [19]),
    node(19, frame("encodePoint", `${REPO}/sinks/influxdb/line_protocol.ts`, 305)),
    node(20, frame("write", `${REPO}/sinks/influxdb/mod.ts`, 230), [21]),
    node(21, frame("overwrittenLines", `${REPO}/sinks/influxdb/encode.ts`, 342)),
  ], [16, 6, 7, 9, 11, 11, 12, 14, 15, 5, 5, 3, 18, 19, 21]);
  assertEquals(stageMs(profile), {
    "fetch + decompress": 1,
    decode: 1,
    "prepare (convert)": 4,
    "encode body": 4,
    "batch + pipeline": 1,
    "send (HTTP client, compression)": 1,
    "metrics + logs": 1,
    other: 2,
  });
  const summary = summarizeProfile(profile, 2);
  assertEquals(summary.top.map((f) => [f.functionName, f.location, f.stage]), [
    ["stringify", "(native)", "encode body"],
    ["(anonymous)", "sinks/clickhouse/encode.ts:110", "prepare (convert)"],
  ]);
});

Deno.test("summarizeProfile() falls back to hit counts without samples", () => {
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)"), hitCount: 0, children: [2, 3] },
      { id: 2, callFrame: frame("(idle)"), hitCount: 3 },
      { id: 3, callFrame: frame("decodePmacct", `${REPO}/lib/decode/pmacct.ts`, 1), hitCount: 1 },
    ],
    startTime: 0,
    endTime: 4_000,
  };
  const summary = summarizeProfile(profile);
  assertStrictEquals(summary.samples, 4);
  assertEquals(stageMs(profile), { decode: 1, idle: 3 });
  assertStrictEquals(summary.busyMs, 1);
});

Deno.test("mapToSource() moves a frame to its source position through the script's source map", () => {
  const url = `${REPO}/lib/json.ts`;
  const profile: CpuProfile = {
    nodes: [
      node(1, frame("(root)"), [2, 3]),
      node(2, { ...frame("parseJson", url, 1), columnNumber: 10, scriptId: "7" }),
      { ...node(3, { ...frame("other", `${REPO}/lib/log.ts`, 4), scriptId: "8" }), hitCount: 2 },
    ],
    startTime: 0,
    endTime: 1,
  };
  // Line 0: column 0 -> source line 5, column 0; line 1: column 4 -> source line 7, column 2.
  const maps = new Map([["7", { sources: [url], mappings: "AAKA;IAEE" }]]);
  const mapped = mapToSource(profile, maps);
  assertEquals(mapped.nodes[1]!.callFrame, {
    functionName: "parseJson",
    scriptId: "7",
    url,
    lineNumber: 7,
    columnNumber: 2,
  });
  assertStrictEquals(mapped.nodes[2], profile.nodes[2]);
  assertStrictEquals(profile.nodes[1]!.callFrame.lineNumber, 1);
});
