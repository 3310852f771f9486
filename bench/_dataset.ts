/**
 * The benchmark's records: N pmacct flow records of one shape (see
 * {@link RecordShape}), produced once to a fresh topic that every sink's runs
 * then read, and the Kafka baselines (kcat and a bare kafkajs consumer
 * reading that topic). One record per Kafka message, or K of them per
 * message, one JSON object per line, as pmacct's `kafka_multi_values` packs
 * them (`--per-message`).
 *
 * @module
 */

import { Kafka, logLevel } from "kafkajs";
import { registerKafkaCodecs } from "../lib/kafka_codecs.ts";
import { errorText } from "../lib/log.ts";
import { flowRecord } from "../scripts/demo_feed.ts";
import { type Baseline, num, progress } from "./_measure.ts";
import { nfacctdRecord } from "./_records.ts";

/**
 * The record shapes, named by their approximate number of columns: 11 is the
 * demo's record (`flowRecord()` of `scripts/demo_feed.ts`: 12 fields, 11
 * ClickHouse columns, about 250 bytes), 20 what nfacctd writes with a
 * typical aggregate (`nfacctdRecord()` of `_records.ts`: 25 fields, 24
 * ClickHouse columns, about 540 bytes).
 */
export const RECORD_SHAPES = [11, 20] as const;

/** A record shape, as `--columns` selects it. */
export type RecordShape = (typeof RECORD_SHAPES)[number];

/** Most records one message may pack (`--per-message`). */
export const MAX_PER_MESSAGE = 1000;

/** The N records, the messages that carry them and the sums the destinations must show afterwards. */
export interface Dataset {
  /** One pmacct JSON record each, in order: what per-record work and counts use. */
  records: string[];
  /**
   * What is produced to Kafka: `perMessage` records per message, one JSON
   * object per line, joined with `"\n"` and no trailing newline
   * (`kafka_multi_values`); the last message may hold fewer. With one
   * record per message, the same array as {@link records}.
   */
  messages: string[];
  /** Records per message (K). */
  perMessage: number;
  /** Sum of the records' `bytes`. */
  bytes: number;
  /** Sum of the records' `packets`. */
  packets: number;
}

/**
 * Generates the records and packs them into messages.
 *
 * @param records How many records (N).
 * @param columns Their shape: 11 for the demo's records, 20 for nfacctd's.
 * @param perMessage Records per message (K), as pmacct's `kafka_multi_values`
 *   packs them: ceil(N / K) messages.
 * @returns The records, the messages and their sums.
 * @throws {RangeError} When `perMessage` is not an integer from 1 to {@link MAX_PER_MESSAGE}.
 */
export function generate(records: number, columns: RecordShape, perMessage = 1): Dataset {
  if (!Number.isInteger(perMessage) || perMessage < 1 || perMessage > MAX_PER_MESSAGE) {
    throw new RangeError(
      `Cannot pack records: records per message must be an integer from 1 to ${MAX_PER_MESSAGE}, ` +
        `got ${perMessage}`,
    );
  }
  const now = Date.now();
  const record = columns === 20 ? nfacctdRecord : flowRecord;
  const texts: string[] = new Array(records);
  let bytes = 0, packets = 0;
  for (let i = 0; i < records; i++) {
    const flow = record(i, now);
    bytes += flow.bytes;
    packets += flow.packets;
    texts[i] = JSON.stringify(flow);
  }
  return { records: texts, messages: pack(texts, perMessage), perMessage, bytes, packets };
}

/**
 * Packs records into messages the way pmacct's `kafka_multi_values` does:
 * `perMessage` JSON objects per message, one per line, no trailing newline.
 *
 * @param records The records' JSON texts, in order.
 * @param perMessage Records per message; the last message holds the rest.
 * @returns The messages; `records` itself when `perMessage` is 1.
 */
export function pack(records: readonly string[], perMessage: number): string[] {
  if (perMessage === 1) return records as string[];
  const messages: string[] = [];
  for (let start = 0; start < records.length; start += perMessage) {
    messages.push(records.slice(start, start + perMessage).join("\n"));
  }
  return messages;
}

/**
 * How many records a message count stands for, for the Kafka baselines'
 * rates: every record when the whole topic was read, else K per message.
 */
function recordsIn(data: Dataset, messages: number): number {
  return messages >= data.messages.length
    ? data.records.length
    : Math.min(messages * data.perMessage, data.records.length);
}

/** The Kafka baselines' note on the packing, e.g. `; 20 records per message`. */
function packingNote(data: Dataset): string {
  return data.perMessage === 1 ? "" : `; ${num(data.perMessage)} records per message`;
}

/**
 * A kafkajs client for the benchmark's own work (producing, the baseline, admin).
 *
 * @param broker `host:port`.
 * @param clientId The client id.
 * @returns The client.
 */
export function kafkaClient(broker: string, clientId: string): Kafka {
  // The baseline consumer reads what sluice reads, compressed batches too.
  registerKafkaCodecs();
  return new Kafka({
    clientId,
    brokers: [broker],
    logLevel: logLevel.ERROR,
    logCreator: () => ({ log }) => progress(`Kafka client: ${log.message}`),
    connectionTimeout: 3000,
    retry: { retries: 2 },
  });
}

/**
 * Checks that the broker answers.
 *
 * @param broker `host:port`.
 * @param hint What to do when it does not.
 * @throws {Error} When it does not.
 */
export async function checkKafka(broker: string, hint: string): Promise<void> {
  const admin = new Kafka({
    clientId: "sluice-bench",
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
  } catch (error) {
    throw new Error(`Cannot reach Kafka at ${broker} (${errorText(error)}); ${hint}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Produces the messages round-robin over the partitions, 4 requests of
 * about 5,000 records in flight (5,000 messages of one record, or
 * 5,000 / K messages of K records, so that a request's per-partition batch
 * stays under the broker's `message.max.bytes` whatever K is).
 *
 * @param broker `host:port`.
 * @param topic An existing topic.
 * @param data The messages.
 * @param partitions The topic's partitions.
 * @returns The seconds it took.
 */
export async function produce(
  broker: string,
  topic: string,
  data: Dataset,
  partitions: number,
): Promise<number> {
  const producer = kafkaClient(broker, "sluice-bench-producer").producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  const started = Date.now();
  let sent = 0, lastReport = started;
  try {
    const chunk = Math.max(1, Math.ceil(5000 / data.perMessage)), parallel = 4;
    const chunks: number[] = [];
    for (let start = 0; start < data.messages.length; start += chunk) chunks.push(start);
    const worker = async () => {
      for (let start = chunks.shift(); start !== undefined; start = chunks.shift()) {
        const end = Math.min(start + chunk, data.messages.length);
        const messages = [];
        for (let i = start; i < end; i++) {
          messages.push({ value: data.messages[i]!, partition: i % partitions });
        }
        await producer.send({ topic, acks: 1, messages });
        sent += end - start;
        if (Date.now() - lastReport >= 1000) {
          lastReport = Date.now();
          const records = recordsIn(data, sent);
          progress(
            `produced ${num(records)} of ${num(data.records.length)} records ` +
              `(${num(records / ((lastReport - started) / 1000))} records/s)`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    await producer.disconnect();
  }
  return (Date.now() - started) / 1000;
}

/**
 * kcat reading the whole topic from the beginning to the end, counting
 * messages; the rate is in records (K per message).
 *
 * @param broker `host:port`.
 * @param topic The topic.
 * @param data What it holds.
 * @returns The baseline, or `undefined` when kcat is not installed.
 * @throws {Error} When kcat reads a different number of messages.
 */
export async function baselineKcat(
  broker: string,
  topic: string,
  data: Dataset,
): Promise<Baseline | undefined> {
  const messages = data.messages.length;
  const started = Date.now();
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      'command -v kcat >/dev/null || exit 127; kcat -C -b "$1" -t "$2" -o beginning -e -q -f "x\\n" | wc -l',
      "kcat",
      broker,
      topic,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (Date.now() - started) / 1000;
  if (out.code === 127) {
    progress("kcat is not installed: no kcat baseline");
    return undefined;
  }
  const got = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || got !== messages) {
    throw new Error(
      `Cannot read the topic with kcat: ${got} of ${messages} messages; ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return {
    label: "Kafka read by kcat (librdkafka), to the end of the topic",
    seconds,
    records: recordsIn(data, got),
    note: `process start included${packingNote(data)}`,
  };
}

/**
 * A kafkajs consumer group member that only counts messages; the rate is
 * in records (K per message).
 *
 * @param broker `host:port`.
 * @param topic The topic.
 * @param data What it holds.
 * @param group A fresh consumer group.
 * @returns The baseline, timed from the group join.
 * @throws {Error} After 120 s without all messages.
 */
export async function baselineKafkajs(
  broker: string,
  topic: string,
  data: Dataset,
  group: string,
): Promise<Baseline> {
  const messages = data.messages.length;
  const consumer = kafkaClient(broker, "sluice-bench-consumer").consumer({ groupId: group });
  const started = Date.now();
  let joined = started, count = 0;
  const done = Promise.withResolvers<void>();
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = Date.now()));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: ({ batch }) => {
      count += batch.messages.length;
      if (count >= messages) done.resolve();
      return Promise.resolve();
    },
  });
  const timer = setTimeout(() => done.reject(new Error("timed out")), 120_000);
  try {
    await done.promise;
  } finally {
    clearTimeout(timer);
  }
  const finished = Date.now();
  await consumer.disconnect();
  return {
    label: "Kafka read by a bare kafkajs consumer (eachBatch, counting only)",
    seconds: (finished - joined) / 1000,
    records: recordsIn(data, count),
    note: `after the group join (${num((joined - started) / 1000, 2)} s)${packingNote(data)}`,
  };
}

/**
 * Creates a topic and fills it with N 20-column records, one per message:
 * what the benches that run sluice themselves start from.
 *
 * @param broker `host:port`.
 * @param topic A topic that does not exist yet.
 * @param partitions Its partitions.
 * @param records How many records.
 * @returns The records produced.
 */
export async function freshTopic(
  broker: string,
  topic: string,
  partitions: number,
  records: number,
): Promise<Dataset> {
  const admin = kafkaClient(broker, "sluice-bench-admin").admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
  const data = generate(records, 20, 1);
  await produce(broker, topic, data, partitions);
  return data;
}
