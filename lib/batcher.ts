/**
 * Accumulates prepared rows until a flush is due: the row cap, the byte cap,
 * or the age of the oldest entry, whichever comes first.
 *
 * It also tracks, per partition, the offset after the last message whose
 * records are all in this batch (or were set aside), so that committing the
 * batch's offsets after the sink acknowledged it never skips a record.
 *
 * While it is held (a pinned range is being formed again, see
 * `lib/pipeline/mod.ts`), the caps are four times as large and the age cap
 * waits: the range must go out whole, as it was first written (it fitted
 * the caps then, but other partitions' rows may come in between now).
 *
 * @module
 */

import { formatPin } from "./ranges.ts";
import type { PreparedRow } from "./record.ts";
import { type CommitOffset, partitionKey } from "./source.ts";
import type { BatchLimits } from "./sink.ts";

/** A batch taken out of the batcher for writing. */
export interface Batch<Row = unknown> {
  /** The rows, in consumption order. */
  rows: PreparedRow<Row>[];
  /** Encoded size of the rows. */
  bytes: number;
  /** Offsets to commit once the rows are written. */
  offsets: CommitOffset[];
  /**
   * Per partition, the Kafka timestamp (milliseconds since the epoch) of the
   * newest message consumed into this batch, where the source gives them.
   */
  timestamps: Array<{ topic: string; partition: number; timestamp: number }>;
  /** When the first entry arrived (clock milliseconds). */
  startedAt: number;
}

/** Why a batch is due. */
export type FlushReason = "rows" | "bytes" | "age" | "shutdown" | "pin";

/** A partition's consumed offset, and the newest Kafka timestamp of its messages consumed. */
interface Consumed extends CommitOffset {
  newest: number | undefined;
}

/** Collects rows and offsets; the pipeline decides when to take a batch. */
export class Batcher<Row = unknown> {
  readonly #limits: BatchLimits;
  readonly #clock: () => number;
  #rows: PreparedRow<Row>[] = [];
  #bytes = 0;
  #offsets = new Map<string, Consumed>();
  #startedAt: number | undefined;
  /** Whether a pinned range is incomplete (see the module documentation). */
  held = false;

  /**
   * @param limits The caps.
   * @param clock Milliseconds clock, injected by tests.
   */
  constructor(limits: BatchLimits, clock: () => number = Date.now) {
    this.#limits = limits;
    this.#clock = clock;
  }

  /** Number of rows waiting. */
  get size(): number {
    return this.#rows.length;
  }

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether nothing waits: no rows and no offsets to commit. */
  get empty(): boolean {
    return this.#rows.length === 0 && this.#offsets.size === 0;
  }

  /** Clock time of the oldest entry, if any. */
  get startedAt(): number | undefined {
    return this.#startedAt;
  }

  /**
   * Whether adding a row of this size must wait for a flush first, so that
   * the batch stays under the byte cap (a single oversized row still goes
   * alone in a batch of its own).
   *
   * @param bytes The row's size.
   * @returns `true` when the current rows should be flushed first.
   */
  wouldOverflow(bytes: number): boolean {
    return this.#rows.length > 0 && this.#bytes + bytes > this.#cap().maxBytes;
  }

  /**
   * Adds a row.
   *
   * @param row The prepared row.
   * @returns Why the batch is now due, or `undefined` when it is not.
   */
  add(row: PreparedRow<Row>): FlushReason | undefined {
    this.#startedAt ??= this.#clock();
    this.#rows.push(row);
    this.#bytes += row.bytes;
    const cap = this.#cap();
    if (this.#rows.length >= cap.maxRows) return "rows";
    if (this.#bytes >= cap.maxBytes) return "bytes";
    return undefined;
  }

  /**
   * Takes out the rows and offsets of a partition this member no longer
   * holds: its new owner reads them again from the committed offset.
   *
   * @param key The partition ({@link partitionKey}).
   * @returns How many rows were dropped.
   */
  dropPartition(key: string): number {
    const dropped = this.#split(key);
    return dropped.rows.length;
  }

  /**
   * The partitions that have rows or offsets here.
   *
   * @returns Their keys ({@link partitionKey}).
   */
  partitions(): Set<string> {
    const keys = new Set(this.#offsets.keys());
    for (const { origin } of this.#rows) keys.add(partitionKey(origin));
    return keys;
  }

  /**
   * Takes one partition's rows and consumed offset out; the others stay.
   *
   * @param key The partition ({@link partitionKey}).
   * @returns What was taken out.
   */
  #split(
    key: string,
  ): { rows: PreparedRow<Row>[]; bytes: number; offsets: Map<string, Consumed> } {
    const rows: PreparedRow<Row>[] = [];
    const rest: PreparedRow<Row>[] = [];
    for (const row of this.#rows) (partitionKey(row.origin) === key ? rows : rest).push(row);
    const bytes = rows.reduce((n, r) => n + r.bytes, 0);
    this.#rows = rest;
    this.#bytes -= bytes;
    const consumed = this.#offsets.get(key);
    this.#offsets.delete(key);
    if (rest.length === 0 && this.#offsets.size === 0) this.#startedAt = undefined;
    return { rows, bytes, offsets: new Map(consumed === undefined ? [] : [[key, consumed]]) };
  }

  /** The caps in force: four times as large while held. */
  #cap(): { maxRows: number; maxBytes: number } {
    const { maxRows, maxBytes } = this.#limits;
    return this.held ? { maxRows: maxRows * 4, maxBytes: maxBytes * 4 } : { maxRows, maxBytes };
  }

  /**
   * Records that every record of a message is in the batch or was set aside.
   *
   * @param topic Topic.
   * @param partition Partition.
   * @param offset The message's offset.
   * @param timestamp The message's Kafka timestamp, if the source gives one.
   */
  markConsumed(topic: string, partition: number, offset: string, timestamp?: number): void {
    this.#startedAt ??= this.#clock();
    // Kept as the consumed offset; the +1 (in BigInt, offsets are 64-bit) is done once in take().
    const key = partitionKey({ topic, partition });
    const entry = this.#offsets.get(key);
    if (entry) {
      entry.offset = offset;
      // CreateTime is the producer's: not always in offset order.
      if (timestamp !== undefined && (entry.newest === undefined || timestamp > entry.newest)) {
        entry.newest = timestamp;
      }
    } else this.#offsets.set(key, { topic, partition, offset, newest: timestamp });
  }

  /**
   * Whether the oldest entry has waited for the age cap.
   *
   * @returns `true` when a flush is due by age.
   */
  isDue(): boolean {
    return !this.held && this.#startedAt !== undefined &&
      this.#clock() - this.#startedAt >= this.#limits.maxAgeMs;
  }

  /**
   * Milliseconds until the age cap is reached, or `undefined` when empty.
   *
   * @returns The remaining time, at least 0.
   */
  msUntilDue(): number | undefined {
    if (this.#startedAt === undefined) return undefined;
    return Math.max(0, this.#startedAt + this.#limits.maxAgeMs - this.#clock());
  }

  /**
   * Takes everything out, leaving the batcher empty; or, with `only`, one
   * partition's rows and offsets (a pinned range that is complete), leaving
   * the others.
   *
   * @param only The partition to take alone ({@link partitionKey}).
   * @returns The batch.
   */
  take(only?: string): Batch<Row> {
    const startedAt = this.#startedAt ?? this.#clock();
    let taken = { rows: this.#rows, bytes: this.#bytes, offsets: this.#offsets };
    if (only !== undefined) taken = this.#split(only);
    else {
      this.#rows = [];
      this.#bytes = 0;
      this.#offsets = new Map();
      this.#startedAt = undefined;
    }
    const rows = taken.rows;
    const offsets = new Map<string, CommitOffset>();
    const timestamps: Batch["timestamps"] = [];
    for (const [key, o] of taken.offsets) {
      const { topic, partition, newest } = o;
      offsets.set(key, { topic, partition, offset: (BigInt(o.offset) + 1n).toString() });
      if (newest !== undefined) timestamps.push({ topic, partition, timestamp: newest });
    }
    // A batch that ends inside a message (kafka_multi_values) commits that
    // message's offset with where its next row is, so that a restart skips
    // the rows of it this batch wrote.
    const last = new Map<string, PreparedRow<Row>>();
    for (const row of rows) last.set(partitionKey(row.origin), row);
    for (const [key, { origin }] of last) {
      const consumed = taken.offsets.get(key);
      if (consumed !== undefined && BigInt(origin.offset) <= BigInt(consumed.offset)) continue;
      offsets.set(key, {
        topic: origin.topic,
        partition: origin.partition,
        offset: origin.offset,
        metadata: formatPin({ from: { offset: origin.offset, index: origin.index + 1 } }),
      });
    }
    return {
      rows,
      bytes: taken.bytes,
      offsets: [...offsets.values()],
      timestamps,
      startedAt,
    };
  }
}
