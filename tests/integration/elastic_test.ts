/**
 * sluice end to end against the real Kafka broker and the real
 * Elasticsearch/OpenSearch node started by scripts/services.sh: daily
 * indexes by record time, `_id`s from the Kafka origin, replays that
 * overwrite, per-document rejections, and a server outage.
 *
 * Every test has its own topic, consumer group and index prefix, and
 * deletes its indexes and template at the end.
 *
 * @module
 */
import { flowMessages, flowRecord } from "../_flows.ts";
import { allCommitted, createTopic, offsets, produce } from "../_kafka.ts";
import { elasticUrl, kafkaBrokers, services, uniqueName } from "../_services.ts";
import { startSluice, stopQuietly, stopSluice, waitFor } from "../_sluice.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

/**
 * A request to the test server, independent of the sink. Its JSON answers
 * are walked freely by the assertions, hence `any`.
 */
// deno-lint-ignore no-explicit-any
async function es(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${elasticUrl()}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`Cannot ${method} ${path}: HTTP ${response.status} ${text}`);
  return text === "" ? undefined : JSON.parse(text);
}

/** Local times in PMACCT_TIMEZONE=Europe/Berlin, and the UTC day they belong to. */
const TIMES = [
  { local: "2026-11-21 23:30:00", iso: "2026-11-21T22:30:00.000Z", day: "2026-11-21" },
  { local: "2026-11-22 01:30:00", iso: "2026-11-22T00:30:00.000Z", day: "2026-11-22" },
  // Already the 22nd in Berlin, still the 21st in UTC.
  { local: "2026-11-22 00:30:00", iso: "2026-11-21T23:30:00.000Z", day: "2026-11-21" },
];

/** A pmacct-like record with a unique `seq`; its time cycles through {@link TIMES}. */
function record(seq: number): Record<string, unknown> {
  const time = TIMES[seq % 3]!;
  return flowRecord(seq, {
    stamp_inserted: time.local.slice(0, 15) + "0:00",
    stamp_updated: time.local,
    flows: 1,
  });
}

const messages = (from: number, to: number) => flowMessages(from, to, record);

/** A fresh topic, group and index prefix for one test, and the env that points sluice at them. */
async function fixture(extra: Record<string, string> = {}, partitions = 3) {
  const name = uniqueName("it_es");
  await createTopic(name, partitions);
  const prefix = name.toLowerCase();
  const env: Record<string, string> = {
    SINK: "elastic",
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    KAFKA_TOPIC: name,
    KAFKA_CONSUMER_GROUP_ID: `g_${name}`,
    ELASTIC_HOSTS: new URL(elasticUrl()).host,
    ELASTIC_INDEX_PREFIX: prefix,
    ELASTIC_MAX_SAMPLES_PER_SEND: "500",
    ELASTIC_MAX_TIME_TO_SEND: "1",
    PMACCT_TIMEZONE: "Europe/Berlin",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    ...extra,
  };
  const indexes = async (): Promise<string[]> => {
    const rows: Array<{ index: string }> = await es(
      "GET",
      `/_cat/indices/${prefix}-*?format=json&h=index`,
    );
    return rows.map((r) => r.index).sort();
  };
  return {
    topic: name,
    group: `g_${name}`,
    prefix,
    env,
    indexes,
    /** Documents in the test's indexes, after a refresh. */
    count: async (): Promise<number> => {
      await es("POST", `/${prefix}-*/_refresh`);
      return (await es("GET", `/${prefix}-*/_count`)).count;
    },
    drop: async () => {
      for (const index of await indexes().catch(() => [])) {
        await es("DELETE", `/${index}`).catch(() => {});
      }
      await es("DELETE", `/_index_template/${prefix}`).catch(() => {});
    },
  };
}

/** Every document of the test's indexes: index, id, version and source. */
async function allDocuments(prefix: string) {
  await es("POST", `/${prefix}-*/_refresh`);
  const result = await es("POST", `/${prefix}-*/_search`, {
    size: 10000,
    version: true,
    query: { match_all: {} },
  });
  // deno-lint-ignore no-explicit-any
  return (result.hits.hits as Array<Record<string, any>>).map((h) => ({
    index: h._index as string,
    id: h._id as string,
    version: h._version as number,
    source: h._source as Record<string, unknown>,
  }));
}

Deno.test("sluice indexes N records into daily indexes by record time, with _ids from their Kafka origin and the shipped mappings", async () => {
  const f = await fixture();
  const n = 3000;
  // One produce call, round-robin: message i goes to partition i % 3 at offset floor(i / 3).
  await produce(f.topic, messages(0, n));
  const sluice = await startSluice(f.env);
  try {
    await waitFor(async () => (await f.count()) === n, `${n} documents`);
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    assertEquals(await f.indexes(), [`${f.prefix}-2026-11-21`, `${f.prefix}-2026-11-22`]);
    const docs = await allDocuments(f.prefix);
    assertEquals(docs.length, n);
    for (const doc of docs) {
      const seq = doc.source.seq as number;
      assertEquals(doc.id, `${f.topic}-${seq % 3}-${Math.floor(seq / 3)}-0`);
      assertEquals(doc.index, `${f.prefix}-${TIMES[seq % 3]!.day}`, `seq ${seq}`);
      assertEquals(doc.version, 1);
    }
    const one = docs.find((d) => d.source.seq === 1234)!;
    assertEquals(one.source, { ...record(1234), "@timestamp": TIMES[1234 % 3]!.iso });

    const mapping = await es("GET", `/${f.prefix}-2026-11-21/_mapping`);
    const properties = mapping[`${f.prefix}-2026-11-21`].mappings.properties;
    assertEquals(properties["@timestamp"], { type: "date" });
    assertEquals(properties.stamp_updated, { type: "date", format: "yyyy-MM-dd HH:mm:ss" });
    assertEquals(properties.stamp_inserted, { type: "date", format: "yyyy-MM-dd HH:mm:ss" });
    assertEquals(properties.bytes, { type: "long" });
    assertEquals(properties.packets, { type: "long" });
    assertEquals(properties.flows, { type: "long" });
    const settings = await es("GET", `/${f.prefix}-2026-11-22/_settings`);
    const index = settings[`${f.prefix}-2026-11-22`].settings.index;
    assertEquals([index.number_of_shards, index.number_of_replicas], ["1", "0"]);

    // The index day and @timestamp come from the record, so a range query finds them.
    const late = await es("POST", `/${f.prefix}-*/_count`, {
      query: { range: { "@timestamp": { gte: "2026-11-22T00:00:00Z" } } },
    });
    assertEquals(late.count, n / 3);

    assertEquals(await sluice.metric("sluice_records_written_total", { sink: "elastic" }), n);
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0);
    assert(sluice.logs.some((l) => l.msg === "Connected to Elasticsearch" && l.version));
    assertEquals(
      sluice.logs.filter((l) => l.msg === "Created Elasticsearch index").map((l) => l.index).sort(),
      [`${f.prefix}-2026-11-21`, `${f.prefix}-2026-11-22`],
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});

Deno.test("a replay of the same offsets by another consumer group overwrites the documents instead of duplicating them", async () => {
  const f = await fixture();
  const n = 1000;
  await produce(f.topic, messages(0, n));
  let sluice = await startSluice(f.env);
  try {
    await waitFor(async () => (await f.count()) === n, `${n} documents`);
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    assertEquals(await stopSluice(sluice), 0);

    const replayGroup = `${f.group}_replay`;
    sluice = await startSluice({ ...f.env, KAFKA_CONSUMER_GROUP_ID: replayGroup });
    await waitFor(() => allCommitted(replayGroup, f.topic), "the replay committed every offset");
    assertEquals(await sluice.metric("sluice_records_written_total"), n);
    assertEquals(await f.count(), n, "still one document per record");
    const docs = await allDocuments(f.prefix);
    assertEquals(docs.length, n);
    assert(docs.every((d) => d.version === 2), "every document was overwritten once");
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});

Deno.test("with an index template, a mapping conflict on one document leaves the others indexed and is counted as rejected", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-es-it-" });
  const deadLetters = `${dir}/dead.jsonl`;
  const f = await fixture({
    ELASTIC_TEMPLATE_MODE: "index_template",
    DEAD_LETTER_FILE: deadLetters,
  }, 1);
  const good = messages(0, 200);
  const values = [
    ...good.slice(0, 100),
    JSON.stringify({ ...record(1000), bytes: "lots" }),
    JSON.stringify({ ...record(1001), stamp_updated: undefined }),
    ...good.slice(100),
  ];
  await produce(f.topic, values);
  const sluice = await startSluice(f.env);
  try {
    await waitFor(
      () => allCommitted(f.group, f.topic),
      "every offset committed, the bad ones' too",
    );
    assertEquals(await f.count(), 200);
    assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "server" }), 1);
    assertEquals(await sluice.metric("sluice_records_rejected_total", { reason: "convert" }), 1);
    assertEquals(await sluice.metric("sluice_records_written_total"), 200);

    const template = await es("GET", `/_index_template/${f.prefix}`);
    assertEquals(template.index_templates[0].name, f.prefix);
    assertEquals(template.index_templates[0].index_template.index_patterns, [`${f.prefix}-*`]);
    assert(sluice.logs.some((l) => l.msg === "Installed Elasticsearch index template"));
    assert(!sluice.logs.some((l) => l.msg === "Created Elasticsearch index"));
    const mapping = await es("GET", `/${f.prefix}-2026-11-21/_mapping`);
    assertEquals(mapping[`${f.prefix}-2026-11-21`].mappings.properties.bytes, { type: "long" });

    const lines = (await Deno.readTextFile(deadLetters)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    const server = lines.find((l) => l.reason === "server");
    assertMatch(
      server.error,
      /^(mapper_parsing_exception|document_parsing_exception): .*failed to parse field \[bytes\] of type \[long\]/,
    );
    assertEquals(server.offset, "100");
    assertEquals(JSON.parse(server.data.source).bytes, "lots");
    const convert = lines.find((l) => l.reason === "convert");
    assertMatch(convert.error, /no time field "stamp_updated"/);
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sluice loses nothing when Elasticsearch is stopped mid-stream and restarted", async () => {
  const f = await fixture({ ELASTIC_MAX_SAMPLES_PER_SEND: "200", HEALTH_STALL_TIMEOUT: "5" });
  const sluice = await startSluice(f.env);
  let serverDown = false;
  try {
    await produce(f.topic, messages(0, 1000));
    await waitFor(async () => (await f.count()) === 1000, "the first 1000 documents");
    await services("stop", "elasticsearch");
    serverDown = true;
    await produce(f.topic, messages(1000, 3000));
    await waitFor(async () => (await sluice.metric("sluice_sink_up")) === 0, "sluice_sink_up 0");
    await new Promise((r) => setTimeout(r, 10_000));
    assert(await sluice.metric("sluice_sink_retries_total") > 0, "writes were retried");
    const health = await fetch(`http://127.0.0.1:${sluice.metricsPort}/healthz`);
    assertEquals(health.status, 503, "/healthz reports the stall");
    await health.body?.cancel();
    const { committed } = await offsets(f.group, f.topic);
    const committedTotal = Object.values(committed).reduce((a, o) => a + Math.max(0, Number(o)), 0);
    assert(
      committedTotal <= 1000,
      `nothing written during the outage was committed (${committedTotal})`,
    );
    await services("start", "elasticsearch");
    serverDown = false;
    await waitFor(
      async () => (await f.count()) >= 3000,
      "all 3000 documents after the restart",
      120_000,
    );
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    assertEquals(await f.count(), 3000, "no duplicates either");
    const seqs = new Set((await allDocuments(f.prefix)).map((d) => d.source.seq));
    assertEquals(seqs.size, 3000);
    assertEquals(await sluice.metric("sluice_sink_up"), 1);
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    if (serverDown) await services("start", "elasticsearch");
    await stopQuietly(sluice);
    await f.drop();
  }
});
