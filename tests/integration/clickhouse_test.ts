/**
 * sluice end to end against the real Kafka broker and the real ClickHouse
 * servers started by scripts/services.sh: delivery under failure. Every test
 * runs against the Debian ClickHouse 18.16 and the current 26.x, the
 * server's label in its name.
 */
import { flowMessages, flowRecord } from "../_flows.ts";
import { CLICKHOUSE_SERVERS, type ClickHouseServer } from "../_clickhouse.ts";
import { allCommitted, createTopic, offsets, produce } from "../_kafka.ts";
import { services, uniqueName } from "../_services.ts";
import { clickhouseSinkEnv, startSluice, stopQuietly, stopSluice, waitFor } from "../_sluice.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const SCHEMA =
  "seq:UInt64,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,ip_proto:String," +
  "stamp_updated:DateTime,packets:UInt64,bytes:UInt64";

const messages = (from: number, to: number) => flowMessages(from, to);

/** A fresh topic, group and table on a server for one test, and the env that points sluice at them. */
async function fixture(
  server: ClickHouseServer,
  extra: Record<string, string> = {},
  partitions = 3,
  create = true,
) {
  await server.expectVersion();
  const name = uniqueName("it");
  if (create) await createTopic(name, partitions);
  const db = `sluice_${name}`;
  const env = {
    ...clickhouseSinkEnv({ topic: name, group: `g_${name}`, database: db, schema: SCHEMA }),
    CLICKHOUSE_HOST: server.url,
    CLICKHOUSE_ORDER_BY: "seq",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "500",
    CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    ...extra,
  };
  const table = `${db}.flows`;
  return {
    topic: name,
    group: `g_${name}`,
    env,
    table,
    count: () => server.scalar(`SELECT count() FROM ${table}`),
    distinct: () => server.scalar(`SELECT uniqExact(seq) FROM ${table}`),
    drop: () => server.query(`DROP DATABASE IF EXISTS ${db}`),
  };
}

for (const server of CLICKHOUSE_SERVERS) {
  const on = `(${server.label})`;

  Deno.test(`sluice writes N records from Kafka as N ClickHouse rows with the right values, then commits ${on}`, async () => {
    const f = await fixture(server);
    const n = 3000;
    await produce(f.topic, messages(0, n));
    const sluice = await startSluice(f.env);
    try {
      await waitFor(async () => (await f.count()) === n, `${n} rows`);
      const sums = await server.rows<{ c: string; p: string; b: string; s: string; t: string }>(
        `SELECT count() AS c, sum(packets) AS p, sum(bytes) AS b, sum(seq) AS s, ` +
          `uniqExact(toUnixTimestamp(stamp_updated)) AS t FROM ${f.table}`,
      );
      const expected = messages(0, n).map((m) => JSON.parse(m));
      assertEquals(sums[0], {
        c: String(n),
        p: String(expected.reduce((a, r) => a + r.packets, 0)),
        b: String(expected.reduce((a, r) => a + r.bytes, 0)),
        s: String((n * (n - 1)) / 2),
        t: "1",
      });
      const row = await server.rows(
        `SELECT seq, ip_src, ip_dst, port_src, port_dst, ip_proto, toUnixTimestamp(stamp_updated) AS ts, packets, bytes ` +
          `FROM ${f.table} WHERE seq = 1234`,
      );
      const r = flowRecord(1234);
      assertEquals(row, [{
        seq: "1234",
        ip_src: r.ip_src,
        ip_dst: r.ip_dst,
        port_src: r.port_src,
        port_dst: r.port_dst,
        ip_proto: "tcp",
        ts: String(Date.UTC(2026, 10, 21, 23, 27, 47) / 1000),
        packets: String(r.packets),
        bytes: String(r.bytes),
      }]);
      await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
      assertEquals(await sluice.metric("samples_count_total"), n);
      assertEquals(await sluice.metric("sluice_records_written_total"), n);
      assertEquals(await sluice.metric("sluice_consumer_lag"), 0);
      assertEquals(await sluice.metric("sluice_sink_up"), 1);
      const health = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
      assertEquals(health.status, 200);
      assertEquals((await health.json()).status, "ok");
      assert(await sluice.metric("sluice_batches_total", { outcome: "written" }) >= n / 500);
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice flushes a small batch by age on an idle topic ${on}`, async () => {
    const f = await fixture(server, {
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "100000",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    });
    const sluice = await startSluice(f.env);
    try {
      await waitFor(
        () => sluice.logs.some((l) => l["msg"] === "Joined consumer group"),
        "the group join",
      );
      await produce(f.topic, messages(0, 3));
      const started = Date.now();
      await waitFor(async () => (await f.count()) === 3, "3 rows", 15_000);
      assert(Date.now() - started < 10_000, "the age trigger fired on an idle topic");
      await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice waits for a topic that does not exist yet, then consumes it ${on}`, async () => {
    const f = await fixture(server, {}, 1, false);
    const sluice = await startSluice(f.env);
    try {
      await waitFor(
        () =>
          sluice.logs.some((l) => l["msg"] === "Kafka topic does not exist yet, waiting for it"),
        "the wait",
      );
      await createTopic(f.topic, 1);
      await produce(f.topic, messages(0, 50));
      await waitFor(async () => (await f.count()) === 50, "50 rows once the topic exists");
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice sets a poison message aside and writes all its good neighbours ${on}`, async () => {
    const f = await fixture(server, {}, 1);
    const good = messages(0, 200);
    const values = [
      ...good.slice(0, 100),
      "{this is not json",
      '{"seq": "not-a-number"}',
      ...good.slice(100),
    ];
    await produce(f.topic, values);
    const sluice = await startSluice(f.env);
    try {
      await waitFor(async () => (await f.count()) === 200, "200 good rows");
      await waitFor(
        () => allCommitted(f.group, f.topic),
        "every offset committed, the poison's included",
      );
      assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "decode" }), 1);
      assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "convert" }), 1);
      assertEquals(await f.distinct(), 200);
      assert(sluice.logs.some((l) => l["msg"] === "Record set aside" && l["reason"] === "decode"));
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice with 2 decode workers writes every good record once and sets the poison aside ${on}`, async () => {
    const f = await fixture(server, { DECODE_WORKERS: "2" }, 2);
    const n = 4000;
    const good = messages(0, n);
    // A poison message of each kind amid the good ones, in both partitions.
    const values = [
      ...good.slice(0, 1500),
      "{this is not json",
      '{"seq": "not-a-number"}',
      ...good.slice(1500),
    ];
    await produce(f.topic, values);
    const sluice = await startSluice(f.env);
    try {
      await waitFor(async () => (await f.count()) === n, `${n} rows`);
      await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
      assertEquals(await f.distinct(), n);
      const sums = await server.rows<{ s: string; b: string }>(
        `SELECT sum(seq) AS s, sum(bytes) AS b FROM ${f.table}`,
      );
      const expected = good.map((m) => JSON.parse(m));
      assertEquals(sums[0], {
        s: String((n * (n - 1)) / 2),
        b: String(expected.reduce((a, r) => a + r.bytes, 0)),
      });
      assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "decode" }), 1);
      assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "convert" }), 1);
      assertEquals(await sluice.metric("sluice_records_written_total"), n);
      assert(
        !sluice.logs.some((l) =>
          l["msg"] === "A decode worker failed: decoding on the main thread from now on"
        ),
      );
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice fails over from a server that does not answer to the next of CLICKHOUSE_HOST ${on}`, async () => {
    // The first server of the list refuses connections (nothing listens on port 9).
    const f = await fixture(server, { RETRY_BACKOFF_INITIAL: "0.05", RETRY_BACKOFF_MAX: "0.2" });
    const env = { ...f.env, CLICKHOUSE_HOST: `http://127.0.0.1:9,${server.url}` };
    const n = 1000;
    await produce(f.topic, messages(0, n));
    const sluice = await startSluice(env);
    try {
      await waitFor(async () => (await f.count()) === n, `${n} rows`);
      assertEquals(await f.distinct(), n);
      assert(
        sluice.logs.some((l) =>
          l["msg"] === "Trying the next ClickHouse server" && l["url"] === server.url
        ),
      );
      assert(
        sluice.logs.some((l) => l["msg"] === "Connected to ClickHouse" && l["url"] === server.url),
      );
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice loses nothing when ClickHouse is stopped for 20 s mid-stream ${on}`, async () => {
    const f = await fixture(server, {
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "200",
      HEALTH_STALL_TIMEOUT: "5",
    });
    const sluice = await startSluice(f.env);
    const healthz = async () => {
      const response = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
      return `${response.status} ${await response.text()}`;
    };
    let clickhouseDown = false;
    try {
      await produce(f.topic, messages(0, 1000));
      await waitFor(async () => (await f.count()) === 1000, "the first 1000 rows");
      await services("stop", server.service);
      clickhouseDown = true;
      await produce(f.topic, messages(1000, 3000));
      await waitFor(async () => (await sluice.metric("sluice_sink_up")) === 0, "sluice_sink_up 0");
      await new Promise((r) => setTimeout(r, 20_000));
      assert(await sluice.metric("sluice_sink_retries_total") > 0, "writes were retried");
      // Down wins over stalled (docs/operations.md, "Metrics and health"); the stall is a reason too.
      const health = await healthz();
      assertMatch(health, /^503 /, "/healthz reports the outage");
      const { status, reason } = JSON.parse(health.slice(4));
      assertEquals(status, "down", health);
      assertMatch(reason, /^sink down for [\d.]+ s: Cannot insert .*ClickHouse/, health);
      assertMatch(reason, /records have waited \d+ s .*HEALTH_STALL_TIMEOUT 5 s/, health);
      const { committed } = await offsets(f.group, f.topic);
      const committedTotal = Object.values(committed).reduce(
        (a, o) => a + Math.max(0, Number(o)),
        0,
      );
      assert(
        committedTotal <= 1000,
        `nothing written during the outage was committed (${committedTotal})`,
      );
      await services("start", server.service);
      clickhouseDown = false;
      await waitFor(
        async () => (await f.count()) >= 3000,
        "all 3000 rows after the restart",
        90_000,
      );
      assertEquals(await f.distinct(), 3000);
      assertEquals(await f.count(), 3000, "no duplicates either");
      await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
      assertEquals(await sluice.metric("sluice_sink_up"), 1);
      assertMatch(await healthz(), /^200 .*"status":"ok"/, "/healthz recovers");
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      if (clickhouseDown) await services("start", server.service);
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice loses nothing when killed with SIGKILL mid-stream and restarted ${on}`, async () => {
    // A short session lets the restarted member take the partitions over quickly.
    const f = await fixture(server, {
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "100",
      KAFKA_SESSION_TIMEOUT: "6",
    });
    const n = 20_000;
    await produce(f.topic, messages(0, n));
    let sluice = await startSluice(f.env);
    try {
      await waitFor(async () => (await f.count()) >= 2000, "some rows before the kill");
      sluice.kill("SIGKILL");
      await sluice.status;
      const before = await f.count();
      assert(before < n, `sluice was killed mid-stream (${before} of ${n} written)`);
      sluice = await startSluice(f.env);
      await waitFor(async () => (await f.distinct()) === n, `all ${n} distinct records`, 120_000);
      await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
      const duplicates = (await f.count()) - n;
      if (server.legacy) {
        // At-least-once on 18.16 (no insert token): the batches in flight at
        // the kill may be written twice, never lost.
        assert(
          duplicates <= 3 * 100,
          `duplicates are bounded by the batches in flight (${duplicates})`,
        );
      } else {
        // Pinned ranges and insert tokens: effectively once.
        assertEquals(duplicates, 0, "no record is written twice");
      }
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice writes and commits its last batch on SIGTERM, then exits 0 ${on}`, async () => {
    const f = await fixture(server, {
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "100000",
      CLICKHOUSE_MAX_TIME_TO_SEND: "3600",
    });
    await produce(f.topic, messages(0, 777));
    const sluice = await startSluice(f.env);
    try {
      await waitFor(
        async () => (await sluice.metric("samples_count_total")) === 777,
        "777 records consumed",
      );
      assertEquals(await f.count(), 0, "nothing written before the stop (huge batch, 1 h age)");
      assertEquals(await stopSluice(sluice), 0);
      assertEquals(await f.count(), 777);
      assert(
        await allCommitted(f.group, f.topic),
        "the last batch's offsets were committed before exit",
      );
      assert(sluice.logs.some((l) => l["msg"] === "Stopped" && l["clean"] === true));
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });
}
