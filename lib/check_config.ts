/**
 * `--check-config --connect`: what the start would meet, checked without
 * changing anything anywhere. The brokers are reached with the configured
 * TLS and SASL settings; the source topics must exist, or the broker must
 * create topics itself (`auto.create.topics.enable`, read with
 * DescribeConfigs: pmacct's topic then appears with its first message, and
 * sluice waits for it); the dead-letter topic must exist and the dead-letter
 * file be writable; and the sink is asked what its `connect()` checks
 * (`Sink.check()`: credentials, version, types, table or bucket), or, for a
 * sink without it, its health check.
 *
 * Every outcome is one line that carries its reason, so that nothing has to
 * be read from the JSON log lines above it; credentials in URLs are masked.
 *
 * @module
 */

import { type Admin, ConfigResourceTypes, Kafka } from "kafkajs";
import { maskUrlPassword } from "./address.ts";
import type { Config } from "./config.ts";
import { kafkaClientOptions } from "./kafka.ts";
import { errorLine, type Logger } from "./log.ts";
import { healsByItself, type Sink, SinkWriteError } from "./sink.ts";
import { writableFileProblem } from "./variables.ts";

/** How one check went: `warning` does not fail the check. */
export type CheckOutcome = "ok" | "warning" | "failed";

/** One line of the report. */
export interface CheckLine {
  /** How it went. */
  outcome: CheckOutcome;
  /** What was checked and found, with the reason when it failed. */
  text: string;
}

/** The calls of the Kafka admin client the check makes (a fake in tests). */
export type KafkaAdmin = Pick<
  Admin,
  "connect" | "disconnect" | "listTopics" | "describeCluster" | "describeConfigs"
>;

/** What the check needs besides the configuration and the sink. */
export interface CheckDeps {
  /** The logger of the Kafka client. */
  log: Logger;
  /** The Kafka admin client; by default one for the configuration. */
  admin?: KafkaAdmin;
}

/**
 * Runs every check of `--check-config --connect`.
 *
 * @param config The resolved configuration.
 * @param sink The sink, not connected (closed afterwards).
 * @param deps The logger, and for tests a Kafka admin client.
 * @returns Whether every check passed, and the report's lines (the last one a summary).
 */
export async function checkConnections(
  config: Config,
  sink: Sink,
  deps: CheckDeps,
): Promise<{ ok: boolean; lines: string[] }> {
  const admin = deps.admin ??
    new Kafka({ ...kafkaClientOptions(config.kafka, deps.log), retry: { retries: 1 } }).admin();
  const results = [
    ...await checkKafka(config, admin),
    ...checkDeadLetterFile(config.deadLetterFile),
    await checkSink(sink),
  ];
  const failed = results.filter((r) => r.outcome === "failed").length;
  const warned = results.filter((r) => r.outcome === "warning").length;
  const summary = failed > 0
    ? `Connection check failed: ${failed} of ${results.length} checks`
    : `Connection check passed${
      warned > 0 ? ` with ${warned} warning${warned === 1 ? "" : "s"}` : ""
    }`;
  return {
    ok: failed === 0,
    lines: [...results.map((r) => r.text), summary].map(maskUrlPassword),
  };
}

/**
 * Reaches the brokers and looks for the topics: a missing source topic is
 * a warning when the broker creates topics itself, else a failure; a
 * missing dead-letter topic is a failure (sluice does not create it).
 *
 * @param config The configuration.
 * @param admin The Kafka admin client (disconnected afterwards).
 * @returns One line for the brokers and source topics, one for the dead-letter topic if any.
 */
export async function checkKafka(config: Config, admin: KafkaAdmin): Promise<CheckLine[]> {
  const { brokers, topics, sasl } = config.kafka;
  const at = `${brokers.join(",")}${sasl ? ` (SASL ${sasl.mechanism} as ${sasl.username})` : ""}`;
  try {
    try {
      await admin.connect();
    } catch (error) {
      return [{ outcome: "failed", text: `Kafka: cannot reach ${at}: ${errorLine(error)}` }];
    }
    const existing = new Set(await admin.listTopics());
    const lines: CheckLine[] = [];
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length === 0) {
      lines.push({
        outcome: "ok",
        text: `Kafka: reachable at ${at}, topics ${topics.join(", ")} exist`,
      });
    } else {
      const creates = await brokerCreatesTopics(admin);
      const base = `Kafka: reachable at ${at}, but topics not found: ${missing.join(", ")}`;
      lines.push(
        creates === true
          ? {
            outcome: "warning",
            text: `${base} (a warning: the broker creates a topic with its first message, ` +
              "auto.create.topics.enable=true, and sluice waits for it)",
          }
          : {
            outcome: "failed",
            text: `${base}, and ${
              creates === false
                ? "the broker does not create topics (auto.create.topics.enable=false)"
                : `whether the broker creates topics is unknown (${creates})`
            }; sluice would wait for them`,
          },
      );
    }
    const dead = config.deadLetterTopic;
    if (dead !== undefined) {
      lines.push(
        existing.has(dead) ? { outcome: "ok", text: `Dead-letter topic: ${dead} exists` } : {
          outcome: "failed",
          text: `Dead-letter topic: topics not found: ${dead} ` +
            "(DEAD_LETTER_TOPIC must exist: sluice does not create it)",
        },
      );
    }
    return lines;
  } catch (error) {
    return [{
      outcome: "failed",
      text: `Kafka: cannot list the topics on ${at}: ${errorLine(error)}`,
    }];
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Whether the brokers create a topic when it is first used, read from the
 * controller's (or the first broker's) `auto.create.topics.enable`.
 *
 * @param admin The connected admin client.
 * @returns `true` or `false`, or why it could not be read.
 */
async function brokerCreatesTopics(admin: KafkaAdmin): Promise<boolean | string> {
  try {
    const cluster = await admin.describeCluster();
    const node = cluster.controller !== null && cluster.controller >= 0
      ? cluster.controller
      : cluster.brokers[0]?.nodeId;
    if (node === undefined) return "no broker listed";
    const answer = await admin.describeConfigs({
      resources: [{
        type: ConfigResourceTypes.BROKER,
        name: String(node),
        configNames: ["auto.create.topics.enable"],
      }],
      includeSynonyms: false,
    });
    const entry = answer.resources[0]?.configEntries.find((e) =>
      e.configName === "auto.create.topics.enable"
    );
    if (entry === undefined) return "the broker did not say";
    return entry.configValue === "true";
  } catch (error) {
    return `cannot read auto.create.topics.enable: ${errorLine(error)}`;
  }
}

/**
 * Checks that the dead-letter file can be written to, leaving nothing behind.
 *
 * @param path `DEAD_LETTER_FILE`, if set.
 * @returns One line, or none when no file is configured.
 */
export function checkDeadLetterFile(path: string | undefined): CheckLine[] {
  if (path === undefined) return [];
  const problem = writableFileProblem(path);
  return [
    problem === undefined
      ? { outcome: "ok", text: `Dead-letter file: ${path} can be written to` }
      : {
        outcome: "failed",
        text: `Dead-letter file: "DEAD_LETTER_FILE" ${problem}, got ${JSON.stringify(path)}`,
      },
  ];
}

/**
 * Asks the sink what its `connect()` would meet (`check()`), or, without
 * that, whether it answers; closes it afterwards.
 *
 * @param sink The sink, not connected.
 * @returns One line, naming the sink, with the reason when it fails.
 */
export async function checkSink(sink: Sink): Promise<CheckLine> {
  try {
    if (sink.check !== undefined) {
      return { outcome: "ok", text: `${sink.name}: reachable: ${await sink.check()}` };
    }
    const healthy = await sink.healthcheck();
    return healthy
      ? { outcome: "ok", text: `${sink.name}: reachable` }
      : { outcome: "failed", text: `${sink.name}: not healthy` };
  } catch (error) {
    // A sink's error says what failed with the server's answer; its cause repeats that.
    const sinkError = error instanceof SinkWriteError;
    const reason = sinkError ? error.message.replace(/\s+/g, " ").trim() : errorLine(error);
    const waits = sinkError && error.action === "retry" && healsByItself(error);
    return {
      outcome: "failed",
      text: waits
        ? `${sink.name}: cannot reach (sluice would wait for it at start): ${reason}`
        : `${sink.name}: sluice would not start: ${reason}`,
    };
  } finally {
    await sink.close().catch(() => {});
  }
}
