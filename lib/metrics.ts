/**
 * Prometheus metrics and the `/metrics` + `/healthz` HTTP server.
 *
 * Naming follows Vector's instrumentation spec: counters end in `_total`,
 * durations in `_seconds`, labels are bounded (`sink`, `topic`, `reason`,
 * `error_type`), never raw error text. `samples_count_total` is kept with the
 * meaning it had in pmacct-kafka-clickhouse (records consumed) so existing
 * dashboards keep working.
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
  /** 1 when the last write attempt succeeded, 0 while writes fail. */
  readonly sinkUp: client.Gauge<"sink">;
  /** Messages between the last one consumed and the partition's end. */
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

  constructor() {
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
      help: "1 when the last write to the sink succeeded, 0 while writes fail",
      labelNames: ["sink"],
      registers,
    });
    this.lag = new client.Gauge({
      name: "sluice_consumer_lag",
      help: "Messages between the last consumed offset and the partition's high watermark",
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
    client.collectDefaultMetrics({ register: this.registry, prefix: "sluice_" });
  }

  readonly #beforeCollect: Array<() => void> = [];

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

/** What `/healthz` reports. */
export interface Health {
  /** Whether the pipeline is making progress. */
  ok: boolean;
  /** Details shown in the response body. */
  detail: Record<string, unknown>;
}

/**
 * Serves `/metrics` and `/healthz`.
 *
 * @param options Address, port, the metrics and a health probe.
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
        const health = options.health();
        return Response.json({ status: health.ok ? "ok" : "stalled", ...health.detail }, {
          status: health.ok ? 200 : 503,
        });
      }
      return new Response("sluice: see /metrics and /healthz\n", { status: 404 });
    },
  );
}
