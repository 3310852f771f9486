/**
 * The contract between the pipeline and a backend.
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
 * @module
 */

/** Where a decoded record came from: enough to commit it and to name it in a report. */
export interface RecordOrigin {
  /** Kafka topic, or `stdin` in dry-run mode. */
  topic: string;
  /** Kafka partition. */
  partition: number;
  /** Kafka offset of the message, as a decimal string (offsets exceed 2^53 in theory). */
  offset: string;
  /** Position of the record inside a multi-record message, from 0. */
  index: number;
}

/** One decoded input record: a flat JSON object as pmacct writes it. */
export type InputRecord = Record<string, unknown>;

/** A row that a sink accepted for writing, with its encoded size. */
export interface PreparedRow<Row = unknown> {
  /** The backend-specific row. */
  row: Row;
  /** Bytes this row adds to a request body (used by the byte cap). */
  bytes: number;
  /** Where the row came from. */
  origin: RecordOrigin;
}

/** Why a record or row was set aside. `reason` is bounded (used as a metric label). */
export interface Rejection {
  /** Short bounded category, e.g. `convert`, `server`, `decode`. */
  reason: string;
  /** Human readable detail (never used as a metric label). */
  error: string;
}

/** The result of {@link Sink.prepare}: a row to write, or why there is none. */
export type PrepareResult<Row = unknown> =
  | { ok: true; row: Row; bytes: number }
  | { ok: false; rejection: Rejection };

/** What a backend said about some rows of an acknowledged write. */
export interface WriteResult {
  /** Indexes (into the written array) of rows the backend refused for good. */
  rejected: Array<{ index: number; rejection: Rejection }>;
  /** Indexes of rows the backend asked to send again later (e.g. per-item 429). */
  retry: number[];
}

/** What can help after a failed write. */
export type WriteAction =
  /** A transient failure: back off and send the same rows again. */
  | "retry"
  /** The rows (or some of them) are bad, or the request too large: split and send the halves. */
  | "split";

/** A failed write, classified. */
export class SinkWriteError extends Error {
  /** What the pipeline should do about it. */
  readonly action: WriteAction;
  /** HTTP status or backend error code, when there is one. */
  readonly status?: number;
  /** Bounded error category for metrics, e.g. `network`, `http_503`, `code_117`. */
  readonly errorType: string;
  /** Milliseconds the backend asked to wait before the next attempt (`Retry-After`), if it did. */
  readonly retryAfterMs?: number;

  /**
   * @param message What failed, with the value.
   * @param options The action, status, metric category, cause and the wait the backend asked for.
   */
  constructor(
    message: string,
    options: {
      action: WriteAction;
      errorType: string;
      status?: number;
      cause?: unknown;
      retryAfterMs?: number;
    },
  ) {
    super(message, { cause: options.cause });
    this.name = "SinkWriteError";
    this.action = options.action;
    this.status = options.status;
    this.errorType = options.errorType;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A backend sluice writes to. */
export interface Sink<Row = unknown> {
  /** Registry name, also the `sink` metric label. */
  readonly name: string;
  /**
   * How long after an acknowledged write its offsets may be committed, in
   * milliseconds, for backends that acknowledge before the data is durable.
   * @default 0
   */
  readonly commitDelayMs?: number;
  /**
   * Reaches the backend and makes it ready (database, table, template).
   *
   * @throws {Error} When the backend cannot be reached or refuses the setup.
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
   * Tells whether the backend answers right now.
   *
   * @returns `true` when the backend is reachable and healthy.
   */
  healthcheck(): Promise<boolean>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** An empty {@link WriteResult}: everything was acknowledged. */
export function allWritten(): WriteResult {
  return { rejected: [], retry: [] };
}
