/**
 * The VictoriaMetrics sink: pmacct flow records imported in batches as JSON
 * lines (`POST /api/v1/import`, `VM_URL` + `VM_IMPORT_PATH`, gzip bodies),
 * one sample per metric field (`VM_METRICS_NAMES`, default `bytes,packets`)
 * per record, labelled with `job`, `instance` and the record's other fields,
 * at the record's `stamp_updated`. A drop-in replacement for
 * pmacct-kafka-vm (`SINK=vm`).
 *
 * Files, as in every sink: `config.ts` (variables), `encode.ts` (records to
 * lines, and what is checked before sending, since the server answers 204
 * even when it drops a line), `classify.ts` (answers to verdicts),
 * `client.ts` (requests and sending), and this file: the order of I/O.
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

import { type HttpResponse, type HttpTransport, statusText } from "../../lib/http.ts";
import { errorLine, type Logger } from "../../lib/log.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type WriteResult,
} from "../../lib/record.ts";
import {
  type Sink,
  type SinkDeps,
  type SinkModule,
  SinkWriteError,
  startupError,
} from "../../lib/sink.ts";
import { classifyVictoriaMetricsError, classifyVictoriaMetricsResponse } from "./classify.ts";
import { VictoriaMetricsClient } from "./client.ts";
import {
  parseVictoriaMetricsConfig,
  VICTORIAMETRICS,
  type VictoriaMetricsConfig,
} from "./config.ts";
import { compileRecordEncoder, encodeLines, type VictoriaMetricsRow } from "./encode.ts";

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
  readonly #client: VictoriaMetricsClient;

  /**
   * @param config The resolved configuration.
   * @param deps The time reader (zone of pmacct's local timestamps), the
   *   logger, and for tests a clock and a transport.
   */
  constructor(config: VictoriaMetricsConfig, deps: VictoriaMetricsDeps) {
    this.commitDelayMs = config.commitDelayMs;
    this.#config = config;
    this.#log = deps.log;
    this.#client = new VictoriaMetricsClient(config, deps.transport);
    this.#encode = compileRecordEncoder({ ...config, time: deps.time, clock: deps.clock });
  }

  /**
   * Sends an empty import, which checks in one request that the server
   * answers, serves `VM_IMPORT_PATH` and accepts the credentials, without
   * writing anything.
   *
   * @throws {SinkWriteError} From `startupError`: `retry` while the server is down or
   *   overloaded, `fatal` for a path, credentials or a certificate.
   */
  async connect(): Promise<void> {
    const config = this.#config;
    const what = `Cannot connect to VictoriaMetrics at ${config.importUrl}`;
    let response: HttpResponse;
    try {
      response = await this.#client.import([]);
    } catch (error) {
      const verdict = classifyVictoriaMetricsError(error);
      const hint = verdict.hint ? `; ${verdict.hint}` : "";
      throw startupError(`${what}: ${errorLine(error)}${hint}`, verdict, error);
    }
    const verdict = classifyVictoriaMetricsResponse(
      response.status,
      response.body,
      response.headers.get("retry-after"),
    );
    if (verdict.action !== "ok") {
      throw startupError(`${what}: ${statusText(response, verdict.hint)}`, verdict);
    }
    this.#log.info("Connected to VictoriaMetrics", {
      url: config.importUrl,
      job: config.job,
      instance: config.instance,
      metrics: config.metricNames,
    });
  }

  /**
   * For `--check-config --connect`: the empty import of {@link connect},
   * which writes nothing (server reachable, `VM_IMPORT_PATH` served,
   * credentials accepted).
   *
   * @returns What was found.
   * @throws {SinkWriteError} As `connect()` throws it.
   */
  async check(): Promise<string> {
    await this.connect();
    return `${this.#config.importUrl} accepts an empty import`;
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
    return encodeLines(rows);
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
    const lines = encodeLines(rows);
    const what =
      `${rows.length} records (${lines.length} lines) into VictoriaMetrics at ${config.importUrl}`;
    let response: HttpResponse;
    try {
      response = await this.#client.import(lines);
    } catch (error) {
      const verdict = classifyVictoriaMetricsError(error);
      const hint = verdict.hint ? `; ${verdict.hint}` : "";
      throw new SinkWriteError(`Cannot import ${what}: ${errorLine(error)}${hint}`, {
        ...verdict,
        cause: error,
      });
    }
    const verdict = classifyVictoriaMetricsResponse(
      response.status,
      response.body,
      response.headers.get("retry-after"),
    );
    if (verdict.action === "ok") {
      this.#reportSetAside(rows);
      return allWritten();
    }
    const message = `Cannot import ${what}: ${statusText(response, verdict.hint)}`;
    if (verdict.hint !== undefined) {
      // Only an operator can fix these; the pipeline's retry warning is not enough.
      this.#log.limited(`vm_${verdict.errorType}`, "error", "VictoriaMetrics refuses imports", {
        status: response.status,
        url: config.importUrl,
        error: message,
      });
    }
    throw new SinkWriteError(message, verdict);
  }

  /**
   * Asks the server's `/health`.
   *
   * @returns `true` when it answers 200.
   */
  async healthcheck(): Promise<boolean> {
    try {
      return (await this.#client.health()).status === 200;
    } catch {
      return false;
    }
  }

  /** Closes the connections (not those of an injected transport). */
  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
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

/** The VictoriaMetrics backend as the sink registry knows it. */
export const victoriaMetricsSink: SinkModule<VictoriaMetricsConfig> = {
  name: "vm",
  title: "VictoriaMetrics (JSON line import, /api/v1/import)",
  variables: VICTORIAMETRICS.specs,
  consumerGroupDefault: "kafka2vm",
  parseConfig: parseVictoriaMetricsConfig,
  target: (config) => config.importUrl,
  create(config: VictoriaMetricsConfig, deps: SinkDeps): Sink {
    return new VictoriaMetricsSink(config, deps);
  },
};
