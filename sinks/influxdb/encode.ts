/**
 * The InfluxDB sink's encoding, pure: each record as one line of line
 * protocol (the protocol's rules are in `line_protocol.ts`), and rows as the
 * lines of a write body. What a record is depends on the decoder
 * (`deps.input`):
 *
 * - `points` (collectd decoders): encoded as they are;
 * - `lines` (kafka-influxdb's echo encoder): passed through, only a line
 *   that is empty or holds a newline is set aside;
 * - `flows` (pmacct): converted to points first, as described below.
 *
 * pmacct flow records become one point per record in `INFLUXDB_MEASUREMENT`,
 * its counters (`INFLUXDB_FIELDS`) as fields, its other keys as tags, at its
 * `INFLUXDB_TIMESTAMP_FIELD`.
 *
 * InfluxDB identifies a point by measurement, tag set and time: a second
 * point with the same three replaces the fields of the first (last write
 * wins). So the default keeps every flow key as a tag (`INFLUXDB_TAGS=*`)
 * and stamps each record with the time of its purge (`stamp_updated`): two
 * records of one purge differ in some key, and the next purge of the same
 * flow gets a new time. Leaving keys out of the tags (or using
 * `stamp_inserted`) makes distinct flows overwrite each other unless
 * pmacct's `aggregate` is narrowed to match. The fields that change on
 * every purge (`stamp_*`, `timestamp_*`, `writer_id`, `event_type`) are kept
 * out of the tags by `INFLUXDB_AVOID_TAGS`, since each value would start a
 * new series.
 *
 * - Fields: each field has one type, whatever a record's JSON holds, since
 *   InfluxDB refuses a value whose type differs from the one the field
 *   already has in the shard (a type conflict fails the whole batch with
 *   400): `integer` (`42i`) unless `INFLUXDB_FIELD_TYPES` says `unsigned`
 *   (`42u`), `float`, `string` or `boolean`. Integers are exact (a counter
 *   beyond 2^53 included); integer text (`"42"`) is read as the integer. A
 *   value that does not fit its field's type (`1.5` or `true` for an
 *   integer, `18446744073709551615` for a signed one, `1e400` for a float)
 *   rejects the record with the value as written. A counter that is missing
 *   or null is left out, and a record with none of them is rejected.
 * - Tags: strings as they are, numbers (exactly) and booleans as text, other
 *   values as JSON; null and empty values give no tag.
 * - Time: any form pmacct writes, local times in `PMACCT_TIMEZONE`; a
 *   missing or unreadable time rejects the record (without it the server
 *   would stamp the arrival time, and a replayed batch would write again).
 *
 * The record-time window (`RECORD_TIME_MIN`, `RECORD_TIME_MAX_FUTURE`)
 * applies to every kind: a flow record's time, a point's time, and a raw
 * line's timestamp (in `INFLUXDB_TIME_PRECISION`).
 *
 * @module
 */

import { labelValueOf, matchesPattern } from "../../lib/fields.ts";
import { floatOf, floatOfText, integerOf, JsonNumber } from "../../lib/json.ts";
import { lineTimestamp } from "../../lib/decode/influx_line.ts";
import type {
  InputRecord,
  Point,
  PreparedRow,
  PrepareResult,
  RecordKind,
} from "../../lib/record.ts";
import { utf8Length } from "../../lib/text.ts";
import { nanosOf, type TimeReader, type Timestamp } from "../../lib/time.ts";
import type { FieldType, InfluxDBFlowConfig } from "./config.ts";
import {
  checkRawLine,
  encodePoint,
  type EncodeResult,
  MAX_INT64,
  MAX_UINT64,
  MIN_INT64,
  NANOS_PER,
  type Precision,
} from "./line_protocol.ts";

/** What the flow conversion needs (from `INFLUXDB_MEASUREMENT`, ...). */
export interface FlowOptions extends Readonly<InfluxDBFlowConfig> {
  /** Reads pmacct timestamps in the configured zone. */
  time: TimeReader;
}

/** A converted record, or why it cannot be converted. */
export type FlowResult = { ok: true; point: Point } | { ok: false; error: string };

/**
 * Compiles the conversion of flow records into points.
 *
 * @param options Measurement, fields, tag patterns, time field and reader.
 * @returns A function from a record to its point, or to the problem.
 */
export function compileFlowConverter(options: FlowOptions): (record: InputRecord) => FlowResult {
  const { measurement, timestampField, time } = options;
  const fields = [...options.fields];
  const skipped = new Set([...fields, timestampField]);
  const tagged = new Map<string, boolean>();
  const isTag = (key: string): boolean => {
    let yes = tagged.get(key);
    if (yes === undefined) {
      yes = !skipped.has(key) && matchesPattern(key, options.tags) &&
        !matchesPattern(key, options.avoidTags);
      if (tagged.size >= 10_000) tagged.clear();
      tagged.set(key, yes);
    }
    return yes;
  };
  const fail = (why: string): FlowResult => ({
    ok: false,
    error: `Cannot write to InfluxDB: ${why}`,
  });
  const converters = fields.map((name) =>
    fieldConverter(name, options.fieldTypes?.[name] ?? "integer")
  );

  return (record) => {
    if (!Object.hasOwn(record, timestampField)) {
      return fail(`the record has no field "${timestampField}" (INFLUXDB_TIMESTAMP_FIELD)`);
    }
    const rawTime = record[timestampField];
    let nanos: bigint;
    try {
      const ts = time.parse(rawTime);
      const outside = time.outsideWindow(ts);
      if (outside !== undefined) {
        return fail(`field "${timestampField}" ${show(rawTime)} ${outside}`);
      }
      nanos = BigInt(ts.seconds) * 1_000_000_000n + BigInt(nanosOf(ts));
    } catch (error) {
      return fail(
        `field "${timestampField}" is not a time: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }

    const values: Point["fields"] = {};
    let count = 0;
    for (let i = 0; i < fields.length; i++) {
      const name = fields[i]!;
      const value = Object.hasOwn(record, name) ? record[name] : undefined;
      if (value === undefined || value === null) continue;
      const field = converters[i]!(value);
      if (field instanceof Misfit) return fail(`field "${name}" is ${show(value)}, ${field.why}`);
      values[name] = field;
      count++;
    }
    if (count === 0) {
      return fail(`the record has none of the fields ${fields.join(", ")} (INFLUXDB_FIELDS)`);
    }

    const tags: Record<string, string> = {};
    for (const key of Object.keys(record)) {
      if (!isTag(key)) continue;
      const value = labelValueOf(record[key]);
      if (value !== undefined) tags[key] = value;
    }
    return { ok: true, point: { measurement, tags, fields: values, time: nanos } };
  };
}

/** Why a value does not fit its field's type (after "is <value>, "). */
export class Misfit {
  /** The reason. */
  readonly why: string;
  /** @param why The reason. */
  constructor(why: string) {
    this.why = why;
  }
}

/** A field value converted to its field's type, or why it does not fit. */
type FieldResult = Point["fields"][string] | Misfit;

const NUMBER_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Compiles the conversion of one field's values to its type.
 *
 * @param name The field.
 * @param type Its type (`INFLUXDB_FIELD_TYPES`, else integer).
 * @returns A function from a record value (not null) to the field value, or why it does not fit.
 */
export function fieldConverter(name: string, type: FieldType): (value: unknown) => FieldResult {
  const article = type === "integer" || type === "unsigned" ? "an" : "a";
  const declared = `; "${name}" is ${article} ${type} field (INFLUXDB_FIELD_TYPES)`;
  switch (type) {
    case "integer":
    case "unsigned": {
      const [min, max] = type === "integer" ? [MIN_INT64, MAX_INT64] : [0n, MAX_UINT64];
      const range = new Misfit(
        type === "integer"
          ? `outside the signed 64-bit integers${declared}`
          : `outside the unsigned 64-bit integers (0 to ${MAX_UINT64})${declared}`,
      );
      const notInteger = new Misfit(
        `not ${type === "integer" ? "an integer" : "an unsigned integer"}${declared}`,
      );
      return (value) => {
        // The common case first: a counter that is a safe integer.
        if (typeof value === "number" && Number.isSafeInteger(value) && type === "integer") {
          return BigInt(value);
        }
        const read = integerOf(value, min, max, true);
        if (read.ok) return type === "integer" ? read.value : { unsigned: read.value };
        return read.why === "out of range" ? range : notInteger;
      };
    }
    case "float":
      return (value) => {
        let read: ReturnType<typeof floatOf> | undefined;
        if (typeof value === "number" || value instanceof JsonNumber) read = floatOf(value);
        else if (typeof value === "string" && NUMBER_TEXT.test(value.trim())) {
          read = floatOfText(value.trim(), Number(value.trim()));
        }
        if (read === undefined) return new Misfit(`not a number${declared}`);
        return read.ok ? read.value : new Misfit(`which ${read.why}${declared}`);
      };
    case "string":
      return (value) => {
        if (typeof value === "string") return value;
        if (typeof value === "number" || typeof value === "boolean") return String(value);
        if (value instanceof JsonNumber) return value.text;
        return new Misfit(`not a string, number or boolean${declared}`);
      };
    case "boolean":
      return (value) =>
        typeof value === "boolean" ? value : new Misfit(`not true or false${declared}`);
  }
}

/** A value as written in the record, for messages (JSON; a `JsonNumber` as its digits). */
function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

/** The instant of a point time in nanoseconds, for the record-time window. */
function instantOf(nanos: bigint): Timestamp {
  const seconds = nanos / 1_000_000_000n - (nanos < 0n && nanos % 1_000_000_000n !== 0n ? 1n : 0n);
  const rest = Number(nanos - seconds * 1_000_000_000n);
  return { seconds: Number(seconds), micros: Math.floor(rest / 1000), nanos: rest };
}

/** What the record encoder needs. */
export interface EncoderOptions {
  /** What the decoder produces. */
  input: RecordKind;
  /** The precision of the write the lines go into (`INFLUXDB_TIME_PRECISION`). */
  precision: Precision;
  /** The write API: with 2, the tag keys InfluxDB 2 reserves are refused too. */
  apiVersion: 1 | 2;
  /** How flow records become points. */
  flows: Readonly<InfluxDBFlowConfig>;
  /** Reads pmacct timestamps in the configured zone. */
  time: TimeReader;
}

/**
 * Compiles the conversion of records into rows: a point encoded, a raw line
 * checked, or a flow record converted and encoded. A row is one line.
 *
 * @param options The record kind, precision, API version, flow settings and time reader.
 * @returns A function from a record to its line (with its size in UTF-8
 *   bytes, newline included) or a `convert` rejection.
 */
export function compileRecordEncoder(
  options: EncoderOptions,
): (record: InputRecord) => PrepareResult<string> {
  const { precision, apiVersion, time } = options;
  const outside = (nanos: bigint, what: string): EncodeResult | undefined => {
    const why = time.outsideWindow(instantOf(nanos));
    return why === undefined ? undefined : {
      ok: false,
      error: `Cannot write to InfluxDB: the ${what} ${why}`,
    };
  };
  let encode: (record: InputRecord) => EncodeResult;
  switch (options.input) {
    case "points":
      encode = (record) => {
        const point = record as Point;
        if (typeof point.time === "bigint") {
          const late = outside(point.time, `point's time ${point.time} ns`);
          if (late !== undefined) return late;
        }
        return encodePoint(point, precision, apiVersion);
      };
      break;
    case "lines": {
      const unit = NANOS_PER[precision];
      encode = (record) => {
        const checked = checkRawLine(record.line);
        if (!checked.ok) return checked;
        const stamp = lineTimestamp(checked.line);
        if (stamp !== undefined) {
          const late = outside(BigInt(stamp) * unit, `line's timestamp ${stamp} (${precision})`);
          if (late !== undefined) return late;
        }
        return checked;
      };
      break;
    }
    case "flows": {
      const convert = compileFlowConverter({ ...options.flows, time: options.time });
      encode = (record) => {
        const converted = convert(record);
        return converted.ok ? encodePoint(converted.point, precision, apiVersion) : converted;
      };
      break;
    }
  }
  return (record) => {
    const result = encode(record);
    if (!result.ok) return { ok: false, rejection: { reason: "convert", error: result.error } };
    return { ok: true, row: result.line, bytes: utf8Length(result.line) + 1 };
  };
}

/**
 * The body lines of a write of these rows, exactly as sent (before gzip):
 * one line per row, in order.
 *
 * @param rows The rows.
 * @returns The lines, without newlines.
 */
export function encodeLines(rows: readonly PreparedRow<string>[]): string[] {
  return rows.map((r) => r.row);
}

/**
 * How many lines of one write InfluxDB stores over an earlier line of the
 * same write: the same measurement, tags and time, and a field key in
 * common (the later value wins; lines sharing series and time with other
 * field keys merge and lose nothing). Lines without a time (the server's
 * time of arrival) are not counted.
 *
 * @param lines Line-protocol lines.
 * @returns The number of overwritten points.
 */
export function overwrittenLines(lines: readonly string[]): number {
  const seen = new Map<string, Set<string>>();
  let overwritten = 0;
  for (const line of lines) {
    const series = unescapedSpace(line, 0, false);
    const fieldsEnd = unescapedSpace(line, series + 1, true);
    if (series === -1 || fieldsEnd === -1) continue;
    const key = line.slice(0, series) + " " + line.slice(fieldsEnd + 1);
    const fields = fieldKeys(line.slice(series + 1, fieldsEnd));
    const earlier = seen.get(key);
    if (earlier === undefined) {
      seen.set(key, new Set(fields));
      continue;
    }
    if (fields.some((f) => earlier.has(f))) overwritten++;
    for (const f of fields) earlier.add(f);
  }
  return overwritten;
}

/** The index of the first space from `from` not escaped by a backslash (nor quoted, in fields). */
function unescapedSpace(line: string, from: number, quotes: boolean): number {
  let quoted = false;
  for (let i = from; i < line.length; i++) {
    const c = line[i];
    if (c === "\\") i++;
    else if (quotes && c === '"') quoted = !quoted;
    else if (c === " " && !quoted) return i;
  }
  return -1;
}

/** The field keys of a line's field set (`a=1i,b="x,y"`). */
function fieldKeys(fields: string): string[] {
  const keys: string[] = [];
  let start = 0;
  let quoted = false;
  let key: string | undefined;
  for (let i = 0; i <= fields.length; i++) {
    const c = fields[i];
    if (c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && key === undefined && c === "=") key = fields.slice(start, i);
    else if (!quoted && (c === "," || c === undefined)) {
      if (key !== undefined) keys.push(key);
      key = undefined;
      start = i + 1;
    }
  }
  return keys;
}
