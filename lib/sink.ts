/**
 * The contract between the pipeline and a backend, and what a backend
 * module exports so that the static registry (`sinks/mod.ts`) can configure
 * and build it without knowing its details. Both sides import this file; it
 * imports nothing from `sinks/`.
 *
 * Lifecycle: `connect()` once at start (creates tables, checks the server),
 * then any number of `write(rows)` calls, one at a time, then `close()`.
 * `prepare()` is pure and runs before batching, so rows a backend can never
 * accept are set aside without costing their neighbours; `--dry-run` prints
 * exactly what `encode()` returns.
 *
 * `write()` resolves only when the backend acknowledged every row it did not
 * report back as rejected. It neither buffers nor retries across calls; it
 * throws a {@link SinkWriteError} whose `action` tells the pipeline what can
 * help. Batching, retry policy, bisection and offsets belong to the pipeline.
 *
 * Every sink reads the server's answer into one {@link Verdict} (its
 * `classify.ts`): `ok`, `retry` (after a while, or when the server said),
 * `split` (halves may pass), `reject` (this row, for good) or `fatal` (only
 * an operator can help).
 *
 * The connect rule, for every sink: a failure that heals by itself (no
 * answer, a timeout, 429, 5xx: see {@link healsByItself}) is waited for
 * with the retry policy, as a failure during writing is; anything else
 * (credentials, a certificate that does not verify, a path, a version, a
 * table that does not fit) ends sluice at start with the reason. Sinks make
 * their connect errors with {@link startupError}, which applies the rule;
 * {@link connectSink} waits or gives up accordingly.
 *
 * @module
 */

import { errorLine, type Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type {
  InputRecord,
  PreparedRow,
  PrepareResult,
  RecordKind,
  RecordOrigin,
  Rejection,
  WriteResult,
} from "./record.ts";
import type { RetryPolicy } from "./retry.ts";
import type { TimeReader } from "./time.ts";
import type { VarReader, VarSpec } from "./variables.ts";

/** What a server's answer (or the lack of one) means for the rows sent. */
export type Verdict =
  /** Written. */
  | { action: "ok" }
  /** A transient failure: back off and send the same rows again. */
  | RetryVerdict
  /** The rows (or some of them) are bad, or the request too large: send the halves. */
  | SplitVerdict
  /** This row is refused for good: set it aside. */
  | { action: "reject"; errorType: string; status?: number; rejection: Rejection }
  /** Only an operator can help (at start: sluice exits). */
  | FatalVerdict;

/** Fields every failing verdict has. */
interface FailureFields {
  /** Bounded metric label: `network`, `timeout`, `tls`, `unknown`, `http_N`, `code_N`, ... */
  errorType: string;
  /** HTTP status or backend error code, when there is one. */
  status?: number;
  /** What an operator can do about it, when that is known. */
  hint?: string;
}

/** {@link Verdict} `retry`. */
export interface RetryVerdict extends FailureFields {
  /** Send the same rows again later. */
  action: "retry";
  /** How long the backend asked to wait (`Retry-After`), in milliseconds. */
  retryAfterMs?: number;
}

/** {@link Verdict} `split`. */
export interface SplitVerdict extends FailureFields {
  /** Send each half on its own. */
  action: "split";
}

/** {@link Verdict} `fatal`. */
export interface FatalVerdict extends FailureFields {
  /** Give up: waiting cannot help. */
  action: "fatal";
}

/** A verdict that is a failure of the whole request. */
export type FailureVerdict = RetryVerdict | SplitVerdict | FatalVerdict;

/** The verdict on a whole request (`reject` is for one row of an answer that lists them). */
export type RequestVerdict = { action: "ok" } | FailureVerdict;

/** A failed write or connect, classified. */
export class SinkWriteError extends Error {
  /** What the pipeline should do about it. */
  readonly action: FailureVerdict["action"];
  /** HTTP status or backend error code, when there is one. */
  readonly status?: number;
  /** Bounded error category for metrics, e.g. `network`, `http_503`, `code_117`. */
  readonly errorType: string;
  /** Milliseconds the backend asked to wait before the next attempt (`Retry-After`), if it did. */
  readonly retryAfterMs?: number;
  /** What an operator can do about it, when that is known. */
  readonly hint?: string;

  /**
   * @param message What failed, with the value.
   * @param verdict The action, status, metric category and the wait the backend asked for, and the cause.
   */
  constructor(message: string, verdict: FailureVerdict & { cause?: unknown }) {
    super(message, { cause: verdict.cause });
    this.name = "SinkWriteError";
    this.action = verdict.action;
    this.status = verdict.status;
    this.errorType = verdict.errorType;
    this.retryAfterMs = verdict.action === "retry" ? verdict.retryAfterMs : undefined;
    this.hint = verdict.hint;
  }
}

/**
 * Whether a failure heals without an operator: no answer at all (refused,
 * reset, DNS, a timeout, something unknown), 429 or a 5xx. A certificate
 * that does not verify (`tls`), any other status and any backend error code
 * do not.
 *
 * @param verdict The failure.
 * @returns `true` when waiting can help.
 */
export function healsByItself(verdict: { errorType: string }): boolean {
  const type = verdict.errorType;
  return type === "network" || type === "timeout" || type === "unknown" ||
    /^http_(429|5\d\d)$/.test(type);
}

/**
 * The error `connect()` throws: `retry` when the failure heals by itself,
 * `fatal` otherwise (the connect rule, see the module documentation).
 *
 * @param message What failed, with the value.
 * @param verdict How the answer (or its absence) was classified.
 * @param cause The underlying error, if any.
 * @returns The error to throw.
 */
export function startupError(
  message: string,
  verdict: FailureVerdict,
  cause?: unknown,
): SinkWriteError {
  const action = verdict.action !== "fatal" && healsByItself(verdict) ? "retry" : "fatal";
  const { hint, errorType, status } = verdict;
  return new SinkWriteError(message, { action, errorType, status, hint, cause });
}

/** A backend sluice writes to. */
export interface Sink<Row = unknown> {
  /** Registry name, also the `sink` metric label. */
  readonly name: string;
  /**
   * How long after an acknowledged write its offsets may be committed, in
   * milliseconds, for backends that acknowledge before the data is durable.
   * Unset: at once.
   */
  readonly commitDelayMs?: number;
  /**
   * Whether `write()` makes each partition's rows a repeatable write: an
   * idempotency token derived from the rows' first and last position
   * (`rangeToken` in lib/ranges.ts), so that the same range written twice is
   * stored once. The pipeline then pins each batch's ranges in the offset
   * commit before the write and forms them again exactly after a restart or
   * a rebalance (see `lib/pipeline/mod.ts`). Read after `connect()`.
   */
  readonly pinsRanges?: boolean;
  /**
   * Reaches the backend and makes it ready (database, table, template).
   *
   * @throws {SinkWriteError} Made by {@link startupError}: `retry` to wait, `fatal` to give up.
   * @throws {Error} Any other error ends sluice at start.
   */
  connect(): Promise<void>;
  /**
   * Converts one decoded record into a row, or says why it cannot be written.
   * Pure and synchronous: no I/O.
   *
   * @param record The decoded record.
   * @param origin Where the record came from.
   * @returns The row and its size, or a rejection.
   */
  prepare(record: InputRecord, origin: RecordOrigin): PrepareResult<Row>;
  /**
   * Encodes rows into the request body lines the backend receives, in order.
   *
   * @param rows The rows to encode.
   * @returns One string per body line.
   */
  encode(rows: readonly PreparedRow<Row>[]): string[];
  /**
   * Writes rows and resolves when the backend acknowledged them.
   *
   * @param rows The rows to write, in order.
   * @returns Which rows the backend refused for good or wants again.
   * @throws {SinkWriteError} When the write failed; `action` says what can help.
   */
  write(rows: readonly PreparedRow<Row>[]): Promise<WriteResult>;
  /**
   * For `--check-config --connect`: checks what {@link connect} checks, as
   * far as it can without changing anything on the server (credentials,
   * the version, the database, table or bucket and whether it fits).
   * Unset: `--check-config --connect` asks {@link healthcheck}.
   *
   * @returns What was found, in one line, e.g. `ClickHouse 26.9.2.1, table pmacct.flows fits`.
   * @throws {SinkWriteError} Made by {@link startupError}, as `connect()` would throw it.
   * @throws {Error} When the start would fail for another reason.
   */
  check?(): Promise<string>;
  /**
   * Tells whether the backend answers right now.
   *
   * @returns `true` when the backend is reachable and healthy.
   */
  healthcheck(): Promise<boolean>;
  /** Releases connections. */
  close(): Promise<void>;
}

/**
 * Connects a sink, waiting with the retry policy while the failure heals by
 * itself (the connect rule).
 *
 * @param sink The sink.
 * @param options The retry policy, the logger, the signal that ends the wait (a stop),
 *   and the metrics that tell whether the sink answers (`sluice_sink_up`, `/healthz`).
 * @returns `true` once connected, `false` when the signal aborted first.
 * @throws {Error} The sink's error, when waiting cannot help.
 */
export async function connectSink(
  sink: Sink,
  options: { policy: RetryPolicy; log: Logger; signal?: AbortSignal; metrics?: Metrics },
): Promise<boolean> {
  const { policy, log, signal, metrics } = options;
  for (let attempt = 1; !signal?.aborted; attempt++) {
    try {
      await sink.connect();
      metrics?.sinkReachable(sink.name, true);
      return true;
    } catch (error) {
      metrics?.sinkReachable(sink.name, false, errorLine(error));
      if (!(error instanceof SinkWriteError) || error.action !== "retry") throw error;
      const delay = policy.delay(attempt, error.retryAfterMs);
      log.limited("connect", "warn", "Cannot reach the sink, retrying", {
        sink: sink.name,
        attempt,
        retry_in_seconds: delay / 1000,
        error,
      });
      await policy.wait(delay, { signal });
    }
  }
  return false;
}

/** Batch limits, read from the sink's own variables (e.g. `CLICKHOUSE_MAX_SAMPLES_PER_SEND`). */
export interface BatchLimits {
  /** Flush when the batch holds this many rows. */
  maxRows: number;
  /** Flush when the encoded rows reach this many bytes. */
  maxBytes: number;
  /** Flush when the oldest row has waited this long (milliseconds). */
  maxAgeMs: number;
}

/** What a sink needs from the rest of sluice. */
export interface SinkDeps {
  /** Reads pmacct timestamps in the configured zone. */
  time: TimeReader;
  /** The logger. */
  log: Logger;
  /** What the configured decoder produces (one of the sink's `inputs`); unset: `flows`. */
  input?: RecordKind;
  /** The metrics, for a sink's own (a ClickHouse cluster's shards); unset in workers and tests. */
  metrics?: Metrics;
}

/** A backend as the registry knows it. */
export interface SinkModule<Config = unknown> {
  /** The `SINK` value that selects it. */
  readonly name: string;
  /** Human name for help output. */
  readonly title: string;
  /**
   * Every variable the sink reads. Those marked `selects` pick this sink
   * when `SINK` is unset and one of them is set.
   */
  readonly variables: readonly VarSpec[];
  /** Default of `KAFKA_CONSUMER_GROUP_ID` for this sink (the original script's). */
  readonly consumerGroupDefault: string;
  /** The record kinds it can write; `ENCODER` must produce one of them. Unset: `flows` only. */
  readonly inputs?: readonly RecordKind[];
  /**
   * Defaults of common variables that differ for this sink, as the tool it
   * replaces had them (e.g. `ENCODER`, `KAFKA_TOPIC` for kafka-influxdb).
   */
  readonly commonDefaults?: Readonly<Record<string, string>>;
  /**
   * Reads and validates the sink's variables; problems go to `reader.problems`.
   *
   * @param reader The reader holding the environment.
   * @returns The resolved sink configuration and batch limits.
   */
  parseConfig(reader: VarReader): { config: Config; batch: BatchLimits };
  /**
   * Where the sink writes, in one line for `--check-config` (no secrets).
   *
   * @param config The resolved configuration.
   * @returns E.g. `http://127.0.0.1:8123 table pmacct.sflowstat`.
   */
  target(config: Config): string;
  /**
   * Builds the sink.
   *
   * @param config The resolved configuration.
   * @param deps Shared services.
   * @returns A sink, not yet connected.
   */
  create(config: Config, deps: SinkDeps): Sink;
}
