/**
 * sluice end to end against the real Kafka broker and the real InfluxDB
 * (Debian `influxdb` 1.6.7) started by scripts/services.sh: exactly the
 * points that went in come out (measurement, tags, fields, times at every
 * precision), a point the server refuses is set aside while its neighbours
 * are written, nothing is lost or committed early while the server is down,
 * and kafka-influxdb's flags and config.yaml run it unchanged.
 *
 * The expected points are written out here from the message text, not
 * computed by sluice's decoders, and read back over plain HTTP
 * (tests/_influx.ts). Every test has its own topic, group and database.
 *
 * @module
 */

import { createTopic, offsets, produce } from "../_kafka.ts";
import {
  allPoints,
  countAllPoints,
  createDatabase,
  databases,
  dropDatabase,
  type Epoch,
  fieldTypes,
  pointLines,
  type StoredPoint,
  writeLines,
} from "../_influx.ts";
import { influxUrl, kafkaBrokers, services, uniqueName } from "../_services.ts";
import {
  assertDeadLetters,
  drained,
  startSluice,
  stopQuietly,
  stopSluice,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

/** 2023-11-14T22:13:20Z: old enough to be nobody's live data, inside the default retention (infinite). */
const T0 = 1_700_000_000;

/** A fresh topic, group and database name for one test, and the env that points sluice at them. */
async function fixture(encoder: string, extra: Record<string, string> = {}, partitions = 3) {
  const name = uniqueName("it_influx");
  await createTopic(name, partitions);
  const db = `db_${name}`;
  const env: Record<string, string> = {
    SINK: "influxdb",
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    KAFKA_TOPIC: name,
    KAFKA_CONSUMER_GROUP_ID: `g_${name}`,
    INFLUXDB_URL: influxUrl(),
    INFLUXDB_DBNAME: db,
    ENCODER: encoder,
    BUFFER_SIZE: "100",
    BUFFER_TIMEOUT: "1",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    ...extra,
  };
  return { topic: name, group: `g_${name}`, db, env };
}

/** Waits until the database holds `count` points, then returns them all. */
async function stored(db: string, count: number, epoch: Epoch): Promise<StoredPoint[]> {
  await waitFor(async () => (await countAllPoints(db)) >= count, `${count} points in ${db}`);
  return allPoints(db, epoch);
}

// ------------------------------------------------------------ exact points

/** Hosts with the characters line protocol must escape in tag values. */
const GRAPHITE_HOSTS = ["web,01=a", "db=2", "cache,x", "plain-host"];
/** Metric paths as collectd writes them after the host. */
const GRAPHITE_METRICS = [
  "load.load.shortterm",
  "cpu-0.cpu-user",
  "interface-lo.if_octets.rx",
  "memory.memory-used",
];
/** Value texts as collectd's printf and other writers spell them. */
const GRAPHITE_VALUES = ["0.05", "30364", "-1.5", "1e-05", "1374392320", "2.5E+300", "0", ".5"];

Deno.test("sluice writes collectd Graphite lines as exactly their points (measurement, escaped tags, float value, time), skips nan, sets aside bad lines", async () => {
  const prefix = "dc=eu,r1.";
  const postfix = ".prod";
  const f = await fixture("collectd_graphite", {
    GRAPHITE_PREFIX: prefix,
    GRAPHITE_PREFIX_TAG: "data center",
    GRAPHITE_POSTFIX: postfix,
    GRAPHITE_POSTFIX_TAG: "stage",
    INFLUXDB_TIME_PRECISION: "s",
  });
  const messages: string[] = [];
  const expected: StoredPoint[] = [];
  let nan = 0;
  let bad = 0;
  for (let i = 0; i < 300; i++) {
    const host = GRAPHITE_HOSTS[i % GRAPHITE_HOSTS.length]!;
    const time = T0 + i;
    const lines = GRAPHITE_METRICS.map((metric, j) => {
      const text = GRAPHITE_VALUES[(i + j) % GRAPHITE_VALUES.length]!;
      expected.push({
        measurement: metric.replaceAll(".", "_"),
        tags: { host, "data center": "dc=eu,r1", stage: "prod" },
        fields: { value: Number(text) },
        time: BigInt(time),
      });
      return `${prefix}${host}${postfix}.${metric} ${text} ${time}`;
    });
    // A rate's first interval: collectd writes nan, sluice skips it.
    if (i % 10 === 0) {
      lines.push(`${prefix}${host}${postfix}.cpu-1.cpu-idle nan ${time}`);
      nan++;
    }
    // Lines that are not Graphite: set aside one by one, their neighbours written.
    if (i % 50 === 7) {
      lines.splice(1, 0, `${prefix}${host}${postfix}.load.load.midterm abc ${time}`);
      lines.push("not a graphite line");
      bad += 2;
    }
    messages.push(lines.join("\r\n") + "\r\n");
  }
  await produce(f.topic, messages);
  assert(!(await databases()).includes(f.db));
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, expected.length);
    assertEquals(pointLines(await stored(f.db, expected.length, "s")), pointLines(expected));
    assertEquals(await sluice.metric("sluice_records_written_total"), expected.length);
    assertEquals(await sluice.metric("sluice_records_skipped_total", { reason: "nan" }), nan);
    assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "decode" }), bad);
    assertEquals(await sluice.metric("sluice_records_rejected_total"), bad);
    assertEquals(await sluice.metric("sluice_messages_received_total"), messages.length);
    assertEquals(await sluice.metric("sluice_sink_up", { sink: "influxdb" }), 1);
    for (const metric of GRAPHITE_METRICS) {
      // 30364 is a float, as every collectd value: the field type never flips.
      assertEquals(await fieldTypes(f.db, metric.replaceAll(".", "_")), { value: "float" });
    }
    assert(
      await sluice.metric("sluice_batches_total", { outcome: "written" }) >=
        expected.length / 100,
      "BUFFER_SIZE=100 points per write",
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
});

/** A collectd JSON value list. */
function valueList(
  host: string,
  plugin: string,
  pluginInstance: string,
  type: string,
  typeInstance: string,
  dsnames: string[],
  values: Array<number | null>,
  time: number,
): Record<string, unknown> {
  return {
    values,
    dstypes: dsnames.map(() => "derive"),
    dsnames,
    time,
    interval: 1,
    host,
    plugin,
    plugin_instance: pluginInstance,
    type,
    type_instance: typeInstance,
  };
}

/** The point a value list should become (`undefined` when every value is null). */
function expectedPoint(
  vl: Record<string, unknown>,
  time: bigint,
): StoredPoint | undefined {
  const values = vl.values as Array<number | null>;
  const dsnames = vl.dsnames as string[];
  const fields: Record<string, unknown> = {};
  values.forEach((v, i) => {
    if (v !== null) fields[values.length === 1 ? "value" : dsnames[i]!] = v;
  });
  if (Object.keys(fields).length === 0) return undefined;
  const tags: Record<string, string> = { host: vl.host as string };
  if (vl.type_instance !== "") tags["type_instance"] = vl.type_instance as string;
  const measurement = [vl.plugin, vl.plugin_instance, vl.type].filter((p) => p !== "").join("_");
  return { measurement, tags, fields, time };
}

Deno.test("sluice writes collectd JSON value lists with their millisecond times at INFLUXDB_TIME_PRECISION=ms", async () => {
  const f = await fixture("collectd_json", { INFLUXDB_TIME_PRECISION: "ms" });
  const hosts = ["web 01,dc=eu", "db=2 x", "plain"];
  const messages: string[] = [];
  const expected: StoredPoint[] = [];
  let nulls = 0;
  for (let i = 0; i < 200; i++) {
    const host = hosts[i % hosts.length]!;
    // Milliseconds as collectd writes them (3 decimals), all different.
    const ms = T0 * 1000 + i * 1000 + (i * 37) % 1000;
    const time = ms / 1000;
    const first = i < 3; // rates on the first interval: null
    const lists = [
      valueList(host, "load", "", "load", "", ["shortterm", "midterm", "longterm"], [
        0.05 * i,
        1.5,
        i,
      ], time),
      valueList(
        host,
        "interface",
        "lo",
        "if_octets",
        "",
        ["rx", "tx"],
        first ? [null, null] : [i % 7 === 0 ? null : 7612.77083359052 + i, 31.0526455885169],
        time,
      ),
      valueList(host, "cpu", "0", "cpu", "user", ["value"], [first ? null : 12.5 * i], time),
      valueList(host, "memory", "", "memory", "a=b c,d", ["value"], [1374392320 + i], time),
    ];
    for (const vl of lists) {
      nulls += (vl.values as unknown[]).filter((v) => v === null).length;
      const point = expectedPoint(vl, BigInt(ms));
      if (point) expected.push(point);
    }
    messages.push(JSON.stringify(lists));
  }
  await produce(f.topic, messages);
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, expected.length);
    assertEquals(pointLines(await stored(f.db, expected.length, "ms")), pointLines(expected));
    assertEquals(await sluice.metric("sluice_records_written_total"), expected.length);
    assertEquals(await sluice.metric("sluice_records_skipped_total", { reason: "nan" }), nulls);
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
});

Deno.test("sluice keeps microseconds of collectd JSON times at INFLUXDB_TIME_PRECISION=us", async () => {
  const f = await fixture("collectd_json", { INFLUXDB_TIME_PRECISION: "us" }, 1);
  const expected: StoredPoint[] = [];
  const messages = Array.from({ length: 50 }, (_, i) => {
    const us = BigInt(T0) * 1_000_000n + BigInt(i * 1_000_000 + 123_456 + i);
    const time = Number(us) / 1e6;
    const vl = valueList("h", "load", "", "load", "", ["value"], [i + 0.25], time);
    expected.push(expectedPoint(vl, us)!);
    return JSON.stringify([vl]);
  });
  await produce(f.topic, messages);
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, expected.length);
    assertEquals(pointLines(await stored(f.db, expected.length, "u")), pointLines(expected));
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
});

Deno.test("sluice passes line protocol through unchanged: escapes, every field type, nanosecond times", async () => {
  const f = await fixture("influx_line", { INFLUXDB_TIME_PRECISION: "ns" });
  const expected: StoredPoint[] = [];
  const messages: string[] = [];
  const base = BigInt(T0) * 1_000_000_000n + 123_456_789n;
  for (let i = 0; i < 100; i++) {
    const time = base + BigInt(i) * 1_000_000_007n;
    const lines = [
      `weather,location=us\\ midwest,station=a\\,b\\=${i} temperature=${
        i + 0.5
      },humidity=${i}i,ok=${i % 2 === 0},note="say \\"hi\\", x=${i}" ${time}`,
      `my\\ meas\\,ure,host=h${i % 3} value=${-(i + 1) * 1.25} ${time}`,
    ];
    expected.push({
      measurement: "weather",
      tags: { location: "us midwest", station: `a,b=${i}` },
      fields: { temperature: i + 0.5, humidity: i, ok: i % 2 === 0, note: `say "hi", x=${i}` },
      time,
    }, {
      measurement: "my meas,ure",
      tags: { host: `h${i % 3}` },
      fields: { value: -(i + 1) * 1.25 },
      time,
    });
    // Blank lines and comments are not points.
    messages.push(`# batch ${i}\n${lines.join("\n")}\n\n`);
  }
  // A line without a time: the server stamps it on arrival.
  messages.push("untimed,host=u value=1");
  await produce(f.topic, messages);
  const before = BigInt(Date.now()) * 1_000_000n;
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, expected.length + 1);
    const after = BigInt(Date.now()) * 1_000_000n;
    const all = await stored(f.db, expected.length + 1, "ns");
    const untimed = all.filter((p) => p.measurement === "untimed");
    assertEquals(untimed.length, 1);
    assert(
      untimed[0]!.time >= before && untimed[0]!.time <= after,
      `stamped on arrival: ${untimed[0]!.time}`,
    );
    assertEquals(pointLines(all.filter((p) => p.measurement !== "untimed")), pointLines(expected));
    assertEquals(await fieldTypes(f.db, "weather"), {
      humidity: "integer",
      note: "string",
      ok: "boolean",
      temperature: "float",
    });
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
});

// ------------------------------------------------------ refused by the server

Deno.test("sluice sets aside the points InfluxDB refuses (field type conflict, time out of range), writes their neighbours and commits", async () => {
  // RECORD_TIME_MIN reaches back before the earliest time InfluxDB stores
  // (1677-09-21), so that a line in 1675 passes sluice's record-time window
  // and it is the server that refuses it.
  const f = await fixture("influx_line", {
    BUFFER_SIZE: "50",
    INFLUXDB_TIME_PRECISION: "s",
    RECORD_TIME_MIN: "1600-01-01",
  }, 1);
  const deadLetters = await Deno.makeTempFile({ prefix: "sluice_influx_dead_", suffix: ".jsonl" });
  f.env["DEAD_LETTER_FILE"] = deadLetters;
  // `value` is a float in this database before sluice writes anything.
  await createDatabase(f.db);
  await writeLines(f.db, [`m,host=setup value=0.5 ${T0 - 1}`], "s");
  const expected: StoredPoint[] = [{
    measurement: "m",
    tags: { host: "setup" },
    fields: { value: 0.5 },
    time: BigInt(T0 - 1),
  }];
  const lines: string[] = [];
  // Lines that pass the decoder's check and that the server refuses, with its reason.
  const poison = new Map<number, [string, RegExp]>([
    [17, [`value="x" ${T0 + 17}`, /field type conflict/]],
    [60, [`value=60i ${T0 + 60}`, /field type conflict/]],
    [61, [`value=61i ${T0 + 61}`, /field type conflict/]],
    // 1675, before the earliest time the server stores. (A nanosecond time
    // where INFLUXDB_TIME_PRECISION=s says seconds, 1700000000123456789, is
    // beyond the server's range too, but sluice's RECORD_TIME_MAX_FUTURE
    // sets it aside first, reason "convert".)
    [100, ["value=1.5 -9300000000", /unable to parse .*time outside range/]],
    [149, [`value=true ${T0 + 149}`, /field type conflict/]],
  ]);
  for (let i = 0; i < 150; i++) {
    const refused = poison.get(i);
    if (refused) {
      lines.push(`m,host=poison-${i} ${refused[0]}`);
    } else {
      lines.push(`m,host=h${i % 5} value=${i}.5 ${T0 + i}`);
      expected.push({
        measurement: "m",
        tags: { host: `h${i % 5}` },
        fields: { value: i + 0.5 },
        time: BigInt(T0 + i),
      });
    }
  }
  // Three lines per message, so a refused point has neighbours in its own message.
  const messages = Array.from(
    { length: lines.length / 3 },
    (_, k) => lines.slice(k * 3, k * 3 + 3).join("\n"),
  );
  await produce(f.topic, messages);
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, lines.length - poison.size);
    await waitFor(
      async () =>
        (await sluice.metric("sluice_records_rejected_total", { reason: "server" })) >=
          poison.size,
      `${poison.size} points rejected by the server`,
    );
    assertEquals(pointLines(await stored(f.db, expected.length, "s")), pointLines(expected));
    assertEquals(
      await sluice.metric("sluice_records_rejected_total", { reason: "server" }),
      poison.size,
    );
    assertEquals(await sluice.metric("sluice_records_rejected_total"), poison.size);
    assertEquals(await sluice.metric("sluice_records_written_total"), lines.length - poison.size);
    assertEquals(await fieldTypes(f.db, "m"), { value: "float" });
    assertEquals(await stopSluice(sluice), 0);
    await assertDeadLetters(
      deadLetters,
      [...poison].map(([i, [, reason]]) => [`poison-${i}`, reason] as const),
    );
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
    await Deno.remove(deadLetters).catch(() => {});
  }
});

// ----------------------------------------------------------------- outage

Deno.test("sluice loses nothing while InfluxDB is stopped mid-stream, and commits only what was written", async () => {
  const f = await fixture("collectd_graphite", {
    BUFFER_SIZE: "200",
    HEALTH_STALL_TIMEOUT: "5",
    INFLUXDB_TIMEOUT: "2",
  });
  /** Messages `from` to `to`, 4 lines each, every point its own time. */
  const messages = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, k) => {
      const i = from + k;
      return GRAPHITE_METRICS.map((m, j) => `host${i % 7}.${m} ${i * 4 + j} ${T0 + i}`).join(
        "\r\n",
      ) + "\r\n";
    });
  const expectedPoints = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      GRAPHITE_METRICS.map((m, j): StoredPoint => ({
        measurement: m.replaceAll(".", "_"),
        tags: { host: `host${i % 7}` },
        fields: { value: i * 4 + j },
        time: BigInt(T0 + i),
      }))).flat();
  const sluice = await startSluice(f.env);
  let influxDown = false;
  try {
    await produce(f.topic, messages(0, 250));
    await drained(sluice, f, 1000);
    await services("stop", "influxdb");
    influxDown = true;
    const downSince = Date.now();
    await produce(f.topic, messages(250, 750));
    await waitFor(async () => (await sluice.metric("sluice_sink_up")) === 0, "sluice_sink_up 0");
    // About 15 s down in all.
    await new Promise((r) => setTimeout(r, Math.max(0, 15_000 - (Date.now() - downSince))));
    assert(
      await sluice.metric("sluice_sink_retries_total") > 0,
      "writes were retried",
    );
    const health = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
    assertEquals(health.status, 503, "/healthz reports the stall");
    await health.body?.cancel();
    assertEquals(await sluice.metric("sluice_records_written_total"), 1000, "nothing written");
    const { committed } = await offsets(f.group, f.topic);
    const committedTotal = Object.values(committed).reduce((a, o) => a + Math.max(0, Number(o)), 0);
    assert(committedTotal <= 250, `nothing unwritten was committed (${committedTotal})`);
    await services("start", "influxdb");
    influxDown = false;
    await drained(sluice, f, 3000, 60_000);
    const expected = expectedPoints(750);
    assertEquals(pointLines(await stored(f.db, expected.length, "s")), pointLines(expected));
    assertEquals(await sluice.metric("sluice_sink_up"), 1);
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
    const healthy = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
    assertEquals(healthy.status, 200, "/healthz is fine again");
    await healthy.body?.cancel();
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    if (influxDown) await services("start", "influxdb");
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
});

Deno.test("sluice creates the database again when it is dropped mid-stream, and writes on", async () => {
  const f = await fixture("collectd_graphite", {}, 1);
  const batch = (from: number, to: number) => {
    const expected: StoredPoint[] = [];
    const messages = Array.from({ length: to - from }, (_, k) => {
      const i = from + k;
      expected.push({
        measurement: "load_load_shortterm",
        tags: { host: "h" },
        fields: { value: i },
        time: BigInt(T0 + i),
      });
      return `h.load.load.shortterm ${i} ${T0 + i}`;
    });
    return { expected, messages };
  };
  const first = batch(0, 200);
  const second = batch(200, 500);
  await produce(f.topic, first.messages);
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, 200);
    await dropDatabase(f.db);
    await produce(f.topic, second.messages);
    await drained(sluice, f, 500);
    // What was written before the drop went with the database; everything after is there.
    assertEquals(
      pointLines(await stored(f.db, second.expected.length, "s")),
      pointLines(second.expected),
    );
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
});

// ----------------------------------------------------- kafka-influxdb's way

/** 30 collectd Graphite messages of 2 lines each, and their points. */
function kafkaInfluxdbSample(): { messages: string[]; expected: StoredPoint[] } {
  const expected: StoredPoint[] = [];
  const messages = Array.from({ length: 30 }, (_, i) => {
    const lines = ["load.load.shortterm", "memory.memory-free"].map((m, j) => {
      expected.push({
        measurement: m.replaceAll(".", "_"),
        tags: { host: "26f2fc918f50" },
        fields: { value: i + j / 4 },
        time: BigInt(T0 + i),
      });
      return `26f2fc918f50.${m} ${i + j / 4} ${T0 + i}`;
    });
    return lines.join("\n") + "\n";
  });
  return { messages, expected };
}

/** Runs sluice as kafka-influxdb would be run, with no environment of its own. */
async function checkKafkaInfluxdbRun(
  args: (f: { topic: string; group: string; db: string }) => string[] | Promise<string[]>,
): Promise<void> {
  const name = uniqueName("it_kinflux");
  const f = { topic: name, group: `g_${name}`, db: `db_${name}` };
  await createTopic(f.topic, 3);
  const { messages, expected } = kafkaInfluxdbSample();
  await produce(f.topic, messages);
  const sluice = await startSluice({}, { args: await args(f) });
  try {
    await drained(sluice, f, expected.length);
    assert((await databases()).includes(f.db), "the sink created the database");
    assertEquals(pointLines(await stored(f.db, expected.length, "s")), pointLines(expected));
    // buffer_size 10: 60 points take at least 6 writes of at most 10 points.
    assert(await sluice.metric("sluice_batches_total", { outcome: "written" }) >= 6);
    assertEquals(
      await sluice.metric("sluice_batch_rows_bucket", { le: "10" }),
      await sluice.metric("sluice_batch_rows_count"),
      "no write of more than 10 points",
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await dropDatabase(f.db);
  }
}

Deno.test("sluice runs with kafka-influxdb's command-line flags", async () => {
  const kafka = new URL(`http://${kafkaBrokers()}`);
  const influx = new URL(influxUrl());
  await checkKafkaInfluxdbRun((f) => [
    "--kafka_host",
    kafka.hostname,
    "--kafka_port",
    kafka.port,
    "--kafka_topic",
    f.topic,
    "--kafka_group",
    f.group,
    "--influxdb_host",
    influx.hostname,
    "--influxdb_port",
    influx.port,
    "--influxdb_dbname",
    f.db,
    "--buffer_size",
    "10",
    "--buffer_timeout",
    "1",
  ]);
});

Deno.test("sluice runs with kafka-influxdb's config.yaml (-c)", async () => {
  const kafka = new URL(`http://${kafkaBrokers()}`);
  const influx = new URL(influxUrl());
  const dir = await Deno.makeTempDir({ prefix: "sluice_kinflux_" });
  try {
    await checkKafkaInfluxdbRun(async (f) => {
      // kafka-influxdb's sample config.yaml, pointed at the test servers.
      const yaml = `kafka:
  host: "${kafka.hostname}"
  port: ${kafka.port}
  topic: "${f.topic}"
  group: "${f.group}"
influxdb:
  host: "${influx.hostname}"
  port: ${influx.port}
  user: "root"
  password: "root"
  dbname: "${f.db}"
  use_ssl: false
  verify_ssl: False
  timeout: 5
  use_udp: False
  retention_policy: "autogen"
  time_precision: "s"
encoder: "kafka_influxdb.encoder.collectd_graphite_encoder"
buffer_size: 10
buffer_timeout: 1
statistics: false
`;
      const path = `${dir}/config.yaml`;
      await Deno.writeTextFile(path, yaml);
      return ["-c", path];
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
