/**
 * Test helpers for the real Kafka brokers: topics, producing, offsets, and
 * for the three-node cluster (`scripts/services.sh` service `kafka-cluster`)
 * where partitions are led and moving their leaders. Every helper talks to
 * the single local broker unless given other `brokers`.
 *
 * @module
 */

import { Kafka, logLevel, type Message, Partitioners, type RetryOptions } from "kafkajs";
import { silenceKafkaJsTimerWarning } from "../lib/kafka.ts";
import { kafkaBrokers, kafkaClusterClasspath } from "./_services.ts";

silenceKafkaJsTimerWarning();

/**
 * A kafkajs client of the local broker, or of other brokers.
 *
 * @param brokers Comma-separated `host:port` list; the local broker by default.
 * @param retry How requests are retried; kafkajs's default (5 retries) by default.
 * @returns The client.
 */
export function client(brokers: string = kafkaBrokers(), retry?: RetryOptions): Kafka {
  return new Kafka({
    clientId: "sluice-tests",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    ...(retry ? { retry } : {}),
  });
}

/** Options of {@link createTopic}. */
export interface CreateTopicOptions {
  /** Comma-separated `host:port` list; the local broker by default. */
  brokers?: string;
  /**
   * The broker ids of each partition's replicas, partition 0 first; the first
   * id is the partition's preferred leader. Without it, one replica each.
   */
  replicas?: readonly (readonly number[])[];
}

/**
 * Creates a topic and waits until it has leaders.
 *
 * @param topic The name.
 * @param partitions How many partitions (ignored when `options.replicas` says).
 * @param options Other brokers, and where the replicas go.
 * @throws {Error} When the topic has no leaders within 30 s.
 */
export async function createTopic(
  topic: string,
  partitions = 3,
  options: CreateTopicOptions = {},
): Promise<void> {
  const admin = client(options.brokers).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [
        options.replicas === undefined
          ? { topic, numPartitions: partitions, replicationFactor: 1 }
          : {
            topic,
            replicaAssignment: options.replicas.map((ids, partition) => ({
              partition,
              replicas: [...ids],
            })),
          },
      ],
      // kafkajs's own wait gives up when the broker it asks has not heard of
      // the topic yet (UNKNOWN_TOPIC_OR_PARTITION), as a cluster's other brokers may.
      waitForLeaders: false,
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const led = await admin.fetchTopicMetadata({ topics: [topic] }).then(
        (meta) => meta.topics[0]?.partitions.every((p) => p.leader >= 0) ?? false,
        () => false,
      );
      if (led) return;
      if (Date.now() > deadline) throw new Error(`Cannot see leaders of topic ${topic} in 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Produces message values, spread round-robin over the partitions (or all to one).
 *
 * With `idempotent`, every value is in the topic exactly once though brokers
 * die and leaders move: an idempotent producer numbers its batches per
 * partition, and a broker drops a batch it already has from the same
 * producer; kafkajs takes a failed batch's numbers back, so sending it again
 * with the same producer is safe. So kafkajs retries for about a minute (a
 * dead broker stays in the metadata until its session expires; kafkajs gives
 * up on it after 5 retries by default), and each step that still fails (a
 * connection refused while it looks for a live broker, say) is tried again,
 * with the same producer, for up to 2 minutes.
 *
 * @param topic The topic.
 * @param values The values, in order.
 * @param options `partition` to send every message to one partition; other
 *   `brokers`; `idempotent`, see above.
 */
export async function produce(
  topic: string,
  values: readonly string[],
  options: { partition?: number; brokers?: string; idempotent?: boolean } = {},
): Promise<void> {
  const retry = options.idempotent ? { retries: 30, maxRetryTime: 3000 } : undefined;
  const deadline = Date.now() + 120_000;
  const patiently = async <T>(step: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await step();
      } catch (error) {
        if (!options.idempotent || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const producer = client(options.brokers, retry).producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    // One request at a time keeps the sequence numbers in order (kafkajs's advice).
    ...(options.idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {}),
  });
  await patiently(() => producer.connect());
  try {
    const meta = await patiently(() => metadataPartitions(topic, options.brokers, retry));
    for (let start = 0; start < values.length; start += 5000) {
      const perPartition = new Map<number, Message[]>();
      values.slice(start, start + 5000).forEach((value, i) => {
        const partition = options.partition ?? (start + i) % meta;
        const messages = perPartition.get(partition) ?? [];
        messages.push({ value, partition });
        perPartition.set(partition, messages);
      });
      // One partition per send: when a send fails on one broker, kafkajs
      // 2.2.4 sends it again only to brokers that have not answered yet
      // (sendMessages.js keeps the answers per broker), so a partition whose
      // new leader had answered for another partition is never sent, and
      // send() still resolves.
      await Promise.all(
        [...perPartition.values()].map((messages) =>
          patiently(() => producer.send({ topic, acks: -1, messages }))
        ),
      );
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * Produces whole messages (keys, binary values, chosen partitions), with acks from all replicas.
 *
 * @param topic The topic.
 * @param messages The messages, in order.
 */
export async function produceMessages(topic: string, messages: Message[]): Promise<void> {
  const producer = client().producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

async function metadataPartitions(
  topic: string,
  brokers?: string,
  retry?: RetryOptions,
): Promise<number> {
  const admin = client(brokers, retry).admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta.topics[0]?.partitions.length ?? 1;
  } finally {
    await admin.disconnect();
  }
}

/**
 * The metadata the group committed with each partition's offset (sluice's
 * pins, `lib/ranges.ts`).
 *
 * @param group The consumer group.
 * @param topic The topic.
 * @param brokers Comma-separated `host:port` list; the local broker by default.
 * @returns Partition to metadata (`""` when none).
 */
export async function committedMetadata(
  group: string,
  topic: string,
  brokers?: string,
): Promise<Record<number, string>> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return Object.fromEntries(
      (fetched?.partitions ?? []).map((p) => [p.partition, p.metadata ?? ""]),
    );
  } finally {
    await admin.disconnect();
  }
}

/**
 * The group's committed offsets and the topic's end offsets, per partition.
 *
 * @param group The consumer group.
 * @param topic The topic.
 * @param brokers Comma-separated `host:port` list; the local broker by default.
 * @returns Both maps, partition to offset.
 */
export async function offsets(
  group: string,
  topic: string,
  brokers?: string,
): Promise<{ committed: Record<number, string>; end: Record<number, string> }> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    return {
      committed: Object.fromEntries(
        (fetched?.partitions ?? []).map((p) => [p.partition, p.offset]),
      ),
      end: Object.fromEntries(ends.map((p) => [p.partition, p.high])),
    };
  } finally {
    await admin.disconnect();
  }
}

/**
 * Whether the group committed the end of every partition of the topic (an
 * empty partition needs no commit).
 *
 * @param group The consumer group.
 * @param topic The topic.
 * @param brokers Comma-separated `host:port` list; the local broker by default.
 * @returns `true` when nothing is left uncommitted.
 */
export async function allCommitted(
  group: string,
  topic: string,
  brokers?: string,
): Promise<boolean> {
  const { committed, end } = await offsets(group, topic, brokers);
  return Object.entries(end).every(([p, high]) => high === "0" || committed[Number(p)] === high);
}

/** Where one partition lives: its leader, its replicas (preferred leader first), the in-sync ones. */
export interface PartitionPlace {
  /** The partition. */
  partition: number;
  /** The broker id of its leader, -1 when it has none. */
  leader: number;
  /** The broker ids of its replicas, the preferred leader first. */
  replicas: number[];
  /** The broker ids of the replicas in sync with the leader. */
  isr: number[];
}

/**
 * Where each partition of a topic is led, as the brokers' metadata says now.
 *
 * @param topic The topic.
 * @param brokers Comma-separated `host:port` list; the local broker by default.
 * @returns One entry per partition, partition 0 first.
 */
export async function partitionPlaces(topic: string, brokers?: string): Promise<PartitionPlace[]> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return (meta.topics[0]?.partitions ?? [])
      .map((p) => ({
        partition: p.partitionId,
        leader: p.leader,
        replicas: p.replicas,
        isr: p.isr,
      }))
      .sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Java's `String.hashCode()`, which Kafka hashes group ids with.
 *
 * @param text The text.
 * @returns A signed 32-bit integer.
 */
function javaHashCode(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(31, hash) + text.charCodeAt(i)) | 0;
  return hash;
}

/**
 * The `__consumer_offsets` partition that holds a consumer group: its leader
 * is the group's coordinator. Kafka picks it as `Utils.abs(groupId.hashCode())
 * % partitions` (`GroupCoordinator.partitionFor`; `GroupCoordinatorService.topicPartitionFor`
 * in 4.x). Asks for the group first, which makes the brokers create
 * `__consumer_offsets` if no group ever did.
 *
 * @param group The consumer group.
 * @param brokers Comma-separated `host:port` list; the local broker by default.
 * @returns The partition, its leader (the coordinator) and replicas.
 * @throws {Error} When `__consumer_offsets` cannot be read.
 */
export async function groupCoordinator(group: string, brokers?: string): Promise<PartitionPlace> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    await admin.describeGroups([group]);
  } finally {
    await admin.disconnect();
  }
  const places = await partitionPlaces("__consumer_offsets", brokers);
  const hash = javaHashCode(group);
  // Utils.abs maps Integer.MIN_VALUE to 0.
  const place = places[(hash === -2147483648 ? 0 : Math.abs(hash)) % places.length];
  if (place === undefined) throw new Error(`Cannot read __consumer_offsets for group ${group}`);
  return place;
}

/**
 * Moves partition leadership as an operator does: reassigns each partition
 * to the replica list given (the first broker becomes its preferred leader)
 * and elects the preferred leaders, waiting until each partition is led by
 * the first broker of its list (a broker that has just come back is waited
 * for until it is in sync). Runs `scripts/kafka/PreferLeaders.java` with the
 * Kafka jars of `scripts/services.sh` (Kafka's Admin client: kafkajs cannot
 * elect leaders).
 *
 * @param topic The topic.
 * @param replicas Per partition, the broker ids of its replicas, the new leader first.
 * @param brokers Comma-separated `host:port` list.
 * @returns What the tool printed: one line per partition of the topic.
 * @throws {Error} With the tool's output when the move is not done within 90 s.
 */
export async function preferLeaders(
  topic: string,
  replicas: Readonly<Record<number, readonly number[]>>,
  brokers: string,
): Promise<string> {
  const tool = new URL("../scripts/kafka/PreferLeaders.java", import.meta.url).pathname;
  const moves = Object.entries(replicas).map(([p, ids]) => `${p}=${ids.join(",")}`);
  const out = await new Deno.Command("java", {
    args: ["-cp", await kafkaClusterClasspath(), tool, brokers, topic, ...moves],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const said = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-15).join("\n");
    throw new Error(
      `Cannot move the leaders of ${topic} (${moves.join(" ")}) with PreferLeaders.java ` +
        `(exit ${out.code}):\n${said}\n${text}`,
    );
  }
  return text;
}
