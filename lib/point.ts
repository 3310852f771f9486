/**
 * Metric points: what the collectd and line-protocol decoders produce and
 * the InfluxDB sink writes. A point is one line of InfluxDB line protocol
 * before encoding: measurement, tags, fields and an optional time.
 *
 * Field value types are chosen once, by the decoder, and never by looking at
 * the digits: InfluxDB refuses a field whose type differs from the type it
 * already has in the shard, so `30364` from collectd must stay a float.
 *
 * @module
 */

/**
 * A field value: `number` is written as a float, `bigint` as an integer
 * (`42i`), `string` quoted, `boolean` as `true`/`false`.
 */
export type FieldValue = number | bigint | string | boolean;

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
