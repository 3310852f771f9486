/**
 * The Kafka side of the pipeline: a kafkajs consumer group member with
 * auto-commit off. Messages are handed to the pipeline one at a time; a
 * handler that awaits (a full batch being written, a sink being retried)
 * holds the consumer, so nothing more is fetched and memory stays bounded.
 * Offsets are committed only when the pipeline says its batch was
 * acknowledged by the sink.
 *
 * @module
 */

import { isIP } from "node:net";
import process from "node:process";
import tls from "node:tls";
import {
  type Admin,
  Kafka,
  type KafkaConfig as KafkaJsConfig,
  logLevel,
  type SASLOptions,
} from "kafkajs";
import type { KafkaConfig } from "./config.ts";
import { registerKafkaCodecs } from "./kafka_codecs.ts";
import { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { RetryPolicy } from "./retry.ts";
import {
  type CommitOffset,
  type MessageHandler,
  type MessageSource,
  partitionKey,
  type Resume,
  type SourceHooks,
  type TopicPartition,
} from "./source.ts";

let warningSilenced = false;

/**
 * Drops the `TimeoutNegativeWarning` that kafkajs 2.2.4 makes the runtime
 * print to stderr, outside sluice's JSON log: its request queue sets timers
 * with a negative delay when not throttled (`requestQueue/index.js`,
 * `scheduleCheckPendingRequests`), which fire at once as intended. Other
 * warnings still print. Runs when this module loads; idempotent.
 */
export function silenceKafkaJsTimerWarning(): void {
  if (warningSilenced) return;
  warningSilenced = true;
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const type = typeof rest[0] === "string"
      ? rest[0]
      : (rest[0] as { type?: string } | undefined)?.type;
    if ((warning instanceof Error ? warning.name : type) === "TimeoutNegativeWarning") return;
    (emit as (...args: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}
silenceKafkaJsTimerWarning();

/**
 * Builds the kafkajs client options from sluice's Kafka configuration.
 *
 * @param config The Kafka configuration.
 * @param log Where kafkajs's own log lines go.
 * @param policy The retry policy its own request retries follow; unset: kafkajs's defaults.
 * @returns kafkajs options.
 */
export function kafkaClientOptions(
  config: KafkaConfig,
  log: Logger,
  policy?: RetryPolicy,
): KafkaJsConfig {
  const options: KafkaJsConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log: entry }) => {
      const { message, ...fields } = entry;
      const text = `Kafka client: ${message}`;
      if (level <= logLevel.ERROR) log.limited(`kafka:${message}`, "error", text, fields);
      else if (level <= logLevel.WARN) log.limited(`kafka:${message}`, "warn", text, fields);
      else log.debug(text, fields);
    },
  };
  if (policy !== undefined) options.retry = policy.kafkaRetry();
  if (config.tls) {
    options.ssl = {
      rejectUnauthorized: config.tls.verify,
      ca: config.tls.caFile ? [Deno.readTextFileSync(config.tls.caFile)] : undefined,
      cert: config.tls.certFile ? Deno.readTextFileSync(config.tls.certFile) : undefined,
      key: config.tls.keyFile ? Deno.readTextFileSync(config.tls.keyFile) : undefined,
    };
  }
  if (config.sasl) {
    options.sasl = {
      mechanism: config.sasl.mechanism,
      username: config.sasl.username,
      password: config.sasl.password,
    } as SASLOptions;
  }
  return options;
}

/** Node's codes for certificates that will not verify, however often one retries. */
const CERTIFICATE_ERRORS = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Makes one TLS handshake with the first bootstrap broker. kafkajs treats a
 * certificate that does not verify as a connection error and retries it for
 * about a minute; a certificate problem never heals by itself, so it is
 * reported at once. Anything else (refused, timeout) is left to the client.
 *
 * @param config The Kafka configuration, with TLS on.
 * @throws {Error} Naming the broker, the reason and what to set, when the
 *   broker's certificate does not verify.
 */
export async function checkTlsCertificates(config: KafkaConfig): Promise<void> {
  const broker = config.brokers[0];
  const options = kafkaClientOptions(config, new Logger({ write: () => {} })).ssl;
  if (broker === undefined || typeof options !== "object") return;
  const at = broker.lastIndexOf(":");
  const host = broker.slice(0, at).replace(/^\[|\]$/g, "");
  const port = Number(broker.slice(at + 1));
  const error = await new Promise<(Error & { code?: string }) | undefined>((resolve) => {
    const socket = tls.connect(
      { ...options, host, port, servername: isIP(host) ? undefined : host },
      () => {
        socket.destroy();
        resolve(undefined);
      },
    );
    socket.setTimeout(10_000, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on("error", (e: Error & { code?: string }) => {
      socket.destroy();
      resolve(e);
    });
  });
  if (error?.code !== undefined && CERTIFICATE_ERRORS.has(error.code)) {
    throw new Error(
      `Cannot connect to Kafka broker ${broker} with TLS: ${error.message}; ` +
        `set KAFKA_TLS_CA_FILE to the PEM file of the CA that signed it (or KAFKA_TLS_VERIFY=NO)`,
      { cause: error },
    );
  }
}

/** kafkajs error types of a group coordinator or broker that is away for a while. */
const TRANSIENT_TYPES = new Set([
  "GROUP_COORDINATOR_NOT_AVAILABLE",
  "COORDINATOR_NOT_AVAILABLE",
  "NOT_COORDINATOR_FOR_GROUP",
  "NOT_COORDINATOR",
  "COORDINATOR_LOAD_IN_PROGRESS",
  "REBALANCE_IN_PROGRESS",
  "LEADER_NOT_AVAILABLE",
  "NOT_LEADER_FOR_PARTITION",
  "REQUEST_TIMED_OUT",
  "NETWORK_EXCEPTION",
]);

/**
 * Whether a Kafka client error is one a broker that restarts or moves
 * causes, which heals by itself (as opposed to credentials, authorization
 * or a configuration the broker refuses).
 *
 * @param error The error, possibly wrapping others (`cause`).
 * @returns `true` for a connection, coordinator or leadership error.
 */
export function isTransientKafkaError(error: unknown): boolean {
  for (let e = error as Record<string, unknown> | undefined; e; e = e["cause"] as typeof e) {
    const name = String(e["name"] ?? "");
    const type = String(e["type"] ?? "");
    if (TRANSIENT_TYPES.has(type) || e["retriable"] === true) return true;
    if (
      /KafkaJS(Connection|ConnectionClosed|RequestTimeout|BrokerNotFound|NumberOfRetriesExceeded|GroupCoordinatorNotFound)Error/
        .test(name)
    ) return true;
    if (
      /group coordinator|No broker available|ECONNREFUSED|ECONNRESET/.test(String(e["message"]))
    ) {
      return true;
    }
  }
  return false;
}

/** A kafkajs consumer group member. */
export class KafkaSource implements MessageSource {
  readonly #config: KafkaConfig;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #policy: RetryPolicy;
  readonly #kafka: Kafka;
  readonly #consumer;
  #admin: Promise<Admin> | undefined;
  /** Partitions assigned at the last join whose first message has not been handed out yet. */
  readonly #unresumed = new Set<string>();
  #draining = false;
  /** Commits kafkajs reported made (see {@link commit}). */
  #commitsMade = 0;
  readonly #stopSignal = new AbortController();
  #inFlight: Promise<void> | undefined;
  #heartbeat: (() => Promise<void>) | undefined;
  #onCrash: (error: unknown) => void;
  /** Never resolves: Kafka is not finite. */
  readonly finished: Promise<void> = new Promise(() => {});

  /**
   * @param config Kafka settings.
   * @param deps Logger, metrics, the retry policy, and what to do when the consumer dies for good.
   */
  constructor(
    config: KafkaConfig,
    deps: {
      log: Logger;
      metrics: Metrics;
      policy: RetryPolicy;
      onCrash: (error: unknown) => void;
    },
  ) {
    this.#config = config;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#onCrash = deps.onCrash;
    this.#policy = deps.policy;
    // snappy, lz4 and zstd batches, which kafkajs cannot read by itself.
    registerKafkaCodecs();
    const kafka = new Kafka(kafkaClientOptions(config, deps.log, deps.policy));
    this.#kafka = kafka;
    this.#consumer = kafka.consumer({
      groupId: config.groupId,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: Math.max(1000, Math.floor(config.sessionTimeoutMs / 10)),
      // A long sink outage holds the handler; rebalances must wait for it.
      rebalanceTimeout: Math.max(60_000, config.sessionTimeoutMs * 2),
      allowAutoTopicCreation: false,
      // An idle fetch returns after this long; it bounds how long a stop waits for it.
      maxWaitTimeInMs: 1000,
    });
  }

  /** @inheritdoc */
  async start(handler: MessageHandler, hooks: SourceHooks = {}): Promise<void> {
    const consumer = this.#consumer;
    consumer.on(consumer.events.COMMIT_OFFSETS, () => void this.#commitsMade++);
    let memberId: string | undefined;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assignment = event.payload.memberAssignment;
      // A new member id: the group had dropped this member (session expired).
      const rejoined = memberId !== undefined && event.payload.memberId !== memberId;
      memberId = event.payload.memberId;
      this.#log.info("Joined consumer group", {
        group: this.#config.groupId,
        assignment,
        ...(rejoined ? { rejoined: true } : {}),
      });
      // Every join restarts each assigned partition from its committed
      // offset: its first message then carries what the group had there.
      const partitions: TopicPartition[] = Object.entries(assignment).flatMap(
        ([topic, numbers]) => numbers.map((partition) => ({ topic, partition })),
      );
      this.#unresumed.clear();
      for (const { topic, partition } of partitions) {
        this.#unresumed.add(partitionKey({ topic, partition }));
      }
      hooks.assigned?.(partitions, { rejoined });
    });
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.#log.error("Kafka consumer crashed", { error, restart });
      if (restart || this.#draining) return;
      // kafkajs gives up for good on a few errors of a broker that is coming
      // back ("Failed to find group coordinator"): those are waited out like
      // any broker outage; the others (credentials, authorization) end sluice.
      if (!isTransientKafkaError(error)) return this.#onCrash(error);
      void this.#restart(handler);
    });
    await this.#run(handler);
  }

  /** Runs the consumer again after kafkajs gave up on an error that heals by itself. */
  async #restart(handler: MessageHandler): Promise<void> {
    for (let attempt = 1; !this.#draining; attempt++) {
      const delay = this.#policy.delay(attempt);
      this.#log.warn("Restarting the Kafka consumer", { attempt, in_seconds: delay / 1000 });
      await this.#policy.wait(delay, { signal: this.#stopSignal.signal });
      if (this.#draining) return;
      try {
        await this.#run(handler);
        return;
      } catch (error) {
        if (!isTransientKafkaError(error)) return this.#onCrash(error);
        this.#log.warn("Cannot restart the Kafka consumer yet", { error });
      }
    }
  }

  /** Connects, subscribes (waiting for the topic) and runs the consumer. */
  async #run(handler: MessageHandler): Promise<void> {
    const consumer = this.#consumer;
    if (this.#config.tls) await checkTlsCertificates(this.#config);
    await consumer.connect();
    // pmacct's topic appears with its first message (broker auto-creation);
    // until then sluice waits for it, as a consumer of the old script did.
    for (let attempt = 1;; attempt++) {
      try {
        await consumer.subscribe({
          topics: this.#config.topics,
          fromBeginning: this.#config.fromBeginning,
        });
        break;
      } catch (error) {
        if ((error as { type?: string }).type !== "UNKNOWN_TOPIC_OR_PARTITION" || this.#draining) {
          throw error;
        }
        const delay = this.#policy.delay(attempt);
        this.#log.limited(
          "unknown_topic",
          "warn",
          "Kafka topic does not exist yet, waiting for it",
          {
            topics: this.#config.topics,
            retry_in_seconds: delay / 1000,
          },
        );
        await this.#policy.wait(delay, { signal: this.#stopSignal.signal });
        if (this.#draining) return;
      }
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (this.#draining) return;
        let release!: () => void;
        this.#inFlight = new Promise((resolve) => (release = resolve));
        this.#heartbeat = heartbeat;
        let last: string | undefined;
        try {
          const key = partitionKey(batch);
          let resume: Resume | undefined;
          if (this.#unresumed.has(key) && batch.messages.length > 0) {
            resume = await this.#resume(batch.topic, batch.partition, heartbeat);
            this.#unresumed.delete(key);
          }
          for (const message of batch.messages) {
            if (this.#draining) break;
            const pending = handler({
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              value: message.value,
              key: message.key,
              resume,
            });
            resume = undefined;
            last = message.offset;
            if (pending) {
              await pending;
              // A long wait (a full batch, a sink outage) may have seen a
              // rebalance: stop handing out messages of a lost partition.
              if (!isRunning() || isStale()) break;
            }
          }
          if (last !== undefined) {
            // Resolving moves kafkajs's fetch position only; nothing is
            // committed until the pipeline's batch is acknowledged.
            resolveOffset(last);
            const lag = BigInt(batch.highWatermark) - BigInt(last) - 1n;
            this.#metrics.lag.set(
              { topic: batch.topic, partition: String(batch.partition) },
              Number(lag < 0n ? 0n : lag),
            );
          }
        } finally {
          this.#heartbeat = undefined;
          this.#inFlight = undefined;
          release();
        }
      },
    });
  }

  /** @inheritdoc */
  async drain(): Promise<void> {
    this.#draining = true;
    this.#stopSignal.abort();
    try {
      this.#consumer.pause(this.#config.topics.map((topic) => ({ topic })));
    } catch {
      // Not running yet: nothing to pause.
    }
    while (this.#inFlight) await this.#inFlight;
  }

  /**
   * Commits offsets (and their metadata) for the group.
   *
   * kafkajs returns without committing, and without an error, while its
   * consumer is not running (restarting after a crash, say): a commit that
   * did not reach the group would pass for one that did, and a pin thought
   * committed would let a range be written under two tokens. So a commit
   * counts only when kafkajs reported it made (its `commit_offsets` event).
   *
   * @param offsets The offsets, with metadata (pins) where set.
   * @throws {Error} When the group did not take them.
   */
  async commit(offsets: CommitOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    const before = this.#commitsMade;
    // Without metadata kafkajs commits null, which clears an earlier pin.
    await this.#consumer.commitOffsets(offsets);
    if (this.#commitsMade === before) {
      throw new Error("Cannot commit offsets: the Kafka consumer is not running (restarting)");
    }
  }

  /** @inheritdoc */
  async heartbeat(): Promise<void> {
    const beat = this.#heartbeat;
    if (!beat) return;
    try {
      await beat();
    } catch (error) {
      this.#log.limited("heartbeat", "warn", "Cannot send heartbeat to the consumer group", {
        error,
      });
    }
  }

  /**
   * What the group had committed for a partition (offset and metadata),
   * read when this member starts on it. The pin in the metadata is what
   * keeps a range that was written from being written again under another
   * token, so a failure to read it (the admin connection lost in a broker
   * outage) is retried, with heartbeats, until it is read or sluice stops.
   */
  async #resume(topic: string, partition: number, heartbeat: () => Promise<void>): Promise<Resume> {
    for (let attempt = 1;; attempt++) {
      try {
        this.#admin ??= (async () => {
          const admin = this.#kafka.admin();
          await admin.connect();
          return admin;
        })();
        const admin = await this.#admin;
        const [entry] = await admin.fetchOffsets({
          groupId: this.#config.groupId,
          topics: [topic],
        });
        const found = entry?.partitions.find((p) => p.partition === partition);
        if (found === undefined || found.offset === "-1") return {};
        return { offset: found.offset, metadata: found.metadata ?? undefined };
      } catch (error) {
        const admin = this.#admin;
        this.#admin = undefined;
        void admin?.then((a) => a.disconnect()).catch(() => {});
        if (this.#draining) return {};
        const delay = this.#policy.delay(attempt);
        this.#log.limited(
          "resume",
          "warn",
          "Cannot read the committed offset of a partition; retrying",
          {
            topic,
            partition,
            attempt,
            retry_in_seconds: delay / 1000,
            error,
          },
        );
        await this.#policy.wait(delay, {
          signal: this.#stopSignal.signal,
          heartbeat: () => heartbeat().catch(() => {}),
        });
      }
    }
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    const admin = this.#admin;
    this.#admin = undefined;
    if (admin !== undefined) await (await admin).disconnect().catch(() => {});
    await this.#consumer.disconnect();
  }
}
