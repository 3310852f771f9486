/**
 * The loop at the heart of sluice: fetch → decode → prepare → batch →
 * deliver → commit. This file wires the stages and owns the order of
 * events; each stage's rules are written in one place:
 *
 * - fetch: `lib/kafka.ts` (and `lib/stdin.ts` for `--dry-run`);
 * - decode: the decoder (`lib/decode/`); prepare: the sink's `prepare()`;
 * - batch: `lib/batcher.ts` (row, byte and age caps; offsets per partition);
 * - deliver: `deliver.ts` (the retry and split rules);
 * - commit: `commit.ts` (the commit rules);
 * - counting and setting aside: `stats.ts`;
 * - the stop sequence: {@link Pipeline.stop}, below.
 *
 * A full batch starts writing while the next one fills; the source is held
 * (`handle()` returns a promise) only when the next batch is full too, so
 * at most two batches are in memory and nothing more is fetched while a
 * sink is retried. A message that cannot be decoded, or a record that
 * cannot be converted, is set aside without costing its neighbours.
 *
 * @module
 */

import type { Batch, FlushReason } from "../batcher.ts";
import { Batcher } from "../batcher.ts";
import type { DeadLetters } from "../dead_letter.ts";
import type { Decoder, DecodeResult } from "../decoder.ts";
import type { Logger } from "../log.ts";
import type { Health, Metrics } from "../metrics.ts";
import type { PreparedRow, RecordOrigin } from "../record.ts";
import type { RetryPolicy } from "../retry.ts";
import type { BatchLimits, Sink } from "../sink.ts";
import type { MessageSource, SourceMessage } from "../source.ts";
import { Commits } from "./commit.ts";
import { Delivery } from "./deliver.ts";
import { type PipelineStats, Tally } from "./stats.ts";

export type { PipelineStats } from "./stats.ts";

/** Everything a pipeline is built from. */
export interface PipelineOptions {
  /** The sink to write to (already connected). */
  sink: Sink;
  /** Turns message values into records. */
  decoder: Decoder;
  /** The `reason` label of the decoder's skips; unset: `marker`. */
  skipReason?: string;
  /** Called after each batch was acknowledged (kafka-influxdb's `-s` statistics). */
  onFlush?: (flush: FlushReport) => void;
  /** Batch caps. */
  batch: BatchLimits;
  /** The retry policy of failed writes. */
  retry: RetryPolicy;
  /** Metrics to update. */
  metrics: Metrics;
  /** Logger. */
  log: Logger;
  /** Where rejected records are kept, if anywhere. */
  deadLetters?: DeadLetters;
  /** How long `stop()` may spend on the last batch, in milliseconds; unset: 30 s. */
  shutdownTimeoutMs?: number;
  /** `/healthz` fails when work waits this long without progress; unset: 120 s. */
  stallTimeoutMs?: number;
  /** Milliseconds clock, injected by tests. */
  clock?: () => number;
  /** How often the age trigger is checked, in milliseconds; unset: min(1000, maxAge/4). */
  tickMs?: number;
}

/** What one acknowledged batch achieved. */
export interface FlushReport {
  /** Rows the sink acknowledged (not counting rows set aside). */
  rows: number;
  /** Distinct Kafka messages those rows came from. */
  messages: number;
  /** Seconds the write took, retries included. */
  seconds: number;
  /** Seconds since the previous batch was acknowledged (or since start). */
  sincePrevious: number;
}

/** What `stop()` achieved. */
export interface StopResult {
  /** Whether every consumed record was written (or set aside) and committed. */
  clean: boolean;
  /** Rows left unwritten (their offsets were not committed). */
  unwritten: number;
}

/** Runs one source into one sink. */
export class Pipeline {
  readonly #source: MessageSource;
  readonly #opts: PipelineOptions;
  readonly #sink: Sink;
  readonly #batcher: Batcher;
  readonly #clock: () => number;
  readonly #tally: Tally;
  readonly #delivery: Delivery;
  readonly #commits: Commits;
  /** Aborted when a stop's deadline passed: every wait and retry ends. */
  readonly #deadline = new AbortController();
  #writing: Promise<void> | undefined;
  #writingSince: number | undefined;
  #writingRows = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopping = false;
  #lastProgress: number;
  readonly #startedAt: number;
  #lastFlush: number | undefined;
  /** Set when a write was given up (a stop's deadline): the pipeline takes no more. */
  #givenUp: unknown;
  /** Rows of batches given up on at shutdown (never committed). */
  #abandonedRows = 0;

  /**
   * @param source Where messages come from.
   * @param options What the pipeline is built from.
   */
  constructor(source: MessageSource, options: PipelineOptions) {
    this.#source = source;
    this.#opts = options;
    this.#sink = options.sink;
    this.#clock = options.clock ?? Date.now;
    this.#batcher = new Batcher(options.batch, this.#clock);
    this.#lastProgress = this.#clock();
    this.#startedAt = this.#lastProgress;
    const { metrics, log } = options;
    this.#tally = new Tally({
      metrics,
      log,
      sink: options.sink.name,
      skipReason: options.skipReason ?? "marker",
      deadLetters: options.deadLetters,
    });
    this.#delivery = new Delivery({
      sink: options.sink,
      policy: options.retry,
      metrics,
      log,
      tally: this.#tally,
      heartbeat: () => source.heartbeat(),
      clock: this.#clock,
    });
    this.#commits = new Commits({
      source,
      metrics,
      log,
      delayMs: () => options.sink.commitDelayMs ?? 0,
      clock: this.#clock,
    });
    metrics.beforeCollect(() => this.#tally.sync());
  }

  /** Running totals. */
  get stats(): PipelineStats {
    return this.#tally.stats;
  }

  /**
   * Starts consuming; the age trigger runs on a timer.
   *
   * @returns Resolves once the source runs.
   */
  async start(): Promise<void> {
    const tick = this.#opts.tickMs ?? Math.max(10, Math.min(1000, this.#opts.batch.maxAgeMs / 4));
    this.#timer = setInterval(() => void this.tick(), tick);
    await this.#source.start((message) => this.handle(message));
  }

  /**
   * Commits held offsets that are due, and flushes the batch when it is due
   * by age; called by the timer, and by tests.
   *
   * @returns Resolves when any write it started is done.
   */
  async tick(): Promise<void> {
    if (this.#commits.holding && !this.#stopping) await this.#commits.commitDue();
    if (this.#writing || this.#stopping || !this.#batcher.isDue()) return;
    this.#flush("age");
    await this.settled();
  }

  /**
   * Waits until no write is in flight.
   *
   * @returns Resolves when the last write started has ended.
   */
  async settled(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /**
   * Handles one message: decode, prepare, batch.
   *
   * @param message The message.
   * @returns A promise only when the source must wait (both batches full).
   */
  handle(message: SourceMessage): void | Promise<void> {
    if (this.#givenUp !== undefined) return Promise.reject(this.#givenUp);
    const decoded = this.#opts.decoder(message.value);
    this.#tally.message(message.topic, decoded);
    for (const error of decoded.errors) {
      this.#tally.setAside(
        originOf(message, error.index),
        { reason: "decode", error: error.error },
        error.data ?? message.value,
      );
    }
    return this.#batch(message, decoded.records, 0);
  }

  /**
   * Prepares and batches the records of a message from `from` on, and marks
   * the message consumed once all of them are in. Returns a promise only
   * when a full batch must wait for the write in flight; the rest of the
   * message is then batched after it.
   */
  #batch(
    message: SourceMessage,
    records: DecodeResult["records"],
    from: number,
  ): void | Promise<void> {
    for (let i = from; i < records.length; i++) {
      const { index, record } = records[i]!;
      const origin = originOf(message, index);
      const prepared = this.#sink.prepare(record, origin);
      if (!prepared.ok) {
        this.#tally.setAside(origin, prepared.rejection, record);
        continue;
      }
      if (this.#batcher.wouldOverflow(prepared.bytes)) {
        const wait = this.#flush("bytes");
        // Record i is prepared again after the wait: prepare() is pure.
        if (wait) return this.#batchAfter(wait, message, records, i);
      }
      const due = this.#batcher.add({ row: prepared.row, bytes: prepared.bytes, origin });
      if (due) {
        const wait = this.#flush(due);
        if (wait) return this.#batchAfter(wait, message, records, i + 1);
      }
    }
    this.#batcher.markConsumed(message.topic, message.partition, message.offset);
  }

  async #batchAfter(
    wait: Promise<void>,
    message: SourceMessage,
    records: DecodeResult["records"],
    from: number,
  ): Promise<void> {
    await wait;
    await this.#batch(message, records, from);
  }

  /**
   * Starts writing the current batch in the background. Writes never
   * overlap, so offsets are committed in order: when one is in flight, the
   * returned promise resolves once it ended and this one started.
   */
  #flush(reason: FlushReason): Promise<void> | undefined {
    if (this.#givenUp !== undefined) return Promise.reject(this.#givenUp);
    if (this.#writing !== undefined) return this.#flushAfterWrite(reason);
    if (this.#batcher.empty) return undefined;
    this.#tally.sync();
    const batch = this.#batcher.take();
    this.#writingSince = batch.startedAt;
    this.#writingRows = batch.rows.length;
    this.#writing = this.#write(batch, reason).catch((error) => {
      // Only a stop's deadline ends a write early; stop() reports it.
      this.#abandonedRows += batch.rows.length;
      this.#givenUp = error;
    }).finally(() => {
      this.#writing = undefined;
      this.#writingSince = undefined;
      this.#writingRows = 0;
    });
    return undefined;
  }

  async #flushAfterWrite(reason: FlushReason): Promise<void> {
    await this.settled();
    await this.#flush(reason);
  }

  /** Delivers a batch, reports it, and commits (or holds) its offsets. */
  async #write(batch: Batch, reason: FlushReason): Promise<void> {
    const { metrics, log } = this.#opts;
    const sink = this.#sink.name;
    const started = this.#clock();
    if (batch.rows.length > 0) {
      const before = this.#tally.stats.written;
      await this.#delivery.deliver(batch.rows, this.#deadline.signal);
      const written = this.#tally.stats.written - before;
      const seconds = (this.#clock() - started) / 1000;
      metrics.batchDuration.observe({ sink }, seconds);
      metrics.batchRows.observe({ sink }, batch.rows.length);
      metrics.batches.inc({ sink, outcome: "written" });
      metrics.lastWrite.set({ sink }, Date.now() / 1000);
      this.#tally.batch();
      this.#reportFlush(batch.rows, written, seconds);
      log.debug("Wrote batch", {
        sink,
        reason,
        rows: batch.rows.length,
        written,
        bytes: batch.bytes,
        seconds,
      });
    } else {
      metrics.batches.inc({ sink, outcome: "empty" });
    }
    await this.#commits.acknowledged(batch.offsets);
    this.#lastProgress = this.#clock();
  }

  /**
   * Stops, in this order: no more fetching (the source drains the message
   * in hand), the write in flight ends, the last batch is written, the
   * offsets are committed (held ones once their delay passed), the source
   * closes. All of it within `shutdownTimeoutMs`; when the deadline passes,
   * the retries end and what was not written is not committed (it is read
   * again at the next start).
   *
   * @returns Whether everything consumed was written and committed.
   */
  async stop(): Promise<StopResult> {
    if (this.#stopping) return { clean: false, unwritten: this.#batcher.size };
    this.#stopping = true;
    clearInterval(this.#timer);
    const timeout = this.#opts.shutdownTimeoutMs ?? 30_000;
    const deadline = setTimeout(
      () => this.#deadline.abort(new Error("Cannot finish writing: the shutdown timeout passed")),
      timeout,
    );
    try {
      await this.#source.drain();
      await this.settled();
      if (!this.#batcher.empty) {
        await this.#flush("shutdown");
        await this.settled();
      }
      if (this.#givenUp !== undefined) throw this.#givenUp;
      await this.#commits.finish(this.#deadline.signal);
      return { clean: true, unwritten: 0 };
    } catch (error) {
      const unwritten = this.#batcher.size + this.#abandonedRows;
      this.#opts.log.error(
        "Stopped without writing every record; their offsets are not committed",
        { error, unwritten },
      );
      return { clean: false, unwritten };
    } finally {
      clearTimeout(deadline);
      await this.#source.close().catch((error) =>
        this.#opts.log.warn("Cannot close the source", { error })
      );
    }
  }

  /**
   * Waits until a finite source (stdin) is exhausted.
   *
   * @returns Resolves when every message was handled.
   */
  finished(): Promise<void> {
    return this.#source.finished;
  }

  /**
   * Whether the pipeline makes progress, for `/healthz`.
   *
   * @returns The health and its details.
   */
  health(): Health {
    const now = this.#clock();
    const stall = this.#opts.stallTimeoutMs ?? 120_000;
    // The oldest record not yet acknowledged: the batch being written, else the one filling.
    const oldest = this.#writingSince ?? this.#batcher.startedAt;
    const stalledFor = oldest === undefined ? 0 : now - Math.max(this.#lastProgress, oldest);
    const failingSince = this.#delivery.failingSince;
    return {
      ok: stalledFor < stall,
      detail: {
        sink: this.#sink.name,
        sink_failing_for_seconds: failingSince === undefined ? 0 : (now - failingSince) / 1000,
        pending_rows: this.#batcher.size + this.#writingRows,
        seconds_since_progress: (now - this.#lastProgress) / 1000,
        stopping: this.#stopping,
      },
    };
  }

  #reportFlush(rows: readonly PreparedRow[], written: number, seconds: number): void {
    const onFlush = this.#opts.onFlush;
    if (onFlush === undefined) return;
    const now = this.#clock();
    let messages = 0;
    let last: RecordOrigin | undefined;
    for (const { origin } of rows) {
      if (
        last === undefined || origin.offset !== last.offset ||
        origin.partition !== last.partition || origin.topic !== last.topic
      ) messages++;
      last = origin;
    }
    onFlush({
      rows: written,
      messages,
      seconds,
      sincePrevious: (now - (this.#lastFlush ?? this.#startedAt)) / 1000,
    });
    this.#lastFlush = now;
  }
}

function originOf(message: SourceMessage, index: number): RecordOrigin {
  return { topic: message.topic, partition: message.partition, offset: message.offset, index };
}
