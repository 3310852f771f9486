/**
 * sluice end to end with the real producer: collectd (Debian collectd-core
 * 5.12: load, memory, cpu and interface `lo`, every second, `StoreRates
 * true`) writes to a fresh Kafka topic with write_kafka, as Graphite lines
 * (with `GraphitePrefix` and `GraphitePostfix`) and as JSON, and sluice
 * writes the topic into a fresh InfluxDB database.
 *
 * After collectd stopped, the test reads every message itself with kcat,
 * works out from the text alone which points they must give (and how many
 * `nan`/`null` values must be skipped), and then InfluxDB must hold exactly
 * those points: per measurement, every tag, value and timestamp.
 *
 * @module
 */

import {
  type CollectdRun,
  type KafkaMessage,
  parseCollectdJson,
  parseGraphite,
  readTopic,
  runCollectd,
} from "../_collectd.ts";
import { allPoints, countPoints, databases, dropDatabase, pointLines } from "../_influx.ts";
import type { Epoch, StoredPoint } from "../_influx.ts";
import { allCommitted, createTopic } from "../_kafka.ts";
import { influxUrl, kafkaBrokers, uniqueName } from "../_services.ts";
import {
  explained,
  type SluiceProcess,
  startSluice,
  stopQuietly,
  stopSluice,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

/** How long collectd reads and writes (Interval 1): about 5 value lists per plugin instance. */
const COLLECT_SECONDS = 5;

/** What the messages of one run must become. */
interface Expectation {
  /** Every point, exactly. */
  points: StoredPoint[];
  /** `nan` (Graphite) or `null` (JSON) values: skipped, not written. */
  skipped: number;
}

/** The identity of a point in InfluxDB: a second point with it would overwrite the first. */
function seriesKey(p: StoredPoint): string {
  const tags = Object.entries(p.tags).sort(([a], [b]) => a < b ? -1 : 1);
  return `${p.measurement} ${JSON.stringify(tags)} ${p.time}`;
}

/**
 * The points of collectd's Graphite messages: one per line that has a
 * number, measurement = the path after `<prefix><host><postfix>.` with `.`
 * turned into `_`, tags host, prefix and postfix tags, field `value`, time in s.
 */
function expectGraphite(
  messages: readonly KafkaMessage[],
  layout: { prefix: string; host: string; postfix: string },
  tags: Record<string, string>,
): Expectation {
  const head = `${layout.prefix}${layout.host}${layout.postfix}.`;
  const points: StoredPoint[] = [];
  let skipped = 0;
  for (const m of messages) {
    for (const line of parseGraphite(m.payload ?? "", `${m.partition}@${m.offset}`)) {
      assert(line.path.startsWith(head), `"${line.path}" starts with "${head}"`);
      if (Number.isNaN(line.value)) {
        skipped++;
        continue;
      }
      points.push({
        measurement: line.path.slice(head.length).replaceAll(".", "_"),
        tags: { host: layout.host, ...tags },
        fields: { value: line.value },
        time: BigInt(line.time),
      });
    }
  }
  return { points, skipped };
}

/**
 * The points of collectd's JSON messages: one per value list with a value,
 * measurement = the non-empty ones of plugin, plugin instance and type
 * joined with `_`, tags host and type_instance (when not empty), fields
 * `value` or the ds names, time in ms (collectd writes 3 decimals).
 */
function expectJson(messages: readonly KafkaMessage[]): Expectation {
  const points: StoredPoint[] = [];
  let skipped = 0;
  for (const m of messages) {
    for (const vl of parseCollectdJson(m.payload ?? "", `${m.partition}@${m.offset}`)) {
      const fields: Record<string, unknown> = {};
      vl.values.forEach((v, i) => {
        if (v === null) skipped++;
        else fields[vl.values.length === 1 ? "value" : vl.dsnames[i]!] = v;
      });
      if (Object.keys(fields).length === 0) continue;
      const tags: Record<string, string> = { host: vl.host };
      if (vl.type_instance !== "") tags["type_instance"] = vl.type_instance;
      points.push({
        measurement: [vl.plugin, vl.plugin_instance, vl.type].filter((p) => p !== "").join("_"),
        tags,
        fields,
        time: BigInt(Math.round(vl.time * 1000)),
      });
    }
  }
  return { points, skipped };
}

/** Per measurement, how many points. */
function perMeasurement(points: readonly StoredPoint[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of points) counts[p.measurement] = (counts[p.measurement] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a < b ? -1 : 1));
}

/**
 * The whole chain once: collectd into a fresh topic, the test's own reading
 * of the topic, sluice into a fresh database, and the comparison.
 */
async function runChain(options: {
  encoder: "collectd_graphite" | "collectd_json";
  collect: (topic: string) => Promise<CollectdRun>;
  expect: (messages: KafkaMessage[], run: CollectdRun) => Expectation;
  env: Record<string, string>;
  epoch: Epoch;
}): Promise<void> {
  // Fail at once, not after collectd ran, when InfluxDB is down.
  await databases();
  const name = uniqueName("e2e_collectd");
  const db = `db_${name}`;
  const group = `g_${name}`;
  await createTopic(name, 3);
  const run = await options.collect(name);

  // collectd has stopped: everything write_kafka sent is in the topic.
  const messages = await readTopic(name);
  assert(messages.length > 0, `collectd wrote to Kafka\n${run.output}`);
  assert(new Set(messages.map((m) => m.partition)).size > 1, "messages on several partitions");
  const expected = options.expect(messages, run);
  const plugins = new Set(expected.points.map((p) => p.measurement.split(/[_-]/)[0]));
  assertEquals([...plugins].sort(), ["cpu", "interface", "load", "memory"]);
  assert(expected.skipped > 0, "StoreRates gave nan/null on the first interval");
  const keys = expected.points.map(seriesKey);
  assertEquals(
    keys.length - new Set(keys).size,
    0,
    "no two points of collectd share series and time",
  );

  let sluice: SluiceProcess | undefined;
  try {
    sluice = await startSluice({
      SINK: "influxdb",
      ENCODER: options.encoder,
      KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
      KAFKA_TOPIC: name,
      KAFKA_CONSUMER_GROUP_ID: group,
      INFLUXDB_URL: influxUrl(),
      INFLUXDB_DBNAME: db,
      BUFFER_SIZE: "50",
      BUFFER_TIMEOUT: "1",
      RETRY_BACKOFF_INITIAL: "0.2",
      RETRY_BACKOFF_MAX: "2",
      ...options.env,
    });
    const running = sluice;
    const n = expected.points.length;
    await explained(
      () =>
        waitFor(
          async () => (await running.metric("sluice_records_written_total")) >= n,
          `${n} points written`,
          30_000,
        ),
      running,
      { group: group, topic: name },
    );
    await explained(
      () => waitFor(() => allCommitted(group, name), "every offset committed", 30_000),
      running,
      { group: group, topic: name },
    );
    assertEquals(await sluice.metric("sluice_messages_received_total"), messages.length);
    assertEquals(await sluice.metric("sluice_records_written_total"), n);
    assertEquals(
      await sluice.metric("sluice_records_skipped_total", { reason: "nan" }),
      expected.skipped,
      "every nan/null counted as skipped",
    );
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0, "nothing set aside");
    assertEquals(await stopSluice(sluice), 0, "sluice exits 0 on SIGTERM");

    const want = perMeasurement(expected.points);
    const got: Record<string, number> = {};
    for (const m of Object.keys(want)) got[m] = await countPoints(db, m);
    assertEquals(got, want, "points per measurement");
    const stored = await allPoints(db, options.epoch);
    assertEquals(pointLines(stored), pointLines(expected.points));
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(db);
  }
}

Deno.test("collectd's Graphite output through sluice lands in InfluxDB as exactly its points, nan skipped", async () => {
  const prefix = "collectd.";
  const postfix = ".e2e";
  await runChain({
    encoder: "collectd_graphite",
    collect: (topic) =>
      runCollectd({
        topic,
        format: "Graphite",
        graphitePrefix: prefix,
        graphitePostfix: postfix,
        seconds: COLLECT_SECONDS,
      }),
    expect: (messages, run) =>
      expectGraphite(messages, { prefix, host: run.hostname, postfix }, {
        collector: "collectd",
        env: "e2e",
      }),
    env: {
      GRAPHITE_PREFIX: prefix,
      GRAPHITE_PREFIX_TAG: "collector",
      GRAPHITE_POSTFIX: postfix,
      GRAPHITE_POSTFIX_TAG: "env",
      INFLUXDB_TIME_PRECISION: "s",
    },
    epoch: "s",
  });
});

Deno.test("collectd's JSON output through sluice lands in InfluxDB as exactly its points, with ms times, null skipped", async () => {
  // JSON keeps the host as it is: line protocol must escape the space, comma and equals sign.
  const hostname = `it cd,run=${crypto.randomUUID().slice(0, 8)}`;
  await runChain({
    encoder: "collectd_json",
    collect: (topic) => runCollectd({ topic, format: "JSON", hostname, seconds: COLLECT_SECONDS }),
    expect: (messages) => {
      const expectation = expectJson(messages);
      assert(expectation.points.every((p) => p.tags["host"] === hostname), "the host as set");
      return expectation;
    },
    env: { INFLUXDB_TIME_PRECISION: "ms" },
    epoch: "ms",
  });
});
