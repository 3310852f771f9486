/**
 * sluice reads compressed Kafka topics end to end: kcat (librdkafka) produces
 * pmacct records with each codec into a fresh topic, sluice writes them into
 * a fresh ClickHouse table, and every row must come back exactly. Also a
 * partition whose batches change codec, and a topic the broker recompresses
 * (`compression.type=zstd`) while the producer sends plain batches.
 *
 * Each test first reads the codec of every record batch the broker stored,
 * straight from its log segments (`log.dirs` of the test broker's
 * `server.properties`), so that a producer that ignored `-z` cannot make a
 * test pass without the codec being read.
 *
 * @module
 */
import { Kafka, logLevel } from "kafkajs";
import { silenceKafkaJsTimerWarning } from "../../lib/kafka.ts";
import { query, rows, scalar } from "../_clickhouse.ts";
import { flowMessages, flowRecord } from "../_flows.ts";
import { createTopic, produce } from "../_kafka.ts";
import { kafkaBrokers, uniqueName } from "../_services.ts";
import { clickhouseSinkEnv, drained, startSluice, stopQuietly, stopSluice } from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

silenceKafkaJsTimerWarning();

const SCHEMA =
  "seq:UInt64,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,ip_proto:String," +
  "stamp_updated:DateTime,packets:UInt64,bytes:UInt64";

/** The codecs of a record batch's attributes (bits 0-2), as kcat's `-z` names them. */
const CODECS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;
type CodecName = (typeof CODECS)[number];

/** Records per test: several producer batches per partition, several inserts. */
const N = 20_000;

/** A fresh topic, group and database for one test, and the env that points sluice at them. */
function fixture() {
  const name = uniqueName("it_codec");
  const db = `sluice_${name}`;
  return {
    topic: name,
    group: `g_${name}`,
    table: `${db}.flows`,
    env: {
      ...clickhouseSinkEnv({ topic: name, group: `g_${name}`, database: db, schema: SCHEMA }),
      CLICKHOUSE_ORDER_BY: "seq",
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "5000",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      RETRY_BACKOFF_INITIAL: "0.2",
      RETRY_BACKOFF_MAX: "2",
    },
    drop: () => query(`DROP DATABASE IF EXISTS ${db}`),
  };
}

/**
 * Produces one message per value with kcat, compressed with `codec`.
 *
 * @param topic An existing topic.
 * @param values The message values (no newlines).
 * @param codec kcat's `-z`.
 * @param partition All to this partition; unset: librdkafka's partitioner.
 * @throws {Error} When kcat cannot run or fails.
 */
async function kcatProduce(
  topic: string,
  values: readonly string[],
  codec: CodecName,
  partition?: number,
): Promise<void> {
  const args = ["-P", "-b", kafkaBrokers(), "-t", topic, "-z", codec, "-X", "acks=all"];
  if (partition !== undefined) args.push("-p", String(partition));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("kcat", { args, stdin: "piped", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (error) {
    throw new Error(`Cannot produce to Kafka topic "${topic}": cannot run "kcat"`, {
      cause: error,
    });
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(values.join("\n") + "\n"));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `Cannot produce to Kafka topic "${topic}": kcat ${args.join(" ")} exited with ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
}

/** The test broker's data directory, from its `server.properties`. */
async function brokerLogDir(): Promise<string> {
  const servicesDir = Deno.env.get("SLUICE_SERVICES_DIR") ??
    new URL("../../.services", import.meta.url).pathname;
  const file = `${servicesDir}/kafka/server.properties`;
  const text = await Deno.readTextFile(file);
  const dir = /^log\.dirs=(.+)$/m.exec(text)?.[1]?.split(",")[0]?.trim();
  if (!dir) throw new Error(`Cannot find "log.dirs" in ${file}`);
  return dir;
}

/**
 * The codecs of the record batches the broker stored for a topic, read from
 * its log segments (record batch v2: attributes at byte 21, the batch length
 * at byte 8 counts from byte 12; KIP-98).
 *
 * @param topic The topic.
 * @returns How many batches of each codec.
 */
async function storedCodecs(topic: string): Promise<Partial<Record<CodecName, number>>> {
  const logDir = await brokerLogDir();
  const counts: Partial<Record<CodecName, number>> = {};
  for await (const dir of Deno.readDir(logDir)) {
    if (!dir.isDirectory || !new RegExp(`^${topic}-\\d+$`).test(dir.name)) continue;
    for await (const file of Deno.readDir(`${logDir}/${dir.name}`)) {
      if (!file.name.endsWith(".log")) continue;
      const bytes = await Deno.readFile(`${logDir}/${dir.name}/${file.name}`);
      const view = new DataView(bytes.buffer);
      for (let at = 0; at + 23 <= bytes.length; at += 12 + view.getInt32(at + 8)) {
        assertEquals(bytes[at + 16], 2, `record batch v2 at byte ${at} of ${dir.name}`);
        const codec = CODECS[view.getInt16(at + 21) & 7];
        assert(codec, `a known codec at byte ${at} of ${dir.name}`);
        counts[codec] = (counts[codec] ?? 0) + 1;
      }
    }
  }
  return counts;
}

/** The rows records `from` to `to - 1` of {@link flowRecord} make, as ClickHouse 18.16 returns them. */
function expectedRows(from: number, to: number): Array<Record<string, unknown>> {
  const ts = String(Date.UTC(2026, 10, 21, 23, 27, 47) / 1000);
  return Array.from({ length: to - from }, (_, i) => {
    const r = flowRecord(from + i);
    return {
      seq: String(r.seq),
      ip_src: r.ip_src,
      ip_dst: r.ip_dst,
      port_src: r.port_src,
      port_dst: r.port_dst,
      ip_proto: r.ip_proto,
      ts,
      packets: String(r.packets),
      bytes: String(r.bytes),
    };
  });
}

/**
 * Runs sluice on the fixture until every record is written and committed,
 * then checks that the table holds exactly records 0 to n - 1, value by value.
 */
async function assertReadBack(f: ReturnType<typeof fixture>, n: number): Promise<void> {
  const sluice = await startSluice(f.env);
  try {
    await drained(sluice, f, n, 90_000);
    assertEquals(await scalar(`SELECT count() FROM ${f.table}`), n);
    const got = await rows(
      `SELECT seq, ip_src, ip_dst, port_src, port_dst, ip_proto, ` +
        `toString(toUnixTimestamp(stamp_updated)) AS ts, packets, bytes FROM ${f.table} ORDER BY seq`,
    );
    assertEquals(got.length, n);
    assertEquals(got, expectedRows(0, n));
    assertEquals(await sluice.metric("sluice_records_written_total"), n);
    // A batch it cannot read makes the consumer crash; kafkajs's own errors
    // about the group coordinator (a broker that just started) are retried.
    assertEquals(
      sluice.logs.filter((l) =>
        (l["level"] === "error" && l["logger"] !== "kafkajs") ||
        l["msg"] === "Kafka consumer crashed" || /decompress/i.test(String(l["error"] ?? ""))
      ),
      [],
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
  }
}

for (const codec of CODECS) {
  Deno.test(`sluice writes every record of a topic kcat produced with -z ${codec} to ClickHouse, exactly`, async () => {
    const f = fixture();
    try {
      await createTopic(f.topic, 3);
      await kcatProduce(f.topic, flowMessages(0, N), codec);
      const stored = await storedCodecs(f.topic);
      assertEquals(Object.keys(stored), [codec], `the broker stored ${JSON.stringify(stored)}`);
      await assertReadBack(f, N);
    } finally {
      await f.drop();
    }
  });
}

Deno.test("sluice reads a partition whose batches change codec from one to the next", async () => {
  const f = fixture();
  try {
    await createTopic(f.topic, 1);
    const per = 2000;
    for (const [i, codec] of [...CODECS, ...CODECS].entries()) {
      await kcatProduce(f.topic, flowMessages(i * per, (i + 1) * per), codec, 0);
    }
    const stored = await storedCodecs(f.topic);
    assertEquals(Object.keys(stored).sort(), [...CODECS].sort());
    await assertReadBack(f, 2 * CODECS.length * per);
  } finally {
    await f.drop();
  }
});

// The broker recompresses with the Java client's codecs: xerial-framed
// snappy (snappy-java), KafkaLZ4BlockOutputStream's lz4 frames, zstd-jni.
for (const codec of ["gzip", "snappy", "lz4", "zstd"] as const) {
  Deno.test(`sluice reads a topic the broker recompresses with compression.type=${codec}`, async () => {
    const f = fixture();
    const admin = new Kafka({
      clientId: "sluice-tests",
      brokers: [kafkaBrokers()],
      logLevel: logLevel.NOTHING,
    }).admin();
    try {
      await admin.connect();
      try {
        assert(
          await admin.createTopics({
            topics: [{
              topic: f.topic,
              numPartitions: 3,
              replicationFactor: 1,
              configEntries: [{ name: "compression.type", value: codec }],
            }],
            waitForLeaders: true,
          }),
          "the topic was created",
        );
      } finally {
        await admin.disconnect();
      }
      // kafkajs sends plain batches; the broker stores them compressed.
      await produce(f.topic, flowMessages(0, N));
      const stored = await storedCodecs(f.topic);
      assertEquals(Object.keys(stored), [codec], `the broker stored ${JSON.stringify(stored)}`);
      await assertReadBack(f, N);
    } finally {
      await f.drop();
    }
  });
}
