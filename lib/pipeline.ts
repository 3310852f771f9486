/**
 * The loop at the heart of sluice: fetch → decode → prepare → batch → write
 * → commit.
 *
 * Delivery rules, all enforced here so every sink gets them:
 * - offsets are committed only after the sink acknowledged the batch;
 * - a failed write is retried with capped exponential backoff while the
 *   source is held (nothing more is fetched, memory stays bounded);
 * - rows the sink refuses are isolated by splitting the batch in halves, the
 *   others are written, the refused ones counted and set aside;
 * - a message that cannot be decoded, or a record that cannot be converted,
 *   is counted and set aside without costing its neighbours;
 * - on stop: no more fetching, the last batch is written and committed.
 *
 * @module
 */

import type { Batch, CommitOffset, FlushReason } from "./batcher.ts";
import { Batcher } from "./batcher.ts";
import type { DeadLetters } from "./dead_letter.ts";
import type { Decoder, DecodeResult } from "./decode/mod.ts";
import type { MessageSource, SourceMessage } from "./kafka_source.ts";
import type { Logger } from "./log.ts";
import type { Health, Metrics } from "./metrics.ts";
import { backoffDelay, type BackoffOptions, sleep } from "./retry.ts";
import type { BatchLimits } from "../sinks/registry_types.ts";
import {
  type PreparedRow,
  type RecordOrigin,
  type Rejection,
  type Sink,
  SinkWriteError,
} from "../sinks/sink.ts";

/** Everything a pipeline is built from. */
export interface PipelineOptions {
  /** The sink to write to (already connected). */
  sink: Sink;
  /** Turns message values into records. */
  decoder: Decoder;
  /** The `reason` label of the decoder's skips. @default "marker" */
  skipReason?: string;
  /** Called after each batch was acknowledged (kafka-influxdb's `-s` statistics). */
  onFlush?: (flush: FlushReport) => void;
  /** Batch caps. */
  batch: BatchLimits;
  /** Backoff between write attempts. */
  retry: BackoffOptions;
  /** Metrics to update. */
  metrics: Metrics;
  /** Logger. */
  log: Logger;
  /** Where rejected records are kept, if anywhere. */
  deadLetters?: DeadLetters;
  /** How long `stop()` may spend on the last batch. @default 30000 */
  shutdownTimeoutMs?: number;
  /** `/healthz` fails when work waits this long without progress. @default 120000 */
  stallTimeoutMs?: number;
  /** Milliseconds clock, injected by tests. */
  clock?: () => number;
  /** How often the age trigger is checked, in milliseconds. @default min(1000, maxAge/4) */
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

/** Running totals, for `--dry-run`'s summary and tests. */
export interface PipelineStats {
  /** Messages consumed. */
  messages: number;
  /** Records decoded. */
  records: number;
  /** Rows acknowledged by the sink. */
  written: number;
  /** Records set aside, by reason. */
  rejected: Record<string, number>;
  /** Records skipped on purpose (markers). */
  skipped: number;
  /** Batches written. */
  batches: number;
  /** Failed write attempts that were retried. */
  retries: number;
}

/** The longest `Retry-After` honoured when it exceeds `RETRY_BACKOFF_MAX`, in milliseconds. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** Thrown inside the write loop when a stop's deadline passed with rows unwritten. */
class ShutdownDeadline extends Error {
  constructor() {
    super("Cannot finish writing: the shutdown timeout passed");
    this.name = "ShutdownDeadline";
  }
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
  readonly #sinkName: string;
  #inFlight: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopping = false;
  #deadline = Infinity;
  readonly #abort = new AbortController();
  #lastProgress: number;
  readonly #startedAt: number;
  #lastFlush: number | undefined;
  #inFlightSince: number | undefined;
  #inFlightRows = 0;
  #failingSince: number | undefined;
  /** Offsets of acknowledged batches waiting for the sink's commit delay, oldest first. */
  readonly #delayed: Array<{ offsets: readonly CommitOffset[]; due: number }> = [];
  #commitChain: Promise<void> = Promise.resolve();
  /** Offsets whose commit failed, retried with the next commit. */
  #uncommitted = new Map<string, CommitOffset>();
  /** Set when a write was given up (a stop's deadline); ends the pipeline. */
  #writeError: unknown;
  /** Per-message counts not yet in the metrics; see #syncCounts(). */
  readonly #counts = {
    topic: undefined as string | undefined,
    messages: 0,
    records: 0,
    skipped: 0,
  };
  /** Rows of batches given up on at shutdown (never committed). */
  #abandonedRows = 0;
  readonly #stats: PipelineStats = {
    messages: 0,
    records: 0,
    written: 0,
    rejected: {},
    skipped: 0,
    batches: 0,
    retries: 0,
  };

  /** Running totals. */
  get stats(): PipelineStats {
    this.#syncCounts();
    return this.#stats;
  }

  /**
   * @param source Where messages come from.
   * @param options What the pipeline is built from.
   */
  constructor(source: MessageSource, options: PipelineOptions) {
    this.#source = source;
    this.#opts = options;
    this.#sink = options.sink;
    this.#sinkName = options.sink.name;
    this.#clock = options.clock ?? Date.now;
    this.#batcher = new Batcher(options.batch, this.#clock);
    this.#lastProgress = this.#clock();
    this.#startedAt = this.#lastProgress;
    options.metrics.sinkUp.set({ sink: this.#sinkName }, 1);
    options.metrics.beforeCollect(() => this.#syncCounts());
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
   * Flushes when the batch is due by age; called by the timer, and by tests.
   *
   * @returns Resolves when any write it started is done.
   */
  async tick(): Promise<void> {
    if (this.#delayed.length > 0 && !this.#stopping) await this.#commitDue(false);
    if (this.#inFlight || this.#stopping || !this.#batcher.isDue()) return;
    this.#dispatch("age");
    await this.settled();
  }

  /**
   * Waits until no write is in flight.
   *
   * @returns Resolves when the last write started has ended.
   */
  async settled(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  /**
   * Handles one message: decode, prepare, batch. A full batch starts writing
   * while the next one fills; the source is held (a promise is returned) only
   * when the next batch is full too, so at most two batches are in memory.
   *
   * @param message The message.
   * @returns A promise only when the source must wait.
   */
  handle(message: SourceMessage): void | Promise<void> {
    if (this.#writeError) return Promise.reject(this.#writeError);
    const decoded = this.#opts.decoder(message.value);
    const counts = this.#counts;
    if (counts.topic !== message.topic) this.#syncCounts(message.topic);
    counts.messages++;
    counts.records += decoded.records.length;
    counts.skipped += decoded.skipped;
    for (const error of decoded.errors) {
      this.#setAside(
        {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          index: error.index,
        },
        { reason: "decode", error: error.error },
        error.data ?? message.value,
      );
    }
    return this.#add(message, decoded.records, 0);
  }

  /** Prepares and batches records from `from` on; marks the message consumed at the end. */
  #add(
    message: SourceMessage,
    records: DecodeResult["records"],
    from: number,
  ): void | Promise<void> {
    for (let i = from; i < records.length; i++) {
      const { index, record } = records[i]!;
      const origin: RecordOrigin = {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        index,
      };
      const prepared = this.#sink.prepare(record, origin);
      if (!prepared.ok) {
        this.#setAside(origin, prepared.rejection, record);
        continue;
      }
      if (this.#batcher.wouldOverflow(prepared.bytes)) {
        const wait = this.#dispatch("bytes");
        // Record i is prepared again after the wait: prepare() is pure.
        if (wait) return wait.then(() => this.#add(message, records, i));
      }
      const due = this.#batcher.add({ row: prepared.row, bytes: prepared.bytes, origin });
      if (due) {
        const wait = this.#dispatch(due);
        if (wait) return wait.then(() => this.#add(message, records, i + 1));
      }
    }
    this.#batcher.markConsumed(message.topic, message.partition, message.offset);
  }

  /**
   * Stops: no more fetching, the last batch written and committed.
   *
   * @returns Whether everything consumed was written and committed.
   */
  async stop(): Promise<StopResult> {
    if (this.#stopping) return { clean: false, unwritten: this.#batcher.size };
    this.#stopping = true;
    clearInterval(this.#timer);
    const timeout = this.#opts.shutdownTimeoutMs ?? 30_000;
    this.#deadline = this.#clock() + timeout;
    const deadlineTimer = setTimeout(() => this.#abort.abort(), timeout);
    try {
      await this.#source.drain();
      await this.settled();
      if (!this.#batcher.empty) {
        await this.#dispatch("shutdown");
        await this.settled();
      }
      if (this.#writeError) throw this.#writeError;
      // Offsets held for the sink's commit delay: wait for the last one (a stop
      // that runs out of time leaves them uncommitted, to be read again).
      const last = this.#delayed.at(-1);
      if (last !== undefined) {
        await sleep(Math.max(0, last.due - this.#clock()), this.#abort.signal);
        if (this.#abort.signal.aborted) throw new ShutdownDeadline();
        await this.#commitDue(true);
      }
      await this.#commitChain;
      if (this.#uncommitted.size > 0) await this.#commit([]);
      return { clean: true, unwritten: 0 };
    } catch (error) {
      const unwritten = this.#batcher.size + this.#abandonedRows;
      this.#opts.log.error(
        "Stopped without writing every record; their offsets are not committed",
        {
          error,
          unwritten,
        },
      );
      return { clean: false, unwritten };
    } finally {
      clearTimeout(deadlineTimer);
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
    const oldest = this.#inFlightSince ?? this.#batcher.startedAt;
    const stalledFor = oldest === undefined ? 0 : now - Math.max(this.#lastProgress, oldest);
    const ok = stalledFor < stall;
    return {
      ok,
      detail: {
        sink: this.#sinkName,
        sink_failing_for_seconds: this.#failingSince === undefined
          ? 0
          : (now - this.#failingSince) / 1000,
        pending_rows: this.#batcher.size + this.#inFlightRows,
        seconds_since_progress: (now - this.#lastProgress) / 1000,
        stopping: this.#stopping,
      },
    };
  }

  /**
   * Starts writing the current batch. Returns nothing when the write could
   * start at once (it runs in the background), or a promise that resolves
   * once the write in flight ended and this one started. Writes never
   * overlap, so offsets are committed in order.
   */
  #dispatch(reason: FlushReason): Promise<void> | undefined {
    if (this.#writeError) return Promise.reject(this.#writeError);
    if (this.#inFlight) {
      return this.#inFlight.then(() => this.#dispatch(reason));
    }
    if (this.#batcher.empty) return undefined;
    this.#syncCounts();
    const batch = this.#batcher.take();
    this.#inFlightSince = batch.startedAt;
    this.#inFlightRows = batch.rows.length;
    this.#inFlight = this.#writeBatch(batch, reason).then(
      () => {},
      (error) => {
        // Only a stop's deadline ends a write early; stop() reports it.
        this.#abandonedRows += batch.rows.length;
        this.#writeError = error;
      },
    ).finally(() => {
      this.#inFlight = undefined;
      this.#inFlightSince = undefined;
      this.#inFlightRows = 0;
    });
    return undefined;
  }

  /** Moves the per-message counts into the metrics (per batch and per scrape, not per message). */
  #syncCounts(nextTopic?: string): void {
    const counts = this.#counts;
    const { metrics } = this.#opts;
    if (counts.topic !== undefined) {
      if (counts.messages > 0) metrics.messages.inc({ topic: counts.topic }, counts.messages);
      if (counts.records > 0) {
        metrics.received.inc({ topic: counts.topic }, counts.records);
        metrics.samples.inc(counts.records);
      }
    }
    if (counts.skipped > 0) {
      metrics.skipped.inc({ reason: this.#opts.skipReason ?? "marker" }, counts.skipped);
    }
    this.#stats.messages += counts.messages;
    this.#stats.records += counts.records;
    this.#stats.skipped += counts.skipped;
    counts.messages = 0;
    counts.records = 0;
    counts.skipped = 0;
    if (nextTopic !== undefined) counts.topic = nextTopic;
  }

  async #writeBatch(batch: Batch, reason: FlushReason): Promise<void> {
    const { metrics, log } = this.#opts;
    const started = this.#clock();
    if (batch.rows.length > 0) {
      const before = this.#stats.written;
      await this.#deliver(batch.rows);
      const seconds = (this.#clock() - started) / 1000;
      metrics.batchDuration.observe({ sink: this.#sinkName }, seconds);
      metrics.batchRows.observe({ sink: this.#sinkName }, batch.rows.length);
      metrics.batches.inc({ sink: this.#sinkName, outcome: "written" });
      metrics.lastWrite.set({ sink: this.#sinkName }, Date.now() / 1000);
      this.#stats.batches++;
      this.#reportFlush(batch.rows, this.#stats.written - before, seconds);
      log.debug("Wrote batch", {
        sink: this.#sinkName,
        reason,
        rows: batch.rows.length,
        written: this.#stats.written - before,
        bytes: batch.bytes,
        seconds,
      });
    } else {
      metrics.batches.inc({ sink: this.#sinkName, outcome: "empty" });
    }
    const delay = this.#sink.commitDelayMs ?? 0;
    if (delay > 0) {
      this.#delayed.push({ offsets: batch.offsets, due: this.#clock() + delay });
      await this.#commitDue(false);
    } else await this.#serialCommit(batch.offsets);
    this.#lastProgress = this.#clock();
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
        origin.partition !== last.partition ||
        origin.topic !== last.topic
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

  /**
   * Commits the delayed offsets whose time has come (or all of them), in
   * order; a later offset of a partition supersedes an earlier one.
   */
  #commitDue(all: boolean): Promise<void> {
    const now = this.#clock();
    const ready = all ? this.#delayed.length : this.#delayed.findIndex((d) => d.due > now);
    const count = ready === -1 ? this.#delayed.length : ready;
    if (count === 0) return Promise.resolve();
    const offsets = this.#delayed.splice(0, count).flatMap((d) => d.offsets);
    return this.#serialCommit(offsets);
  }

  /** Commits one after the other: the timer and the write path may both commit. */
  #serialCommit(offsets: readonly CommitOffset[]): Promise<void> {
    const next = this.#commitChain.then(() => this.#commit(offsets));
    this.#commitChain = next;
    return next;
  }

  /**
   * Commits offsets, with those of earlier failed commits (a later offset of
   * the same partition supersedes). A failed commit is kept for the next
   * one: the rows are written, so the worst case is reading them again.
   */
  async #commit(offsets: readonly CommitOffset[]): Promise<void> {
    const { metrics, log } = this.#opts;
    const merged = new Map(this.#uncommitted);
    for (const o of offsets) merged.set(`${o.topic}\u0000${o.partition}`, o);
    if (merged.size === 0) return;
    try {
      await this.#source.commit([...merged.values()]);
      this.#uncommitted.clear();
      metrics.commits.inc({ outcome: "ok" });
    } catch (error) {
      this.#uncommitted = merged;
      metrics.commits.inc({ outcome: "failed" });
      log.warn("Cannot commit offsets; retrying with the next batch", {
        error,
        partitions: merged.size,
      });
    }
  }

  /** Writes rows until acknowledged, retrying and splitting as the sink's errors say. */
  async #deliver(rows: readonly PreparedRow[]): Promise<void> {
    const { metrics, log, retry } = this.#opts;
    let pending = rows;
    let attempt = 0;
    while (pending.length > 0) {
      let error: SinkWriteError;
      try {
        const result = await this.#sink.write(pending);
        this.#markUp();
        for (const { index, rejection } of result.rejected) {
          const row = pending[index];
          if (row) this.#setAside(row.origin, rejection, row.row);
        }
        const written = pending.length - result.rejected.length - result.retry.length;
        this.#stats.written += written;
        metrics.written.inc({ sink: this.#sinkName }, written);
        if (result.retry.length === 0) return;
        pending = result.retry.flatMap((i) => pending[i] ?? []);
        error = new SinkWriteError(`Sink asked to send ${pending.length} rows again`, {
          action: "retry",
          errorType: "partial",
        });
      } catch (caught) {
        error = caught instanceof SinkWriteError
          ? caught
          : new SinkWriteError(`Cannot write to ${this.#sinkName}: ${String(caught)}`, {
            action: "retry",
            errorType: "unknown",
            cause: caught,
          });
      }
      if (error.action === "split") {
        metrics.splits.inc({ sink: this.#sinkName });
        if (pending.length === 1) {
          const row = pending[0]!;
          this.#setAside(row.origin, { reason: "server", error: error.message }, row.row);
          return;
        }
        const middle = Math.ceil(pending.length / 2);
        await this.#deliver(pending.slice(0, middle));
        await this.#deliver(pending.slice(middle));
        return;
      }
      attempt++;
      this.#stats.retries++;
      metrics.retries.inc({ sink: this.#sinkName, error_type: error.errorType });
      metrics.sinkUp.set({ sink: this.#sinkName }, 0);
      this.#failingSince ??= this.#clock();
      if (this.#abort.signal.aborted || this.#clock() >= this.#deadline) {
        throw new ShutdownDeadline();
      }
      // A backend's Retry-After wins over a shorter backoff, bounded so that a
      // bogus header cannot hold the pipeline for hours (RFC 9110 10.2.3).
      const delay = Math.max(
        backoffDelay(attempt, retry),
        Math.min(error.retryAfterMs ?? 0, Math.max(retry.maxMs, MAX_RETRY_AFTER_MS)),
      );
      log.limited(`retry:${this.#sinkName}`, "warn", "Cannot write batch, retrying", {
        sink: this.#sinkName,
        rows: pending.length,
        attempt,
        retry_in_seconds: delay / 1000,
        error,
      });
      await this.#waitWithHeartbeats(delay);
    }
  }

  /** Sleeps in slices, keeping the consumer group membership alive. */
  async #waitWithHeartbeats(ms: number): Promise<void> {
    for (let left = ms; left > 0 && !this.#abort.signal.aborted; left -= 2000) {
      await this.#source.heartbeat();
      await sleep(Math.min(left, 2000), this.#abort.signal);
    }
  }

  #markUp(): void {
    if (this.#failingSince !== undefined) {
      this.#opts.log.info("Sink is writing again", {
        sink: this.#sinkName,
        after_seconds: (this.#clock() - this.#failingSince) / 1000,
      });
      this.#failingSince = undefined;
    }
    this.#opts.metrics.sinkUp.set({ sink: this.#sinkName }, 1);
  }

  #setAside(origin: RecordOrigin, rejection: Rejection, data: unknown): void {
    const { metrics, log, deadLetters } = this.#opts;
    this.#stats.rejected[rejection.reason] = (this.#stats.rejected[rejection.reason] ?? 0) + 1;
    metrics.rejected.inc({ sink: this.#sinkName, reason: rejection.reason });
    log.limited(`reject:${rejection.reason}`, "warn", "Record set aside", {
      reason: rejection.reason,
      error: rejection.error,
      topic: origin.topic,
      partition: origin.partition,
      offset: origin.offset,
      index: origin.index,
    });
    deadLetters?.add(origin, rejection, data);
  }
}
