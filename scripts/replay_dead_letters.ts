/**
 * `deno task replay-dead-letters`: after a fix (a schema change, a decoder
 * option), produces the messages of a dead-letter topic (`DEAD_LETTER_TOPIC`)
 * back into the topics they came from, so sluice reads them again.
 *
 * It reads the dead-letter topic from its beginning to its end at start, keeps each set-aside record once (a poison message read
 * again after a crash is dead-lettered again, with the same
 * `sluice.source.*` headers), and produces its value and key, with a header
 * `sluice.replayed.from` naming the letter. Letters holding a row the
 * server refused (`sluice.value: row`) are in the sink's format, not the
 * source's: they are counted and left out unless `--rows`.
 *
 *     deno task replay-dead-letters --from sluice-dead-letters [--to TOPIC]
 *       [--reason decode,convert,server] [--brokers host:port,...] [--rows] [--dry-run]
 *
 * Brokers default to `KAFKA_BOOTSTRAP_SERVERS`; plaintext only (for TLS or
 * SASL, the kcat line in docs/delivery.md does the same without the
 * de-duplication).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Kafka, type KafkaMessage, logLevel, type Message } from "kafkajs";
import { registerKafkaCodecs } from "../lib/kafka_codecs.ts";
import { errorText, writeStderr, writeStdout } from "../lib/log.ts";

/** One letter, as read. */
interface Letter {
  partition: number;
  message: KafkaMessage;
  header(name: string): string | undefined;
}

/**
 * Reads a topic from its beginning to its end offsets at start.
 *
 * @param kafka The client.
 * @param topic The topic.
 * @returns Its messages, partition by partition.
 */
export async function readTopic(kafka: Kafka, topic: string): Promise<Letter[]> {
  const admin = kafka.admin();
  await admin.connect();
  let left: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    left = new Map(
      offsets.filter((p) => BigInt(p.high) > BigInt(p.low)).map((
        p,
      ) => [p.partition, BigInt(p.high)]),
    );
  } finally {
    await admin.disconnect();
  }
  const letters: Letter[] = [];
  if (left.size === 0) return letters;
  const group = `sluice-replay-${Date.now()}-${Deno.pid}`;
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 500 });
  await consumer.connect();
  try {
    const done = Promise.withResolvers<void>();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        const end = left.get(partition);
        if (end === undefined || BigInt(message.offset) >= end) return Promise.resolve();
        const headers = message.headers ?? {};
        letters.push({
          partition,
          message,
          header: (name) => headers[name] === undefined ? undefined : String(headers[name]),
        });
        if (BigInt(message.offset) + 1n >= end) left.delete(partition);
        if (left.size === 0) done.resolve();
        return Promise.resolve();
      },
    });
    await done.promise;
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([group]).catch(() => {});
    await admin.disconnect();
  }
  return letters;
}

/**
 * The key that names a set-aside record: its source topic, partition,
 * offset and index. A repeat of a letter has the same.
 *
 * @param letter The letter.
 * @returns The key, or `undefined` for a message without sluice's headers.
 */
export function letterKey(letter: Pick<Letter, "header">): string | undefined {
  const parts = ["topic", "partition", "offset", "index"].map((p) =>
    letter.header(`sluice.source.${p}`)
  );
  return parts.some((p) => p === undefined) ? undefined : parts.join("/");
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      from: { type: "string" },
      to: { type: "string" },
      reason: { type: "string" },
      brokers: { type: "string", default: Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") },
      rows: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || values.from === undefined || values.brokers === undefined) {
    writeStderr(
      "Usage: deno task replay-dead-letters --from DEAD_LETTER_TOPIC [--to TOPIC] " +
        "[--reason decode,convert,server] [--brokers host:port,...] " +
        "[--rows] [--dry-run]\n" +
        (values.brokers === undefined ? "Set --brokers or KAFKA_BOOTSTRAP_SERVERS\n" : ""),
    );
    return values.help ? 0 : 2;
  }
  const reasons = values.reason?.split(",").map((r) => r.trim()).filter((r) => r !== "");
  registerKafkaCodecs();
  const kafka = new Kafka({
    clientId: "sluice-replay",
    brokers: values.brokers.split(",").map((b) => b.trim()),
    logLevel: logLevel.ERROR,
    logCreator: () => ({ log }) => writeStderr(`Kafka client: ${log.message}\n`),
  });
  const letters = await readTopic(kafka, values.from);
  const seen = new Set<string>();
  const out = new Map<string, Message[]>();
  const counts = { letters: letters.length, repeats: 0, reason: 0, rows: 0, foreign: 0 };
  for (const letter of letters) {
    const key = letterKey(letter);
    if (key === undefined) {
      counts.foreign++;
      continue;
    }
    if (seen.has(key)) {
      counts.repeats++;
      continue;
    }
    seen.add(key);
    if (reasons && !reasons.includes(letter.header("sluice.reason") ?? "")) {
      counts.reason++;
      continue;
    }
    if (letter.header("sluice.value") === "row" && !values.rows) {
      counts.rows++;
      continue;
    }
    const topic = values.to ?? letter.header("sluice.source.topic")!;
    const messages = out.get(topic) ?? [];
    messages.push({
      key: letter.message.key,
      value: letter.message.value,
      headers: {
        "sluice.replayed.from": `${values.from}/${letter.partition}/${letter.message.offset}`,
      },
    });
    out.set(topic, messages);
  }
  let produced = 0;
  if (!values["dry-run"]) {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (const [topic, messages] of out) {
        for (let i = 0; i < messages.length; i += 1000) {
          await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000) });
          produced += Math.min(1000, messages.length - i);
        }
      }
    } finally {
      await producer.disconnect();
    }
  }
  const targets = [...out].map(([t, m]) => `${m.length} to ${t}`).join(", ") || "nothing";
  writeStdout(
    `Read ${counts.letters} letters from ${values.from}: ` +
      `${values["dry-run"] ? "would replay" : "replayed"} ${targets}` +
      (values["dry-run"] ? "" : ` (${produced} produced)`) +
      `; left out ${counts.repeats} repeats, ${counts.rows} server-refused rows` +
      `${values.rows ? "" : " (--rows to include)"}, ${counts.reason} of other reasons, ` +
      `${counts.foreign} without sluice headers\n`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    writeStderr(`Cannot replay: ${errorText(error)}\n`);
    Deno.exit(1);
  }
}
