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
 * Rebalances. After every join of the consumer group the client reads each
 * partition again from its committed offset. A message of a partition this
 * member kept, at or before the last one it already batched, is skipped
 * (its rows are batched or written); the unwritten rows of a partition it
 * lost are dropped (the new owner reads them), and their offsets are no
 * longer committed (the new owner's commits must not be overwritten).
 *
 * Pinned ranges (effectively once, for sinks with `pinsRanges`). Before a
 * batch is written, each of its partitions' range of rows (first and last
 * position: offset and index in the message) is committed as the metadata
 * of the offset where the range starts (`lib/ranges.ts`); the write carries
 * a token made from the same range, and the sink stores a range written
 * twice once. After the write the batch's offsets are committed as usual,
 * which clears the pins. When a member starts on a partition whose
 * committed offset carries a pin (a crash, a kill, a rebalance between the
 * pin and the commit), it forms that range again exactly: rows before its
 * first position are skipped, the batch is not cut by the caps or the age
 * until the range is complete (the caps are four times as large meanwhile), and it is
 * cut right after the range's last row. The write then carries the same
 * token, so a write that had landed is not stored twice.
 *
 * @module
 */

import type { Batch, FlushReason } from "../batcher.ts";
import { Batcher } from "../batcher.ts";
import type { DeadLetters } from "../dead_letter.ts";
import type { Decoder, Predecoded } from "../decoder.ts";
import type { Logger } from "../log.ts";
import type { Health, Metrics } from "../metrics.ts";
import type { PreparedRow, RecordOrigin } from "../record.ts";
import type { RetryPolicy } from "../retry.ts";
import type { BatchLimits, Sink } from "../sink.ts";
import {
  comparePositions,
  formatPin,
  parsePin,
  partitionRows,
  type Pin,
  type RowPosition,
} from "../ranges.ts";
import {
  type AssignedOptions,
  type CommitOffset,
  type MessageSource,
  partitionKey,
  type SourceMessage,
  type TopicPartition,
} from "../source.ts";
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
  /** Messages of which a part could not be decoded: their records are not the whole message. */
  readonly #partial = new WeakSet<SourceMessage>();
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
  /** Per partition ({@link partitionKey}), the offset of the last message batched. */
  readonly #positions = new Map<string, string>();
  /**
   * Per partition kept through a rejoin, the last offset batched before it:
   * the client reads from the committed offset again, and messages up to
   * this one are skipped. Only there until the first message past it.
   */
  readonly #redelivery = new Map<string, bigint>();
  /** Pinned ranges being formed again, per partition. */
  readonly #pins = new Map<string, Required<Pin>>();
  /** Where a partition's rows start again after a restart: rows before were written. */
  readonly #starts = new Map<string, RowPosition>();
  /** Partitions whose pinned range has rows in the batch but is not complete yet. */
  readonly #openPins = new Set<string>();
  /** The partitions this member holds; `undefined` until the source says (then: all). */
  #assigned: Set<string> | undefined;
  /** Counts joins as a new member: a batch taken in an earlier one is stale. */
  #epoch = 0;

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
      holds: (key) => this.#holds(key),
      delayMs: () => options.sink.commitDelayMs ?? 0,
      clock: this.#clock,
      stored: options.deadLetters
        ? () => options.deadLetters!.stored(this.#deadline.signal)
        : undefined,
    });
    metrics.beforeCollect(() => this.#tally.sync());
    metrics.watchRows(() => ({ pending: this.#batcher.size, inFlight: this.#writingRows }));
  }

  /** Running totals. */
  get stats(): PipelineStats {
    return this.#tally.stats;
  }

  /** Rows consumed and not acknowledged yet: batched, or being written. */
  get pendingRows(): number {
    return this.#batcher.size + this.#writingRows;
  }

  /**
   * Starts consuming; the age trigger runs on a timer.
   *
   * @returns Resolves once the source runs.
   */
  async start(): Promise<void> {
    const tick = this.#opts.tickMs ?? Math.max(10, Math.min(1000, this.#opts.batch.maxAgeMs / 4));
    this.#timer = setInterval(() => void this.tick(), tick);
    await this.#source.start((message) => this.handle(message), {
      assigned: (partitions, options) => this.assigned(partitions, options),
    });
  }

  /**
   * Commits held offsets that are due, and flushes the batch when it is due
   * by age; called by the timer, and by tests.
   *
   * @returns Resolves when any write it started is done.
   */
  async tick(): Promise<void> {
    // A write in flight holds the consumer's loop, which heartbeats only
    // between fetches: the group must not take it for dead (KAFKA_SESSION_TIMEOUT).
    if (this.#writing) void this.#source.heartbeat();
    if (this.#commits.holding && !this.#stopping) await this.#commits.commitDue();
    if (this.#commits.failing && !this.#writing && !this.#stopping) {
      await this.#commits.retryFailed();
    }
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
    const key = partitionKey(message);
    if (message.resume !== undefined) this.#resume(key, message);
    const upTo = this.#redelivery.get(key);
    if (upTo !== undefined) {
      if (BigInt(message.offset) <= upTo) {
        this.#opts.metrics.redelivered.inc({ topic: message.topic });
        return;
      }
      this.#redelivery.delete(key);
    }
    const letters = this.#opts.deadLetters;
    const lettersBefore = letters?.added ?? 0;
    const decoded: Predecoded = message.decoded ?? this.#opts.decoder(message.value);
    this.#tally.message(message.topic, decoded, message.value?.byteLength ?? 0);
    if (decoded.errors.length > 0) this.#partial.add(message);
    for (const error of decoded.errors) {
      this.#tally.setAside(
        originOf(message, error.index),
        { reason: "decode", error: error.error },
        error.data ?? message.value,
        error.data === undefined ? "message" : "record",
        message.value,
      );
    }
    const held = this.#batch(message, key, decoded.records, 0);
    // This message added letters while too many wait (their topic is down): wait for room.
    if (letters !== undefined && letters.added !== lettersBefore && letters.full) {
      return Promise.resolve(held).then(() => letters.room());
    }
    return held;
  }

  /**
   * Prepares and batches the records of a message from `from` on, and marks
   * the message consumed once all of them are in. Returns a promise only
   * when a full batch must wait for the write in flight; the rest of the
   * message is then batched after it.
   */
  #batch(
    message: SourceMessage,
    key: string,
    records: Predecoded["records"],
    from: number,
  ): void | Promise<void> {
    let pin = this.#pins.get(key);
    const start = this.#starts.get(key);
    if (start !== undefined && BigInt(message.offset) >= BigInt(start.offset)) {
      this.#starts.delete(key);
    }
    if (pin !== undefined && BigInt(message.offset) > BigInt(pin.to.offset)) {
      // The pinned range ended with a message that is not there (compaction).
      const wait = this.#closePin(key);
      if (wait) return this.#batchAfter(wait, message, key, records, from);
      pin = undefined;
    }
    for (let i = from; i < records.length; i++) {
      const entry = records[i]!;
      const index = entry.index;
      const at: RowPosition = { offset: message.offset, index };
      // Rows before the start (of a pinned range, or after a batch that
      // ended inside this message) were written by an earlier batch.
      if (start !== undefined && comparePositions(at, start) < 0) continue;
      const origin = originOf(message, index);
      // A decode worker may have prepared it already (lib/workers.ts).
      const prepared = entry.record === undefined
        ? entry.prepared
        : entry.prepared ?? this.#sink.prepare(entry.record, origin);
      if (!prepared.ok) {
        const record = entry.record;
        // A message that is this one record goes to a dead-letter topic as it came.
        const whole = records.length === 1 && !this.#partial.has(message);
        this.#tally.setAside(
          origin,
          prepared.rejection,
          record,
          whole ? "message" : "record",
          whole ? message.value : undefined,
        );
        continue;
      }
      if (this.#batcher.wouldOverflow(prepared.bytes)) {
        const wait = this.#flush("bytes");
        // Record i is prepared again after the wait: prepare() is pure.
        if (wait) return this.#batchAfter(wait, message, key, records, i);
      }
      if (pin !== undefined && !this.#openPins.has(key)) {
        this.#openPins.add(key);
        this.#batcher.held = true;
      }
      let due: FlushReason | undefined = this.#batcher.add({
        row: prepared.row,
        bytes: prepared.bytes,
        origin,
      });
      let only: string | undefined;
      if (pin !== undefined && comparePositions(at, pin.to) >= 0) {
        this.#pins.delete(key);
        this.#holdFor(key);
        pin = undefined;
        // The range goes out alone: other partitions' pinned ranges in this
        // batch may not be complete yet.
        due = "pin";
        only = key;
      }
      if (due) {
        // A message whose last row fills the batch goes out with it, so its
        // offset is committed with this batch and not one batch late.
        const last = i === records.length - 1;
        if (last) this.#consumed(message, key);
        const wait = this.#flush(due, only);
        if (wait) return this.#batchAfter(wait, message, key, records, i + 1, last);
        if (last) return;
      }
    }
    this.#consumed(message, key);
  }

  /** Marks a message consumed: every record of it is batched or set aside. */
  #consumed(message: SourceMessage, key: string): void {
    this.#batcher.markConsumed(message.topic, message.partition, message.offset, message.timestamp);
    this.#positions.set(key, message.offset);
    // A message the source gave up waiting for (its group was lost) is
    // taken after the rejoin: when the client reads it again, it is skipped.
    const upTo = this.#redelivery.get(key);
    if (upTo !== undefined && BigInt(message.offset) > upTo) {
      this.#redelivery.set(key, BigInt(message.offset));
    }
  }

  /**
   * Reads where the group left a partition this member just got: a pin is
   * formed again when the committed offset is where the pinned range starts.
   */
  #resume(key: string, message: SourceMessage): void {
    // A partition this member kept through a rejoin: what it holds in
    // memory (a pinned range half formed again, say) is the truth.
    if (this.#positions.has(key)) return;
    this.#pins.delete(key);
    this.#starts.delete(key);
    const { resume } = message;
    this.#opts.log.debug("Starting a partition", {
      topic: message.topic,
      partition: message.partition,
      first_offset: message.offset,
      committed: resume?.offset,
      metadata: resume?.metadata,
    });
    const pin = parsePin(resume?.metadata);
    if (pin !== undefined && resume?.offset === pin.from.offset) {
      this.#starts.set(key, pin.from);
      if (pin.to !== undefined && this.#sink.pinsRanges) {
        this.#pins.set(key, { from: pin.from, to: pin.to });
        this.#opts.log.info("Forming a pinned range again", {
          topic: message.topic,
          partition: message.partition,
          from: `${pin.from.offset}.${pin.from.index}`,
          to: `${pin.to.offset}.${pin.to.index}`,
        });
      }
    } else if (resume?.offset !== undefined && BigInt(resume.offset) > BigInt(message.offset)) {
      // The client reads from an offset it resolved earlier, and the group
      // has a later one now (the last commit of the member that had the
      // partition, landed after that): rows before it are written.
      this.#starts.set(key, { offset: resume.offset, index: 0 });
    }
    this.#holdFor(key);
  }

  /** Closes a partition's open pin when its pin is gone; the batcher is held while any is open. */
  #holdFor(key: string): void {
    if (!this.#pins.has(key)) this.#openPins.delete(key);
    this.#batcher.held = this.#openPins.size > 0;
  }

  /** Ends a pinned range whose last row never came: the batch goes out as it is. */
  #closePin(key: string): Promise<void> | undefined {
    this.#pins.delete(key);
    this.#holdFor(key);
    return this.#flush("pin", key);
  }

  /**
   * Takes note of the partitions this member holds after a (re)join: the
   * unwritten rows of the others are dropped, their positions and pins
   * forgotten, and their offsets no longer committed.
   *
   * After a join as a new member (`rejoined`), nothing from before is kept:
   * every batched row is dropped, the batch being written is not written
   * or committed (unless its write had started), and every partition
   * starts from what the group committed, pins included.
   *
   * @param partitions The partitions held now.
   * @param options Whether this member had been out of the group.
   */
  assigned(partitions: readonly TopicPartition[], options: AssignedOptions = {}): void {
    if (options.rejoined) {
      this.#epoch++;
      const rows = this.#batcher.size;
      this.assigned([]);
      this.#opts.log.warn(
        "Rejoined the consumer group as a new member; what was read before is read again",
        { dropped_rows: rows },
      );
    }
    const held = new Set(partitions.map(partitionKey));
    this.#assigned = held;
    const known = [...this.#positions.keys(), ...this.#pins.keys(), ...this.#batcher.partitions()];
    for (const key of new Set(known)) {
      if (held.has(key)) {
        const position = this.#positions.get(key);
        if (position !== undefined) this.#redelivery.set(key, BigInt(position));
        continue;
      }
      const dropped = this.#batcher.dropPartition(key);
      if (dropped > 0) {
        const [topic, partition] = key.split("\u0000");
        this.#opts.log.info("Dropped the unwritten rows of a partition this member lost", {
          topic,
          partition: Number(partition),
          rows: dropped,
        });
      }
      this.#positions.delete(key);
      this.#redelivery.delete(key);
      this.#pins.delete(key);
      this.#starts.delete(key);
      this.#openPins.delete(key);
    }
    this.#batcher.held = this.#openPins.size > 0;
    this.#commits.keepOnly((key) => held.has(key));
  }

  /**
   * At a stop, leaves the rows of a pinned range still being formed again
   * unwritten: written now, they would carry another token than the whole
   * range had, and be stored twice. Their offsets were not committed past
   * the pin, so the next start forms the same range.
   */
  #leaveOpenPins(): void {
    for (const key of this.#openPins) {
      const rows = this.#batcher.dropPartition(key);
      const [topic, partition] = key.split("\u0000");
      this.#opts.log.info("Left a pinned range unfinished at stop; the next start forms it again", {
        topic,
        partition: Number(partition),
        rows,
      });
    }
    this.#openPins.clear();
    this.#batcher.held = false;
  }

  async #batchAfter(
    wait: Promise<void>,
    message: SourceMessage,
    key: string,
    records: Predecoded["records"],
    from: number,
    consumed = false,
  ): Promise<void> {
    const epoch = this.#epoch;
    await wait;
    if (consumed) return;
    // The group was joined again meanwhile (the source gave up waiting):
    // as a new member, or without this partition, the rest is read again.
    if (epoch !== this.#epoch || !this.#holds(key)) return;
    await this.#batch(message, key, records, from);
  }

  /**
   * Starts writing the current batch in the background. Writes never
   * overlap, so offsets are committed in order: when one is in flight, the
   * returned promise resolves once it ended and this one started.
   */
  #flush(reason: FlushReason, only?: string): Promise<void> | undefined {
    if (this.#givenUp !== undefined) return Promise.reject(this.#givenUp);
    if (this.#writing !== undefined) return this.#flushAfterWrite(reason, only);
    if (this.#batcher.empty) return undefined;
    this.#tally.sync();
    const batch = this.#batcher.take(only);
    const epoch = this.#epoch;
    this.#writingSince = batch.startedAt;
    this.#writingRows = batch.rows.length;
    this.#writing = this.#write(batch, reason, () => epoch !== this.#epoch).catch((error) => {
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

  async #flushAfterWrite(reason: FlushReason, only?: string): Promise<void> {
    await this.settled();
    await this.#flush(reason, only);
  }

  /**
   * Delivers a batch, reports it, and commits (or holds) its offsets. A
   * batch taken before this member rejoined the group as a new member is
   * `stale`: not written (unless its write had started) nor committed.
   */
  async #write(batch: Batch, reason: FlushReason, stale: () => boolean): Promise<void> {
    const { metrics, log } = this.#opts;
    const sink = this.#sink.name;
    const started = this.#clock();
    if (this.#sink.pinsRanges && batch.rows.length > 0) await this.#pin(batch, stale);
    if (stale()) batch.rows = [];
    if (batch.rows.length > 0) {
      const before = this.#tally.stats.written;
      await this.#delivery.deliver(batch.rows, this.#deadline.signal);
      const written = this.#tally.stats.written - before;
      const seconds = (this.#clock() - started) / 1000;
      metrics.batchDuration.observe({ sink }, seconds);
      metrics.batchRows.observe({ sink }, batch.rows.length);
      metrics.batches.inc({ sink, outcome: "written" });
      metrics.lastWrite.set({ sink }, Date.now() / 1000);
      this.#reportLag(batch);
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
    if (!stale()) {
      await this.#commits.acknowledged(batch.offsets.filter((o) => this.#holds(partitionKey(o))));
    }
    this.#lastProgress = this.#clock();
  }

  /** Whether this member holds a partition (all, until the source said otherwise). */
  #holds(key: string): boolean {
    return this.#assigned === undefined || this.#assigned.has(key);
  }

  /**
   * Commits the batch's pins, retrying until the group has them; rows of a
   * partition lost meanwhile are taken out of the batch (its new owner
   * writes them).
   */
  async #pin(batch: Batch, stale: () => boolean): Promise<void> {
    const { retry, log } = this.#opts;
    const signal = this.#deadline.signal;
    for (let attempt = 1;; attempt++) {
      batch.rows = stale() ? [] : batch.rows.filter((r) => this.#holds(partitionKey(r.origin)));
      const pins: CommitOffset[] = partitionRows(batch.rows).map((range) => ({
        topic: range.topic,
        partition: range.partition,
        offset: range.from.offset,
        metadata: formatPin(range),
      }));
      if (pins.length === 0) return;
      if (await this.#commits.pin(pins)) {
        // A partition lost while its pin waited for earlier commits was left
        // out of the commit: its rows are its new owner's to write.
        batch.rows = stale() ? [] : batch.rows.filter((r) => this.#holds(partitionKey(r.origin)));
        return;
      }
      if (signal.aborted) throw signal.reason;
      const delay = retry.delay(attempt);
      log.limited("pin", "warn", "Cannot record the batch's ranges before writing; retrying", {
        attempt,
        retry_in_seconds: delay / 1000,
      });
      await retry.wait(delay, { signal, heartbeat: () => this.#source.heartbeat() });
      if (signal.aborted) throw signal.reason;
    }
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
      this.#leaveOpenPins();
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
    const ok = stalledFor < stall;
    return {
      ok,
      ...(ok ? {} : {
        reason: `records have waited ${Math.round(stalledFor / 1000)} s without a successful ` +
          `write (HEALTH_STALL_TIMEOUT ${stall / 1000} s)`,
      }),
      detail: {
        sink: this.#sink.name,
        sink_failing_for_seconds: failingSince === undefined ? 0 : (now - failingSince) / 1000,
        pending_rows: this.#batcher.size + this.#writingRows,
        seconds_since_progress: (now - this.#lastProgress) / 1000,
        stopping: this.#stopping,
      },
    };
  }

  /**
   * Sets `sluice_end_to_end_lag_seconds` of each topic of an acknowledged
   * batch: now minus the Kafka timestamp of its newest message consumed into
   * the batch, of the partitions this member still holds.
   */
  #reportLag(batch: Batch): void {
    if (batch.timestamps.length === 0) return;
    const newest = new Map<string, number>();
    for (const { topic, partition, timestamp } of batch.timestamps) {
      if (!this.#holds(partitionKey({ topic, partition }))) continue;
      const before = newest.get(topic);
      if (before === undefined || timestamp > before) newest.set(topic, timestamp);
    }
    const now = this.#clock();
    for (const [topic, timestamp] of newest) {
      this.#opts.metrics.endToEndLag.set({ topic }, (now - timestamp) / 1000);
    }
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
  const { topic, partition, offset, key } = message;
  return key ? { topic, partition, offset, index, key } : { topic, partition, offset, index };
}
