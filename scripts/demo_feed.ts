/**
 * Feeds sample pmacct flow records into Kafka for the demo (`deno task demo`),
 * and generates the records the benchmark (`deno task bench`) pre-produces.
 *
 * The records look like what pmacct's kafka plugin sends with
 * `kafka_output: json` (the same fields and order as
 * `tests/testdata/samples/pmacctd-print-json.jsonl`, with NetFlow exporters
 * in `peer_ip_src`): one JSON object per message, `stamp_inserted` rounded
 * down to a 5-minute bin (`kafka_history: 5m`, `kafka_history_roundoff: m`),
 * `stamp_updated` the time of the purge, both in UTC. About one flow in
 * seven is IPv6; a few hosts make most of the traffic.
 *
 * Usage:
 *
 *     deno run -A scripts/demo_feed.ts --topic NAME [--brokers HOST:PORT]
 *       [--create] [--partitions 3] [--drop-prefix PREFIX]
 *       [--records 100] [--first 0] [--spread-minutes 10] [--poison]
 *
 * - `--create` creates the topic first; with `--drop-prefix` it also deletes
 *   the other topics whose names start with PREFIX (earlier demo runs).
 * - `--records N` sends N flow records, numbered from `--first`, with
 *   `stamp_updated` spread over the last `--spread-minutes` minutes.
 * - `--poison` also sends one message that is not JSON, which sluice sets aside.
 *
 * `--brokers` defaults to `KAFKA_BOOTSTRAP_SERVERS`, else 127.0.0.1:19092.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { silenceKafkaJsTimerWarning } from "../lib/kafka.ts";
import { writeStderr, writeStdout } from "../lib/log.ts";

/** A flow record as pmacct's kafka plugin writes it with `kafka_output: json`. */
export interface PmacctFlow {
  /** Always `purge`: the record left pmacct's cache. */
  event_type: "purge";
  /** The NetFlow exporter's address. */
  peer_ip_src: string;
  /** Source address. */
  ip_src: string;
  /** Destination address. */
  ip_dst: string;
  /** Source port. */
  port_src: number;
  /** Destination port. */
  port_dst: number;
  /** Protocol name. */
  ip_proto: string;
  /** Type of service byte. */
  tos: number;
  /** Start of the 5-minute bin, `YYYY-MM-DD HH:MM:SS` UTC. */
  stamp_inserted: string;
  /** Time of the purge, `YYYY-MM-DD HH:MM:SS` UTC. */
  stamp_updated: string;
  /** Packets of the flow in this bin. */
  packets: number;
  /** Bytes of the flow in this bin. */
  bytes: number;
}

// Documentation address space only (RFC 5737, RFC 3849), plus RFC 1918 for the inside.
const INSIDE = [
  "10.1.0.10",
  "10.1.0.11",
  "10.1.0.12",
  "10.1.0.20",
  "10.1.0.21",
  "10.1.1.5",
  "10.1.1.6",
  "10.1.2.100",
  "2001:db8:10::10",
  "2001:db8:10::20",
] as const;
const OUTSIDE = [
  "192.0.2.10",
  "192.0.2.53",
  "198.51.100.23",
  "198.51.100.80",
  "203.0.113.5",
  "203.0.113.44",
  "203.0.113.200",
  "192.0.2.123",
  "198.51.100.150",
  "203.0.113.99",
  "2001:db8:ffff::1",
  "2001:db8:ffff::443",
  "2001:db8:ffff::53",
] as const;
const EXPORTERS = ["198.51.100.1", "198.51.100.2"] as const;
/** Server port, protocol, typical packet size, and how common the service is. */
const SERVICES = [
  { port: 443, proto: "tcp", size: 1100, weight: 40 },
  { port: 80, proto: "tcp", size: 900, weight: 10 },
  { port: 53, proto: "udp", size: 90, weight: 20 },
  { port: 123, proto: "udp", size: 76, weight: 5 },
  { port: 22, proto: "tcp", size: 300, weight: 5 },
  { port: 8123, proto: "tcp", size: 700, weight: 8 },
  { port: 9092, proto: "tcp", size: 1200, weight: 7 },
  { port: 0, proto: "icmp", size: 84, weight: 5 },
] as const;
const SERVICE_WEIGHT = SERVICES.reduce((sum, s) => sum + s.weight, 0);

/**
 * A small fast PRNG (mulberry32) seeded per record, so record `i` is always the same flow.
 *
 * @param seed The seed.
 * @returns Numbers in [0, 1), the same sequence for the same seed.
 */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks from a list, the first entries more often (top talkers). */
function skewed<T>(list: readonly T[], r: number): T {
  return list[Math.floor(r * r * list.length)]!;
}

/**
 * Formats epoch milliseconds as pmacct does, `YYYY-MM-DD HH:MM:SS` (UTC here).
 *
 * @param ms Epoch milliseconds.
 * @returns E.g. `2026-11-21 23:27:47`.
 */
export function pmacctTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

/**
 * Generates flow record number `i`: the same `i` gives the same flow, apart
 * from its timestamps, which fall within the `spreadMs` before `nowMs`.
 *
 * @param i The record number.
 * @param nowMs The newest `stamp_updated`, epoch milliseconds.
 * @param spreadMs How far back `stamp_updated` may go.
 * @returns The record.
 */
export function flowRecord(i: number, nowMs: number, spreadMs = 10 * 60_000): PmacctFlow {
  const r = random(i * 2654435761);
  let pick = r() * SERVICE_WEIGHT;
  const service = SERVICES.find((s) => (pick -= s.weight) < 0) ?? SERVICES[0];
  const v6 = r() < 0.15;
  const inside = v6 ? skewed(INSIDE.slice(8), r()) : skewed(INSIDE.slice(0, 8), r());
  const outside = v6 ? skewed(OUTSIDE.slice(10), r()) : skewed(OUTSIDE.slice(0, 10), r());
  const ephemeral = 32768 + Math.floor(r() * 28000);
  const packets = 1 + Math.floor(r() ** 3 * 2000);
  const bytes = packets * Math.max(40, Math.round(service.size * (0.6 + r() * 0.8)));
  // Half the records are the server's answer: the same flow the other way.
  const reply = r() < 0.5;
  const updated = Math.floor((nowMs - r() * spreadMs) / 1000) * 1000;
  const bin = Math.floor(updated / 300_000) * 300_000;
  const port = service.proto === "icmp" ? 0 : ephemeral;
  return {
    event_type: "purge",
    peer_ip_src: EXPORTERS[i % EXPORTERS.length]!,
    ip_src: reply ? outside : inside,
    ip_dst: reply ? inside : outside,
    port_src: reply ? service.port : port,
    port_dst: reply ? port : service.port,
    ip_proto: service.proto,
    tos: r() < 0.1 ? 46 : 0,
    stamp_inserted: pmacctTime(bin),
    stamp_updated: pmacctTime(updated),
    packets,
    bytes,
  };
}

/** What the demo sends as its one poison message: not JSON at all. */
export const POISON_MESSAGE = '{"event_type": "purge", "ip_src": "10.1.0.10", "bytes": 12';

function intFlag(name: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new RangeError(`"--${name}" must be an integer >= 0, got "${text}"`);
  }
  return n;
}

function brokersDefault(): string {
  return Deno.env.get("KAFKA_BOOTSTRAP_SERVERS") ?? "127.0.0.1:19092";
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      brokers: { type: "string", default: brokersDefault() },
      topic: { type: "string" },
      create: { type: "boolean", default: false },
      partitions: { type: "string", default: "3" },
      "drop-prefix": { type: "string" },
      records: { type: "string", default: "0" },
      first: { type: "string", default: "0" },
      "spread-minutes": { type: "string", default: "10" },
      poison: { type: "boolean", default: false },
    },
  });
  const topic = values.topic;
  if (topic === undefined || topic === "") throw new TypeError('"--topic" is required');
  const records = intFlag("records", values.records);
  const first = intFlag("first", values.first);
  const partitions = intFlag("partitions", values.partitions);
  const spreadMinutes = Number(values["spread-minutes"]);
  if (!(spreadMinutes >= 0)) {
    throw new RangeError(
      `"--spread-minutes" must be a number >= 0, got "${values["spread-minutes"]}"`,
    );
  }

  const kafka = new Kafka({
    clientId: "sluice-demo-feed",
    brokers: values.brokers.split(","),
    logLevel: logLevel.ERROR,
    logCreator: () => ({ log }) => writeStderr(`demo_feed: Kafka client: ${log.message}\n`),
    retry: { retries: 3 },
  });

  if (values.create) {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const prefix = values["drop-prefix"];
      if (prefix) {
        const old = (await admin.listTopics()).filter((t) => t.startsWith(prefix) && t !== topic);
        if (old.length > 0) {
          await admin.deleteTopics({ topics: old });
          writeStdout(`Deleted ${old.length} topic(s) of earlier runs: ${old.join(", ")}\n`);
        }
      }
      const created = await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      writeStdout(
        `${created ? "Created" : "Reusing existing"} topic ${topic} (${partitions} partitions)\n`,
      );
    } finally {
      await admin.disconnect();
    }
  }

  if (records === 0 && !values.poison) return 0;
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    const now = Date.now();
    const messages = Array.from(
      { length: records },
      (_, i) => ({ value: JSON.stringify(flowRecord(first + i, now, spreadMinutes * 60_000)) }),
    );
    if (values.poison) messages.splice(Math.floor(records / 2), 0, { value: POISON_MESSAGE });
    await producer.send({ topic, acks: -1, messages });
    const v6 = messages.filter((m) => /"ip_src":"[^"]*:/.test(m.value)).length;
    writeStdout(
      `Sent ${records} flow records to ${topic} (${v6} IPv6)` +
        (values.poison ? ", plus 1 poison message (truncated JSON)\n" : "\n"),
    );
  } finally {
    await producer.disconnect();
  }
  return 0;
}

if (import.meta.main) {
  silenceKafkaJsTimerWarning();
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    writeStderr(
      `demo_feed: Cannot feed Kafka: ${error instanceof Error ? error.message : error}\n`,
    );
    Deno.exit(1);
  }
}
