/**
 * sluice end to end against the real Kafka broker and the real InfluxDB OSS
 * 2.7.12 (`bash scripts/influxdb2.sh start`), through `/api/v2/write` with a
 * token: exactly the points that went in come out (measurement, tags, typed
 * field values, times at s, ms and ns), a point the server refuses is set
 * aside while every other point is written (a field type conflict, which
 * 2.7.12 answers 422 having written the rest, and a line it cannot parse,
 * which it answers 400 having written nothing), and a wrong token or a
 * missing bucket holds everything back, uncommitted, until fixed.
 *
 * The expected points are written out here from the message text, not
 * computed by sluice's decoders, and read back with Flux over plain HTTP
 * (tests/_influx2.ts). Every test has its own topic, group and bucket; the
 * bucket is made through the API before sluice starts (sluice never creates
 * buckets) and deleted afterwards.
 *
 * @module
 */

import { createTopic, offsets, produce } from "../_kafka.ts";
import {
  countPoints,
  createBucket,
  deleteBucket,
  points,
  type StoredPoint,
  uniqueBucket,
  writeLines,
} from "../_influx2.ts";
import { pointLines } from "../_influx.ts";
import { influx2, kafkaBrokers } from "../_services.ts";
import {
  assertDeadLetters,
  drained,
  type SluiceProcess,
  startSluice,
  stopQuietly,
  stopSluice,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

/** 2023-11-14T22:13:20Z, inside the test buckets' retention (infinite). */
const T0 = 1_700_000_000;
const NS = 1_000_000_000n;

interface Fixture {
  topic: string;
  group: string;
  bucket: string;
  env: Record<string, string>;
}

/**
 * A fresh bucket (made first: a missing server fails here, saying how to
 * start it), topic and group for one test, and the env that points sluice
 * at them with the API chosen automatically (token, org and bucket set).
 */
async function fixture(
  what: string,
  encoder: string,
  extra: Record<string, string> = {},
  options: { partitions?: number; createBucket?: boolean } = {},
): Promise<Fixture> {
  const name = uniqueBucket(what);
  if (options.createBucket ?? true) await createBucket(name);
  try {
    await createTopic(name, options.partitions ?? 3);
  } catch (error) {
    await deleteBucket(name);
    throw error;
  }
  const server = influx2();
  return {
    topic: name,
    group: `g_${name}`,
    bucket: name,
    env: {
      SINK: "influxdb",
      KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
      KAFKA_TOPIC: name,
      KAFKA_CONSUMER_GROUP_ID: `g_${name}`,
      INFLUXDB_URL: server.url,
      INFLUXDB_ORG: server.org,
      INFLUXDB_BUCKET: name,
      INFLUXDB_TOKEN: server.token,
      ENCODER: encoder,
      BUFFER_SIZE: "100",
      BUFFER_TIMEOUT: "1",
      RETRY_BACKOFF_INITIAL: "0.2",
      RETRY_BACKOFF_MAX: "2",
      ...extra,
    },
  };
}

/** Waits until the bucket holds `count` points, then returns them all. */
async function stored(bucket: string, count: number): Promise<StoredPoint[]> {
  await waitFor(async () => (await countPoints(bucket)) >= count, `${count} points in ${bucket}`);
  return points(bucket);
}

/** Whether the group has committed nothing at all on the topic. */
async function nothingCommitted(f: Fixture): Promise<boolean> {
  const { committed } = await offsets(f.group, f.topic);
  return Object.values(committed).every((offset) => Number(offset) <= 0);
}

/**
 * Waits until sluice has written `written` points (by default every point
 * of `expected`) and committed, checks that the bucket holds exactly
 * `expected`, that `rejected` records were set aside, and whatever `more`
 * checks, then stops sluice: it must exit 0.
 */
async function allWritten(
  sluice: SluiceProcess,
  f: Fixture,
  expected: readonly StoredPoint[],
  options: { written?: number; rejected?: number; more?: () => Promise<void> } = {},
): Promise<void> {
  const written = options.written ?? expected.length;
  await drained(sluice, f, written);
  assertEquals(pointLines(await stored(f.bucket, expected.length)), pointLines(expected));
  assertEquals(await sluice.metric("sluice_records_written_total"), written);
  assertEquals(await sluice.metric("sluice_records_rejected_total"), options.rejected ?? 0);
  await options.more?.();
  assertEquals(await stopSluice(sluice), 0);
}

/**
 * Waits until the server has refused sluice's writes with `status`
 * `retries` times, and checks that nothing was written, set aside or
 * committed meanwhile.
 *
 * @returns The error log line for the refusal.
 */
async function heldBack(
  sluice: SluiceProcess,
  f: Fixture,
  status: number,
  retries: number,
): Promise<Record<string, unknown>> {
  const line = await waitFor(
    () =>
      sluice.logs.find((l) =>
        l["level"] === "error" && String(l["error"] ?? "").includes(`HTTP ${status}:`)
      ),
    `an error log line for HTTP ${status}`,
    30_000,
  );
  await waitFor(
    async () =>
      (await sluice.metric("sluice_sink_retries_total", { error_type: `http_${status}` })) >=
        retries,
    `${retries} retries after HTTP ${status}`,
    30_000,
  );
  assertEquals(await sluice.metric("sluice_sink_up", { sink: "influxdb" }), 0);
  assertEquals(await sluice.metric("sluice_records_written_total"), 0);
  assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
  assert(
    await nothingCommitted(f),
    `nothing committed: ${JSON.stringify(await offsets(f.group, f.topic))}`,
  );
  const missing = (error: unknown) =>
    /could not find bucket/.test(String(error)) ? 0 : Promise.reject(error);
  assertEquals(await countPoints(f.bucket).catch(missing), 0, "nothing in the bucket");
  return line;
}

// ------------------------------------------------------------ exact points

Deno.test("InfluxDB 2: collectd Graphite lines become exactly their points (escaped tags, float values, times in s), nan skipped, bad lines set aside", async () => {
  const f = await fixture("graphite", "collectd_graphite", {
    GRAPHITE_PREFIX: "site=a,b.",
    GRAPHITE_PREFIX_TAG: "site name",
  });
  const hosts = ["web,01=x", "db=2", "plain-host"];
  const metrics = ["load.load.midterm", "cpu-3.cpu-system", "df-root.percent_bytes-used"];
  const values = ["0.25", "30364", "-7.5", "1e-05", "2.5E+300", "0", ".75"];
  const messages: string[] = [];
  const expected: StoredPoint[] = [];
  let nan = 0;
  let bad = 0;
  for (let i = 0; i < 240; i++) {
    const host = hosts[i % hosts.length]!;
    const time = T0 + i;
    const lines = metrics.map((metric, j) => {
      const text = values[(i * 3 + j) % values.length]!;
      expected.push({
        measurement: metric.replaceAll(".", "_"),
        tags: { host, "site name": "site=a,b" },
        fields: { value: Number(text) },
        time: BigInt(time) * NS,
      });
      return `site=a,b.${host}.${metric} ${text} ${time}`;
    });
    if (i % 8 === 0) {
      lines.push(`site=a,b.${host}.interface-eth0.if_errors.rx nan ${time}`);
      nan++;
    }
    if (i % 60 === 11) {
      lines.splice(1, 0, `site=a,b.${host}.load.load.longterm 1.5`, "no graphite here");
      bad += 2;
    }
    messages.push(lines.join("\r\n") + "\r\n");
  }
  await produce(f.topic, messages);
  const sluice = await startSluice(f.env);
  try {
    await allWritten(sluice, f, expected, {
      rejected: bad,
      more: async () => {
        assertEquals(await sluice.metric("sluice_records_skipped_total", { reason: "nan" }), nan);
        assertEquals(
          await sluice.metric("sluice_records_rejected_total", { reason: "decode" }),
          bad,
        );
        assertEquals(await sluice.metric("sluice_sink_up", { sink: "influxdb" }), 1);
        const connected = sluice.logs.find((l) => l["msg"] === "Connected to InfluxDB");
        assertEquals(connected?.["api"], 2, "INFLUXDB_API_VERSION=auto chose 2");
        assertEquals(connected?.["version"], "v2.7.12");
      },
    });
  } finally {
    await stopQuietly(sluice);
    await deleteBucket(f.bucket);
  }
});

Deno.test("InfluxDB 2: collectd JSON value lists keep their sub-second times at INFLUXDB_TIME_PRECISION=ms", async () => {
  const f = await fixture("json", "collectd_json", {
    INFLUXDB_TIME_PRECISION: "ms",
    INFLUXDB_API_VERSION: "2",
  });
  const hosts = ["web 01,dc=eu", "db=2", "h"];
  const messages: string[] = [];
  const expected: StoredPoint[] = [];
  let nulls = 0;
  for (let i = 0; i < 150; i++) {
    const host = hosts[i % hosts.length]!;
    // Three decimals, as collectd writes them: .000, .001, ..., .999 and others.
    const ms = (T0 + i) * 1000 + [0, 1, 999, 500, (i * 53) % 1000][i % 5]!;
    const time = BigInt(ms) * 1_000_000n;
    const first = i < 2;
    const rx = first || i % 9 === 0 ? null : 1234.5 + i;
    const lists = [
      {
        values: [0.01 * i, 2.5, i],
        dsnames: ["shortterm", "midterm", "longterm"],
        plugin: "load",
        plugin_instance: "",
        type: "load",
        type_instance: "",
      },
      {
        values: [rx, first ? null : 42.125],
        dsnames: ["rx", "tx"],
        plugin: "interface",
        plugin_instance: "eth0",
        type: "if_packets",
        type_instance: "",
      },
      {
        values: [1e9 + i],
        dsnames: ["value"],
        plugin: "memory",
        plugin_instance: "",
        type: "memory",
        type_instance: "used x,y=z",
      },
    ];
    for (const vl of lists) {
      const fields: Record<string, unknown> = {};
      vl.values.forEach((v, k) => {
        if (v === null) nulls++;
        else fields[vl.values.length === 1 ? "value" : vl.dsnames[k]!] = v;
      });
      if (Object.keys(fields).length === 0) continue;
      expected.push({
        measurement: [vl.plugin, vl.plugin_instance, vl.type].filter((p) => p !== "").join("_"),
        tags: vl.type_instance === "" ? { host } : { host, type_instance: vl.type_instance },
        fields,
        time,
      });
    }
    messages.push(JSON.stringify(lists.map((vl) => ({
      ...vl,
      dstypes: vl.values.map(() => "gauge"),
      time: ms / 1000,
      interval: 10,
      host,
    }))));
  }
  await produce(f.topic, messages);
  const sluice = await startSluice(f.env);
  try {
    await allWritten(sluice, f, expected, {
      more: async () => {
        assertEquals(
          await sluice.metric("sluice_records_skipped_total", { reason: "nan" }),
          nulls,
        );
      },
    });
  } finally {
    await stopQuietly(sluice);
    await deleteBucket(f.bucket);
  }
});

Deno.test("InfluxDB 2: line protocol passes through unchanged (escapes, every field type, ns times)", async () => {
  const f = await fixture("lines", "influx_line", { INFLUXDB_TIME_PRECISION: "ns" }, {
    partitions: 1,
  });
  const base = BigInt(T0) * NS + 987_654_321n;
  const expected: StoredPoint[] = [];
  const messages = Array.from({ length: 80 }, (_, i) => {
    const time = base + BigInt(i) * 1_000_000_003n;
    expected.push({
      measurement: "sensor data",
      tags: { "room,floor": `b=${i % 4} x`, kind: "t" },
      fields: {
        temp: i - 20.25,
        count: BigInt(i) * 1_000_000_000_007n,
        on: i % 3 === 0,
        label: `"quoted", back\\slash ${i}`,
      },
      time,
    });
    return `# sample ${i}\nsensor\\ data,kind=t,room\\,floor=b\\=${i % 4}\\ x temp=${
      i - 20.25
    },count=${BigInt(i) * 1_000_000_000_007n}i,on=${
      i % 3 === 0 ? "t" : "F"
    },label="\\"quoted\\", back\\\\slash ${i}" ${time}\n`;
  });
  await produce(f.topic, messages);
  const sluice = await startSluice(f.env);
  try {
    await allWritten(sluice, f, expected);
  } finally {
    await stopQuietly(sluice);
    await deleteBucket(f.bucket);
  }
});

// ------------------------------------------------------ refused by the server

/**
 * Runs sluice (ENCODER=influx_line, precision s, dead letters kept) over
 * `m` lines with a float `value`, and in their places the lines of `poison`
 * (`m,host=poison-<i>` and the text given),
 * three lines per message; checks that every other point was written, the
 * poison set aside as reason "server" with the server's reason, and
 * everything committed.
 */
async function checkRefused(
  what: string,
  poison: ReadonlyMap<number, readonly [string, RegExp]>,
  setup: (bucket: string) => Promise<StoredPoint[]>,
): Promise<void> {
  // RECORD_TIME_MIN reaches back before the earliest time InfluxDB stores
  // (1677-09-21), so that the server, not sluice's record-time window,
  // refuses a line from before it.
  const f = await fixture(what, "influx_line", {
    BUFFER_SIZE: "40",
    RECORD_TIME_MIN: "1600-01-01",
  }, { partitions: 1 });
  const deadLetters = await Deno.makeTempFile({ prefix: "sluice_influx2_dead_", suffix: ".jsonl" });
  f.env["DEAD_LETTER_FILE"] = deadLetters;
  let sluice: SluiceProcess | undefined;
  try {
    const expected = await setup(f.bucket);
    const lines: string[] = [];
    for (let i = 0; i < 120; i++) {
      const refused = poison.get(i);
      if (refused) {
        lines.push(`m,host=poison-${i}${refused[0]}`);
        continue;
      }
      lines.push(`m,host=h${i % 4} value=${i}.25 ${T0 + i}`);
      expected.push({
        measurement: "m",
        tags: { host: `h${i % 4}` },
        fields: { value: i + 0.25 },
        time: BigInt(T0 + i) * NS,
      });
    }
    await produce(
      f.topic,
      Array.from({ length: lines.length / 3 }, (_, k) => lines.slice(k * 3, k * 3 + 3).join("\n")),
    );
    sluice = await startSluice(f.env);
    const running = sluice;
    await allWritten(running, f, expected, {
      written: lines.length - poison.size,
      rejected: poison.size,
      more: async () => {
        assertEquals(
          await running.metric("sluice_records_rejected_total", { reason: "server" }),
          poison.size,
        );
        assert(await running.metric("sluice_batch_splits_total") > 0, "batches were split");
      },
    });
    await assertDeadLetters(
      deadLetters,
      [...poison].map(([i, [, reason]]) => [`poison-${i}`, reason] as const),
    );
  } finally {
    await stopQuietly(sluice);
    await deleteBucket(f.bucket);
    await Deno.remove(deadLetters).catch(() => {});
  }
}

Deno.test("InfluxDB 2: points with a field type conflict (422, the rest written) are set aside as reason server, every other point written", async () => {
  await checkRefused(
    "conflict",
    new Map([
      [5, [` value="text" ${T0 + 5}`, /HTTP 422: .*field type conflict/]],
      [40, [` value=40i ${T0 + 40}`, /HTTP 422: .*is type integer, already exists as type float/]],
      [41, [` value=41i ${T0 + 41}`, /HTTP 422: .*field type conflict/]],
      [119, [` value=false ${T0 + 119}`, /HTTP 422: .*field type conflict/]],
    ]),
    async (bucket) => {
      // `value` is a float in this bucket before sluice writes anything.
      await writeLines(bucket, [`m,host=setup value=0.5 ${T0 - 1}`], "s");
      return [{
        measurement: "m",
        tags: { host: "setup" },
        fields: { value: 0.5 },
        time: BigInt(T0 - 1) * NS,
      }];
    },
  );
});

Deno.test("InfluxDB 2: lines the server cannot parse (400, nothing of the batch written) are set aside as reason server, every other point written", async () => {
  // Each passes the influx_line decoder's light check.
  await checkRefused(
    "unparseable",
    new Map([
      // 1675, before the earliest time the server stores. (A nanosecond time
      // where INFLUXDB_TIME_PRECISION=s says seconds is beyond its range too,
      // but sluice's RECORD_TIME_MAX_FUTURE sets it aside first, as "convert".)
      [3, [" value=1.5 -9300000000", /HTTP 400: unable to parse .*time outside range/]],
      [50, [` value=abc ${T0 + 50}`, /HTTP 400: unable to parse .*invalid boolean/]],
      [51, [` value=1.2.3 ${T0 + 51}`, /HTTP 400: unable to parse .*invalid number/]],
      [
        90,
        [` value=99999999999999999999i ${T0 + 90}`, /HTTP 400: unable to parse .*out of range/],
      ],
      [100, [`,tag value=1.5 ${T0 + 100}`, /HTTP 400: unable to parse .*missing tag value/]],
    ]),
    () => Promise.resolve([]),
  );
});

// ------------------------------------------------ credentials and buckets

/** 60 collectd Graphite messages of 2 lines each for `bucket`'s test, and their points. */
function graphiteSample(): { messages: string[]; expected: StoredPoint[] } {
  const expected: StoredPoint[] = [];
  const messages = Array.from(
    { length: 60 },
    (_, i) =>
      ["load.load.shortterm", "memory.memory-free"].map((m, j) => {
        expected.push({
          measurement: m.replaceAll(".", "_"),
          tags: { host: `host${i % 3}` },
          fields: { value: i * 2 + j },
          time: BigInt(T0 + i) * NS,
        });
        return `host${i % 3}.${m} ${i * 2 + j} ${T0 + i}`;
      }).join("\n") + "\n",
  );
  return { messages, expected };
}

Deno.test("InfluxDB 2: a wrong token writes and commits nothing, logs an error naming INFLUXDB_TOKEN, and the right token then writes everything", async () => {
  const wrongToken = "not-the-token-4b1d";
  const f = await fixture("token", "collectd_graphite", {
    INFLUXDB_API_VERSION: "2",
    HEALTH_STALL_TIMEOUT: "3",
    SHUTDOWN_TIMEOUT: "2",
  });
  const { messages, expected } = graphiteSample();
  await produce(f.topic, messages);
  let sluice: SluiceProcess | undefined;
  try {
    sluice = await startSluice({ ...f.env, INFLUXDB_TOKEN: wrongToken });
    const refused = await heldBack(sluice, f, 401, 3);
    assertEquals(refused["msg"], "InfluxDB refuses writes");
    assert(
      /INFLUXDB_TOKEN/.test(String(refused["error"])),
      `the error names INFLUXDB_TOKEN: ${refused["error"]}`,
    );
    // HEALTH_STALL_TIMEOUT=3: the same records wait on, so /healthz reports a stall.
    await waitFor(async () => {
      const health = await fetch(`http://127.0.0.1:${sluice!.metricsPort}/healthz`);
      await health.body?.cancel();
      return health.status === 503;
    }, "/healthz answering 503");
    assert(
      !sluice.logs.some((l) => JSON.stringify(l).includes(wrongToken)),
      "the token is not logged",
    );
    // SHUTDOWN_TIMEOUT=2: the last batch is given up at shutdown, not written or committed.
    await stopSluice(sluice);
    assert(await nothingCommitted(f), "nothing committed at shutdown either");
    assertEquals(await countPoints(f.bucket), 0);

    sluice = await startSluice(f.env);
    await allWritten(sluice, f, expected);
  } finally {
    await stopQuietly(sluice);
    await deleteBucket(f.bucket);
  }
});

Deno.test("InfluxDB 2: a missing bucket holds everything back uncommitted, and sluice writes it all once the bucket is made", async () => {
  const f = await fixture("nobucket", "collectd_graphite", {}, { createBucket: false });
  const { messages, expected } = graphiteSample();
  await produce(f.topic, messages);
  let sluice: SluiceProcess | undefined;
  try {
    sluice = await startSluice(f.env);
    const refused = await heldBack(sluice, f, 404, 2);
    assert(
      /bucket .* not found.*the bucket does not exist/.test(String(refused["error"])),
      `the error says the bucket is missing: ${refused["error"]}`,
    );
    await createBucket(f.bucket);
    const running = sluice;
    await allWritten(running, f, expected, {
      more: async () =>
        assertEquals(await running.metric("sluice_sink_up", { sink: "influxdb" }), 1),
    });
  } finally {
    await stopQuietly(sluice);
    await deleteBucket(f.bucket);
  }
});
