/**
 * Benchmark mode (`-b`, `BENCHMARK=YES`), as kafka-influxdb had it: produce
 * `BENCHMARK_MESSAGES` sample messages in the configured `ENCODER`'s format
 * into `BENCHMARK_TOPIC`, then consume exactly those through the configured
 * sink with a fresh consumer group, printing progress every second and, at
 * the end, messages/s and points/s actually written, CPU seconds and peak RSS.
 *
 * The new group starts at the offsets the topic had before producing, so
 * older messages in the topic are not counted.
 *
 * @module
 */

import process from "node:process";
import { Kafka, Partitioners } from "kafkajs";
import type { Config } from "./config.ts";
import { kafkaClientOptions, KafkaSource } from "./kafka.ts";
import { type Logger, writeStderr, writeStdout } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { Pipeline } from "./pipeline/mod.ts";
import { RetryPolicy } from "./retry.ts";
import { connectSink } from "./sink.ts";
import type { Sink } from "./sink.ts";

/** Bytes of messages one produce request carries, well under the broker's 1 MB default. */
const PRODUCE_BYTES = 512 * 1024;

/**
 * Sample messages in one decoder's format. Series and times are spread so
 * that no two points share series and time (which InfluxDB would merge).
 *
 * @param decoder The decoder's name.
 * @param count How many messages.
 * @param nowSeconds The current time; every sample time lies before it.
 * @returns A function giving message `i` (0 <= i < count).
 */
export function sampleMessages(
  decoder: string,
  count: number,
  nowSeconds: number,
): (i: number) => string {
  const hosts = 100;
  const kinds = 3;
  const first = Math.floor(nowSeconds) - Math.ceil(count / (hosts * kinds)) - 60;
  const at = (i: number) => first + Math.floor(i / (hosts * kinds));
  const value = (i: number) => ((i * 7919) % 10000) / 100;
  switch (decoder) {
    case "collectd_graphite":
      return (i) => {
        const host = `bench-host-${i % hosts}`;
        const t = at(i);
        switch (i % kinds) {
          case 0:
            return `${host}.load.load.shortterm ${value(i)} ${t}\n` +
              `${host}.load.load.midterm ${value(i + 1)} ${t}\n` +
              `${host}.load.load.longterm ${value(i + 2)} ${t}\n`;
          case 1:
            return `${host}.cpu-0.cpu-user ${i} ${t}\n`;
          default:
            return `${host}.memory.memory-buffered ${743657472 + i} ${t}\n`;
        }
      };
    case "collectd_json":
      return (i) => {
        const host = `bench-host-${i % hosts}`;
        const time = at(i) + 0.125;
        switch (i % kinds) {
          case 0:
            return `[{"values":[${value(i)},${value(i + 1)},${value(i + 2)}],` +
              `"dstypes":["gauge","gauge","gauge"],"dsnames":["shortterm","midterm","longterm"],` +
              `"time":${time},"interval":10.000,"host":"${host}","plugin":"load",` +
              `"plugin_instance":"","type":"load","type_instance":""}]`;
          case 1:
            return `[{"values":[${i}],"dstypes":["derive"],"dsnames":["value"],"time":${time},` +
              `"interval":10.000,"host":"${host}","plugin":"cpu","plugin_instance":"0",` +
              `"type":"cpu","type_instance":"user"}]`;
          default:
            return `[{"values":[${743657472 + i}],"dstypes":["gauge"],"dsnames":["value"],` +
              `"time":${time},"interval":10.000,"host":"${host}","plugin":"memory",` +
              `"plugin_instance":"","type":"memory","type_instance":"buffered"}]`;
        }
      };
    case "influx_line":
      return (i) =>
        `bench,host=bench-host-${i % hosts},kind=k${i % kinds} value=${value(i)},count=${i}i ${
          at(i)
        }`;
    default: {
      const stamp = (t: number) => new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ");
      return (i) => {
        const t = at(i);
        return JSON.stringify({
          event_type: "purge",
          ip_src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
          ip_dst: `192.168.${i % hosts}.1`,
          port_src: 1024 + (i % 60000),
          port_dst: 443,
          ip_proto: "tcp",
          packets: 1 + (i % 50),
          bytes: 64 * (1 + (i % 50)),
          stamp_inserted: stamp(t - (t % 60)),
          stamp_updated: stamp(t),
        });
      };
    }
  }
}

/** Thousands separators for figures. */
function n(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/**
 * Runs the benchmark: produce, then consume through the sink, reporting.
 *
 * @param config The resolved configuration (its Kafka settings, decoder, sink batch limits).
 * @param sink The configured sink, not yet connected.
 * @param log The logger.
 * @returns The exit code: 0 when every message was consumed and every batch written.
 */
export async function runBenchmark(config: Config, sink: Sink, log: Logger): Promise<number> {
  const { messages: total, topic } = config.benchmark;
  const policy = new RetryPolicy(config.retry);
  const kafka = new Kafka(kafkaClientOptions(config.kafka, log, policy));
  const admin = kafka.admin();
  await admin.connect();
  let before: Array<{ partition: number; offset: string }>;
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    }
    before = (await admin.fetchTopicOffsets(topic)).map((p) => ({
      partition: p.partition,
      offset: p.high,
    }));
  } finally {
    await admin.disconnect();
  }

  writeStderr(
    `Starting in benchmark mode: producing ${n(total)} sample ${config.decoder.module.name} ` +
      `messages to topic ${topic}\n`,
  );
  const sample = sampleMessages(config.decoder.module.name, total, Date.now() / 1000);
  const producer = kafka.producer({
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const produceStart = performance.now();
  let produced = 0;
  let lastPrint = produceStart;
  try {
    while (produced < total) {
      const sends = [];
      // Four requests in flight keep the broker busy without unbounded memory.
      for (let k = 0; k < 4 && produced < total; k++) {
        const batch: Array<{ value: string }> = [];
        for (let bytes = 0; bytes < PRODUCE_BYTES && produced < total; produced++) {
          const value = sample(produced);
          bytes += value.length + 70;
          batch.push({ value });
        }
        sends.push(producer.send({ topic, messages: batch, acks: 1 }));
      }
      await Promise.all(sends);
      const now = performance.now();
      if (now - lastPrint >= 1000 || produced === total) {
        lastPrint = now;
        writeStderr(
          `Produced ${n(produced)} of ${n(total)} messages (${
            Math.floor(produced / total * 100)
          }%), ${n(produced / ((now - produceStart) / 1000))} messages/s\n`,
        );
      }
    }
  } finally {
    await producer.disconnect();
  }
  const produceSeconds = (performance.now() - produceStart) / 1000;

  // A fresh group, positioned where the topic ended before producing.
  const groupId = `sluice-benchmark-${Date.now()}`;
  const admin2 = kafka.admin();
  await admin2.connect();
  try {
    await admin2.setOffsets({ groupId, topic, partitions: before });
  } finally {
    await admin2.disconnect();
  }

  await connectSink(sink, { policy, log });
  const metrics = new Metrics();
  let crashed: unknown;
  const source = new KafkaSource(
    { ...config.kafka, topics: [topic], groupId, fromBeginning: true },
    { log, metrics, policy, onCrash: (error) => (crashed = error) },
  );
  const pipeline = new Pipeline(source, {
    sink,
    decoder: config.decoder.decode,
    skipReason: config.decoder.module.skipReason,
    batch: config.sink.batch,
    retry: policy,
    metrics,
    log,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  });
  const unit = config.decoder.module.kind === "flows" ? "rows" : "points";
  const cpuStart = process.cpuUsage();
  const consumeStart = performance.now();
  writeStderr(`Consuming them through the ${sink.name} sink (group ${groupId})\n`);
  await pipeline.start();
  let last = { at: consumeStart, messages: 0, written: 0 };
  while (pipeline.stats.messages < total && crashed === undefined) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = performance.now();
    const { messages, written } = pipeline.stats;
    const seconds = (now - last.at) / 1000;
    writeStderr(
      `Consumed ${n(messages)} of ${n(total)} messages (${Math.floor(messages / total * 100)}%), ` +
        `${n((messages - last.messages) / seconds)} messages/s, ` +
        `${n((written - last.written) / seconds)} ${unit}/s written\n`,
    );
    last = { at: now, messages, written };
  }
  const result = await pipeline.stop();
  const seconds = (performance.now() - consumeStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await sink.close().catch(() => {});
  const stats = pipeline.stats;
  const rejected = Object.entries(stats.rejected).map(([k, v]) => `${k} ${v}`).join(", ");
  writeStdout(
    [
      `Benchmark: ${n(stats.messages)} messages, ${n(stats.written)} ${unit} written to ` +
      `${sink.name} in ${seconds.toFixed(2)} s`,
      `  ${n(stats.messages / seconds)} messages/s, ${n(stats.written / seconds)} ${unit}/s`,
      `  produce: ${produceSeconds.toFixed(2)} s (${n(total / produceSeconds)} messages/s)`,
      `  consume CPU: ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s; peak RSS ${
        n(process.resourceUsage().maxRSS / 1024)
      } MB`,
      `  skipped ${n(stats.skipped)}, rejected ${rejected || "0"}`,
    ].join("\n") + "\n",
  );
  if (crashed !== undefined) {
    log.error("The Kafka consumer stopped", { error: crashed });
    return 1;
  }
  return result.clean ? 0 : 1;
}
