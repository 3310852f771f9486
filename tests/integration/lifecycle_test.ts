/**
 * sluice as a process, in the states an operator meets: the broker or the
 * sink unreachable at start, the sink failing mid-write, consumption paused.
 * What must hold in each: `/healthz` and the `_up` gauges tell the truth
 * from the first second, sluice says what is wrong in its own words within
 * 5 s, the lag stays current, and SIGTERM ends the process within
 * `SHUTDOWN_TIMEOUT` with "Stopped" as the last line.
 *
 * The first three tests need no service (a closed port, a fake sink on
 * loopback); the last two need the local Kafka broker of scripts/services.sh.
 *
 * @module
 */

import { allCommitted, createTopic, offsets, produce } from "../_kafka.ts";
import { kafkaBrokers, uniqueName } from "../_services.ts";
import { MAIN_ARGS, type SluiceProcess, startSluice, stopQuietly, waitFor } from "../_sluice.ts";
import { fakeHttpServer } from "../_fake_http.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

/**
 * A VictoriaMetrics stand-in: answers the empty import of `connect()` with
 * 204, and imports of samples with `status`, which the test may change.
 */
function fakeVm(status = 204) {
  const state = { status, imports: 0 };
  const server = fakeHttpServer((request) => {
    if (request.text === "") return new Response(null, { status: 204 });
    state.imports++;
    return new Response(null, { status: state.status });
  });
  return { server, state };
}

function vmEnv(url: string, brokers: string): Record<string, string> {
  return {
    KAFKA_BOOTSTRAP_SERVERS: brokers,
    KAFKA_TOPIC: "flows",
    VM_URL: url,
    VM_JOB: "pmacct",
    VM_INSTANCE: "it",
    SHUTDOWN_TIMEOUT: "5",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "1",
  };
}

async function healthz(
  sluice: SluiceProcess,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
  return { status: response.status, body: await response.json() };
}

/**
 * The `sluice_consumer_lag` gauges, per partition: a partition whose lag is
 * not known yet has none (where `metric()` would read 0).
 */
async function lagGauges(sluice: SluiceProcess): Promise<Record<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${sluice.metricsPort}/metrics`)).text();
  const gauges: Record<number, number> = {};
  for (const m of text.matchAll(/^sluice_consumer_lag\{[^}]*partition="(\d+)"[^}]*\} (\S+)$/gm)) {
    gauges[Number(m[1])] = Number(m[2]);
  }
  return gauges;
}

/**
 * Sends SIGTERM and checks the stop: the process ends within the timeout,
 * "Stopped" is its last line.
 *
 * @returns The exit code and how long the stop took, in milliseconds.
 */
async function terminate(
  sluice: SluiceProcess,
  withinMs: number,
): Promise<{ code: number; ms: number }> {
  const started = Date.now();
  sluice.kill("SIGTERM");
  const killer = setTimeout(() => sluice.kill("SIGKILL"), withinMs + 30_000);
  const status = await sluice.status;
  clearTimeout(killer);
  const ms = Date.now() - started;
  assert(ms <= withinMs, `stopped in ${ms} ms, more than ${withinMs} ms`);
  const last = sluice.logs.at(-1);
  assertEquals(last?.["msg"], "Stopped", JSON.stringify(sluice.logs.slice(-5)));
  return { code: status.code, ms };
}

Deno.test("sluice with no Kafka broker answering says so in its own words within 5 s, /healthz and sluice_kafka_up say down, and SIGTERM ends it at once", async () => {
  const vm = fakeVm();
  let sluice: SluiceProcess | undefined;
  try {
    sluice = await startSluice(vmEnv(vm.server.url, "127.0.0.1:1"));
    const started = Date.now();
    const s = sluice;
    const said = await waitFor(
      () => s.logs.find((l) => String(l["msg"]).startsWith("Cannot reach the Kafka brokers")),
      "sluice's line on the brokers",
      5000,
    );
    assert(Date.now() - started < 5000);
    assertMatch(
      String(said["msg"]),
      /^Cannot reach the Kafka brokers 127\.0\.0\.1:1: .*ECONNREFUSED.*, retrying$/,
    );
    const health = await healthz(sluice);
    assertEquals(health.status, 503);
    assertEquals(health.body["status"], "down");
    assertMatch(String(health.body["reason"]), /kafka down for .* s: .*ECONNREFUSED/);
    assertEquals(await sluice.metric("sluice_kafka_up"), 0);
    assertEquals(await sluice.metric("sluice_sink_up", { sink: "vm" }), 1);
    // kafkajs's own lines: merged, without its timestamp and logger, without stack traces.
    for (const line of sluice.logs) {
      assert(
        !("timestamp" in line) && !("logger" in line) && !("stack" in line),
        JSON.stringify(line),
      );
    }
    const { code, ms } = await terminate(sluice, 5000);
    assertEquals(code, 0);
    assert(ms < 3000, `a stop with nothing to write took ${ms} ms`);
  } finally {
    await stopQuietly(sluice);
    await vm.server.close();
  }
});

Deno.test("sluice with the sink answering 502 at start reports it down from the first second, with the reason, and SIGTERM ends it within SHUTDOWN_TIMEOUT", async () => {
  const proxy = fakeHttpServer(() => new Response(null, { status: 502 }));
  let sluice: SluiceProcess | undefined;
  try {
    sluice = await startSluice({
      KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:1",
      KAFKA_TOPIC: "flows",
      CLICKHOUSE_HOST: proxy.url,
      CLICKHOUSE_DATA_SCHEMA: "a:String",
      SHUTDOWN_TIMEOUT: "4",
    });
    const first = await healthz(sluice);
    assertEquals(first.status, 503);
    assertEquals(await sluice.metric("sluice_sink_up", { sink: "clickhouse" }), 0);
    const s = sluice;
    const retrying = await waitFor(
      () => s.logs.find((l) => l["msg"] === "Cannot reach the sink, retrying"),
      "the sink's retry line",
      10_000,
    );
    assertMatch(String(retrying["error"]), /HTTP 502 with an empty body/);
    const health = await healthz(sluice);
    assertMatch(String(health.body["reason"]), /^sink down for .* s: .*HTTP 502/);
    const { code } = await terminate(sluice, 4000);
    assertEquals(code, 0);
  } finally {
    await stopQuietly(sluice);
    await proxy.close();
  }
});

Deno.test("sluice with LOG_FORMAT=text writes every line as text, to the last", async () => {
  const vm = fakeVm();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...MAIN_ARGS],
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "/tmp",
        ...vmEnv(vm.server.url, "127.0.0.1:1"),
        PROMETHEUS_CLIENT_PORT: "0",
        LOG_FORMAT: "text",
      },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    setTimeout(() => child.kill("SIGTERM"), 3000);
    const out = await child.output();
    const lines = new TextDecoder().decode(out.stderr).trimEnd().split("\n");
    assert(lines.length >= 3, lines.join("\n"));
    for (const line of lines) {
      assertMatch(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) \S/);
    }
    assert(lines.some((l) => / WARN {2}Cannot reach the Kafka brokers 127\.0\.0\.1:1: /.test(l)));
    assertMatch(lines.at(-1)!, / INFO {2}Stopped clean=true /);
  } finally {
    await vm.server.close();
  }
});

Deno.test("sluice with the sink failing mid-write keeps sluice_consumer_lag current while paused, reports the sink down, and SIGTERM ends it within SHUTDOWN_TIMEOUT", async () => {
  const topic = uniqueName("lifecycle");
  await createTopic(topic, 1);
  const vm = fakeVm(503);
  let sluice: SluiceProcess | undefined;
  try {
    const record = (n: number) =>
      JSON.stringify({
        ip_src: "10.0.0.1",
        bytes: n,
        packets: 1,
        stamp_updated: Math.floor(Date.now() / 1000),
      });
    await produce(topic, Array.from({ length: 10 }, (_, i) => record(i)));
    sluice = await startSluice({
      ...vmEnv(vm.server.url, kafkaBrokers()),
      KAFKA_TOPIC: topic,
      KAFKA_CONSUMER_GROUP_ID: topic,
      VM_MAX_SAMPLES_PER_SEND: "5",
    });
    const s = sluice;
    await waitFor(() => vm.state.imports > 0, "a write attempt");
    await waitFor(
      async () => (await s.metric("sluice_sink_up", { sink: "vm" })) === 0,
      "the sink down",
    );
    await waitFor(
      async () => (await s.metric("sluice_consumer_lag")) === 10,
      "lag 10 (nothing committed)",
      20_000,
    );
    // Consumption is paused (the sink fails); producers go on and the lag follows.
    await produce(topic, Array.from({ length: 25 }, (_, i) => record(100 + i)));
    await waitFor(
      async () => (await s.metric("sluice_consumer_lag")) === 35,
      "lag 35 while paused",
      20_000,
    );
    const health = await healthz(sluice);
    assertEquals(health.status, 503);
    assertMatch(String(health.body["reason"]), /sink down for .* s: .*HTTP 503/);
    const { code } = await terminate(sluice, 5000);
    assertEquals(code, 1, "the batch could not be written: not clean");
  } finally {
    await stopQuietly(sluice);
    await vm.server.close();
  }
});

Deno.test("sluice reports the broker up once it joined, and the lag reaches 0 once everything is committed", async () => {
  const topic = uniqueName("lifecycle");
  await createTopic(topic, 2);
  const vm = fakeVm(204);
  let sluice: SluiceProcess | undefined;
  try {
    sluice = await startSluice({
      ...vmEnv(vm.server.url, kafkaBrokers()),
      KAFKA_TOPIC: topic,
      KAFKA_CONSUMER_GROUP_ID: topic,
      VM_MAX_TIME_TO_SEND: "0.2",
      // The stand-in stores nothing, so nothing needs VictoriaMetrics' commit
      // delay; its default (15 s) would hold the offsets past this stop's
      // SHUTDOWN_TIMEOUT (5 s), which leaves them uncommitted and exits 1 by design.
      VM_COMMIT_DELAY: "0",
    });
    const s = sluice;
    await waitFor(async () => (await s.metric("sluice_kafka_up")) === 1, "the broker up", 20_000);
    await produce(
      topic,
      Array.from({ length: 20 }, (_, i) =>
        JSON.stringify({
          ip_src: "10.0.0.2",
          bytes: i,
          packets: 1,
          stamp_updated: Math.floor(Date.now() / 1000),
        })),
    );
    await waitFor(
      async () => (await s.metric("sluice_records_written_total")) === 20,
      "20 written",
      30_000,
    );
    // A partition without a gauge is not lag 0: both must show it.
    await waitFor(
      async () => JSON.stringify(await lagGauges(s)) === JSON.stringify({ 0: 0, 1: 0 }),
      "lag 0 on both partitions",
      20_000,
    );
    const health = await healthz(sluice);
    assertEquals([health.status, health.body["status"]], [200, "ok"]);
    const { code } = await terminate(sluice, 5000);
    assertEquals(code, 0, JSON.stringify(sluice.logs.slice(-5)));
    assert(await allCommitted(topic, topic), JSON.stringify(await offsets(topic, topic)));
  } finally {
    await stopQuietly(sluice);
    await vm.server.close();
  }
});
