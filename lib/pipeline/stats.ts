/**
 * The pipeline's bookkeeping: running totals, the per-message counts that
 * reach the metrics once per batch or scrape (not once per message, which
 * would cost more than decoding), and setting a record aside (counted,
 * logged, kept in the dead-letter file).
 *
 * @module
 */

import type { DeadLetters, LetterValue } from "../dead_letter.ts";
import type { Predecoded } from "../decoder.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { RecordOrigin, Rejection } from "../record.ts";

/** Running totals, for `--dry-run`'s summary, `-b` and tests. */
export interface PipelineStats {
  /** Messages consumed. */
  messages: number;
  /** Records decoded. */
  records: number;
  /** Rows acknowledged by the sink. */
  written: number;
  /** Records set aside, by reason. */
  rejected: Record<string, number>;
  /** Records skipped on purpose (markers, `nan` values). */
  skipped: number;
  /** Batches written. */
  batches: number;
  /** Failed write attempts that were retried. */
  retries: number;
}

/** Counts what the pipeline does and reports it to the metrics, the log and the dead letters. */
export class Tally {
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #sink: string;
  readonly #skipReason: string;
  readonly #deadLetters: DeadLetters | undefined;
  /** Per-message counts not yet in the metrics; see {@link sync}. */
  readonly #pending = {
    topic: undefined as string | undefined,
    messages: 0,
    bytes: 0,
    records: 0,
    skipped: 0,
  };
  readonly #stats: PipelineStats = {
    messages: 0,
    records: 0,
    written: 0,
    rejected: {},
    skipped: 0,
    batches: 0,
    retries: 0,
  };

  /**
   * @param options Where counts go, the sink's name, the decoder's skip reason, the dead letters.
   */
  constructor(options: {
    metrics: Metrics;
    log: Logger;
    sink: string;
    skipReason: string;
    deadLetters?: DeadLetters;
  }) {
    this.#metrics = options.metrics;
    this.#log = options.log;
    this.#sink = options.sink;
    this.#skipReason = options.skipReason;
    this.#deadLetters = options.deadLetters;
  }

  /** The totals, the latest per-message counts included. */
  get stats(): PipelineStats {
    this.sync();
    return this.#stats;
  }

  /**
   * Counts one decoded message.
   *
   * @param topic Its topic.
   * @param decoded What the decoder made of it.
   * @param bytes The size of its value.
   */
  message(topic: string, decoded: Predecoded, bytes: number): void {
    const pending = this.#pending;
    if (pending.topic !== topic) {
      this.sync();
      pending.topic = topic;
    }
    pending.messages++;
    pending.bytes += bytes;
    pending.records += decoded.records.length;
    pending.skipped += decoded.skipped;
  }

  /** Moves the per-message counts into the metrics and the totals. */
  sync(): void {
    const pending = this.#pending;
    const metrics = this.#metrics;
    if (pending.topic !== undefined) {
      if (pending.messages > 0) metrics.messages.inc({ topic: pending.topic }, pending.messages);
      if (pending.bytes > 0) metrics.bytesReceived.inc({ topic: pending.topic }, pending.bytes);
      if (pending.records > 0) {
        metrics.received.inc({ topic: pending.topic }, pending.records);
        metrics.samples.inc(pending.records);
      }
    }
    if (pending.skipped > 0) metrics.skipped.inc({ reason: this.#skipReason }, pending.skipped);
    this.#stats.messages += pending.messages;
    this.#stats.records += pending.records;
    this.#stats.skipped += pending.skipped;
    pending.messages = 0;
    pending.bytes = 0;
    pending.records = 0;
    pending.skipped = 0;
  }

  /**
   * Counts rows the sink acknowledged, once per write.
   *
   * @param rows How many.
   * @param bytes Their size as the sink counts it (`PreparedRow.bytes`).
   */
  written(rows: number, bytes: number): void {
    this.#stats.written += rows;
    this.#metrics.written.inc({ sink: this.#sink }, rows);
    this.#metrics.bytesWritten.inc({ sink: this.#sink }, bytes);
  }

  /** Counts a batch written. */
  batch(): void {
    this.#stats.batches++;
  }

  /**
   * Counts a failed write attempt that will be retried.
   *
   * @param errorType Its bounded category.
   */
  retry(errorType: string): void {
    this.#stats.retries++;
    this.#metrics.retries.inc({ sink: this.#sink, error_type: errorType });
  }

  /**
   * Sets a record aside: counted by reason, logged (rate-limited), and kept
   * in the dead-letter file when there is one.
   *
   * @param origin Where it came from.
   * @param rejection Why.
   * @param data The record, the row, or the raw message bytes.
   * @param value What a dead-letter topic stores (see {@link LetterValue}).
   * @param message The message's bytes, for `value` "message".
   */
  setAside(
    origin: RecordOrigin,
    rejection: Rejection,
    data: unknown,
    value: LetterValue,
    message?: Uint8Array | null,
  ): void {
    const { reason } = rejection;
    this.#stats.rejected[reason] = (this.#stats.rejected[reason] ?? 0) + 1;
    this.#metrics.rejected.inc({ sink: this.#sink, reason });
    this.#log.limited(`reject:${reason}`, "warn", "Record set aside", {
      reason,
      error: rejection.error,
      topic: origin.topic,
      partition: origin.partition,
      offset: origin.offset,
      index: origin.index,
    });
    this.#deadLetters?.add({ origin, rejection, data, value, message });
  }
}
