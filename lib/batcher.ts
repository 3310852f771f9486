/**
 * Accumulates prepared rows until a flush is due: the row cap, the byte cap,
 * or the age of the oldest entry, whichever comes first.
 *
 * It also tracks, per partition, the offset after the last message whose
 * records are all in this batch (or were set aside), so that committing the
 * batch's offsets after the sink acknowledged it never skips a record.
 *
 * @module
 */

import type { PreparedRow } from "./record.ts";
import type { CommitOffset } from "./source.ts";
import type { BatchLimits } from "./sink.ts";

/** A batch taken out of the batcher for writing. */
export interface Batch<Row = unknown> {
  /** The rows, in consumption order. */
  rows: PreparedRow<Row>[];
  /** Encoded size of the rows. */
  bytes: number;
  /** Offsets to commit once the rows are written. */
  offsets: CommitOffset[];
  /** When the first entry arrived (clock milliseconds). */
  startedAt: number;
}

/** Why a batch is due. */
export type FlushReason = "rows" | "bytes" | "age" | "shutdown";

/** Collects rows and offsets; the pipeline decides when to take a batch. */
export class Batcher<Row = unknown> {
  readonly #limits: BatchLimits;
  readonly #clock: () => number;
  #rows: PreparedRow<Row>[] = [];
  #bytes = 0;
  #offsets = new Map<string, CommitOffset>();
  #startedAt: number | undefined;

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
    return this.#rows.length > 0 && this.#bytes + bytes > this.#limits.maxBytes;
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
    if (this.#rows.length >= this.#limits.maxRows) return "rows";
    if (this.#bytes >= this.#limits.maxBytes) return "bytes";
    return undefined;
  }

  /**
   * Records that every record of a message is in the batch or was set aside.
   *
   * @param topic Topic.
   * @param partition Partition.
   * @param offset The message's offset.
   */
  markConsumed(topic: string, partition: number, offset: string): void {
    this.#startedAt ??= this.#clock();
    // Kept as the consumed offset; the +1 (in BigInt, offsets are 64-bit) is done once in take().
    const key = `${topic}\u0000${partition}`;
    const entry = this.#offsets.get(key);
    if (entry) entry.offset = offset;
    else this.#offsets.set(key, { topic, partition, offset });
  }

  /**
   * Whether the oldest entry has waited for the age cap.
   *
   * @returns `true` when a flush is due by age.
   */
  isDue(): boolean {
    return this.#startedAt !== undefined &&
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
   * Takes everything out, leaving the batcher empty.
   *
   * @returns The batch.
   */
  take(): Batch<Row> {
    const batch: Batch<Row> = {
      rows: this.#rows,
      bytes: this.#bytes,
      offsets: [...this.#offsets.values()].map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: (BigInt(o.offset) + 1n).toString(),
      })),
      startedAt: this.#startedAt ?? this.#clock(),
    };
    this.#rows = [];
    this.#bytes = 0;
    this.#offsets = new Map();
    this.#startedAt = undefined;
    return batch;
  }
}
