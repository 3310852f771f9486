/**
 * sluice end to end with the real producer: softflowd replays a capture the
 * test makes as NetFlow v9 to nfacctd (Debian pmacct, kafka plugin with
 * `kafka_history`, and a print plugin as the witness), nfacctd writes to a
 * fresh Kafka topic, sluice reads it into a fresh ClickHouse table, and the
 * rows must be what pmacct reported and what the capture holds.
 *
 * nfacctd runs with `timestamps_utc: true` (the harness default), so sluice
 * runs with `PMACCT_TIMEZONE=UTC`, and the test reads pmacct's
 * `YYYY-MM-DD HH:MM:SS` times as UTC itself, without sluice's code.
 *
 * @module
 */
import { query, rows, scalar } from "../_clickhouse.ts";
import { allCommitted, createTopic } from "../_kafka.ts";
import { expectedFlows, type FlowSpec, makeCapture } from "../_pcap.ts";
import {
  diffFlows,
  parseJsonLines,
  type PmacctRecord,
  recordFlowKey,
  runNetflowPipeline,
  sumByFlow,
} from "../_pmacct.ts";
import { elasticUrl, kafkaBrokers, uniqueName, victoriaMetricsUrl } from "../_services.ts";
import {
  clickhouseSinkEnv,
  explained,
  type SluiceProcess,
  startSluice,
  stopSluice,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

/** `kafka_history: 5m` with `kafka_history_roundoff: m`: bins start at multiples of 300 s. */
const BIN_SEC = 300;

const SCHEMA = "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
  "ip_proto:LowCardinality(String),tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime," +
  "packets:UInt64,bytes:UInt64,writer_id:String";

/** Rows per insert: small, so that one run writes several batches. */
const MAX_ROWS = 8;

const PACKETS = [1, 2, 3, 5, 8, 13, 21, 40, 75, 120];
const SIZES = [64, 1500, 576, 1280, 9000, 120, 1400, 300];
const TOS = [0, 0x10, 0x28, 0xb8, 0x04];
const DST_PORTS = [443, 53, 80, 123, 8080, 65535];

/**
 * 30 flows, IPv4 and IPv6, TCP and UDP, 1 to 120 packets of 64 to 9000
 * bytes, TOS on most IPv4 flows, all from documentation and private ranges
 * (none in the guard flows' 198.18.0.0/15). Half lie in the time bin before
 * the current one and half in the current one, each flow inside one bin
 * (10 to 17 s after its start), so every flow has one known
 * `stamp_inserted` and the table holds two. All end at least 40 s ago:
 * pmacct purges a bin at the first refresh only when it is not in the future.
 *
 * @param nowSec The current Unix time.
 * @returns The flow specs.
 */
function testFlows(nowSec: number): FlowSpec[] {
  const current = Math.floor((nowSec - 60) / BIN_SEC) * BIN_SEC;
  return Array.from({ length: 30 }, (_, i): FlowSpec => {
    const v6 = i % 3 === 2;
    const proto = i % 2 === 0 ? "tcp" : "udp";
    const bin = i < 15 ? current - BIN_SEC : current;
    return {
      src: v6 ? `2001:db8:${i.toString(16)}::${i + 1}` : `10.${1 + (i % 4)}.0.${i + 1}`,
      dst: v6 ? `2001:db8:ffff::${(100 + i).toString(16)}` : `192.0.2.${100 + i}`,
      srcPort: 1024 + ((i * 7919) % 60000),
      dstPort: DST_PORTS[i % DST_PORTS.length]!,
      proto,
      packets: PACKETS[i % PACKETS.length]!,
      bytesPerPacket: SIZES[i % SIZES.length]!,
      startSec: bin + 10 + (i % 15) * 0.4,
      // softflowd 1.1.0 exports TOS for IPv4 only (see ExpectedFlow.tos).
      tos: v6 ? 0 : TOS[i % TOS.length]!,
    };
  });
}

/** One Kafka message as kcat returned it. */
interface KafkaMessage {
  partition: number;
  offset: number;
  payload: string | null;
}

/**
 * Reads every message of a topic with kcat (JSON envelope per message, so
 * multi-line payloads stay whole).
 *
 * @param topic The topic.
 * @returns The messages, in no particular order across partitions.
 * @throws {Error} When kcat cannot run, fails or times out.
 */
async function readTopic(topic: string): Promise<KafkaMessage[]> {
  const args = ["-C", "-b", kafkaBrokers(), "-t", topic, "-o", "beginning", "-e", "-q", "-J"];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("kcat", { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (error) {
    throw new Error(`Cannot read Kafka topic "${topic}": cannot run "kcat"`, { cause: error });
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, 20_000);
  const out = await child.output().finally(() => clearTimeout(timer));
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot read Kafka topic "${topic}": kcat ${args.join(" ")} exited with ${
        out.signal ?? `code ${out.code}`
      }\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

/** pmacct's `YYYY-MM-DD HH:MM:SS`, written in UTC (`timestamps_utc`), as epoch seconds. */
function utcSeconds(text: unknown): number {
  const m = typeof text === "string" &&
    /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) throw new TypeError(`Cannot read pmacct time: got ${JSON.stringify(text)}`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, ...number[]];
  return Date.UTC(y, mo! - 1, d, h, mi, s) / 1000;
}

/** A row in the shape both sides are compared in. */
interface FlowRow {
  peer_ip_src: string;
  ip_src: string;
  ip_dst: string;
  port_src: number;
  port_dst: number;
  ip_proto: string;
  tos: number;
  stamp_inserted: number;
  stamp_updated: number;
  packets: number;
  bytes: number;
  writer_id: string;
}

/** The row sluice must write for a pmacct record. */
function rowOf(record: PmacctRecord): FlowRow {
  return {
    peer_ip_src: String(record.peer_ip_src),
    ip_src: String(record.ip_src),
    ip_dst: String(record.ip_dst),
    port_src: Number(record.port_src),
    port_dst: Number(record.port_dst),
    ip_proto: String(record.ip_proto),
    tos: Number(record.tos),
    stamp_inserted: utcSeconds(record.stamp_inserted),
    stamp_updated: utcSeconds(record.stamp_updated),
    packets: Number(record.packets),
    bytes: Number(record.bytes),
    writer_id: String(record.writer_id),
  };
}

function sortRows(list: FlowRow[]): FlowRow[] {
  return list.map((r) => [JSON.stringify(r), r] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, r]) => r);
}

/** Per flow (5-tuple and TOS): summed counters and the time bins it was reported in. */
type FlowSummary = Record<string, { packets: number; bytes: number; bins: number[] }>;

function summarise(
  list: readonly { key: string; packets: number; bytes: number; bin: number }[],
): FlowSummary {
  const out: FlowSummary = {};
  for (const { key, packets, bytes, bin } of list) {
    const s = out[key] ??= { packets: 0, bytes: 0, bins: [] };
    s.packets += packets;
    s.bytes += bytes;
    if (!s.bins.includes(bin)) s.bins.push(bin);
  }
  for (const s of Object.values(out)) s.bins.sort((a, b) => a - b);
  // Key order must not matter to the comparison.
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

function summariseRows(list: readonly FlowRow[]): FlowSummary {
  return summarise(list.map((r) => ({
    key: `${
      recordFlowKey({
        ip_src: r.ip_src,
        ip_dst: r.ip_dst,
        port_src: r.port_src,
        port_dst: r.port_dst,
        ip_proto: r.ip_proto,
      })
    } tos ${r.tos}`,
    packets: r.packets,
    bytes: r.bytes,
    bin: r.stamp_inserted,
  })));
}

/** Per flow: summed packets and bytes only (the metrics store has no time-bin label). */
function countersOf(summary: FlowSummary): Record<string, { packets: number; bytes: number }> {
  return Object.fromEntries(
    Object.entries(summary).map(([key, s]) => [key, { packets: s.packets, bytes: s.bytes }]),
  );
}

/** Runs sluice with `env` on the topic until it committed everything, then stops it (exit 0). */
async function drainInto(
  env: Record<string, string>,
  topic: string,
  group: string,
  records: number,
): Promise<void> {
  const sluice = await startSluice({
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    KAFKA_TOPIC: topic,
    KAFKA_CONSUMER_GROUP_ID: group,
    PMACCT_TIMEZONE: "UTC",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    ...env,
  });
  try {
    await explained(
      () =>
        waitFor(
          async () => (await sluice.metric("sluice_records_written_total")) >= records,
          `${records} written`,
        ),
      sluice,
      { group: group, topic: topic },
    );
    await explained(
      () => waitFor(() => allCommitted(group, topic), "every offset committed"),
      sluice,
      { group: group, topic: topic },
    );
    assertEquals(await sluice.metric("sluice_records_rejected_total"), 0, "nothing set aside");
    assertEquals(await stopSluice(sluice), 0, "sluice exits 0 on SIGTERM");
  } finally {
    await stopSluice(sluice).catch(() => {});
  }
}

/**
 * The same Kafka records through SINK=elastic: one document per flow record
 * with pmacct's values, per-flow sums equal to pmacct's print output.
 */
async function checkElastic(
  topic: string,
  flowRecords: readonly PmacctRecord[],
  fromPrint: FlowSummary,
): Promise<void> {
  const prefix = `e2e-${topic.toLowerCase().replaceAll("_", "-")}`;
  const es = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(elasticUrl() + path, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`Cannot ${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  };
  try {
    await drainInto(
      {
        SINK: "elastic",
        ELASTIC_HOSTS: new URL(elasticUrl()).host,
        ELASTIC_INDEX_PREFIX: prefix,
        ELASTIC_MAX_SAMPLES_PER_SEND: String(MAX_ROWS),
        ELASTIC_MAX_TIME_TO_SEND: "1",
      },
      topic,
      `g_es_${topic}`,
      flowRecords.length,
    );
    await es("POST", `/${prefix}-*/_refresh`);
    const found = await es("POST", `/${prefix}-*/_search`, {
      size: 10_000,
      query: { match_all: {} },
    });
    const docs = (found.hits.hits as Array<{ _source: PmacctRecord }>).map((h) => h._source);
    assertEquals(docs.length, flowRecords.length, "one document per flow record in Kafka");
    assertEquals(sortRows(docs.map(rowOf)), sortRows(flowRecords.map(rowOf)));
    assertEquals(
      summariseRows(docs.map(rowOf)),
      fromPrint,
      "Elasticsearch sums equal pmacct's print output",
    );
  } finally {
    await es("DELETE", `/${prefix}-*`).catch(() => {});
  }
}

/**
 * The same Kafka records through SINK=vm: per flow, the summed bytes and
 * packets samples equal pmacct's print output, one sample per record and metric.
 */
async function checkVictoriaMetrics(
  topic: string,
  flowRecords: readonly PmacctRecord[],
  fromPrint: FlowSummary,
): Promise<void> {
  const job = `e2e_${topic}`;
  const match = encodeURIComponent(`{job="${job}"}`);
  try {
    await drainInto(
      {
        SINK: "vm",
        VM_URL: victoriaMetricsUrl(),
        VM_JOB: job,
        VM_INSTANCE: "nfacctd",
        VM_MAX_SAMPLES_PER_SEND: String(MAX_ROWS),
        VM_MAX_TIME_TO_SEND: "1",
        VM_COMMIT_DELAY: "2",
      },
      topic,
      `g_vm_${topic}`,
      flowRecords.length,
    );
    await (await fetch(`${victoriaMetricsUrl()}/internal/force_flush`)).body?.cancel();
    const text =
      await (await fetch(`${victoriaMetricsUrl()}/api/v1/export?match[]=${match}&start=0`)).text();
    const series = text.split("\n").filter((l) => l !== "").map((l) =>
      JSON.parse(l) as { metric: Record<string, string>; values: number[] }
    );
    const samples: FlowRow[] = [];
    let count = 0;
    for (const { metric, values } of series) {
      count += metric["__name__"] === "bytes" ? values.length : 0;
      for (const value of values) {
        samples.push({
          ...rowOf({
            ...metric,
            packets: 0,
            bytes: 0,
            stamp_inserted: "1970-01-01 00:00:00",
            stamp_updated: "1970-01-01 00:00:00",
          }),
          packets: metric["__name__"] === "packets" ? value : 0,
          bytes: metric["__name__"] === "bytes" ? value : 0,
        });
      }
    }
    assertEquals(count, flowRecords.length, "one bytes sample per flow record in Kafka");
    assertEquals(
      countersOf(summariseRows(samples)),
      countersOf(fromPrint),
      "VictoriaMetrics sums equal pmacct's print output",
    );
  } finally {
    await (await fetch(`${victoriaMetricsUrl()}/api/v1/admin/tsdb/delete_series?match[]=${match}`))
      .body?.cancel()
      .catch(() => {});
  }
}

/** How the Kafka plugin writes. */
interface Variant {
  /** `kafka_multi_values` buffer size; 0 for one record per message. */
  multiValues: number;
  /** `kafka_markers`. */
  markers: boolean;
}

/** What one run saw, for the variant-specific checks. */
interface RunResult {
  messages: KafkaMessage[];
  flowRecords: number;
  markerRecords: PmacctRecord[];
  sluice: { skipped: number; rejected: number; written: number; messages: number };
}

/**
 * The whole chain once: capture, nfacctd + softflowd into a fresh topic,
 * sluice into a fresh database, then every check that holds for any variant.
 */
async function runChain(variant: Variant): Promise<RunResult> {
  // Fail at once, not after a minute of sluice retrying, when ClickHouse is down.
  await query("SELECT 1");
  const name = uniqueName("e2e");
  const db = `sluice_${name}`;
  const table = `${db}.flows`;
  const group = `g_${name}`;
  await createTopic(name, 3);

  // librdkafka (2.0) sends a burst of keyless messages to one partition
  // ("sticky partitioning"); without it each goes to a random partition, so
  // sluice reads several. (A `topic, partitioner, random` line had no effect.)
  const librdkafka = await Deno.makeTempFile({ prefix: "sluice_librdkafka_", suffix: ".csv" });
  const flows = testFlows(Date.now() / 1000);
  const expected = expectedFlows(flows);
  const pipeline = await (async () => {
    try {
      await Deno.writeTextFile(librdkafka, "global, sticky.partitioning.linger.ms, 0\n");
      return await runNetflowPipeline(makeCapture(flows), expected, {
        kafka: {
          brokers: kafkaBrokers(),
          topic: name,
          multiValues: variant.multiValues,
          markers: variant.markers,
        },
        history: "5m",
        historyRoundoff: "m",
        utc: true,
        extraConfig: { "kafka_config_file[k]": librdkafka },
        // Flows show up within two refreshes; after this the output at stop is judged.
        timeoutMs: 15_000,
      });
    } finally {
      await Deno.remove(librdkafka).catch(() => {});
    }
  })();
  assertEquals(pipeline.replay.flowsExported, expected.length + pipeline.replay.guardFlows);

  // nfacctd has stopped: everything its Kafka plugin wrote is in the topic.
  const messages = await readTopic(name);
  const kafkaRecords = messages.flatMap((m) =>
    parseJsonLines(m.payload ?? "", `${name}/${m.partition}@${m.offset}`)
  );
  const flowRecords = kafkaRecords.filter((r) => r.event_type === "purge");
  const markerRecords = kafkaRecords.filter((r) => r.event_type !== "purge");
  assertEquals(diffFlows(expected, sumByFlow(flowRecords)), [], "Kafka holds every flow");
  assertEquals(diffFlows(expected, sumByFlow(pipeline.printRecords)), [], "print output too");

  const fromCapture = summarise(expected.map((f) => ({
    key: `${
      recordFlowKey({
        ip_src: f.src,
        ip_dst: f.dst,
        port_src: f.srcPort,
        port_dst: f.dstPort,
        ip_proto: f.proto,
      })
    } tos ${f.tos}`,
    packets: f.packets,
    bytes: f.bytes,
    bin: Math.floor(f.firstSec / BIN_SEC) * BIN_SEC,
  })));
  const fromPrint = summariseRows(
    pipeline.printRecords.filter((r) => r.event_type === "purge").map((r) =>
      rowOf({ ...r, writer_id: "" })
    ),
  );
  assertEquals(fromPrint, fromCapture, "pmacct reported the capture's flows in their time bins");

  let sluice: SluiceProcess | undefined;
  let passed = false;
  try {
    sluice = await startSluice({
      ...clickhouseSinkEnv({ topic: name, group, database: db, schema: SCHEMA }),
      CLICKHOUSE_ORDER_BY: "stamp_inserted, peer_ip_src, ip_src, ip_dst",
      CLICKHOUSE_PARTITION_BY: "toYYYYMMDD(stamp_inserted)",
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: String(MAX_ROWS),
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      PMACCT_TIMEZONE: "UTC",
      RETRY_BACKOFF_INITIAL: "0.2",
      RETRY_BACKOFF_MAX: "2",
    });
    const running = sluice;
    await explained(
      () =>
        waitFor(
          async () => (await scalar(`SELECT count() FROM ${table}`)) >= flowRecords.length,
          `${flowRecords.length} rows`,
        ),
      running,
      { group: group, topic: name },
    );
    await explained(
      () => waitFor(() => allCommitted(group, name), "every offset committed"),
      running,
      { group: group, topic: name },
    );
    const result = {
      messages,
      flowRecords: flowRecords.length,
      markerRecords,
      sluice: {
        skipped: await sluice.metric("sluice_records_skipped_total", { reason: "marker" }),
        rejected: await sluice.metric("sluice_records_rejected_total"),
        written: await sluice.metric("sluice_records_written_total"),
        messages: await sluice.metric("sluice_messages_received_total"),
      },
    };
    assert(
      await sluice.metric("sluice_batches_total", { outcome: "written" }) >=
        Math.ceil(flowRecords.length / MAX_ROWS),
      "the rows went in several batches",
    );
    assertEquals(await stopSluice(sluice), 0, "sluice exits 0 on SIGTERM");
    assert(sluice.logs.some((l) => l["msg"] === "Stopped" && l["clean"] === true));

    const [column] = await rows<{ type: string }>(
      `SELECT type FROM system.columns WHERE database = '${db}' AND table = 'flows' ` +
        `AND name = 'ip_proto'`,
    );
    assertEquals(column?.type, "LowCardinality(String)");

    const written = await rows<Record<keyof FlowRow, string | number>>(
      `SELECT peer_ip_src, ip_src, ip_dst, port_src, port_dst, ip_proto, tos, ` +
        `toUnixTimestamp(stamp_inserted) AS stamp_inserted, ` +
        `toUnixTimestamp(stamp_updated) AS stamp_updated, ` +
        `toString(packets) AS packets, toString(bytes) AS bytes, writer_id FROM ${table}`,
    );
    const got = written.map((r): FlowRow => ({
      peer_ip_src: String(r.peer_ip_src),
      ip_src: String(r.ip_src),
      ip_dst: String(r.ip_dst),
      port_src: Number(r.port_src),
      port_dst: Number(r.port_dst),
      ip_proto: String(r.ip_proto),
      tos: Number(r.tos),
      stamp_inserted: Number(r.stamp_inserted),
      stamp_updated: Number(r.stamp_updated),
      packets: Number(r.packets),
      bytes: Number(r.bytes),
      writer_id: String(r.writer_id),
    }));
    // One row per flow record pmacct sent, no more after the stop, each with pmacct's values.
    assertEquals(got.length, flowRecords.length, "one row per flow record in Kafka");
    assertEquals(sortRows(got), sortRows(flowRecords.map(rowOf)));
    assertEquals(summariseRows(got), fromPrint, "ClickHouse sums equal pmacct's print output");
    assertEquals(summariseRows(got), fromCapture, "ClickHouse sums equal the capture");
    assertEquals(new Set(got.map((r) => r.stamp_inserted)).size, 2, "two time bins");
    // The same records, read again by other consumer groups, into the other sinks.
    await checkElastic(name, flowRecords, fromPrint);
    await checkVictoriaMetrics(name, flowRecords, fromPrint);
    passed = true;
    return result;
  } finally {
    if (sluice) await stopSluice(sluice).catch(() => {});
    // A failed clean-up must not hide why the test failed.
    const dropped = query(`DROP DATABASE IF EXISTS ${db}`);
    await (passed ? dropped : dropped.catch(() => {}));
  }
}

Deno.test("sluice writes each record nfacctd's kafka plugin sent as one row, document and sample set with pmacct's values", async () => {
  const run = await runChain({ multiValues: 0, markers: false });
  assertEquals(run.markerRecords, []);
  assertEquals(run.messages.length, run.flowRecords, "one record per message");
  assert(new Set(run.messages.map((m) => m.partition)).size > 1, "several partitions");
  assertEquals(run.sluice, {
    skipped: 0,
    rejected: 0,
    written: run.flowRecords,
    messages: run.messages.length,
  });
});

Deno.test("sluice skips pmacct's purge markers and reads every record of kafka_multi_values messages", async () => {
  // About 290 bytes a record: 30 records need several messages of several records.
  const run = await runChain({ multiValues: 2048, markers: true });
  const kinds = new Set(run.markerRecords.map((r) => r.event_type));
  assertEquals([...kinds].sort(), ["purge_close", "purge_init"]);
  const purged = run.markerRecords.reduce(
    (n, r) => n + (r.event_type === "purge_close" ? Number(r.purged_entries) : 0),
    0,
  );
  assertEquals(purged, run.flowRecords, "purge_close counts every record sent");
  const perMessage = run.messages.map((m) =>
    parseJsonLines(m.payload ?? "").filter((r) => r.event_type === "purge").length
  );
  assert(Math.max(...perMessage) > 1, `some message holds several records: ${perMessage}`);
  assert(run.sluice.skipped > 0, "markers were skipped");
  assertEquals(run.sluice, {
    skipped: run.markerRecords.length,
    rejected: 0,
    written: run.flowRecords,
    messages: run.messages.length,
  });
});
