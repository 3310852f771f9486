/**
 * The VictoriaMetrics sink: pmacct flow records imported in batches as JSON
 * lines (`POST /api/v1/import`, `VM_URL` + `VM_IMPORT_PATH`, gzip bodies),
 * one sample per metric field (`VM_METRICS_NAMES`, default `bytes,packets`)
 * per record, labelled with `job`, `instance` and the record's other fields,
 * at the record's `stamp_updated`. A drop-in replacement for
 * pmacct-kafka-vm (`SINK=vm`).
 *
 * Reading order: `config.ts` (variables), `encode.ts` (records to lines and
 * what is checked before sending, since the server answers 204 even when it
 * drops a line), `client.ts` (request, transport, classification of
 * answers), then the class below doing the I/O.
 *
 * Delivery is at least once, and an import is not idempotent: a sample sent
 * twice (an import that landed but whose answer was lost, a batch consumed
 * again after a crash) is stored twice, since 1.79.5 keeps every sample of a
 * series at one timestamp unless `-dedup.minScrapeInterval` is set. That
 * flag cannot tell such duplicates from two records whose only differences
 * are fields left out of the labels (the same flow in two `stamp_inserted`
 * bins purged at once), so it is not a remedy; samples are per-purge deltas,
 * queried with `sum_over_time`.
 *
 * @module
 */

import { errorLine, type Logger } from "../../lib/log.ts";
import type { SinkDeps, SinkModule } from "../registry_types.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type Sink,
  SinkWriteError,
  type WriteResult,
} from "../sink.ts";
import {
  bodyExcerpt,
  classifyVictoriaMetricsError,
  classifyVictoriaMetricsResponse,
  createTransport,
  healthRequest,
  type HttpResponse,
  type HttpTransport,
  importRequest,
  type VictoriaMetricsOutcome,
} from "./client.ts";
import {
  describeVictoriaMetricsConfig,
  isVictoriaMetricsConfigured,
  parseVictoriaMetricsConfig,
  VICTORIAMETRICS_VARIABLES,
  type VictoriaMetricsConfig,
} from "./config.ts";
import { compileRecordEncoder, type VictoriaMetricsRow } from "./encode.ts";

export type { VictoriaMetricsConfig } from "./config.ts";
export type { VictoriaMetricsRow } from "./encode.ts";

/** What the sink needs besides its configuration. */
export interface VictoriaMetricsDeps extends SinkDeps {
  /** Milliseconds clock for the timestamp window, injected by tests. */
  clock?: () => number;
  /** The transport, injected by tests; by default one for the configuration. */
  transport?: HttpTransport;
}

/** Imports prepared rows into VictoriaMetrics. */
export class VictoriaMetricsSink implements Sink<VictoriaMetricsRow> {
  /** Registry name and `sink` metric label. */
  readonly name = "vm";
  /** VictoriaMetrics answers 204 before the samples are durable; see `VM_COMMIT_DELAY`. */
  readonly commitDelayMs: number;
  readonly #config: VictoriaMetricsConfig;
  readonly #log: Logger;
  readonly #encode: (record: InputRecord) => PrepareResult<VictoriaMetricsRow>;
  readonly #injected: HttpTransport | undefined;
  #transport: HttpTransport | undefined;
  #opening: Promise<HttpTransport> | undefined;

  /**
   * @param config The resolved configuration.
   * @param deps The time reader (zone of pmacct's local timestamps), the
   *   logger, and for tests a clock and a transport.
   */
  constructor(config: VictoriaMetricsConfig, deps: VictoriaMetricsDeps) {
    this.commitDelayMs = config.commitDelayMs;
    this.#config = config;
    this.#log = deps.log;
    this.#injected = deps.transport;
    this.#encode = compileRecordEncoder({
      job: config.job,
      instance: config.instance,
      metricNames: config.metricNames,
      avoidLabels: config.avoidLabels,
      labels: config.labels,
      timestampField: config.timestampField,
      maxAgeMs: config.maxAgeMs,
      maxFutureMs: config.maxFutureMs,
      maxLabels: config.maxLabels,
      maxLabelValueBytes: config.maxLabelValueBytes,
      time: deps.time,
      clock: deps.clock,
    });
  }

  /**
   * Sends an empty import, which checks in one request that the server
   * answers, serves `VM_IMPORT_PATH` and accepts the credentials, without
   * writing anything.
   *
   * @throws {SinkWriteError} With `retry` while the server cannot be reached or fails (5xx, 429).
   * @throws {Error} When it refuses the path or the credentials, or the certificate does not verify.
   */
  async connect(): Promise<void> {
    const config = this.#config;
    const transport = await this.#open();
    let response: HttpResponse;
    try {
      response = await transport.send(await importRequest(config, []));
    } catch (error) {
      const outcome = classifyVictoriaMetricsError(error);
      const message = `Cannot connect to VictoriaMetrics at ${config.importUrl}: ${
        errorLine(error)
      }${outcome.hint ? `; ${outcome.hint}` : ""}`;
      // A server that is down is waited for; a certificate that does not verify will not heal.
      if (outcome.errorType === "tls") throw new Error(message, { cause: error });
      throw new SinkWriteError(message, {
        action: "retry",
        errorType: outcome.errorType,
        cause: error,
      });
    }
    const outcome = classifyVictoriaMetricsResponse(
      response.status,
      response.body,
      response.headers.get("retry-after"),
    );
    if (outcome.action === "ok") {
      this.#log.info("Connected to VictoriaMetrics", {
        url: config.importUrl,
        job: config.job,
        instance: config.instance,
        metrics: config.metricNames,
      });
      return;
    }
    const message = `Cannot connect to VictoriaMetrics at ${config.importUrl}: ${
      statusText(response, outcome)
    }`;
    if (response.status === 429 || response.status >= 500) {
      throw new SinkWriteError(message, {
        action: "retry",
        errorType: outcome.errorType,
        status: response.status,
      });
    }
    throw new Error(message);
  }

  /**
   * Converts one pmacct record into its import lines, one per valid metric field.
   *
   * A record keeps its valid lines when other metric fields of it are
   * missing, null or not numbers (each such field is named in
   * `row.setAside` and logged once the rest is written); a record without
   * any valid line, with an unreadable timestamp or one outside the window,
   * or with labels the server would change, is rejected (`convert`).
   *
   * @param record The decoded record.
   * @param _origin Where it came from (not needed to convert).
   * @returns The row and the size of its lines, or a `convert` rejection.
   */
  prepare(record: InputRecord, _origin: RecordOrigin): PrepareResult<VictoriaMetricsRow> {
    return this.#encode(record);
  }

  /**
   * The body lines of an import of these rows, exactly as sent (before gzip).
   *
   * @param rows The rows.
   * @returns One JSON object per line.
   */
  encode(rows: readonly PreparedRow<VictoriaMetricsRow>[]): string[] {
    const lines: string[] = [];
    for (const r of rows) for (const line of r.row.lines) lines.push(line);
    return lines;
  }

  /**
   * Imports all rows in one request.
   *
   * @param rows The rows, in order.
   * @returns Everything written (the server accepts or refuses a whole request).
   * @throws {SinkWriteError} With `split` for 400 and 413, `retry` for everything else.
   */
  async write(rows: readonly PreparedRow<VictoriaMetricsRow>[]): Promise<WriteResult> {
    const config = this.#config;
    const transport = await this.#open();
    const lines = this.encode(rows);
    const what =
      `${rows.length} records (${lines.length} lines) into VictoriaMetrics at ${config.importUrl}`;
    let response: HttpResponse;
    try {
      response = await transport.send(await importRequest(config, lines));
    } catch (error) {
      const outcome = classifyVictoriaMetricsError(error);
      throw new SinkWriteError(
        `Cannot import ${what}: ${errorLine(error)}${outcome.hint ? `; ${outcome.hint}` : ""}`,
        { action: "retry", errorType: outcome.errorType, cause: error },
      );
    }
    const outcome = classifyVictoriaMetricsResponse(
      response.status,
      response.body,
      response.headers.get("retry-after"),
    );
    if (outcome.action === "ok") {
      this.#reportSetAside(rows);
      return allWritten();
    }
    const message = `Cannot import ${what}: ${statusText(response, outcome)}`;
    if (outcome.hint !== undefined) {
      // Only an operator can fix these; the pipeline's retry warning is not enough.
      this.#log.limited(`vm_${outcome.errorType}`, "error", "VictoriaMetrics refuses imports", {
        status: response.status,
        url: config.importUrl,
        error: message,
      });
    }
    throw new SinkWriteError(message, {
      action: outcome.action === "split" ? "split" : "retry",
      errorType: outcome.errorType,
      status: response.status,
      retryAfterMs: outcome.retryAfterMs,
    });
  }

  /**
   * Asks the server's `/health`.
   *
   * @returns `true` when it answers 200.
   */
  async healthcheck(): Promise<boolean> {
    try {
      const transport = await this.#open();
      const response = await transport.send(healthRequest(this.#config));
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** Closes the transport's connections. */
  close(): Promise<void> {
    const transport = this.#transport;
    this.#transport = undefined;
    if (transport !== this.#injected) transport?.close();
    return Promise.resolve();
  }

  /** The transport, created at first use (reads `VM_CA_FILE`). */
  #open(): Promise<HttpTransport> {
    if (this.#transport !== undefined) return Promise.resolve(this.#transport);
    if (this.#injected !== undefined) return Promise.resolve(this.#transport = this.#injected);
    // Concurrent first uses (a health check during a write) share one transport.
    this.#opening ??= (async () => {
      const caPem = this.#config.caFile === undefined
        ? undefined
        : await Deno.readTextFile(this.#config.caFile);
      return this.#transport = createTransport(this.#config, caPem);
    })().finally(() => this.#opening = undefined);
    return this.#opening;
  }

  /** Logs, once each row is written, the metric fields it left out. */
  #reportSetAside(rows: readonly PreparedRow<VictoriaMetricsRow>[]): void {
    for (const { row, origin } of rows) {
      if (row.setAside === undefined) continue;
      this.#log.limited("vm_metric_set_aside", "warn", "Metric fields set aside", {
        error: row.setAside.join("; "),
        written: row.lines.length,
        topic: origin.topic,
        partition: origin.partition,
        offset: origin.offset,
        index: origin.index,
      });
    }
  }
}

function statusText(response: HttpResponse, outcome: VictoriaMetricsOutcome): string {
  const body = bodyExcerpt(response.body);
  const location = response.headers.get("location");
  return `HTTP ${response.status}${body ? `: ${body}` : ""}${
    location === null ? "" : ` (Location: ${location})`
  }${outcome.hint ? `; ${outcome.hint}` : ""}`;
}

/** The VictoriaMetrics backend as the sink registry knows it. */
export const victoriaMetricsSink: SinkModule<VictoriaMetricsConfig> = {
  name: "vm",
  title: "VictoriaMetrics (JSON line import, /api/v1/import)",
  variables: VICTORIAMETRICS_VARIABLES,
  consumerGroupDefault: "kafka2vm",
  isConfigured: isVictoriaMetricsConfigured,
  parseConfig: parseVictoriaMetricsConfig,
  describe: describeVictoriaMetricsConfig,
  create(config: VictoriaMetricsConfig, deps: SinkDeps): Sink {
    return new VictoriaMetricsSink(config, deps);
  },
};
