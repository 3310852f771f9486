import { healthReport, Metrics, serveMetrics } from "../../lib/metrics.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const progressing = { ok: true, detail: { pending_rows: 0 } };

Deno.test("healthReport() is ok only when every service reported is up and the pipeline makes progress", () => {
  let now = 1_000_000;
  const metrics = new Metrics(() => now);
  assertEquals(healthReport(metrics, progressing, now).status, "ok");
  metrics.sinkReachable("clickhouse", false, "not connected yet");
  metrics.kafkaReachable(false, "connecting");
  now += 1500;
  const starting = healthReport(metrics, progressing, now);
  assertEquals(starting.status, "down");
  assertEquals(
    starting.reason,
    "sink down for 1.5 s: not connected yet; kafka down for 1.5 s: connecting",
  );
  assertEquals(starting.services["sink"], {
    up: false,
    for_seconds: 1.5,
    reason: "not connected yet",
  });
  metrics.sinkReachable("clickhouse", true);
  metrics.kafkaReachable(true);
  now += 2000;
  const up = healthReport(metrics, progressing, now);
  assertEquals([up.status, up.reason, up.services["kafka"]], [
    "ok",
    undefined,
    { up: true, for_seconds: 2 },
  ]);
  assertEquals(up["pending_rows"], 0);
});

Deno.test("healthReport() says stalled, with the pipeline's reason, when the services are up but nothing is written", () => {
  const metrics = new Metrics();
  metrics.sinkReachable("vm", true);
  const report = healthReport(metrics, { ok: false, reason: "records have waited", detail: {} });
  assertEquals([report.status, report.reason], ["stalled", "records have waited"]);
});

Deno.test("healthReport() names a dead-letter destination that cannot store letters", () => {
  const metrics = new Metrics();
  metrics.deadLettersStorable("file", false, "Cannot store dead letters in /x: No space left");
  const report = healthReport(metrics, progressing);
  assertEquals(report.status, "down");
  assertMatch(report.reason!, /^dead_letter_file down for .* s: Cannot store dead letters/);
});

Deno.test("Metrics.sinkReachable() and kafkaReachable() set sluice_sink_up and sluice_kafka_up", async () => {
  const metrics = new Metrics();
  metrics.sinkReachable("elastic", false, "HTTP 502");
  metrics.kafkaReachable(false, "connect ECONNREFUSED");
  let text = await metrics.render();
  assert(text.includes('sluice_sink_up{sink="elastic"} 0'), text);
  assert(text.includes("sluice_kafka_up 0"), text);
  metrics.sinkReachable("elastic", true);
  metrics.kafkaReachable(true);
  text = await metrics.render();
  assert(text.includes('sluice_sink_up{sink="elastic"} 1'), text);
  assert(text.includes("sluice_kafka_up 1"), text);
  assertMatch(
    text,
    /# HELP sluice_consumer_lag .*committed offset.*also while consumption is paused/,
  );
});

Deno.test("serveMetrics() answers /healthz 503 with the reason while the sink is not reachable, 200 once it is, and /livez 200", async () => {
  const metrics = new Metrics();
  metrics.sinkReachable(
    "clickhouse",
    false,
    "Cannot connect to ClickHouse at http://ch:8123: HTTP 502",
  );
  const server = serveMetrics({ host: "127.0.0.1", port: 0, metrics, health: () => progressing });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const down = await fetch(`${base}/healthz`);
    assertEquals(down.status, 503);
    const body = await down.json();
    assertEquals(body.status, "down");
    assertMatch(body.reason, /^sink down for .* s: Cannot connect to ClickHouse .*HTTP 502$/);
    const live = await fetch(`${base}/livez`);
    assertEquals([live.status, await live.text()], [200, "ok\n"]);
    metrics.sinkReachable("clickhouse", true);
    const up = await fetch(`${base}/healthz`);
    assertEquals(up.status, 200);
    assertEquals((await up.json()).status, "ok");
  } finally {
    await server.shutdown();
  }
});

/** The families a scrape shows, by name, with their type (`# TYPE` lines). */
function families(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) found.set(m[1]!, m[2]!);
  return found;
}

/** A Metrics set up as main.ts sets it up before anything happened. */
function started(): Metrics {
  const metrics = new Metrics();
  metrics.sinkReachable("clickhouse", false, "not connected yet");
  metrics.initialise({
    version: "9.9.9",
    sink: "clickhouse",
    topics: ["pmacct", "flows"],
    skipReason: "marker",
    deadLetterDestinations: ["file", "topic"],
  });
  return metrics;
}

Deno.test("Metrics.initialise() creates at 0 every series whose labels are known at start, and sluice_build_info", async () => {
  const text = await started().registry.metrics();
  const expected = [
    'sluice_build_info{version="9.9.9",deno="' + Deno.version.deno + '",v8="' + Deno.version.v8 +
    '",typescript="' + Deno.version.typescript + '"} 1',
    'sluice_messages_received_total{topic="pmacct"} 0',
    'sluice_messages_received_total{topic="flows"} 0',
    'sluice_bytes_received_total{topic="flows"} 0',
    'sluice_records_received_total{topic="flows"} 0',
    'sluice_messages_redelivered_total{topic="flows"} 0',
    'sluice_records_written_total{sink="clickhouse"} 0',
    'sluice_bytes_written_total{sink="clickhouse"} 0',
    'sluice_records_rejected_total{sink="clickhouse",reason="decode"} 0',
    'sluice_records_rejected_total{sink="clickhouse",reason="convert"} 0',
    'sluice_records_rejected_total{sink="clickhouse",reason="server"} 0',
    'sluice_records_skipped_total{reason="marker"} 0',
    'sluice_batch_splits_total{sink="clickhouse"} 0',
    'sluice_batches_total{sink="clickhouse",outcome="written"} 0',
    'sluice_batches_total{sink="clickhouse",outcome="empty"} 0',
    'sluice_batch_duration_seconds_count{sink="clickhouse"} 0',
    'sluice_batch_rows_count{sink="clickhouse"} 0',
    'sluice_offset_commits_total{outcome="ok"} 0',
    'sluice_offset_commits_total{outcome="failed"} 0',
    'sluice_sink_retries_total{sink="clickhouse",error_type="network"} 0',
    'sluice_sink_retries_total{sink="clickhouse",error_type="timeout"} 0',
    'sluice_dead_letters_total{destination="file",reason="decode"} 0',
    'sluice_dead_letters_total{destination="topic",reason="server"} 0',
    'sluice_dead_letter_errors_total{destination="file"} 0',
    'sluice_dead_letter_errors_total{destination="topic"} 0',
    'sluice_dead_letters_waiting{destination="topic"} 0',
    "sluice_kafka_rebalances_total 0",
    "samples_count_total 0",
  ];
  const lines = new Set(text.split("\n"));
  assertEquals(expected.filter((line) => !lines.has(line)), []);
});

Deno.test("Metrics exports the runtime metrics under their conventional names, and no gauge ends in _total", async () => {
  const found = families(await new Metrics().registry.metrics());
  for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes"]) {
    assert(found.has(name), name);
  }
  assert([...found.keys()].some((name) => name.startsWith("nodejs_")));
  assertEquals([...found.keys()].filter((name) => name.startsWith("sluice_process_")), []);
  assertEquals([...found.keys()].filter((name) => name.startsWith("sluice_nodejs_")), []);
  const gaugesTotal = [...found].filter(([name, type]) =>
    type !== "counter" && /_total$/.test(name)
  );
  assertEquals(gaugesTotal, []);
  assertEquals(found.get("nodejs_active_handles_all"), "gauge");
});

Deno.test("docs/operations.md lists exactly the families /metrics serves, with their types and labels", async () => {
  const page = await Deno.readTextFile(new URL("../../docs/operations.md", import.meta.url));
  const section = page.split("\n## Metrics and health\n")[1]!.split("\n## ")[0]!;
  // One list item per family, "- `name` (type; labels): meaning", wrapped by deno fmt.
  const items = section.split(/\n(?=- )/).map((item) => item.replace(/\s+/g, " "));
  const rows = items.flatMap((item) => {
    const match = /^- `([a-z_]+\*?)`(?: \((counter|gauge|histogram)(?:; ([^)]+))?\))?: /.exec(item);
    return match ? [{ name: match[1]!, type: match[2] ?? "", labels: match[3] ?? "" }] : [];
  });
  assert(rows.length > 20, `the list has ${rows.length} families`);
  const prefixes = rows.filter((r) => r.name.endsWith("*")).map((r) => r.name.slice(0, -1));
  assertEquals(prefixes, ["process_", "nodejs_"]);
  const named = new Map(rows.filter((r) => !r.name.endsWith("*")).map((r) => [r.name, r]));
  const metrics = started();
  const served = families(await metrics.registry.metrics());
  const undocumented = [...served.keys()].filter((name) =>
    !named.has(name) && !prefixes.some((prefix) => name.startsWith(prefix))
  );
  assertEquals(undocumented, [], `served, not in docs/operations.md: ${undocumented.join(", ")}`);
  const unserved = [...named.keys()].filter((name) => !served.has(name));
  assertEquals(unserved, [], `in docs/operations.md, not served: ${unserved.join(", ")}`);
  for (const [name, row] of named) {
    const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] };
    const actual = { type: served.get(name), labels: (metric.labelNames ?? []).join(", ") };
    assertEquals(
      { type: row.type, labels: row.labels },
      actual,
      `${name}: docs/operations.md says ${row.type} (${row.labels}), /metrics ${actual.type} (${actual.labels})`,
    );
  }
});
