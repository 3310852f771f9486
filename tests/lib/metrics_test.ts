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
