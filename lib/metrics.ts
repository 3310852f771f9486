/**
 * Prometheus metrics and the `/metrics` + `/healthz` HTTP server, and what
 * both say about the services sluice depends on: whether the sink and the
 * Kafka brokers answer ({@link Metrics.sinkReachable},
 * {@link Metrics.kafkaReachable}), and whether dead letters can be stored.
 *
 * Naming follows Vector's instrumentation spec: counters end in `_total`,
 * durations in `_seconds`, labels are bounded (`sink`, `topic`, `reason`,
 * `error_type`), never raw error text. `samples_count_total` is kept with the
 * meaning it had in pmacct-kafka-clickhouse (records consumed) so existing
 * dashboards keep working. prom-client's runtime metrics keep their
 * conventional names (`process_*`, `nodejs_*`), which stock dashboards
 * expect, except its gauges named `..._total`: a gauge must not end in
 * `_total` (https://prometheus.io/docs/practices/naming/), so they are
 * renamed (see {@link RENAMED_RUNTIME_GAUGES}).
 *
 * Counters whose labels are known at start have their series at 0 from the
 * start ({@link Metrics.initialise}), so that `rate()` and alerts work before
 * the first event.
 *
 * @module
 */

import client from "prom-client";

/** Every metric sluice exports, on its own registry. */
export class Metrics {
  /** The registry `/metrics` renders. */
  readonly registry: client.Registry = new client.Registry();
  /** Records consumed: pmacct-kafka-clickhouse's only metric, same meaning. */
  readonly samples: client.Counter;
  /** Kafka messages consumed. */
  readonly messages: client.Counter<"topic">;
  /** Records decoded from messages. */
  readonly received: client.Counter<"topic">;
  /** Records the sink acknowledged. */
  readonly written: client.Counter<"sink">;
  /** Records set aside for good, by reason (`decode`, `convert`, `server`). */
  readonly rejected: client.Counter<"sink" | "reason">;
  /** Records deliberately skipped (pmacct purge markers). */
  readonly skipped: client.Counter<"reason">;
  /** Batches written, by outcome. */
  readonly batches: client.Counter<"sink" | "outcome">;
  /** Time from taking a batch to its acknowledgement, retries included. */
  readonly batchDuration: client.Histogram<"sink">;
  /** Rows per written batch. */
  readonly batchRows: client.Histogram<"sink">;
  /** Failed write attempts that will be retried. */
  readonly retries: client.Counter<"sink" | "error_type">;
  /** Times a batch was split to isolate bad rows. */
  readonly splits: client.Counter<"sink">;
  /** 1 when the sink answered the last connect or write, 0 while it does not (and before). */
  readonly sinkUp: client.Gauge<"sink">;
  /** 1 while the Kafka consumer reaches the brokers, 0 while it does not (and before). */
  readonly kafkaUp: client.Gauge;
  /** Messages between the group's committed offset and the partition's end. */
  readonly lag: client.Gauge<"topic" | "partition">;
  /** Offset commits, by outcome. */
  readonly commits: client.Counter<"outcome">;
  /** Messages read again after a rejoin of the consumer group and skipped (already batched). */
  readonly redelivered: client.Counter<"topic">;
  /** Unix time of the last acknowledged write. */
  readonly lastWrite: client.Gauge<"sink">;
  /** Rows the sink stored over another row of the same write (InfluxDB: same series, field, time). */
  readonly overwritten: client.Counter<"sink">;
  /** Records stored in a dead-letter destination, by destination and reason. */
  readonly deadLetters: client.Counter<"destination" | "reason">;
  /** Dead letters waiting to be stored (they hold the source offsets' commits). */
  readonly deadLettersWaiting: client.Gauge<"destination">;
  /** Failed attempts to store dead letters (retried). */
  readonly deadLetterErrors: client.Counter<"destination">;
  /** 1, with the version of sluice and of its runtime as labels (set by {@link initialise}). */
  readonly buildInfo: client.Gauge<"version" | "deno" | "v8" | "typescript">;
  /** Bytes of Kafka message values consumed. */
  readonly bytesReceived: client.Counter<"topic">;
  /** Bytes of the rows the sink acknowledged, as the sink counts them (before compression). */
  readonly bytesWritten: client.Counter<"sink">;
  /** Rows in the batch being filled; read at scrape time ({@link watchRows}). */
  readonly rowsPending: client.Gauge;
  /** Rows of the batch being written; read at scrape time ({@link watchRows}). */
  readonly rowsInFlight: client.Gauge;
  /**
   * Seconds from the Kafka timestamp of the newest message of the last
   * acknowledged batch to its acknowledgement, per topic.
   */
  readonly endToEndLag: client.Gauge<"topic">;
  /** Partitions this member of the consumer group holds. */
  readonly assignedPartitions: client.Gauge;
  /** Joins of the consumer group after the first one. */
  readonly rebalances: client.Counter;
  /** Per shard of a ClickHouse cluster: 1 when it took the last write or answered, else 0. */
  readonly clickhouseShardUp: client.Gauge<"shard">;
  /** Rows a ClickHouse shard acknowledged (direct writes). */
  readonly clickhouseShardRows: client.Counter<"shard">;
  /** Failed writes to a ClickHouse shard, or probes of a shard none of whose servers answered. */
  readonly clickhouseShardErrors: client.Counter<"shard">;

  /** @param clock Milliseconds clock of the states' `since`, injected by tests. */
  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
    const registers = [this.registry];
    this.samples = new client.Counter({
      name: "samples_count_total",
      help: "Total number of samples (records) consumed; kept from pmacct-kafka-clickhouse",
      registers,
    });
    this.messages = new client.Counter({
      name: "sluice_messages_received_total",
      help: "Kafka messages consumed",
      labelNames: ["topic"],
      registers,
    });
    this.received = new client.Counter({
      name: "sluice_records_received_total",
      help: "Records decoded from Kafka messages",
      labelNames: ["topic"],
      registers,
    });
    this.written = new client.Counter({
      name: "sluice_records_written_total",
      help: "Records the sink acknowledged",
      labelNames: ["sink"],
      registers,
    });
    this.rejected = new client.Counter({
      name: "sluice_records_rejected_total",
      help:
        "Records set aside for good: decode (bad message), convert (bad field), server (refused)",
      labelNames: ["sink", "reason"],
      registers,
    });
    this.skipped = new client.Counter({
      name: "sluice_records_skipped_total",
      help: "Records deliberately not written, e.g. pmacct purge markers",
      labelNames: ["reason"],
      registers,
    });
    this.batches = new client.Counter({
      name: "sluice_batches_total",
      help: "Batches handled, by outcome (written, empty)",
      labelNames: ["sink", "outcome"],
      registers,
    });
    this.batchDuration = new client.Histogram({
      name: "sluice_batch_duration_seconds",
      help: "Time to write a batch, retries and splits included",
      labelNames: ["sink"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.batchRows = new client.Histogram({
      name: "sluice_batch_rows",
      help: "Rows per batch",
      labelNames: ["sink"],
      buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000],
      registers,
    });
    this.retries = new client.Counter({
      name: "sluice_sink_retries_total",
      help: "Failed write attempts that are retried",
      labelNames: ["sink", "error_type"],
      registers,
    });
    this.splits = new client.Counter({
      name: "sluice_batch_splits_total",
      help: "Batches split in two to isolate rows the sink refused",
      labelNames: ["sink"],
      registers,
    });
    this.sinkUp = new client.Gauge({
      name: "sluice_sink_up",
      help: "1 when the sink answered the last connect or write, 0 while it cannot be reached, " +
        "fails writes, or is not connected yet",
      labelNames: ["sink"],
      registers,
    });
    this.kafkaUp = new client.Gauge({
      name: "sluice_kafka_up",
      help: "1 while the Kafka consumer reaches the brokers (connected, in its group), " +
        "0 while it cannot or is not connected yet",
      registers,
    });
    this.lag = new client.Gauge({
      name: "sluice_consumer_lag",
      help: "Messages of an assigned partition not yet committed by the consumer group: the " +
        "partition's end offset (high watermark) minus the group's committed offset; " +
        "refreshed every few seconds from the brokers, also while consumption is paused",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.commits = new client.Counter({
      name: "sluice_offset_commits_total",
      help: "Offset commits after acknowledged writes, by outcome",
      labelNames: ["outcome"],
      registers,
    });
    this.redelivered = new client.Counter({
      name: "sluice_messages_redelivered_total",
      help:
        "Messages the consumer read again after a rejoin and skipped: already batched or written",
      labelNames: ["topic"],
      registers,
    });
    this.lastWrite = new client.Gauge({
      name: "sluice_last_write_timestamp_seconds",
      help: "Unix time of the last acknowledged write",
      labelNames: ["sink"],
      registers,
    });
    this.overwritten = new client.Counter({
      name: "sluice_points_overwritten_total",
      help: "Points written over another point of the same write (same series, field and " +
        "time): distinct records that InfluxDB keeps one of",
      labelNames: ["sink"],
      registers,
    });
    this.deadLetters = new client.Counter({
      name: "sluice_dead_letters_total",
      help: "Records stored in a dead-letter destination (file, topic), by reason",
      labelNames: ["destination", "reason"],
      registers,
    });
    this.deadLettersWaiting = new client.Gauge({
      name: "sluice_dead_letters_waiting",
      help: "Dead letters not stored yet; the offsets of their messages are not committed",
      labelNames: ["destination"],
      registers,
    });
    this.deadLetterErrors = new client.Counter({
      name: "sluice_dead_letter_errors_total",
      help: "Failed attempts to store dead letters, retried",
      labelNames: ["destination"],
      registers,
    });
    this.buildInfo = new client.Gauge({
      name: "sluice_build_info",
      help: "Always 1; the labels say which sluice runs, on which Deno, V8 and TypeScript",
      labelNames: ["version", "deno", "v8", "typescript"],
      registers,
    });
    this.bytesReceived = new client.Counter({
      name: "sluice_bytes_received_total",
      help: "Bytes of Kafka message values consumed",
      labelNames: ["topic"],
      registers,
    });
    this.bytesWritten = new client.Counter({
      name: "sluice_bytes_written_total",
      help: "Bytes of the rows the sink acknowledged, as the sink encodes them before compression",
      labelNames: ["sink"],
      registers,
    });
    // Read when scraped: the hot path does not touch them.
    const rows = () => this.#rows?.();
    this.rowsPending = new client.Gauge({
      name: "sluice_rows_pending",
      help: "Rows in the batch being filled, not written yet",
      registers,
      collect() {
        this.set(rows()?.pending ?? 0);
      },
    });
    this.rowsInFlight = new client.Gauge({
      name: "sluice_rows_in_flight",
      help: "Rows of the batch being written (retries included), not acknowledged yet",
      registers,
      collect() {
        this.set(rows()?.inFlight ?? 0);
      },
    });
    this.endToEndLag = new client.Gauge({
      name: "sluice_end_to_end_lag_seconds",
      help: "At the last acknowledged write: seconds since the newest message of the batch was " +
        "stamped in Kafka (its CreateTime or LogAppendTime timestamp)",
      labelNames: ["topic"],
      registers,
    });
    this.assignedPartitions = new client.Gauge({
      name: "sluice_kafka_assigned_partitions",
      help: "Partitions this member of the consumer group holds",
      registers,
    });
    this.rebalances = new client.Counter({
      name: "sluice_kafka_rebalances_total",
      help: "Joins of the consumer group after the first one (rebalances, rejoins)",
      registers,
    });
    this.clickhouseShardUp = new client.Gauge({
      name: "sluice_clickhouse_shard_up",
      help: "With CLICKHOUSE_CLUSTER, per shard (shard_num): 1 when the shard took the last " +
        "write or one of its servers answered after a failed write, 0 when not",
      labelNames: ["shard"],
      registers,
    });
    this.clickhouseShardRows = new client.Counter({
      name: "sluice_clickhouse_shard_rows_total",
      help: "With CLICKHOUSE_WRITE_PATH=direct: rows each shard acknowledged",
      labelNames: ["shard"],
      registers,
    });
    this.clickhouseShardErrors = new client.Counter({
      name: "sluice_clickhouse_shard_errors_total",
      help: "With CLICKHOUSE_CLUSTER: failed writes to a shard (direct), or probes after a " +
        "failed write that found none of the shard's servers answering (distributed)",
      labelNames: ["shard"],
      registers,
    });
    client.collectDefaultMetrics({ register: this.registry });
    renameRuntimeGauges(this.registry);
  }

  readonly #beforeCollect: Array<() => void> = [];
  #rows: (() => RowsWaiting) | undefined;
  readonly #reach = new Map<string, Reachability>();
  readonly #clock: () => number;

  /**
   * Records whether the sink answers: `sluice_sink_up` and `/healthz`.
   *
   * @param sink The sink's name (the label).
   * @param up Whether it answered the last connect or write.
   * @param reason Why not, when it did not (an error message, no secrets).
   */
  sinkReachable(sink: string, up: boolean, reason?: string): void {
    this.sinkUp.set({ sink }, up ? 1 : 0);
    this.#setReach("sink", up, reason);
  }

  /**
   * Records whether the Kafka consumer reaches the brokers: `sluice_kafka_up` and `/healthz`.
   *
   * @param up Whether it does.
   * @param reason Why not, when it does not.
   */
  kafkaReachable(up: boolean, reason?: string): void {
    this.kafkaUp.set(up ? 1 : 0);
    this.#setReach("kafka", up, reason);
  }

  /**
   * Records whether dead letters can be stored in a destination (`/healthz`;
   * the counters are `sluice_dead_letter_errors_total` and `sluice_dead_letters_waiting`).
   *
   * @param destination `file` or `topic`.
   * @param up Whether the last attempt stored them.
   * @param reason Why not, when it did not.
   */
  deadLettersStorable(destination: string, up: boolean, reason?: string): void {
    this.#setReach(`dead_letter_${destination}`, up, reason);
  }

  /**
   * What is known of each service sluice depends on, by name (`sink`,
   * `kafka`, `dead_letter_file`, `dead_letter_topic`): only those reported so far.
   *
   * @returns The states.
   */
  reachability(): ReadonlyMap<string, Readonly<Reachability>> {
    return this.#reach;
  }

  #setReach(name: string, up: boolean, reason?: string): void {
    const before = this.#reach.get(name);
    const since = before !== undefined && before.up === up ? before.since : this.#clock();
    this.#reach.set(name, up ? { up, since } : { up, since, reason: reason ?? "unknown" });
  }

  /**
   * Creates the series known at start, so that they exist from the first
   * scrape: counters at 0 for every label value known in advance (`rate()`
   * and alerts work before the first event), and `sluice_build_info`.
   *
   * @param options The version of sluice, the sink's name, the Kafka topics,
   *   the decoder's skip reason, and the dead-letter destinations configured
   *   (`file`, `topic`).
   */
  initialise(options: {
    version: string;
    sink: string;
    topics: readonly string[];
    skipReason: string;
    deadLetterDestinations: readonly string[];
  }): void {
    const { sink, topics, skipReason, deadLetterDestinations } = options;
    this.buildInfo.set({
      version: options.version,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
    }, 1);
    for (const topic of topics) {
      for (const counter of [this.messages, this.received, this.bytesReceived, this.redelivered]) {
        counter.inc({ topic }, 0);
      }
    }
    for (const counter of [this.written, this.bytesWritten, this.splits, this.overwritten]) {
      counter.inc({ sink }, 0);
    }
    for (const reason of REJECTION_REASONS) this.rejected.inc({ sink, reason }, 0);
    this.skipped.inc({ reason: skipReason }, 0);
    for (const outcome of ["written", "empty"]) this.batches.inc({ sink, outcome }, 0);
    this.batchDuration.zero({ sink });
    this.batchRows.zero({ sink });
    // Other error types depend on the sink's answers (`http_503`, `code_241`, ...).
    for (const errorType of ["network", "timeout"]) {
      this.retries.inc({ sink, error_type: errorType }, 0);
    }
    for (const outcome of ["ok", "failed"]) this.commits.inc({ outcome }, 0);
    for (const destination of deadLetterDestinations) {
      for (const reason of REJECTION_REASONS) this.deadLetters.inc({ destination, reason }, 0);
      this.deadLetterErrors.inc({ destination }, 0);
      this.deadLettersWaiting.set({ destination }, 0);
    }
  }

  /**
   * Tells `sluice_rows_pending` and `sluice_rows_in_flight` where to read
   * their numbers at each scrape (the pipeline's batches).
   *
   * @param probe Returns the rows waiting now.
   */
  watchRows(probe: () => RowsWaiting): void {
    this.#rows = probe;
  }

  /**
   * Registers a hook run before each scrape, so hot paths can count in plain
   * fields and move their counts into the metrics only when they are read.
   *
   * @param hook The hook.
   */
  beforeCollect(hook: () => void): void {
    this.#beforeCollect.push(hook);
  }

  /**
   * Renders the registry in the Prometheus text format.
   *
   * @returns The exposition text.
   */
  render(): Promise<string> {
    for (const hook of this.#beforeCollect) hook();
    return this.registry.metrics();
  }
}

/** The `reason`s a record is set aside for (`Rejection.reason`): decode, convert, server. */
const REJECTION_REASONS = ["decode", "convert", "server"] as const;

/**
 * prom-client's runtime gauges whose names end in `_total`, and the names
 * sluice exports them under: a gauge must not end in `_total`, which
 * Prometheus reserves for counters (`promtool check metrics`:
 * "non-counter metrics should not have _total suffix";
 * https://github.com/siimon/prom-client/issues/283). Each is the sum of
 * the gauge of the same name without `_total`, over its `type` label.
 */
export const RENAMED_RUNTIME_GAUGES: Readonly<Record<string, string>> = {
  nodejs_active_handles_total: "nodejs_active_handles_all",
  nodejs_active_requests_total: "nodejs_active_requests_all",
  nodejs_active_resources_total: "nodejs_active_resources_all",
};

/** Replaces each of {@link RENAMED_RUNTIME_GAUGES} with a gauge of the new name reading it. */
function renameRuntimeGauges(registry: client.Registry): void {
  for (const [from, to] of Object.entries(RENAMED_RUNTIME_GAUGES)) {
    const original = registry.getSingleMetric(from);
    if (original === undefined) continue;
    registry.removeSingleMetric(from);
    new client.Gauge({
      name: to,
      help: `Total number of active ${from.split("_")[2]} (prom-client's ${from}, renamed: ` +
        "a gauge must not end in _total)",
      registers: [registry],
      async collect() {
        const { values } = await original.get();
        this.reset();
        for (const { value } of values) this.set(value);
      },
    });
  }
}

/** What `sluice_rows_pending` and `sluice_rows_in_flight` read. */
export interface RowsWaiting {
  /** Rows in the batch being filled. */
  pending: number;
  /** Rows of the batch being written. */
  inFlight: number;
}

/** Whether sluice reaches a service it depends on, and why not. */
export interface Reachability {
  /** Whether it answered last time. */
  up: boolean;
  /** Milliseconds clock time since when it is in this state. */
  since: number;
  /** Why it does not answer, when it does not. */
  reason?: string;
}

/** What the pipeline tells `/healthz`. */
export interface Health {
  /** Whether the pipeline is making progress. */
  ok: boolean;
  /** Why not, when it is not. */
  reason?: string;
  /** Details shown in the response body. */
  detail: Record<string, unknown>;
}

/** The body of `/healthz`. */
export interface HealthReport {
  /** `ok`; `down` while a service sluice depends on does not answer; `stalled` (see {@link Health}). */
  status: "ok" | "down" | "stalled";
  /** Every reason it is not ok, in one line; absent when ok. */
  reason?: string;
  /** Per service (`sink`, `kafka`, ...): up or the reason it is down, and for how long. */
  services: Record<string, { up: boolean; for_seconds: number; reason?: string }>;
  [detail: string]: unknown;
}

/**
 * What `/healthz` answers: ok only when every service reported so far is up
 * and the pipeline makes progress; otherwise every reason.
 *
 * @param metrics Where the services' states are kept.
 * @param health The pipeline's own health.
 * @param now The current clock time, in milliseconds.
 * @returns The body; `status` "ok" means HTTP 200.
 */
export function healthReport(
  metrics: Metrics,
  health: Health,
  now: number = Date.now(),
): HealthReport {
  const services: HealthReport["services"] = {};
  const reasons: string[] = [];
  for (const [name, state] of metrics.reachability()) {
    const forSeconds = Math.max(0, Math.round((now - state.since) / 100) / 10);
    services[name] = state.up
      ? { up: true, for_seconds: forSeconds }
      : { up: false, for_seconds: forSeconds, reason: state.reason };
    if (!state.up) reasons.push(`${name} down for ${forSeconds} s: ${state.reason}`);
  }
  const down = reasons.length > 0;
  if (!health.ok) reasons.push(health.reason ?? "the pipeline makes no progress");
  const status = down ? "down" : health.ok ? "ok" : "stalled";
  return {
    status,
    ...(reasons.length > 0 ? { reason: reasons.join("; ") } : {}),
    services,
    ...health.detail,
  };
}

/**
 * Serves `/metrics`, `/healthz` (200 when {@link healthReport} says ok,
 * 503 with the reasons otherwise) and `/livez` (200 while the process
 * answers at all: for a liveness probe that must not restart sluice during
 * an outage of the sink or the brokers, which a restart cannot cure).
 *
 * @param options Address, port, the metrics and the pipeline's health probe.
 * @returns The server; `addr.port` tells the port when 0 was asked.
 */
export function serveMetrics(
  options: { host: string; port: number; metrics: Metrics; health: () => Health },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: options.host, port: options.port, onListen: () => {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/metrics") {
        return new Response(await options.metrics.render(), {
          headers: { "content-type": options.metrics.registry.contentType },
        });
      }
      if (path === "/healthz" || path === "/health") {
        const report = healthReport(options.metrics, options.health());
        return Response.json(report, { status: report.status === "ok" ? 200 : 503 });
      }
      if (path === "/livez") return new Response("ok\n");
      return new Response("sluice: see /metrics, /healthz and /livez\n", { status: 404 });
    },
  );
}
