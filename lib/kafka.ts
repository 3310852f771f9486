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
  type LoggerEntryContent,
  logLevel,
  type SASLOptions,
} from "kafkajs";
import type { KafkaConfig } from "./config.ts";
import { registerKafkaCodecs } from "./kafka_codecs.ts";
import { errorLine, errorText, Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { RetryPolicy } from "./retry.ts";
import { Lookahead, type Predecoder } from "./workers.ts";
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
 * What a kafkajs log line says about reaching a broker: the reason of a
 * connection that failed (refused, timed out, a name that does not resolve),
 * or `undefined` for any other line.
 *
 * @param entry The line kafkajs logged.
 * @returns E.g. `connect ECONNREFUSED 127.0.0.1:9092`.
 */
export function connectionFailure(entry: LoggerEntryContent): string | undefined {
  const m =
    /^(?:Failed to connect to seed broker, trying another broker from the list: )?Connection (error|timeout)(?:: (.*))?$/s
      .exec(String(entry.message));
  if (m === null) return undefined;
  const reason = m[2] ?? (m[1] === "timeout" ? "connection timeout" : "connection error");
  const broker = typeof entry["broker"] === "string" ? entry["broker"] : undefined;
  return broker !== undefined && !reason.includes(broker) ? `${broker}: ${reason}` : reason;
}

/**
 * Writes one kafkajs log line as a sluice line: the message prefixed with
 * `Kafka client:`, kafkajs's fields merged without its own `timestamp` and
 * `logger` (sluice's line has its time), a stack trace only at debug level,
 * and repeated lines rate-limited. A failed connection goes to `unreachable`
 * instead, when given (sluice says it in its own words, see {@link KafkaWatch}),
 * and is kept at debug level.
 *
 * @param log sluice's logger.
 * @param level kafkajs's level.
 * @param entry kafkajs's line.
 * @param unreachable Told the reason of a failed connection.
 */
export function logKafkaEntry(
  log: Logger,
  level: logLevel,
  entry: LoggerEntryContent,
  unreachable?: (reason: string) => void,
): void {
  const { message, timestamp: _timestamp, logger: _logger, stack, ...fields } = entry;
  if (stack !== undefined && log.enabled("debug")) fields["stack"] = stack;
  const text = `Kafka client: ${message}`;
  const failure = unreachable === undefined ? undefined : connectionFailure(entry);
  if (failure !== undefined) {
    unreachable!(failure);
    log.debug(text, fields);
  } else if (level <= logLevel.ERROR) log.limited(`kafka:${message}`, "error", text, fields);
  else if (level <= logLevel.WARN) log.limited(`kafka:${message}`, "warn", text, fields);
  else log.debug(text, fields);
}

/**
 * Builds the kafkajs client options from sluice's Kafka configuration.
 *
 * @param config The Kafka configuration.
 * @param log Where kafkajs's own log lines go (see {@link logKafkaEntry}).
 * @param policy The retry policy its own request retries follow; unset: kafkajs's defaults.
 * @param unreachable Told the reason of each failed connection to a broker.
 * @returns kafkajs options.
 */
export function kafkaClientOptions(
  config: KafkaConfig,
  log: Logger,
  policy?: RetryPolicy,
  unreachable?: (reason: string) => void,
): KafkaJsConfig {
  const options: KafkaJsConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log: entry }) => logKafkaEntry(log, level, entry, unreachable),
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

/**
 * The error, among a heartbeat's or commit's, that says the group lost this
 * member: its coordinator is on another broker now (kafkajs keeps the one it
 * joined through until it joins again), or the coordinator no longer knows
 * the member. kafkajs joins again when its batch handler throws either.
 *
 * @param error The error, possibly wrapping others (`cause`).
 * @returns That kafkajs error (type `NOT_COORDINATOR_FOR_GROUP` or `UNKNOWN_MEMBER_ID`), or `undefined`.
 */
export function groupLostError(error: unknown): Error | undefined {
  for (let e = error as Record<string, unknown> | undefined; e; e = e["cause"] as typeof e) {
    const type = String(e["type"] ?? "");
    if (type === "NOT_COORDINATOR_FOR_GROUP" || type === "UNKNOWN_MEMBER_ID") {
      return e as unknown as Error;
    }
  }
  return undefined;
}

/** A run that was reaching the brokers counts them unreachable after this long without an answer. */
const UNANSWERED_MS = 10_000;
/** While the brokers stay unreachable, sluice says so again this often. */
const REPEAT_MS = 30_000;
/** sluice says the brokers do not answer when none did this long after it started trying. */
export const FIRST_ANSWER_MS = 4000;

/**
 * Whether the Kafka consumer reaches the brokers, from what kafkajs reports:
 * every answer to a request, the consumer connected or in its group, means
 * yes; a connection that failed (kafkajs's own log line, a crash) means no,
 * unless a broker answered in the last 10 s (another broker of the cluster
 * still serves). It keeps `sluice_kafka_up` and `/healthz` true, and says
 * "Cannot reach the Kafka brokers" in sluice's words as soon as the first
 * connection fails (at the latest {@link FIRST_ANSWER_MS} after the start),
 * then every 30 s while it lasts, and when they answer again.
 */
export class KafkaWatch {
  readonly #brokers: readonly string[];
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #clock: () => number;
  #state: "starting" | "up" | "down" = "starting";
  #lastAnswer: number | undefined;
  #downSince = 0;
  #lastSaid = 0;
  #lastReason: string | undefined;

  /**
   * @param options The bootstrap brokers (named in the log), where the state
   *   goes, and the clock (injected by tests).
   */
  constructor(
    options: { brokers: readonly string[]; log: Logger; metrics: Metrics; clock?: () => number },
  ) {
    this.#brokers = options.brokers;
    this.#log = options.log;
    this.#metrics = options.metrics;
    this.#clock = options.clock ?? Date.now;
    this.#metrics.kafkaReachable(false, "not connected yet");
  }

  /** Whether the brokers answered since the last failure that counted. */
  get up(): boolean {
    return this.#state === "up";
  }

  /** The consumer starts connecting. */
  connecting(): void {
    if (this.#state === "starting") this.#metrics.kafkaReachable(false, "connecting");
  }

  /** A broker answered (a request, the connection, a group join). */
  answered(): void {
    this.#lastAnswer = this.#clock();
    if (this.#state === "up") return;
    if (this.#state === "down") {
      this.#log.info("Reaching the Kafka brokers again", {
        brokers: this.#brokers,
        after_seconds: (this.#lastAnswer - this.#downSince) / 1000,
      });
    }
    this.#state = "up";
    this.#metrics.kafkaReachable(true);
  }

  /**
   * A connection to a broker failed.
   *
   * @param reason Why, e.g. `connect ECONNREFUSED 127.0.0.1:9092`.
   */
  failed(reason: string): void {
    const now = this.#clock();
    this.#lastReason = reason;
    if (
      this.#state === "up" && this.#lastAnswer !== undefined &&
      now - this.#lastAnswer < UNANSWERED_MS
    ) return;
    if (this.#state !== "down") {
      this.#state = "down";
      this.#downSince = now;
    } else if (now - this.#lastSaid < REPEAT_MS) {
      this.#metrics.kafkaReachable(false, reason);
      return;
    }
    this.#metrics.kafkaReachable(false, reason);
    this.#lastSaid = now;
    this.#log.warn(
      `Cannot reach the Kafka brokers ${this.#brokers.join(",")}: ${reason}, retrying`,
      {
        brokers: this.#brokers,
        error: reason,
        for_seconds: (now - this.#downSince) / 1000,
      },
    );
  }

  /**
   * Called {@link FIRST_ANSWER_MS} after the consumer started connecting:
   * says that no broker answered yet, if none did and nothing was said.
   */
  firstAnswerDue(): void {
    if (this.#state !== "starting") return;
    this.failed(this.#lastReason ?? `no answer within ${FIRST_ANSWER_MS / 1000} s`);
  }
}

/**
 * `sluice_consumer_lag` per assigned partition: the partition's end offset
 * minus the group's committed offset, i.e. the messages the group has not
 * committed yet (consumed or not). The end offsets come with each fetched
 * batch and from a periodic read of the brokers; the committed offsets from
 * each commit this member makes and from the same read. So the lag stays
 * current while consumption is paused (a sink outage) and grows as
 * producers go on. It also keeps the assignment's own numbers:
 * `sluice_kafka_assigned_partitions` and `sluice_kafka_rebalances_total`.
 */
export class LagTracker {
  readonly #metrics: Metrics;
  readonly #fromBeginning: boolean;
  readonly #partitions = new Map<
    string,
    { topic: string; partition: number; end?: bigint; committed?: bigint }
  >();
  /** Joins of the consumer group so far. */
  #joins = 0;

  /**
   * @param metrics Where the gauge is.
   * @param fromBeginning Where a group without a committed offset starts
   *   (`KAFKA_AUTO_OFFSET_RESET`): at the earliest offset, or at the end.
   */
  constructor(metrics: Metrics, fromBeginning: boolean) {
    this.#metrics = metrics;
    this.#fromBeginning = fromBeginning;
  }

  /** The topics of the partitions assigned. */
  get topics(): string[] {
    return [...new Set([...this.#partitions.values()].map((p) => p.topic))];
  }

  /**
   * Takes the partitions this member holds after each join of the consumer
   * group: the lag gauge of the others is removed, the partitions are
   * counted, and every join after the first is counted as a rebalance.
   *
   * @param partitions The partitions held now.
   */
  assigned(partitions: readonly TopicPartition[]): void {
    if (this.#joins++ > 0) this.#metrics.rebalances.inc();
    this.#metrics.assignedPartitions.set(partitions.length);
    const before = new Map(this.#partitions);
    this.#partitions.clear();
    this.#metrics.lag.reset();
    for (const { topic, partition } of partitions) {
      const key = partitionKey({ topic, partition });
      this.#partitions.set(key, before.get(key) ?? { topic, partition });
      this.#set(key);
    }
  }

  /**
   * Records a partition's end offset (a fetched batch's high watermark).
   *
   * @param at The partition.
   * @param end The offset after its last message.
   */
  end(at: TopicPartition, end: string): void {
    const key = partitionKey(at);
    const p = this.#partitions.get(key);
    if (p === undefined) return;
    p.end = BigInt(end);
    this.#set(key);
  }

  /**
   * Records offsets the group committed.
   *
   * @param offsets The next offset to read, per partition.
   */
  committed(offsets: readonly CommitOffset[]): void {
    for (const o of offsets) {
      const key = partitionKey(o);
      const p = this.#partitions.get(key);
      if (p === undefined) continue;
      p.committed = BigInt(o.offset);
      this.#set(key);
    }
  }

  /**
   * Takes what the brokers said of one topic: its partitions' end offsets
   * (`high`, and `low`, the earliest) and the group's committed offsets
   * (`-1` for none).
   *
   * @param topic The topic.
   * @param ends `fetchTopicOffsets()`'s answer.
   * @param committed The topic's partitions in `fetchOffsets()`'s answer.
   */
  read(
    topic: string,
    ends: ReadonlyArray<{ partition: number; high: string; low: string }>,
    committed: ReadonlyArray<{ partition: number; offset: string }>,
  ): void {
    for (const { partition, high, low } of ends) {
      const key = partitionKey({ topic, partition });
      const p = this.#partitions.get(key);
      if (p === undefined) continue;
      p.end = BigInt(high);
      const group = committed.find((c) => c.partition === partition)?.offset;
      // Without a commit the group starts at the earliest offset, or at the end.
      p.committed = group !== undefined && group !== "-1"
        ? BigInt(group)
        : BigInt(this.#fromBeginning ? low : high);
      this.#set(key);
    }
  }

  #set(key: string): void {
    const p = this.#partitions.get(key);
    if (p?.end === undefined || p.committed === undefined) return;
    const lag = p.end - p.committed;
    this.#metrics.lag.set(
      { topic: p.topic, partition: String(p.partition) },
      Number(lag < 0n ? 0n : lag),
    );
  }
}

/** How often the consumer lag is read from the brokers, in milliseconds. */
export const LAG_REFRESH_MS = 5000;

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
  /** Set while a batch waits for the pipeline: ends that wait when the group lost this member. */
  #onGroupLost: ((error: Error) => void) | undefined;
  /** The pipeline's wait a batch gave up on; the next batch waits for it first. */
  #abandoned: Promise<void> | undefined;
  /** When a heartbeat last went through, or the member last joined. */
  #lastBeat = Date.now();
  #onCrash: (error: unknown) => void;
  /** Decode workers (`DECODE_WORKERS`), if any. */
  readonly #predecoder: Predecoder | undefined;
  readonly #watch: KafkaWatch;
  readonly #lag: LagTracker;
  readonly #lagRefreshMs: number;
  #lagAdmin: Promise<Admin> | undefined;
  #refreshing = false;
  readonly #timers: Array<ReturnType<typeof setInterval>> = [];
  /** Never resolves: Kafka is not finite. */
  readonly finished: Promise<void> = new Promise(() => {});

  /**
   * @param config Kafka settings.
   * @param deps Logger, metrics, the retry policy, what to do when the consumer dies for
   *   good, how often the lag is read from the brokers (default {@link LAG_REFRESH_MS}),
   *   and the decode workers that decode each fetched batch ahead, if any.
   */
  constructor(
    config: KafkaConfig,
    deps: {
      log: Logger;
      metrics: Metrics;
      policy: RetryPolicy;
      onCrash: (error: unknown) => void;
      lagRefreshMs?: number;
      predecoder?: Predecoder;
    },
  ) {
    this.#config = config;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#onCrash = deps.onCrash;
    this.#predecoder = deps.predecoder;
    this.#policy = deps.policy;
    this.#lagRefreshMs = deps.lagRefreshMs ?? LAG_REFRESH_MS;
    this.#watch = new KafkaWatch({ brokers: config.brokers, log: deps.log, metrics: deps.metrics });
    this.#lag = new LagTracker(deps.metrics, config.fromBeginning);
    // snappy, lz4 and zstd batches, which kafkajs cannot read by itself.
    registerKafkaCodecs();
    const kafka = new Kafka(
      kafkaClientOptions(config, deps.log, deps.policy, (reason) => this.#watch.failed(reason)),
    );
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
    // Any answer of a broker: reachable (see KafkaWatch).
    consumer.on(consumer.events.REQUEST, () => this.#watch.answered());
    consumer.on(consumer.events.CONNECT, () => this.#watch.answered());
    this.#watch.connecting();
    this.#every(FIRST_ANSWER_MS, () => this.#watch.firstAnswerDue(), true);
    this.#every(this.#lagRefreshMs, () => void this.#refreshLag());
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
      this.#lastBeat = Date.now();
      this.#watch.answered();
      this.#lag.assigned(partitions);
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
      this.#watch.failed(errorLine(error));
      void this.#restart(handler);
    });
    await this.#run(handler);
  }

  /** Runs `task` every `ms` (once with `once`) until the source drains; never keeps the process alive. */
  #every(ms: number, task: () => void, once = false): void {
    const id = once ? setTimeout(task, ms) : setInterval(task, ms);
    Deno.unrefTimer(Number(id));
    this.#timers.push(id);
  }

  /**
   * Reads the end offsets of the assigned partitions and the group's
   * committed offsets from the brokers, for the lag ({@link LagTracker});
   * a failure is left to the next turn.
   */
  async #refreshLag(): Promise<void> {
    const topics = this.#lag.topics;
    if (this.#refreshing || this.#draining || topics.length === 0) return;
    this.#refreshing = true;
    try {
      this.#lagAdmin ??= (async () => {
        // No retries of its own: the next turn is the retry.
        const admin = this.#kafka.admin({ retry: { retries: 0 } });
        await admin.connect();
        return admin;
      })();
      const admin = await this.#lagAdmin;
      const groups = await admin.fetchOffsets({ groupId: this.#config.groupId, topics });
      for (const topic of topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        this.#lag.read(topic, ends, groups.find((g) => g.topic === topic)?.partitions ?? []);
      }
      this.#watch.answered();
    } catch (error) {
      const admin = this.#lagAdmin;
      this.#lagAdmin = undefined;
      void admin?.then((a) => a.disconnect()).catch(() => {});
      this.#log.debug("Cannot read the consumer lag from the brokers", { error });
    } finally {
      this.#refreshing = false;
    }
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
    if (this.#draining) return;
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
        // kafkajs heartbeats between batches; in one, the pipeline's waits do.
        this.#lastBeat = Date.now();
        let last: string | undefined;
        try {
          // The pipeline takes one message at a time: the one an earlier
          // batch gave up on (#outlast) is finished first, and may be given
          // up on again if the group is lost again meanwhile.
          if (this.#abandoned !== undefined) {
            await this.#outlast(this.#abandoned);
            this.#abandoned = undefined;
          }
          const key = partitionKey(batch);
          let resume: Resume | undefined;
          if (this.#unresumed.has(key) && batch.messages.length > 0) {
            resume = await this.#resume(batch.topic, batch.partition, heartbeat);
            this.#unresumed.delete(key);
          }
          const messages = batch.messages;
          // Decode workers decode the next chunks while the pipeline takes these.
          const ahead = this.#predecoder === undefined || messages.length === 0
            ? undefined
            : new Lookahead(this.#predecoder, batch.topic, batch.partition, messages);
          for (let i = 0; i < messages.length; i++) {
            if (this.#draining) break;
            const message = messages[i]!;
            let decoded = ahead?.get(i);
            if (decoded instanceof Promise) decoded = await decoded;
            if (this.#draining) break;
            // A decimal string; -1, or none in the oldest message format, for no timestamp.
            const timestamp = Number(message.timestamp);
            const pending = handler({
              topic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              value: message.value,
              key: message.key,
              timestamp: timestamp > 0 ? timestamp : undefined,
              resume,
              decoded,
            });
            resume = undefined;
            last = message.offset;
            if (pending) {
              try {
                await this.#outlast(pending);
              } catch (error) {
                // A stop gave up on the batch (its deadline): the pipeline
                // reports it; nothing more is resolved or handed out.
                if (this.#draining) {
                  last = undefined;
                  break;
                }
                throw error;
              }
              // A long wait (a full batch, a sink outage) may have seen a
              // rebalance: stop handing out messages of a lost partition.
              if (!isRunning() || isStale()) break;
            }
          }
          if (last !== undefined) {
            // Resolving moves kafkajs's fetch position only; nothing is
            // committed until the pipeline's batch is acknowledged.
            resolveOffset(last);
          }
          this.#lag.end(batch, batch.highWatermark);
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
    this.#stopTimers();
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
    try {
      await this.#consumer.commitOffsets(offsets);
    } catch (error) {
      this.#groupLost(error);
      throw error;
    }
    if (this.#commitsMade === before) {
      throw new Error("Cannot commit offsets: the Kafka consumer is not running (restarting)");
    }
    this.#lag.committed(offsets);
  }

  /** @inheritdoc */
  async heartbeat(): Promise<void> {
    const beat = this.#heartbeat;
    if (!beat) return;
    try {
      await beat();
      this.#lastBeat = Date.now();
    } catch (error) {
      this.#log.limited("heartbeat", "warn", "Cannot send heartbeat to the consumer group", {
        error,
      });
      this.#groupLost(error);
    }
  }

  /**
   * Waits until the pipeline took a message, unless the group lost this
   * member meanwhile ({@link groupLostError}: its coordinator moved to
   * another broker, or it no longer knows the member). kafkajs finds a new
   * coordinator only when it joins again, and joins only once the batch
   * handler returns; a pipeline that retries a commit (a pin) inside the
   * handler would wait forever. So the batch gives up and throws the group
   * error, on which kafkajs joins again. The pipeline's wait goes on: after
   * the join its pin goes through (or its batch is stale, or its partition
   * moved), and the next batch waits for it before handing out a message.
   */
  async #outlast(pending: Promise<void>): Promise<void> {
    const taken = pending.then(() => undefined);
    const lost = Promise.withResolvers<Error>();
    this.#onGroupLost = lost.resolve;
    try {
      const error = await Promise.race([taken, lost.promise]);
      if (error === undefined) return;
      taken.catch(() => {});
      this.#abandoned = pending.then(() => {}, () => {});
      this.#log.warn("Lost the consumer group's coordinator; joining the group again", {
        group: this.#config.groupId,
        error,
      });
      throw error;
    } finally {
      this.#onGroupLost = undefined;
    }
  }

  /**
   * Ends a batch's wait for the pipeline when `error` says the group lost
   * this member, or when no heartbeat went through for a session timeout
   * (the coordinator's broker is gone: the group has a new one, or none yet).
   */
  #groupLost(error: unknown): void {
    if (this.#onGroupLost === undefined) return;
    const expired = Date.now() - this.#lastBeat > this.#config.sessionTimeoutMs;
    const lost = groupLostError(error) ?? (expired
      ? Object.assign(
        new Error(
          `No heartbeat reached the group for ${this.#config.sessionTimeoutMs / 1000} s, ` +
            `its session expired: ${errorText(error)}`,
          { cause: error },
        ),
        // kafkajs then finds the coordinator again and joins with the same
        // member id; the coordinator says whether it still knows it.
        { type: "NOT_COORDINATOR_FOR_GROUP" },
      )
      : undefined);
    if (lost !== undefined) this.#onGroupLost(lost);
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
    this.#stopTimers();
    for (const pending of [this.#admin, this.#lagAdmin]) {
      // An admin still connecting (brokers away) is not waited for.
      void pending?.then((a) => a.disconnect()).catch(() => {});
    }
    this.#admin = undefined;
    this.#lagAdmin = undefined;
    await this.#consumer.disconnect();
  }

  #stopTimers(): void {
    for (const id of this.#timers) clearInterval(id);
    this.#timers.length = 0;
  }
}
