/**
 * Test helpers for the real Kafka broker: topics, producing, offsets.
 *
 * @module
 */

import { Kafka, logLevel, type Message, Partitioners } from "kafkajs";
import { silenceKafkaJsTimerWarning } from "../lib/kafka.ts";
import { kafkaBrokers } from "./_services.ts";

silenceKafkaJsTimerWarning();

/**
 * A kafkajs client of the local broker.
 *
 * @returns The client.
 */
export function client(): Kafka {
  return new Kafka({
    clientId: "sluice-tests",
    brokers: [kafkaBrokers()],
    logLevel: logLevel.NOTHING,
  });
}

/**
 * Creates a topic and waits until it has leaders.
 *
 * @param topic The name.
 * @param partitions How many partitions.
 */
export async function createTopic(topic: string, partitions = 3): Promise<void> {
  const admin = client().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Produces message values, spread round-robin over the partitions (or all to one).
 *
 * @param topic The topic.
 * @param values The values, in order.
 * @param options `partition` to send every message to one partition.
 */
export async function produce(
  topic: string,
  values: readonly string[],
  options: { partition?: number } = {},
): Promise<void> {
  const producer = client().producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    const meta = await metadataPartitions(topic);
    for (let start = 0; start < values.length; start += 5000) {
      const chunk = values.slice(start, start + 5000);
      await producer.send({
        topic,
        acks: -1,
        messages: chunk.map((value, i) => ({
          value,
          partition: options.partition ?? (start + i) % meta,
        })),
      });
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

async function metadataPartitions(topic: string): Promise<number> {
  const admin = client().admin();
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
 * @returns Partition to metadata (`""` when none).
 */
export async function committedMetadata(
  group: string,
  topic: string,
): Promise<Record<number, string>> {
  const admin = client().admin();
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
 * @returns Both maps, partition to offset.
 */
export async function offsets(
  group: string,
  topic: string,
): Promise<{ committed: Record<number, string>; end: Record<number, string> }> {
  const admin = client().admin();
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
 * @returns `true` when nothing is left uncommitted.
 */
export async function allCommitted(group: string, topic: string): Promise<boolean> {
  const { committed, end } = await offsets(group, topic);
  return Object.entries(end).every(([p, high]) => high === "0" || committed[Number(p)] === high);
}
