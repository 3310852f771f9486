/**
 * sluice end to end against the real Kafka broker and the real
 * VictoriaMetrics started by scripts/services.sh (1.79.5, `-retentionPeriod=100y`):
 * what is stored, what is set aside, and delivery while the server is down.
 * Every test writes under its own `job`, so its series are its own.
 *
 * @module
 */

import { flowRecord } from "../_flows.ts";
import { Logger } from "../../lib/log.ts";
import { TimeReader } from "../../lib/time.ts";
import { VarReader } from "../../lib/variables.ts";
import { parseVictoriaMetricsConfig, VICTORIAMETRICS } from "../../sinks/victoriametrics/config.ts";
import { VictoriaMetricsSink } from "../../sinks/victoriametrics/mod.ts";
import { allCommitted, createTopic, offsets, produce } from "../_kafka.ts";
import { kafkaBrokers, services, uniqueName, victoriaMetricsUrl } from "../_services.ts";
import { runToExit, startSluice, stopQuietly, stopSluice, waitFor } from "../_sluice.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../_assert.ts";

const VM = victoriaMetricsUrl();
/** A window wide enough for the fixed old timestamps below. */
const HUNDRED_YEARS = String(100 * 365 * 86400);

/** A pmacct-like record with a unique `seq` (so each record is its own series). */
function record(seq: number, stampUpdated: string): Record<string, unknown> {
  return flowRecord(seq, { writer_id: "default_kafka/18604", stamp_updated: stampUpdated });
}

/** One stored sample, in a form that compares: metric name, sorted labels, time, value. */
type Sample = [string, string, number, number];

/**
 * The samples a record should give with the default settings: its
 * `bytes` and `packets` at `ms`, labelled with job, instance and every
 * field except the avoided ones (written out here, not computed by sluice's code).
 */
function expectedSamples(r: Record<string, unknown>, job: string, ms: number): Sample[] {
  const labels = {
    job,
    instance: "it",
    seq: String(r.seq),
    ip_src: String(r.ip_src),
    ip_dst: String(r.ip_dst),
    port_src: String(r.port_src),
    port_dst: String(r.port_dst),
    ip_proto: String(r.ip_proto),
  };
  return (["bytes", "packets"] as const).map((
    name,
  ) => [name, sortedJson(labels), ms, r[name] as number]);
}

function sortedJson(labels: Record<string, string>): string {
  return JSON.stringify(
    Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1)),
  );
}

function sortSamples(samples: Sample[]): Sample[] {
  return samples.sort((a, b) => {
    const x = `${a[0]} ${a[1]} ${a[2]} ${a[3]}`, y = `${b[0]} ${b[1]} ${b[2]} ${b[3]}`;
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Every sample stored under `job`, duplicates included, via `/api/v1/export`. */
async function exportSamples(job: string): Promise<Sample[]> {
  // Imported rows become searchable after an in-memory flush (about a second); force it.
  await (await fetch(`${VM}/internal/force_flush`)).body?.cancel();
  const params = new URLSearchParams({ "match[]": `{job=${JSON.stringify(job)}}`, start: "0" });
  const response = await fetch(`${VM}/api/v1/export?${params}`);
  const text = await response.text();
  if (!response.ok) throw new Error(`Cannot export job ${job}: HTTP ${response.status} ${text}`);
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const { metric, values, timestamps } = JSON.parse(line) as {
      metric: Record<string, string>;
      values: number[];
      timestamps: number[];
    };
    const { __name__: name, ...labels } = metric;
    values.forEach((v, i) => samples.push([name!, sortedJson(labels), timestamps[i]!, v]));
  }
  return sortSamples(samples);
}

/** A fresh topic, group and job for one test, and the env that points sluice at them. */
async function fixture(extra: Record<string, string> = {}, partitions = 3) {
  const name = uniqueName("it_vm");
  await createTopic(name, partitions);
  const env: Record<string, string> = {
    SINK: "vm",
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    KAFKA_TOPIC: name,
    KAFKA_CONSUMER_GROUP_ID: `g_${name}`,
    VM_URL: VM,
    VM_JOB: name,
    VM_INSTANCE: "it",
    VM_TIMESTAMP_MAX_AGE: HUNDRED_YEARS,
    VM_MAX_SAMPLES_PER_SEND: "500",
    VM_MAX_TIME_TO_SEND: "1",
    // Short, so the tests need not wait 15 s for commits; tests/lib/pipeline_test.ts covers the delay.
    VM_COMMIT_DELAY: "2",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    ...extra,
  };
  return { topic: name, group: `g_${name}`, job: name, env };
}

/** `YYYY-MM-DD HH:MM:SS` of an instant in a zone, as pmacct writes local times. */
function localTime(ms: number, zone: string): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${
    get("second")
  }`;
}

Deno.test("sluice imports N records from Kafka as their exact series, values and ms timestamps, then commits", async () => {
  const f = await fixture({ PMACCT_TIMEZONE: "Europe/Berlin" });
  const n = 3000;
  // Three kinds of time: a fixed recent one, a fixed old one (Berlin winter and
  // summer time), with microseconds, and current ones in Berlin local time.
  const nowSecond = Math.floor(Date.now() / 1000) * 1000;
  const times: Array<[string, number]> = [
    ["2026-11-21 23:27:47", Date.UTC(2026, 10, 21, 22, 27, 47)],
    ["2021-07-01 12:00:00", Date.UTC(2021, 6, 1, 10, 0, 0)],
    ["2026-11-21 23:27:47.250999", Date.UTC(2026, 10, 21, 22, 27, 47, 250)],
  ];
  const records: Array<[Record<string, unknown>, number]> = [];
  for (let seq = 0; seq < n; seq++) {
    if (seq % 4 === 3) {
      const ms = nowSecond - (seq % 60) * 1000;
      records.push([record(seq, localTime(ms, "Europe/Berlin")), ms]);
    } else {
      const [text, ms] = times[seq % 4]!;
      records.push([record(seq, text), ms]);
    }
  }
  await produce(f.topic, records.map(([r]) => JSON.stringify(r)));
  const sluice = await startSluice(f.env);
  try {
    await waitFor(
      async () => (await sluice.metric("sluice_records_written_total")) === n,
      `${n} records written`,
    );
    const expected = sortSamples(records.flatMap(([r, ms]) => expectedSamples(r, f.job, ms)));
    const stored = await waitFor(async () => {
      const samples = await exportSamples(f.job);
      return samples.length >= expected.length ? samples : undefined;
    }, `${expected.length} samples in VictoriaMetrics`);
    assertStrictEquals(stored.length, 2 * n);
    assertEquals(stored, expected);
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    assertEquals(await sluice.metric("samples_count_total"), n);
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
    assertEquals(await sluice.metric("sluice_sink_up", { sink: "vm" }), 1);
    assert(
      await sluice.metric("sluice_batches_total", { sink: "vm", outcome: "written" }) >= n / 500,
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
  }
});

Deno.test("sluice sets aside a poison message and invalid metric values, counts them, and writes the rest", async () => {
  const f = await fixture({ VM_TIMESTAMP_MAX_AGE: "2678400" }, 1);
  const now = Date.now();
  const stamp = new Date(Math.floor(now / 1000) * 1000).toISOString().slice(0, 19).replace(
    "T",
    " ",
  );
  const ms = Math.floor(now / 1000) * 1000;
  const good = Array.from({ length: 200 }, (_, i) => record(i, stamp));
  const partial = { ...record(1000, stamp), packets: "n/a" };
  const values = [
    ...good.slice(0, 100).map((r) => JSON.stringify(r)),
    "{this is not json",
    JSON.stringify({ ...record(1001, stamp), bytes: "abc", packets: null }),
    JSON.stringify({ ...record(1002, stamp), bytes: Number.MAX_SAFE_INTEGER, packets: "1e999" }),
    JSON.stringify(record(1003, "2020-01-01 00:00:00")),
    JSON.stringify(record(1004, "2099-01-01 00:00:00")),
    JSON.stringify({ ...record(1005, stamp), ip_proto: "tcp\\ud800" }).replace(
      "\\\\ud800",
      "\\ud800",
    ),
    JSON.stringify(partial),
    ...good.slice(100).map((r) => JSON.stringify(r)),
  ];
  await produce(f.topic, values);
  const sluice = await startSluice(f.env);
  try {
    await waitFor(
      () => allCommitted(f.group, f.topic),
      "every offset committed, the poison's included",
    );
    assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "decode" }), 1);
    assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "convert" }), 4);
    assertEquals(await sluice.metric("sluice_records_written_total"), 202);
    const expected = sortSamples([
      ...good.flatMap((r) => expectedSamples(r, f.job, ms)),
      // 2^53 - 1 is stored exactly; only the infinite packets is set aside.
      expectedSamples({ ...record(1002, stamp), bytes: Number.MAX_SAFE_INTEGER }, f.job, ms)[0]!,
      expectedSamples(partial, f.job, ms)[0]!,
    ]);
    const stored = await waitFor(async () => {
      const samples = await exportSamples(f.job);
      return samples.length >= expected.length ? samples : undefined;
    }, `${expected.length} samples`);
    assertEquals(stored, expected);
    const reasons = sluice.logs.filter((l) => l["msg"] === "Record set aside").map((l) =>
      String(l["error"])
    );
    assert(reasons.some((e) => /no metric field has a number value/.test(e)), reasons.join("\n"));
    // Outside both the record-time window (1970 .. a day ahead by default)
    // and VictoriaMetrics' own bounds (31 days back, 600 s ahead): the reason
    // names the narrower bound, here VictoriaMetrics' on each side.
    const reasonFor = (stamp: string) => reasons.filter((e) => e.includes(`"${stamp}"`));
    assertEquals(reasonFor("2020-01-01 00:00:00").length, 1, reasons.join("\n"));
    assertMatch(
      reasonFor("2020-01-01 00:00:00")[0]!,
      /"2020-01-01 00:00:00" is \d+ s old, older than VM_TIMESTAMP_MAX_AGE \(2678400 s\)$/,
    );
    assertEquals(reasonFor("2099-01-01 00:00:00").length, 1, reasons.join("\n"));
    assertMatch(
      reasonFor("2099-01-01 00:00:00")[0]!,
      /"2099-01-01 00:00:00" is \d+ s in the future, more than VM_TIMESTAMP_MAX_FUTURE \(600 s\)/,
    );
    assert(reasons.some((e) => /lone surrogate/.test(e)));
    const setAside = sluice.logs.filter((l) => l["msg"] === "Metric fields set aside");
    assertEquals(setAside.map((l) => l["error"]).sort(), [
      'packets: "1e999" is beyond the range of a 64-bit float (about 1.8e308)',
      'packets: "n/a" is not a number',
    ]);
  } finally {
    await stopQuietly(sluice);
  }
});

Deno.test("sluice loses nothing when VictoriaMetrics is stopped mid-stream, and commits only after", async () => {
  const f = await fixture({ VM_MAX_SAMPLES_PER_SEND: "200", HEALTH_STALL_TIMEOUT: "5" });
  const stamp = "2026-11-21 23:27:47";
  const ms = Date.UTC(2026, 10, 21, 23, 27, 47);
  const messages = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => JSON.stringify(record(from + i, stamp)));
  const sluice = await startSluice(f.env);
  let vmDown = false;
  try {
    await produce(f.topic, messages(0, 1000));
    await waitFor(
      async () => (await sluice.metric("sluice_records_written_total")) === 1000,
      "the first 1000 records",
    );
    await services("stop", "victoriametrics");
    vmDown = true;
    await produce(f.topic, messages(1000, 3000));
    await waitFor(async () => (await sluice.metric("sluice_sink_up")) === 0, "sluice_sink_up 0");
    await new Promise((r) => setTimeout(r, 10_000));
    assert(
      await sluice.metric("sluice_sink_retries_total", { error_type: "network" }) > 0,
      "writes were retried",
    );
    const health = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
    assertEquals(health.status, 503, "/healthz reports the stall");
    await health.body?.cancel();
    const { committed } = await offsets(f.group, f.topic);
    const committedTotal = Object.values(committed).reduce((a, o) => a + Math.max(0, Number(o)), 0);
    assert(committedTotal <= 1000, `nothing unwritten was committed (${committedTotal})`);
    await services("start", "victoriametrics");
    vmDown = false;
    await waitFor(
      async () => (await sluice.metric("sluice_records_written_total")) >= 3000,
      "all 3000 records written after the restart",
      90_000,
    );
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    const expected = sortSamples(
      Array.from({ length: 3000 }, (_, i) => expectedSamples(record(i, stamp), f.job, ms)).flat(),
    );
    const stored = await waitFor(async () => {
      const samples = await exportSamples(f.job);
      return samples.length >= expected.length ? samples : undefined;
    }, `${expected.length} samples`);
    // A stop mid-request may store an import whose answer was lost: at least once.
    const distinct = sortSamples([...new Map(stored.map((s) => [s.join("\u0000"), s])).values()]);
    assertEquals(distinct, expected);
    assert(
      stored.length - expected.length <= 2 * 200,
      `duplicates bounded by one batch (${stored.length - expected.length})`,
    );
    assertEquals(await sluice.metric("sluice_sink_up"), 1);
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    if (vmDown) await services("start", "victoriametrics");
    await stopQuietly(sluice);
  }
});

Deno.test("sluice refuses to start when VictoriaMetrics does not serve VM_IMPORT_PATH", async () => {
  const f = await fixture({ VM_IMPORT_PATH: "/api/v1/imprt" });
  const out = await runToExit(f.env);
  assertStrictEquals(out.code, 1, out.stderr);
  const refused = out.logs.find((l) => l["msg"] === "Cannot start: the sink refused the setup");
  assertMatch(
    String(refused?.["error"]),
    /HTTP 400: .*unsupported path requested: "\/api\/v1\/imprt".*; the server does not serve this path; check VM_URL and VM_IMPORT_PATH/,
  );
});

Deno.test("VictoriaMetrics stores exactly the labels sluice encodes: renamed, escaped, Unicode", async () => {
  const job = uniqueName("it_vm_labels");
  const reader = new VarReader(
    { VM_URL: VM, VM_JOB: job, VM_INSTANCE: "it", VM_TIMESTAMP_MAX_AGE: HUNDRED_YEARS },
    VICTORIAMETRICS.specs,
  );
  const { config } = parseVictoriaMetricsConfig(reader);
  assertEquals(reader.problems, []);
  const sink = new VictoriaMetricsSink(config, {
    time: new TimeReader("UTC"),
    log: new Logger({ level: "error", write: () => {} }),
  });
  const origin = { topic: "t", partition: 0, offset: "0", index: 0 };
  const record = {
    stamp_updated: "2026-11-21 23:27:47",
    bytes: 1.5,
    packets: 0,
    job: "from-record",
    instance: "from-record",
    "mpls-label": 16,
    "1st": true,
    quote: 'say "hi" \\ and\nnewline',
    unicode: "Zürich ✓ 🙂",
    as_path: "65000 65001_65002",
    peer_ip_src: "",
    nothing: null,
  };
  try {
    await sink.connect();
    const prepared = sink.prepare(record, origin);
    assert(prepared.ok);
    await sink.write([{ row: prepared.row, bytes: prepared.bytes, origin }]);
    const expected = sortSamples(
      sink.encode([{ row: prepared.row, bytes: prepared.bytes, origin }]).map((line) => {
        const { metric, values, timestamps } = JSON.parse(line);
        const { __name__: name, ...labels } = metric;
        return [name, sortedJson(labels), timestamps[0], values[0]] as Sample;
      }),
    );
    const stored = await waitFor(async () => {
      const samples = await exportSamples(job);
      return samples.length >= 2 ? samples : undefined;
    }, "2 samples");
    assertEquals(stored, expected);
    assertEquals(JSON.parse(stored[0]![1]), {
      _1st: "true",
      as_path: "65000 65001_65002",
      exported_instance: "from-record",
      exported_job: "from-record",
      instance: "it",
      job,
      mpls_label: "16",
      quote: 'say "hi" \\ and\nnewline',
      unicode: "Zürich ✓ 🙂",
    });
  } finally {
    await sink.close();
  }
});

Deno.test("VictoriaMetrics answers 204 to lines it drops, which is why sluice checks them first", async () => {
  const job = uniqueName("it_vm_drops");
  const ms = Date.UTC(2026, 10, 21, 23, 27, 47);
  const line = (name: string, labels: Record<string, unknown>, value: unknown, ts: unknown = ms) =>
    JSON.stringify({
      metric: { __name__: name, job, ...labels },
      values: [value],
      timestamps: [ts],
    });
  const body = [
    line("kept", {}, 1),
    line("string_value", {}, "12"),
    line("null_value", {}, null),
    line("fraction_ms", {}, 1, ms + 0.5),
    line("too_far_ahead", {}, 1, Date.now() + 3 * 86400_000),
    line("number_label", { n: 5, e: "" }, 1),
  ].join("\n") + "\n";
  const response = await fetch(`${VM}/api/v1/import`, { method: "POST", body });
  await response.body?.cancel();
  assertStrictEquals(response.status, 204);
  const stored = await waitFor(async () => {
    const samples = await exportSamples(job);
    return samples.length >= 2 ? samples : undefined;
  }, "the kept samples");
  // Only two lines survive, and the numeric and empty labels vanished without a word.
  assertEquals(stored.map((s) => [s[0], JSON.parse(s[1])]), [
    ["kept", { job }],
    ["number_label", { job }],
  ]);
});
