/**
 * InfluxDB line protocol, written from {@link Point}s: the escaping, the
 * value formats and the rules of what InfluxDB refuses or changes, pure. A
 * file of its own because the protocol is the same whatever the records are
 * (`encode.ts` turns records into points and points into rows).
 *
 * ```text
 * measurement,tag_a=x,tag_b=y field_a=1.5,field_b=42i,field_c="text",field_d=true 1700000000
 * ```
 *
 * Escaping follows what InfluxDB 1.6.7 reads back unchanged (each rule
 * checked against the server, see tests/sinks/influxdb/line_protocol_test.ts):
 * - measurement: `,` and space get a backslash; tag keys, tag values and
 *   field keys: `,`, `=` and space. A leading space is kept (`\ cpu`).
 * - a control character (newline, carriage return, tab, form feed, ... U+0000
 *   to U+001F and U+007F) in those names rejects the point: line protocol
 *   has no escape for them ("Line protocol does not support the newline
 *   character \n in tag values", InfluxDB's line protocol reference). A raw
 *   newline ends the line, and the `\n` that Telegraf writes instead is
 *   stored by 1.6 as those two characters, a name the record never had.
 * - a backslash is not an escape character in names (1.6 stores `a\\b` as
 *   `a\\b`), so it is written as it is. A backslash right before a character
 *   the server unescapes (`,` `=` space, and `"` in measurements and field
 *   keys), or at the end of a name, cannot be written: 1.6 would store the
 *   name changed or refuse the line, so such a point is rejected.
 * - string field values: `"` and `\` get a backslash; other characters,
 *   newlines included, are written as they are (1.6 stores them unchanged).
 * - a measurement beginning with `#` is rejected: the server reads the line
 *   as a comment and answers 204 without writing it.
 *
 * Values: a `number` is a float written as JavaScript's shortest round-trip
 * text (`1.5`, `1e+21`, `5e-324`, `-0`: all read back exactly by 1.6); NaN and
 * ±Infinity have no line protocol form (1.6: `invalid number`) and reject the
 * point. A `bigint` is an integer (`42i`) within int64 (1.6 refuses
 * 9223372036854775808i: `value out of range`); an `UnsignedValue` an
 * unsigned integer (`42u`) within uint64, which InfluxDB 2 and 3 store (1.x
 * only when built with it). Booleans are `true`/`false`.
 *
 * Also refused by 1.6 and so rejected here: an empty measurement, tag key or
 * field key, `time` as a tag or field key (`invalid tag key`/`invalid field
 * name`), a point without fields, a series key plus field key longer than
 * 65535 bytes (`max key length exceeded`), and a time outside
 * -9223372036854775806..9223372036854775806 ns (`time outside range`).
 * InfluxDB 2.7.12 escapes and refuses the same, and refuses the tag keys
 * `_measurement` and `_field` too, so those are rejected for API 2.
 * Tags with an empty value are left out (the server refuses `t=`: `missing
 * tag value`); tags are sorted by key, as InfluxDB recommends for write
 * performance. Text that is not valid Unicode (a lone surrogate) is rejected,
 * as it could only be sent as U+FFFD.
 *
 * @module
 */

import { utf8Length } from "../../lib/text.ts";
import type { FieldValue, Point } from "../../lib/record.ts";
import { JsonNumber } from "../../lib/json.ts";

/** The time precision of the timestamps in a write (the `precision` parameter). */
export type Precision = "s" | "ms" | "us" | "ns";

/** Nanoseconds per unit of each precision. */
export const NANOS_PER: Readonly<Record<Precision, bigint>> = {
  s: 1_000_000_000n,
  ms: 1_000_000n,
  us: 1_000n,
  ns: 1n,
};

/** The earliest time InfluxDB stores, in nanoseconds (1677-09-21; `models.MinNanoTime`). */
export const MIN_TIME_NS = -9_223_372_036_854_775_806n;
/** The latest time InfluxDB stores, in nanoseconds (2262-04-11; `models.MaxNanoTime`). */
export const MAX_TIME_NS = 9_223_372_036_854_775_806n;
/** The longest series key plus `#!~#` plus field key InfluxDB 1.x accepts, in bytes. */
export const MAX_KEY_BYTES = 65_535;

/** The least integer field value (int64). */
export const MIN_INT64 = -(2n ** 63n);
/** The greatest integer field value (int64). */
export const MAX_INT64 = 2n ** 63n - 1n;
/** The greatest unsigned field value (uint64). */
export const MAX_UINT64 = 2n ** 64n - 1n;

const ESCAPES: Readonly<Record<string, string>> = {
  ",": "\\,",
  "=": "\\=",
  " ": "\\ ",
};
const MEASUREMENT_SPECIAL = /[, ]/g;
const KEY_SPECIAL = /[,= ]/g;

/** What line protocol cannot carry in a name: control characters, the newline first. */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** A backslash the server would read as the start of an escape, or a trailing one. */
const MEASUREMENT_BAD_BACKSLASH = /\\(?:[,= "]|$)/;
const FIELD_KEY_BAD_BACKSLASH = MEASUREMENT_BAD_BACKSLASH;
const TAG_BAD_BACKSLASH = /\\(?:[,= ]|$)/;
const STRING_SPECIAL = /["\\]/g;
/** Tag keys InfluxDB 2 refuses (2.7.12: `cannot use reserved tag key "_field"`); 1.6 takes them. */
const RESERVED_V2_TAG_KEYS = new Set(["_measurement", "_field"]);

/** The result of encoding: the line, or why there is none. */
export type EncodeResult = { ok: true; line: string } | { ok: false; error: string };

/** What a name is, for messages and for its escaping rules. */
export type NameKind = "measurement" | "tag key" | "tag value" | "field key";

/**
 * Escapes a measurement name (`,` and space; control characters are refused
 * by {@link nameProblem}).
 *
 * @param name The measurement.
 * @returns The text to write.
 */
export function escapeMeasurement(name: string): string {
  MEASUREMENT_SPECIAL.lastIndex = 0;
  return MEASUREMENT_SPECIAL.test(name)
    ? name.replace(MEASUREMENT_SPECIAL, (c) => ESCAPES[c]!)
    : name;
}

/**
 * Escapes a tag key, tag value or field key (`,`, `=` and space; control
 * characters are refused by {@link nameProblem}).
 *
 * @param key The text.
 * @returns The text to write.
 */
export function escapeKey(key: string): string {
  KEY_SPECIAL.lastIndex = 0;
  return KEY_SPECIAL.test(key) ? key.replace(KEY_SPECIAL, (c) => ESCAPES[c]!) : key;
}

/**
 * Escapes a name as {@link escapeMeasurement} or {@link escapeKey} do, with
 * one regular expression test for a name that needs nothing (most).
 *
 * @returns The escaped name, or `undefined` when it holds a control character.
 */
function escapeName(name: string, equals: boolean): string | undefined {
  // One pass for what needs escaping (, = space) and what is refused (controls):
  // cheaper than a regular expression for the short names of a point.
  let i = 0;
  for (; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= SPACE_CODE || c === COMMA_CODE || c === DEL_CODE || (equals && c === EQUALS_CODE)) {
      break;
    }
  }
  if (i === name.length) return name;
  if (CONTROL.test(name)) return undefined;
  const special = equals ? KEY_SPECIAL : MEASUREMENT_SPECIAL;
  special.lastIndex = 0;
  return name.replace(special, (c) => ESCAPES[c]!);
}

const SPACE_CODE = 32;
const COMMA_CODE = 44;
const EQUALS_CODE = 61;
const DEL_CODE = 127;

/**
 * Quotes a string field value: `"` and `\` get a backslash.
 *
 * @param value The string.
 * @returns The quoted text, e.g. `"a \"b\""`.
 */
export function quoteString(value: string): string {
  STRING_SPECIAL.lastIndex = 0;
  return `"${STRING_SPECIAL.test(value) ? value.replace(STRING_SPECIAL, (c) => `\\${c}`) : value}"`;
}

/**
 * Formats a float field value: JavaScript's shortest text that reads back
 * as the same number (`0.1`, `1e+21`, `5e-324`), and `-0` for negative zero.
 *
 * @param value A finite number.
 * @returns The text.
 */
export function formatFloat(value: number): string {
  return Object.is(value, -0) ? "-0" : String(value);
}

/**
 * Formats a field value in line protocol.
 *
 * @param value The value.
 * @returns The text (`1.5`, `42i`, `"s"`, `true`), or why it cannot be written.
 */
export function formatFieldValue(value: FieldValue): { ok: true; text: string } | {
  ok: false;
  why: string;
} {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value)
        ? { ok: true, text: formatFloat(value) }
        : { ok: false, why: `is ${value}, which line protocol cannot carry` };
    case "bigint":
      return value >= MIN_INT64 && value <= MAX_INT64
        ? { ok: true, text: `${value}i` }
        : { ok: false, why: `is ${value}, outside the 64-bit integers InfluxDB stores` };
    case "string":
      return value.isWellFormed()
        ? { ok: true, text: quoteString(value) }
        : { ok: false, why: "is not valid Unicode (a lone surrogate)" };
    case "boolean":
      return { ok: true, text: value ? "true" : "false" };
    default:
      if (value !== null && typeof value === "object" && typeof value.unsigned === "bigint") {
        const n = value.unsigned;
        return n >= 0n && n <= MAX_UINT64
          ? { ok: true, text: `${n}u` }
          : { ok: false, why: `is ${n}, outside the unsigned 64-bit integers InfluxDB stores` };
      }
      return {
        ok: false,
        why: `is ${
          value === null
            ? "null"
            : value instanceof JsonNumber
            ? (value as JsonNumber).text
            : typeof value
        }, not a number, bigint, string or boolean`,
      };
  }
}

/**
 * Why a name cannot be written, if it cannot: empty, `time` as a key, a
 * `#` first in a measurement, a control character, a backslash the server
 * would read as an escape, a lone surrogate.
 *
 * @param kind What the name is.
 * @param name The name, unescaped.
 * @param controls Whether to look for control characters (`encodePoint`
 *   looks for them in the whole series key at once).
 * @returns The problem, or `undefined` when the name can be written.
 */
export function nameProblem(kind: NameKind, name: string, controls = true): string | undefined {
  if (name === "") return `a ${kind} must not be empty`;
  if (name === "time" && (kind === "tag key" || kind === "field key")) {
    return `a ${kind} must not be "time" (InfluxDB refuses it)`;
  }
  if (kind === "measurement" && name.startsWith("#")) {
    return "a measurement must not begin with # (InfluxDB reads the line as a comment and drops it)";
  }
  const backslash = kind === "tag key" || kind === "tag value"
    ? TAG_BAD_BACKSLASH
    : kind === "measurement"
    ? MEASUREMENT_BAD_BACKSLASH
    : FIELD_KEY_BAD_BACKSLASH;
  if (controls && CONTROL.test(name)) {
    return `a ${kind} must not contain control characters such as a newline or a tab ` +
      "(line protocol cannot carry them)";
  }
  if (name.includes("\\") && backslash.test(name)) {
    return `a ${kind} must not have a backslash at its end or before ${
      kind === "tag key" || kind === "tag value" ? ", = or space" : `, = space or "`
    } (InfluxDB would store it changed or refuse the line)`;
  }
  if (!name.isWellFormed()) return `a ${kind} must be valid Unicode (it has a lone surrogate)`;
  return undefined;
}

/**
 * Converts nanoseconds to a precision, rounding down (towards the past).
 *
 * @param nanos Nanoseconds since the epoch.
 * @param precision The precision.
 * @returns Whole units of the precision.
 */
export function toPrecision(nanos: bigint, precision: Precision): bigint {
  const unit = NANOS_PER[precision];
  const quotient = nanos / unit;
  return nanos < 0n && quotient * unit !== nanos ? quotient - 1n : quotient;
}

/** A field value as text for a message. */
function fieldText(value: unknown): string {
  if (value instanceof JsonNumber) return value.text;
  if (typeof value === "object" && value !== null && "unsigned" in value) {
    return `${String(value.unsigned)}u`;
  }
  return String(value);
}

function quoted(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}...` : text);
}

function failure(what: string, value: string): EncodeResult {
  return { ok: false, error: `Cannot write to InfluxDB: ${what}, got ${quoted(value)}` };
}

/**
 * Encodes a point as one line of line protocol, or says why InfluxDB would
 * refuse or change it.
 *
 * @param point The point.
 * @param precision The precision of the write its line goes into.
 * @param api The write API: with 2, the tag keys InfluxDB 2 reserves are refused too.
 * @returns The line (no newline), or the problem, worded
 *   `Cannot write to InfluxDB: ..., got "..."`.
 */
export function encodePoint(point: Point, precision: Precision, api: 1 | 2 = 1): EncodeResult {
  const { measurement, tags, fields, time } = point;
  if (typeof measurement !== "string") {
    return failure("a point needs a measurement name", String(measurement));
  }
  const bad = nameProblem("measurement", measurement, false);
  if (bad !== undefined) return failure(bad, measurement);
  let seriesKey = escapeName(measurement, false);
  if (seriesKey === undefined) return controlFailure(point);

  if (tags !== undefined && tags !== null) {
    if (typeof tags !== "object") return failure("tags must be an object", String(tags));
    const keys = Object.keys(tags);
    if (keys.length > 1) keys.sort();
    for (const key of keys) {
      const value = tags[key];
      if (typeof value !== "string") {
        return failure(`tag "${key}" must be a string`, String(value));
      }
      if (value === "") continue;
      const keyProblem = nameProblem("tag key", key, false) ??
        (api === 2 && RESERVED_V2_TAG_KEYS.has(key)
          ? "a tag key must not be _measurement or _field with API version 2 (InfluxDB 2 reserves them)"
          : undefined);
      if (keyProblem !== undefined) return failure(keyProblem, key);
      const valueProblem = nameProblem("tag value", value, false);
      if (valueProblem !== undefined) return failure(`${valueProblem} (tag "${key}")`, value);
      const escapedKey = escapeName(key, true);
      const escapedValue = escapeName(value, true);
      if (escapedKey === undefined || escapedValue === undefined) return controlFailure(point);
      seriesKey += `,${escapedKey}=${escapedValue}`;
    }
  }

  if (typeof fields !== "object" || fields === null) {
    return failure("a point needs at least one field", String(fields));
  }
  let fieldSet = "";
  let longestKey = 0;
  for (const key of Object.keys(fields)) {
    const keyProblem = nameProblem("field key", key, false);
    if (keyProblem !== undefined) return failure(keyProblem, key);
    const value = formatFieldValue(fields[key]!);
    if (!value.ok) return failure(`field "${key}" ${value.why}`, fieldText(fields[key]));
    const escaped = escapeName(key, true);
    if (escaped === undefined) return controlFailure(point);
    if (escaped.length > longestKey) longestKey = escaped.length;
    fieldSet += `${fieldSet === "" ? "" : ","}${escaped}=${value.text}`;
  }
  if (fieldSet === "") return failure("a point needs at least one field", measurement);

  // 1.x refuses a series whose key, with "#!~#" and a field key, exceeds 64 KiB.
  if ((seriesKey.length + 4 + longestKey) * 3 > MAX_KEY_BYTES) {
    const longest = Object.keys(fields).map(escapeKey).reduce(
      (a, k) => Math.max(a, utf8Length(k)),
      0,
    );
    const bytes = utf8Length(seriesKey) + 4 + longest;
    if (bytes > MAX_KEY_BYTES) {
      return failure(
        `the series key and field key are ${bytes} bytes, more than InfluxDB's ${MAX_KEY_BYTES}`,
        seriesKey,
      );
    }
  }

  if (time === undefined) return { ok: true, line: `${seriesKey} ${fieldSet}` };
  if (typeof time !== "bigint") {
    return failure("a point's time must be a bigint of nanoseconds", String(time));
  }
  const units = toPrecision(time, precision);
  const nanos = units * NANOS_PER[precision];
  if (nanos < MIN_TIME_NS || nanos > MAX_TIME_NS) {
    return failure(
      "the time is outside the range InfluxDB stores (1677-09-21 to 2262-04-11)",
      `${time} ns`,
    );
  }
  return { ok: true, line: `${seriesKey} ${fieldSet} ${units}` };
}

/** The failure naming the first name of a point that holds a control character. */
function controlFailure(point: Point): EncodeResult {
  const names: Array<[NameKind, string, string]> = [["measurement", point.measurement, ""]];
  for (const key of Object.keys(point.tags ?? {}).sort()) {
    const value = point.tags[key]!;
    names.push(["tag key", key, ""]);
    if (value !== "") names.push(["tag value", value, ` (tag "${key}")`]);
  }
  for (const key of Object.keys(point.fields)) names.push(["field key", key, ""]);
  for (const [kind, name, where] of names) {
    const problem = nameProblem(kind, name);
    if (problem !== undefined) return failure(`${problem}${where}`, name);
  }
  return failure("a name must not contain control characters", point.measurement);
}

/**
 * Checks a line passed through unchanged (kafka-influxdb's echo encoder):
 * one line, not empty. Its syntax is the server's to judge.
 *
 * @param line The line.
 * @returns The line, or the problem.
 */
export function checkRawLine(line: unknown): EncodeResult {
  if (typeof line !== "string") {
    return failure("a raw line must be a string", String(line));
  }
  if (line.trim() === "") return failure("a line must not be empty", line);
  if (line.includes("\n")) return failure("a line must not contain a newline", line);
  return { ok: true, line };
}
