/**
 * The chaos suite's Kafka work: topics and consumer groups, producing the
 * message files with kcat (`-K '\t'`, optionally `-z <codec>`), the group's
 * committed offsets, and reading a dead-letter topic back with kafkajs.
 *
 * Every admin request gets a fresh kafkajs client that logs nothing, so
 * that polls during a broker outage fail quietly and the next one after it
 * works.
 *
 * @module
 */

import { Kafka, logLevel } from "kafkajs";
import { registerKafkaCodecs } from "../../lib/kafka_codecs.ts";
import { errorText } from "../../lib/log.ts";
import { sleep } from "../_measure.ts";

/** The broker the suite uses. */
export const KAFKA = `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;

/** The codecs kcat can produce with (`-z`). */
export const CODECS = ["gzip", "snappy", "lz4", "zstd"] as const;

/** A codec kcat can produce with. */
export type Codec = (typeof CODECS)[number];

function client(clientId: string): Kafka {
  registerKafkaCodecs();
  return new Kafka({
    clientId,
    brokers: [KAFKA],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 1, initialRetryTime: 200 },
  });
}

type Admin = ReturnType<Kafka["admin"]>;

/**
 * Runs `work` with a connected admin client, disconnected afterwards.
 *
 * @param work What to do.
 * @returns What `work` returns.
 * @throws {Error} When the broker cannot be reached or `work` fails.
 */
export async function withAdmin<T>(work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = client("sluice-chaos-admin").admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Checks that the broker answers and kcat is installed.
 *
 * @throws {Error} Saying what to start or install.
 */
export async function checkKafka(): Promise<void> {
  try {
    await withAdmin((admin) => admin.listTopics());
  } catch (error) {
    throw new Error(
      `Cannot reach Kafka at ${KAFKA} (${
        errorText(error)
      }); start it with bash scripts/services.sh start kafka`,
    );
  }
  const found = await new Deno.Command("bash", { args: ["-c", "command -v kcat"], stdout: "null" })
    .output();
  if (!found.success) {
    throw new Error("Cannot produce without kcat: install it with apt-get install kcat");
  }
}

/**
 * Creates topics and waits for their leaders. A broker that has just been
 * started may refuse for a few seconds (no controller or leaders yet): the
 * creation is tried again for up to `timeoutMs`, and a topic an attempt
 * created already counts.
 *
 * @param topics Names and partition counts.
 * @param timeoutMs How long to keep trying.
 * @throws {Error} When a topic cannot be created in that time.
 */
export async function createTopics(
  topics: ReadonlyArray<{ topic: string; partitions: number }>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withAdmin(async (admin) => {
        const existing = new Set(await admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t.topic));
        if (missing.length > 0) {
          await admin.createTopics({
            topics: missing.map((t) => ({
              topic: t.topic,
              numPartitions: t.partitions,
              replicationFactor: 1,
            })),
            waitForLeaders: true,
          });
        }
        // Every partition has a leader: produce and consume can start.
        const meta = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
        for (const t of meta.topics) {
          if (t.partitions.some((p) => p.leader < 0)) {
            throw new Error(`${t.name} has no leader yet`);
          }
        }
      });
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot create topics ${topics.map((t) => t.topic).join(", ")}: ${errorText(error)}`,
        );
      }
      await sleep(1000);
    }
  }
}

/**
 * Deletes topics and consumer groups, best effort (a group whose member was
 * killed is not empty until its session times out; the broker expires it
 * later anyway).
 *
 * @param topics The topics.
 * @param groups The groups.
 */
export async function deleteTopicsAndGroups(
  topics: readonly string[],
  groups: readonly string[],
): Promise<void> {
  await withAdmin(async (admin) => {
    if (groups.length > 0) await admin.deleteGroups([...groups]).catch(() => {});
    if (topics.length > 0) await admin.deleteTopics({ topics: [...topics] }).catch(() => {});
  }).catch(() => {});
}

/**
 * Produces one message file with kcat: `key<TAB>value` lines, partitioned
 * by key. kcat waits for every delivery before it exits (and retries while
 * the broker is away, up to librdkafka's `message.timeout.ms`).
 *
 * @param topic The topic.
 * @param file The file.
 * @param codec Compress the batches with this codec (`-z`), if set.
 * @throws {Error} When kcat reports a failure.
 */
export async function produceFile(topic: string, file: string, codec?: Codec): Promise<void> {
  const args = ["-P", "-b", KAFKA, "-t", topic, "-K", "\\t", "-l", file];
  if (codec !== undefined) args.push("-z", codec);
  const out = await new Deno.Command("kcat", { args, stdout: "null", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stderr).trim();
  // librdkafka logs connection failures it recovers from; only these are final.
  if (!out.success || /Delivery failed|% ERROR/.test(text)) {
    throw new Error(
      `Cannot produce ${file} to ${topic} with kcat (exit ${out.code}): ${text.slice(0, 500)}`,
    );
  }
}

/**
 * The sum of a topic's end offsets (its messages, for a topic never truncated).
 *
 * @param topic The topic.
 * @returns The count.
 * @throws {Error} When the broker cannot be reached.
 */
export async function topicEnd(topic: string): Promise<number> {
  const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

/**
 * Whether the group committed the end of every partition of the topic.
 *
 * @param group The consumer group.
 * @param topic The topic.
 * @returns `true` when nothing is left uncommitted.
 * @throws {Error} When the broker cannot be reached.
 */
export async function committedToEnd(group: string, topic: string): Promise<boolean> {
  return await withAdmin(async (admin) => {
    const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const committed = new Map((fetched?.partitions ?? []).map((p) => [p.partition, p.offset]));
    const ends = await admin.fetchTopicOffsets(topic);
    return ends.every((p) => p.high === p.low || committed.get(p.partition) === p.high);
  });
}

/** What a dead-letter topic holds. */
export interface DeadLetters {
  /** Messages read (to the end offsets). */
  messages: number;
  /** Distinct source records (by the `sluice.source.*` headers). */
  distinct: number;
  /** Distinct source records whose key is a poison key. */
  poisonFound: number;
  /** Distinct source records with a key that is not a poison key (good records set aside). */
  unexpected: string[];
  /** Messages without the `sluice.source.*` headers. */
  headerless: number;
  /** Distinct records per `sluice.reason`. */
  reasons: Map<string, number>;
}

const SOURCE_HEADERS = [
  "sluice.source.topic",
  "sluice.source.partition",
  "sluice.source.offset",
  "sluice.source.index",
];

function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return headerText(value[0]);
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return String(value);
}

/**
 * Reads a dead-letter topic from the beginning to its end offsets (fetched
 * first) with a kafkajs consumer of a throwaway group, and counts its
 * messages by source record.
 *
 * @param topic The dead-letter topic.
 * @param poisonKeys The keys of the poison messages.
 * @param timeoutMs How long the read may take.
 * @returns The counts.
 * @throws {Error} When the end is not reached within `timeoutMs`.
 */
export async function readDeadLetters(
  topic: string,
  poisonKeys: ReadonlySet<string>,
  timeoutMs = 120_000,
): Promise<DeadLetters> {
  const ends = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
  const want = new Map(ends.filter((p) => p.high !== p.low).map((p) => [p.partition, p.high]));
  const result: DeadLetters = {
    messages: 0,
    distinct: 0,
    poisonFound: 0,
    unexpected: [],
    headerless: 0,
    reasons: new Map(),
  };
  if (want.size === 0) return result;
  const seen = new Set<string>();
  const group = `${topic}-reader-${Date.now()}`;
  const consumer = client("sluice-chaos-dead-letters").consumer({
    groupId: group,
    maxWaitTimeInMs: 500,
  });
  const done = Promise.withResolvers<void>();
  const remaining = new Set(want.keys());
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        const high = want.get(batch.partition);
        for (const message of batch.messages) {
          if (high === undefined || BigInt(message.offset) >= BigInt(high)) continue;
          result.messages++;
          const headers = message.headers ?? {};
          const source = SOURCE_HEADERS.map((h) => headerText(headers[h]));
          if (source.some((s) => s === undefined)) {
            result.headerless++;
            continue;
          }
          const id = source.join("/");
          if (seen.has(id)) continue;
          seen.add(id);
          const reason = headerText(headers["sluice.reason"]) ?? "?";
          result.reasons.set(reason, (result.reasons.get(reason) ?? 0) + 1);
          const key = message.key === null ? "" : new TextDecoder().decode(message.key);
          if (poisonKeys.has(key)) result.poisonFound++;
          else result.unexpected.push(key === "" ? `(no key) ${id}` : key);
        }
        const last = batch.messages.at(-1);
        if (high !== undefined && last && BigInt(last.offset) + 1n >= BigInt(high)) {
          remaining.delete(batch.partition);
        }
        if (remaining.size === 0) done.resolve();
        return Promise.resolve();
      },
    });
    const timer = setTimeout(
      () => done.reject(new Error(`Cannot read ${topic} to its end within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    try {
      await done.promise;
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await consumer.disconnect().catch(() => {});
    // The group left just now; deleting it may need a moment.
    for (let attempt = 0; attempt < 3; attempt++) {
      const deleted = await withAdmin((admin) => admin.deleteGroups([group])).then(
        () => true,
        () => false,
      );
      if (deleted) break;
      await sleep(500);
    }
  }
  result.distinct = seen.size;
  return result;
}
