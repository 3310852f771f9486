/**
 * The records that flow through sluice, from the decoder to the sink, and
 * the words both sides use about them: where a record came from, the row a
 * sink made of it, why one was set aside, and what a write achieved.
 *
 * This is the ground floor: `lib/`, `sinks/` and `main.ts` import it, it
 * imports nothing.
 *
 * Metric points are what the collectd and line-protocol decoders produce
 * and the InfluxDB sink writes: one line of InfluxDB line protocol before
 * encoding (measurement, tags, fields and an optional time). Field value
 * types are chosen once, by the decoder, and never by looking at the
 * digits: InfluxDB refuses a field whose type differs from the type it
 * already has in the shard, so `30364` from collectd must stay a float.
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
  /** The message's key, when it has one (kept for the dead-letter topic). */
  key?: Uint8Array;
}

/** One decoded input record: a flat JSON object as pmacct writes it, a point, or a raw line. */
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

/** What a sink's `prepare()` made of a record: a row to write, or why there is none. */
export type PrepareResult<Row = unknown> =
  | { ok: true; row: Row; bytes: number }
  | { ok: false; rejection: Rejection };

/** What a backend said about some rows of an acknowledged write. */
export interface WriteResult {
  /** Indexes (into the written array) of rows the backend refused for good. */
  rejected: Array<{ index: number; rejection: Rejection }>;
  /** Indexes of rows the backend asked to send again later (e.g. per-item 429). */
  retry: number[];
  /**
   * Rows the backend stores over another row of the same write (InfluxDB:
   * the same series, field and time), so that one of the two is lost.
   */
  overwritten?: number;
}

/**
 * An empty {@link WriteResult}: everything was acknowledged.
 *
 * @returns No rejected rows, none to send again.
 */
export function allWritten(): WriteResult {
  return { rejected: [], retry: [] };
}

/** An unsigned 64-bit integer field value, written `42u` (InfluxDB's `uinteger`). */
export interface UnsignedValue {
  /** The integer, 0 to 2^64 - 1. */
  readonly unsigned: bigint;
}

/**
 * A field value: `number` is written as a float, `bigint` as an integer
 * (`42i`), {@link UnsignedValue} as an unsigned integer (`42u`), `string`
 * quoted, `boolean` as `true`/`false`.
 */
export type FieldValue = number | bigint | string | boolean | UnsignedValue;

/** One metric point. A type alias (not an interface) so it is an `InputRecord`. */
export type Point = {
  /** Measurement name, never empty. */
  measurement: string;
  /** Tags in the order they are written; empty values are left out when encoding. */
  tags: Record<string, string>;
  /** At least one field. */
  fields: Record<string, FieldValue>;
  /** Nanoseconds since the Unix epoch; absent: the server's time of arrival. */
  time?: bigint;
};

/** A line of InfluxDB line protocol passed through unchanged (kafka-influxdb's echo encoder). */
export type RawLine = {
  /** The line, without its newline. */
  line: string;
};

/** What kind of record a decoder produces. */
export type RecordKind =
  /** Flat JSON objects, as pmacct writes them. */
  | "flows"
  /** {@link Point}s. */
  | "points"
  /** {@link RawLine}s. */
  | "lines";

/**
 * Converts seconds since the epoch (possibly fractional, e.g. collectd's
 * `1436372292.412`) to nanoseconds, keeping microseconds exactly.
 *
 * @param seconds The time in seconds.
 * @returns Nanoseconds since the epoch.
 */
export function secondsToNanos(seconds: number): bigint {
  const whole = Math.floor(seconds);
  const micros = Math.round((seconds - whole) * 1e6);
  return BigInt(whole) * 1_000_000_000n + BigInt(micros) * 1000n;
}
