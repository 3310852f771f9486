/**
 * The rows of a batch as contiguous ranges per Kafka partition, and the
 * words that make a write of them repeatable: a token naming exactly those
 * rows, and the pin that records a range in the offset commit's metadata
 * before the write, so that a restarted or newly assigned consumer forms
 * exactly the same range again (see `lib/pipeline/mod.ts`, "Pinned ranges").
 *
 * A row's position is its message's offset and its index inside the
 * message (pmacct's `kafka_multi_values` packs several records into one
 * message, and a batch may end inside one). Decoding and preparing are
 * pure, so the same range of the same topic always yields the same rows.
 *
 * @module
 */

import type { PreparedRow } from "./record.ts";
import { partitionKey } from "./source.ts";

/** Where a row is in its partition: message offset, then record index. */
export interface RowPosition {
  /** The message's offset, as a decimal string. */
  offset: string;
  /** The record's index inside the message, from 0. */
  index: number;
}

/** The first and last row of one partition in a batch. */
export interface PartitionRange {
  /** Topic. */
  topic: string;
  /** Partition. */
  partition: number;
  /** The first row's position. */
  from: RowPosition;
  /** The last row's position. */
  to: RowPosition;
}

/** A partition's range and its rows, in batch order. */
export interface PartitionRows<Row = unknown> extends PartitionRange {
  /** The rows of this partition. */
  rows: PreparedRow<Row>[];
}

/**
 * Orders two positions of one partition.
 *
 * @param a A position.
 * @param b Another position.
 * @returns Negative when `a` comes first, 0 when equal, positive otherwise.
 */
export function comparePositions(a: RowPosition, b: RowPosition): number {
  const da = BigInt(a.offset);
  const db = BigInt(b.offset);
  if (da !== db) return da < db ? -1 : 1;
  return a.index - b.index;
}

/**
 * Splits rows by partition, keeping their order, with each partition's
 * first and last position.
 *
 * @param rows The rows of a batch, in consumption order.
 * @returns One entry per partition, in order of first appearance.
 */
export function partitionRows<Row>(rows: readonly PreparedRow<Row>[]): PartitionRows<Row>[] {
  const byKey = new Map<string, PartitionRows<Row>>();
  for (const row of rows) {
    const { topic, partition, offset, index } = row.origin;
    const key = partitionKey(row.origin);
    const entry = byKey.get(key);
    if (entry === undefined) {
      const at = { offset, index };
      byKey.set(key, { topic, partition, from: at, to: at, rows: [row] });
    } else {
      entry.rows.push(row);
      entry.to = { offset, index };
    }
  }
  return [...byKey.values()];
}

/**
 * An idempotency token for the write of one partition's range: the same
 * rows always give the same token, other rows another one.
 *
 * @param range The range.
 * @returns E.g. `flows/3/1200.0-1399.4`.
 */
export function rangeToken(range: PartitionRange): string {
  const { topic, partition, from, to } = range;
  return `${topic}/${partition}/${from.offset}.${from.index}-${to.offset}.${to.index}`;
}

/** What a pin's metadata starts with, so that other tools' metadata is left alone. */
const PIN_PREFIX = "sluice-range:";

/** A pinned range, or (without `to`) only where the next row to write is. */
export interface Pin {
  /** The first row of the range: rows before it are written. */
  from: RowPosition;
  /** The last row of the range, when the range was about to be written. */
  to?: RowPosition;
}

/**
 * The offset commit metadata of a pin: a range about to be written
 * (`from` and `to`), or, after a batch that ended inside a message, where
 * the next row is (`from` alone; the message's earlier rows are written).
 *
 * @param pin The pin.
 * @returns E.g. `sluice-range:1200.0-1399.4`, or `sluice-range:1400.2-`.
 */
export function formatPin(pin: Pin): string {
  const to = pin.to === undefined ? "" : `${pin.to.offset}.${pin.to.index}`;
  return `${PIN_PREFIX}${pin.from.offset}.${pin.from.index}-${to}`;
}

/**
 * Reads a pin from offset commit metadata.
 *
 * @param metadata The metadata committed with the offset (anything; `null` when none).
 * @returns The pin, or `undefined` when the metadata is not one.
 */
export function parsePin(metadata: string | null | undefined): Pin | undefined {
  if (metadata === null || metadata === undefined || !metadata.startsWith(PIN_PREFIX)) {
    return undefined;
  }
  const match = /^(\d+)\.(\d+)-(?:(\d+)\.(\d+))?$/.exec(metadata.slice(PIN_PREFIX.length));
  if (match === null) return undefined;
  const from = { offset: match[1]!, index: Number(match[2]) };
  if (match[3] === undefined) return { from };
  const to = { offset: match[3], index: Number(match[4]) };
  return comparePositions(from, to) <= 0 ? { from, to } : undefined;
}
