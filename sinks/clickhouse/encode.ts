/**
 * Pure: pmacct records into ClickHouse `JSONEachRow` rows, type-aware, and
 * rows into the body lines of an insert.
 *
 * A converter is compiled once per column when the sink is built, so the
 * per-record work is a loop over the schema's columns calling a closure
 * each. Only schema columns reach the row; a missing field is left out so
 * ClickHouse applies the column default (0 for numbers, '' for strings:
 * what the original script inserted), and a value the column cannot hold
 * rejects the row with a message naming the value, the type and the column.
 *
 * JSON forms, checked against ClickHouse 18.16 (the oldest server sluice
 * supports) in `JSONEachRow`:
 * - DateTime: epoch seconds as a JSON integer (also accepts a quoted epoch
 *   and 'YYYY-MM-DD hh:mm:ss', but that one is read in the server's zone).
 * - Int64/UInt64 beyond 2^53: a quoted digit string (accepted, exact).
 * - Decimal: only an unquoted number; more decimal places than the scale is
 *   Code 69, so sluice writes the exact digits unquoted via `JSON.rawJSON`.
 * - Enum: only the quoted name (a number is Code 26), so values become names.
 * - Date: only 'YYYY-MM-DD' quoted. String: only a JSON string (Code 26).
 * - UInt8 given 256 wraps silently to 0, so every integer is range-checked here.
 *
 * And against ClickHouse 26.9, `format(JSONEachRow, ...)`: a quoted digit
 * string is read exactly into UInt64 (`"18446744073709551615"`), UInt128,
 * Int128 and UInt256 (all 78 digits); Decimal256 takes 50 digits unquoted,
 * exactly; but the server itself rounds `12.345` into a Decimal(10, 2)
 * (12.34) and reads `true` into a UInt64 (1), so both are refused here.
 *
 * Exact or refused: integers keep every digit (a counter beyond 2^53 comes
 * from the decoder as a `JsonNumber`, `lib/json.ts`) and a boolean is not
 * an integer; a Decimal(P, S) takes a value only with at most S digits after
 * the point and P - S before it, never rounded; a float column refuses what
 * a double cannot stand for (`1e400`, `1e-400`, an integer from 2^53 up that
 * it would change). A refusal quotes the value as it was written. Every time
 * a column reads (DateTime, DateTime64, Date from a timestamp) must be in the
 * record-time window (`RECORD_TIME_MIN`, `RECORD_TIME_MAX_FUTURE`).
 *
 * And against ClickHouse 26.9 (the types 18.16 lacks):
 * - DateTime64: epoch seconds with the fraction as an unquoted JSON number,
 *   exact to 9 digits, independent of the server's and the column's zone and
 *   of `date_time_input_format`. Quoted, the same text is read by that
 *   setting, and `best_effort` (the default of some builds, a common profile
 *   setting) takes "0.001" or "-1.500" for broken dates and "20261121" for
 *   2026-11-21.
 * - DateTime as a JSON integer, as for 18.16, whatever `date_time_input_format`.
 * - IPv4, IPv6: the address as a JSON string. Bool: `true`/`false`.
 *
 * @module
 */

import {
  decimalOf,
  floatOf,
  floatOfText,
  integerOf,
  JsonNumber,
  parseDecimal,
} from "../../lib/json.ts";
import { utf8Length } from "../../lib/text.ts";
import { nanosOf, type TimeReader, type Timestamp } from "../../lib/time.ts";
import type { InputRecord, PreparedRow, PrepareResult } from "../../lib/record.ts";
import { type ClickHouseType, type ColumnSpec, renderType } from "./schema.ts";

/**
 * A row as sent in `JSONEachRow`: the JSON object's text, one line without
 * its newline, holding only schema columns, in schema order.
 */
export type ClickHouseRow = string;

/** What conversion needs besides the schema. */
export interface ConvertOptions {
  /** Reads pmacct timestamps in the configured zone. */
  time: TimeReader;
  /**
   * A strptime-style template (`TIMESTAMP_TEMPLATE`) tried before the
   * built-in pmacct forms; `undefined` for the default.
   */
  timestampTemplate?: string;
}

/** Returned by a converter when the column must be left out (empty IP address). */
export const OMIT: unique symbol = Symbol("omit");

/** Converts one field value; throws a `RangeError` naming the value, type and column. */
export type ValueConverter = (value: unknown) => unknown;

/** The default of `TIMESTAMP_TEMPLATE`, as in the original script. */
export const DEFAULT_TIMESTAMP_TEMPLATE = "%Y-%m-%d %H:%M:%S";

// Turns `JSON.rawJSON` (V8 11.4+, not yet in TypeScript's lib) into a typed function:
// the value serialises as the given JSON text, unquoted.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

// --- Row conversion ----------------------------------------------------------------

/**
 * Compiles the conversion of whole records for a schema.
 *
 * The record goes straight to the text of its JSON line: no row object is
 * built and serialised again later, since that round trip was a third of
 * sluice's CPU per record on a 24-column schema.
 *
 * @param columns The schema columns.
 * @param options Time reading.
 * @returns A pure function from a record to a prepared row (its JSON line,
 *   with the byte size of the line plus the newline) or a `convert` rejection.
 */
export function compileRowConverter(
  columns: readonly ColumnSpec[],
  options: ConvertOptions,
): (record: InputRecord) => PrepareResult<ClickHouseRow> {
  const names = columns.map((c) => c.name);
  const converters = columns.map((c) => compileColumnConverter(c, options));
  // Each column's key as JSON text, with the separator before it.
  const firstKeys = names.map((n) => `{${JSON.stringify(n)}:`);
  const nextKeys = names.map((n) => `,${JSON.stringify(n)}:`);
  // Names such as "constructor" or "__proto__" would read the prototype.
  const special = names.map((n) => n in Object.prototype || n === "__proto__");
  const count = columns.length;
  return (record) => {
    let line = "";
    for (let i = 0; i < count; i++) {
      const name = names[i]!;
      const value = special[i]! && !Object.hasOwn(record, name) ? undefined : record[name];
      if (value === undefined) continue;
      let out: unknown;
      try {
        out = converters[i]!(value);
      } catch (error) {
        return {
          ok: false,
          rejection: {
            reason: "convert",
            error: error instanceof Error ? error.message : String(error),
          },
        };
      }
      if (out === OMIT) continue;
      line += (line === "" ? firstKeys[i]! : nextKeys[i]!) + jsonText(out);
    }
    line = line === "" ? "{}" : line + "}";
    return { ok: true, row: line, bytes: utf8Length(line) + 1 };
  };
}

/**
 * A converted value as JSON text: numbers and strings directly, anything
 * else (`null`, booleans, arrays, `JSON.rawJSON` values) by `JSON.stringify`.
 */
function jsonText(value: unknown): string {
  // Converters give only finite numbers (floats and integers are checked).
  return typeof value === "number" ? String(value) : JSON.stringify(value);
}

/**
 * The body lines of an insert of these rows, exactly as sent (before
 * compression): one JSON object per row, in order.
 *
 * @param rows The rows.
 * @returns One JSON object per line.
 */
export function encodeLines(rows: readonly PreparedRow<ClickHouseRow>[]): string[] {
  return rows.map((r) => r.row);
}

/**
 * Compiles the converter of one column.
 *
 * @param column The column.
 * @param options Time reading.
 * @returns A function converting one non-`undefined` field value to its JSON
 *   value, or {@link OMIT}; it throws a `RangeError` for a value the column
 *   cannot hold.
 * @throws {SyntaxError} When the timestamp template is invalid.
 */
export function compileColumnConverter(
  column: ColumnSpec,
  options: ConvertOptions,
): ValueConverter {
  const ctx: Ctx = {
    where: `${column.typeText} column ${JSON.stringify(column.name)}`,
    readTime: makeTimeReader(options),
    time: options.time,
    inArray: false,
  };
  return compile(column.type, ctx);
}

interface Ctx {
  /** Names the place in messages, e.g. `UInt8 column "tos"`. */
  where: string;
  readTime: (value: unknown) => Timestamp;
  /** Gives the calendar date of an instant in the configured zone. */
  time: TimeReader;
  /** Inside an array a value cannot be left out: empty IPs become the zero address. */
  inArray: boolean;
}

function compile(type: ClickHouseType, ctx: Ctx): ValueConverter {
  const inner = compileNotNull(type, ctx);
  const nullable = isNullable(type);
  const where = ctx.where;
  return (value) => {
    if (value === null) {
      if (nullable) return null;
      throw new RangeError(`null in non-Nullable ${where}`);
    }
    return inner(value);
  };
}

/**
 * Whether a type accepts `null` (`Nullable(T)`, `LowCardinality(Nullable(T))`).
 *
 * @param type The type.
 * @returns `true` when it does.
 */
export function isNullable(type: ClickHouseType): boolean {
  if (type.kind === "nullable") return true;
  return type.kind === "low_cardinality" && type.inner.kind === "nullable";
}

function compileNotNull(type: ClickHouseType, ctx: Ctx): ValueConverter {
  switch (type.kind) {
    case "string":
      return toText;
    case "fixed_string":
      return fixedStringConverter(type.length, ctx);
    case "int":
      return type.bits <= 32
        ? smallIntConverter(type.bits, type.signed, ctx)
        : bigIntConverter(type.bits, type.signed, ctx);
    case "float":
      return floatConverter(type.bits, ctx);
    case "decimal":
      return decimalConverter(type.precision, type.scale, ctx);
    case "bool":
      return boolConverter(ctx);
    case "uuid":
      return uuidConverter(ctx);
    case "date":
      return dateConverter(type.wide, ctx);
    case "datetime":
      return dateTimeConverter(ctx);
    case "datetime64":
      return dateTime64Converter(type.precision, ctx);
    case "ipv4":
      return ipv4Converter(ctx);
    case "ipv6":
      return ipv6Converter(ctx);
    case "enum":
      return enumConverter(type, ctx);
    case "nullable":
    case "low_cardinality":
      return compileNotNull(type.inner, ctx);
    case "array": {
      const element = compile(type.element, {
        ...ctx,
        where: `element of ${ctx.where}`,
        inArray: true,
      });
      const where = ctx.where;
      return (value) => {
        if (!Array.isArray(value)) {
          throw new RangeError(`${show(value)} is not an array for ${where}`);
        }
        return value.map(element);
      };
    }
  }
}

// --- Scalars -------------------------------------------------------------------------

function show(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "bigint" || typeof value === "number"
      ? String(value)
      : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function toText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof JsonNumber) return value.text;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return JSON.stringify(value);
}

function fixedStringConverter(length: number, ctx: Ctx): ValueConverter {
  const where = ctx.where;
  return (value) => {
    const text = toText(value);
    if (utf8Length(text) > length) {
      throw new RangeError(`${show(value)} is longer than ${length} bytes for ${where}`);
    }
    return text;
  };
}

const INT_RE = /^[+-]?\d+$/;

function smallIntConverter(bits: number, signed: boolean, ctx: Ctx): ValueConverter {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const bigMin = BigInt(min);
  const bigMax = BigInt(max);
  const where = ctx.where;
  return (value) => {
    // The common case first: a number within range.
    if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) {
      return value === 0 ? 0 : value;
    }
    const read = integerOf(value, bigMin, bigMax, true);
    if (read.ok) return Number(read.value);
    throw new RangeError(
      `${show(value)} ${read.why === "out of range" ? "is out of range" : "is not an integer"} ` +
        `for ${where}`,
    );
  };
}

function bigIntConverter(bits: number, signed: boolean, ctx: Ctx): ValueConverter {
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  const where = ctx.where;
  return (value) => {
    // The common case first: a safe integer, written as a JSON number.
    if (typeof value === "number" && Number.isSafeInteger(value) && (signed || value >= 0)) {
      return value === 0 ? 0 : value;
    }
    const read = integerOf(value, min, max, true);
    if (!read.ok) {
      throw new RangeError(
        `${show(value)} ${read.why === "out of range" ? "is out of range" : "is not an integer"} ` +
          `for ${where}`,
      );
    }
    const big = read.value;
    // ClickHouse (18.16 and 26.9) reads a quoted digit string into Int64,
    // UInt64 and the wider ones exactly; a JSON number beyond 2^53 would not
    // survive the client's JSON.stringify.
    return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big.toString();
  };
}

const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FLOAT32_MAX = 3.4028234663852886e38;

function floatConverter(bits: 32 | 64, ctx: Ctx): ValueConverter {
  const where = ctx.where;
  const max = bits === 32 ? FLOAT32_MAX : Number.MAX_VALUE;
  return (value) => {
    let read: ReturnType<typeof floatOf> | undefined;
    if (typeof value === "number" || value instanceof JsonNumber) read = floatOf(value);
    else if (typeof value === "string" && FLOAT_RE.test(value.trim())) {
      read = floatOfText(value.trim(), Number(value.trim()));
    } else if (typeof value === "bigint") read = floatOfText(String(value), Number(value));
    if (read === undefined) throw new RangeError(`${show(value)} is not a number for ${where}`);
    if (!read.ok) throw new RangeError(`${show(value)} ${read.why} for ${where}`);
    if (Math.abs(read.value) > max) {
      throw new RangeError(`${show(value)} is out of range for ${where}`);
    }
    return read.value;
  };
}

function decimalConverter(precision: number, scale: number, ctx: Ctx): ValueConverter {
  const where = ctx.where;
  const intDigits = precision - scale;
  return (value) => {
    // A plain number stands for its shortest text (lib/json.ts): 12.345 is
    // 12.345, 1e-7 is 0.0000001; a JsonNumber for the text it was written as.
    let d;
    if (typeof value === "string") d = parseDecimal(value.trim());
    else if (typeof value === "number" || typeof value === "bigint") d = decimalOf(value);
    else if (value instanceof JsonNumber) d = decimalOf(value);
    else throw new RangeError(`${show(value)} is not a decimal number for ${where}`);
    if (d === undefined) {
      throw new RangeError(
        `${show(value)} is not ${
          typeof value === "number" ? "a finite number" : "a decimal number"
        } for ${where}`,
      );
    }
    // No rounding: more places than the scale is refused (the server would round).
    const places = d.exponent < 0 ? -d.exponent : 0;
    if (d.digits !== "" && places > scale) {
      throw new RangeError(`${show(value)} has more than ${scale} decimal places for ${where}`);
    }
    const wholeDigits = d.digits.length + d.exponent;
    if (d.digits !== "" && wholeDigits > intDigits) {
      throw new RangeError(`${show(value)} is out of range for ${where}`);
    }
    // The exact digits as a JSON number, without a binary float in between:
    // ClickHouse 18.16 reads Decimal in JSONEachRow only unquoted.
    return rawJSON(decimalText(d.negative, d.digits, d.exponent, scale));
  };
}

/** `digits × 10^exponent` with exactly `scale` places, e.g. `-12.50`, `0.00`. */
function decimalText(negative: boolean, digits: string, exponent: number, scale: number): string {
  if (digits === "") return scale > 0 ? `0.${"0".repeat(scale)}` : "0";
  // Whole part and fraction of digits × 10^exponent, exponent >= -scale.
  const all = exponent >= 0 ? digits + "0".repeat(exponent) : digits;
  const places = exponent >= 0 ? 0 : -exponent;
  const whole = places >= all.length ? "0" : all.slice(0, all.length - places);
  const fraction =
    (places >= all.length ? all.padStart(places, "0") : all.slice(all.length - places))
      .padEnd(scale, "0");
  return `${negative ? "-" : ""}${whole}${scale > 0 ? `.${fraction}` : ""}`;
}

const TRUE_TEXT = new Set(["true", "1", "yes", "on"]);
const FALSE_TEXT = new Set(["false", "0", "no", "off"]);

function boolConverter(ctx: Ctx): ValueConverter {
  const where = ctx.where;
  return (value) => {
    if (typeof value === "boolean") return value;
    if (value === 0 || value === 1) return value === 1;
    if (typeof value === "string") {
      const lower = value.trim().toLowerCase();
      if (TRUE_TEXT.has(lower)) return true;
      if (FALSE_TEXT.has(lower)) return false;
    }
    throw new RangeError(`${show(value)} is not a boolean for ${where}`);
  };
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function uuidConverter(ctx: Ctx): ValueConverter {
  const where = ctx.where;
  return (value) => {
    if (typeof value === "string" && UUID_RE.test(value)) return value.toLowerCase();
    throw new RangeError(`${show(value)} is not a UUID for ${where}`);
  };
}

// --- Time ----------------------------------------------------------------------------

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

function makeTimeReader(options: ConvertOptions): (value: unknown) => Timestamp {
  const time = options.time;
  const template = options.timestampTemplate === undefined ||
      options.timestampTemplate === DEFAULT_TIMESTAMP_TEMPLATE
    ? undefined
    : compileTimestampTemplate(options.timestampTemplate);
  if (template === undefined) return (value) => time.parse(value);
  return (value) => {
    if (typeof value === "string") {
      const text = template(value);
      if (text !== undefined) return time.parse(text);
    }
    return time.parse(value);
  };
}

function readTime(ctx: Ctx, value: unknown): Timestamp {
  let ts: Timestamp;
  try {
    ts = ctx.readTime(value);
  } catch {
    throw new RangeError(`${show(value)} is not a timestamp for ${ctx.where}`);
  }
  const outside = ctx.time.outsideWindow(ts);
  if (outside !== undefined) throw new RangeError(`${show(value)} ${outside}, for ${ctx.where}`);
  return ts;
}

function dateConverter(wide: boolean, ctx: Ctx): ValueConverter {
  const where = ctx.where;
  // https://clickhouse.com/docs/en/sql-reference/data-types/date (and date32)
  const [min, max] = wide ? ["1900-01-01", "2299-12-31"] : ["1970-01-01", "2149-06-06"];
  const time = ctx.time;
  return (value) => {
    let date: string | undefined;
    if (typeof value === "string") {
      const m = DATE_RE.exec(value.trim());
      if (m) {
        // Read as midnight UTC: as strict as a time, and checked against the window.
        let ts: Timestamp;
        try {
          ts = time.parse(`${m[0]} 00:00:00Z`);
        } catch {
          throw new RangeError(`${show(value)} is not a date for ${where}`);
        }
        const outside = time.outsideWindow(ts);
        if (outside !== undefined) throw new RangeError(`${show(value)} ${outside}, for ${where}`);
        date = m[0];
      }
    }
    if (date === undefined) date = time.localDate(readTime(ctx, value));
    if (date < min || date > max) {
      throw new RangeError(`${show(value)} is out of range for ${where}`);
    }
    return date;
  };
}

function dateTimeConverter(ctx: Ctx): ValueConverter {
  const where = ctx.where;
  return (value) => {
    const ts = readTime(ctx, value);
    // DateTime is a UInt32 of epoch seconds; 18.16 reads it as a JSON integer,
    // independent of the server's time zone.
    if (ts.seconds < 0 || ts.seconds > 4294967295) {
      throw new RangeError(`${show(value)} is out of range for ${where}`);
    }
    return ts.seconds;
  };
}

// 1900-01-01T00:00:00Z and 2299-12-31T23:59:59Z, the DateTime64 range.
const DATETIME64_MIN = -2208988800;
const DATETIME64_MAX = 10413791999;

function dateTime64Converter(precision: number, ctx: Ctx): ValueConverter {
  const where = ctx.where;
  return (value) => {
    const ts = readTime(ctx, value);
    if (ts.seconds < DATETIME64_MIN || ts.seconds > DATETIME64_MAX) {
      throw new RangeError(`${show(value)} is out of range for ${where}`);
    }
    // Unquoted: see the module documentation.
    return rawJSON(epochDecimal(ts, precision));
  };
}

/**
 * An instant as epoch seconds with `precision` digits after the point, cut
 * towards the past: `1795303500.123`, and `-1.500` for 1969-12-31
 * 23:59:58.5 (whose `Timestamp` is seconds -2, micros 500000: the sign
 * applies to the whole number, as ClickHouse reads it).
 *
 * @param ts The instant (nanoseconds when the text had them, else microseconds).
 * @param precision Digits after the point, 0 to 9.
 * @returns The decimal text.
 */
function epochDecimal(ts: Timestamp, precision: number): string {
  if (precision <= 0) return String(ts.seconds);
  const scale = 10n ** BigInt(precision);
  const fraction = BigInt(Math.floor(nanosOf(ts) / 10 ** (9 - precision)));
  const units = BigInt(ts.seconds) * scale + fraction;
  const magnitude = units < 0n ? -units : units;
  const digits = (magnitude % scale).toString().padStart(precision, "0");
  return `${units < 0n ? "-" : ""}${magnitude / scale}.${digits}`;
}

// --- Strptime templates ------------------------------------------------------------------

/**
 * Compiles a strptime-style `TIMESTAMP_TEMPLATE` into a matcher that turns
 * matching text into the `YYYY-MM-DD HH:MM:SS.ffffff[+HH:MM]` form
 * `TimeReader.parse` reads (in the configured zone unless `%z` gave an offset).
 * Supports `%Y %m %d %H %M %S %f %z %%`; other characters match literally.
 *
 * @param template E.g. `%d/%m/%Y %H:%M:%S`.
 * @returns A function giving the normalised text, or `undefined` when the text does not match.
 * @throws {SyntaxError} When the template uses an unsupported directive.
 */
export function compileTimestampTemplate(template: string): (text: string) => string | undefined {
  const parts: string[] = [];
  const fields: string[] = [];
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch !== "%") {
      parts.push(ch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"));
      continue;
    }
    const directive = template[++i];
    const pattern = DIRECTIVES[directive ?? ""];
    if (directive === "%") {
      parts.push("%");
    } else if (pattern !== undefined) {
      if (fields.includes(directive!)) {
        throw new SyntaxError(
          `Cannot read timestamp template: %${directive} appears twice in ${
            JSON.stringify(template)
          }`,
        );
      }
      fields.push(directive!);
      parts.push(`(${pattern})`);
    } else {
      throw new SyntaxError(
        `Cannot read timestamp template: %${directive ?? ""} is not supported ` +
          `(use %Y %m %d %H %M %S %f %z %%), got ${JSON.stringify(template)}`,
      );
    }
  }
  const re = new RegExp(`^${parts.join("")}$`);
  const pad = (
    v: string | undefined,
    fallback: string,
  ) => (v === undefined ? fallback : v.padStart(2, "0"));
  return (text) => {
    const m = re.exec(text.trim());
    if (!m) return undefined;
    const got: Record<string, string | undefined> = {};
    fields.forEach((f, index) => (got[f] = m[index + 1]));
    const offset = got.z === undefined ? "" : got.z;
    const frac = got.f === undefined ? "" : `.${got.f.padEnd(6, "0")}`;
    return `${got.Y ?? "1900"}-${pad(got.m, "01")}-${pad(got.d, "01")} ` +
      `${pad(got.H, "00")}:${pad(got.M, "00")}:${pad(got.S, "00")}${frac}${offset}`;
  };
}

const DIRECTIVES: Record<string, string> = {
  Y: "\\d{4}",
  m: "\\d{1,2}",
  d: "\\d{1,2}",
  H: "\\d{1,2}",
  M: "\\d{1,2}",
  S: "\\d{1,2}",
  f: "\\d{1,6}",
  z: "Z|[+-]\\d{2}:?\\d{2}",
};

// --- IP addresses --------------------------------------------------------------------

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4_RE = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Tells whether text is a dotted-quad IPv4 address.
 *
 * @param text The text.
 * @returns `true` for e.g. `192.0.2.1`.
 */
export function isIPv4(text: string): boolean {
  return IPV4_RE.test(text);
}

/**
 * Tells whether text is an IPv6 address (RFC 4291 text forms, no zone index).
 *
 * @param text The text.
 * @returns `true` for e.g. `::1` or `::ffff:192.0.2.1`.
 */
export function isIPv6(text: string): boolean {
  if (text.length < 2 || text.length > 45) return false;
  const lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return false;
  let head = text;
  if (text.includes(".", lastColon)) {
    if (!IPV4_RE.test(text.slice(lastColon + 1))) return false;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const gap = head.indexOf("::");
  if (gap !== head.lastIndexOf("::")) return false;
  if (gap < 0) {
    const groups = head.split(":");
    return groups.length === 8 && groups.every((g) => HEX_GROUP.test(g));
  }
  const left = head.slice(0, gap), right = head.slice(gap + 2);
  const groups = [
    ...(left === "" ? [] : left.split(":")),
    ...(right === "" ? [] : right.split(":")),
  ];
  return groups.length <= 7 && groups.every((g) => HEX_GROUP.test(g));
}

function ipv4Converter(ctx: Ctx): ValueConverter {
  const where = ctx.where;
  const empty = ctx.inArray ? "0.0.0.0" : OMIT;
  return (value) => {
    if (typeof value === "string") {
      if (value === "") return empty;
      if (IPV4_RE.test(value)) return value;
      const lower = value.toLowerCase();
      if (lower.startsWith("::ffff:") && IPV4_RE.test(lower.slice(7))) return lower.slice(7);
      if (isIPv6(value)) throw new RangeError(`IPv6 address ${show(value)} in ${where}`);
    } else if (
      typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff
    ) {
      return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
    }
    throw new RangeError(`${show(value)} is not an IPv4 address for ${where}`);
  };
}

function ipv6Converter(ctx: Ctx): ValueConverter {
  const where = ctx.where;
  const empty = ctx.inArray ? "::" : OMIT;
  return (value) => {
    if (typeof value === "string") {
      if (value === "") return empty;
      if (IPV4_RE.test(value)) return `::ffff:${value}`;
      if (isIPv6(value)) return value.toLowerCase();
    }
    throw new RangeError(`${show(value)} is not an IP address for ${where}`);
  };
}

// --- Enums -------------------------------------------------------------------------

function enumConverter(type: Extract<ClickHouseType, { kind: "enum" }>, ctx: Ctx): ValueConverter {
  const where = ctx.where;
  const names = new Set(type.entries.map(([name]) => name));
  const byValue = new Map(type.entries.map(([name, value]) => [value, name]));
  const typeText = renderType(type);
  return (value) => {
    if (typeof value === "string") {
      if (names.has(value)) return value;
      const text = value.trim();
      if (INT_RE.test(text)) {
        const name = byValue.get(Number(text));
        if (name !== undefined) return name;
      }
    } else if (typeof value === "number") {
      const name = byValue.get(value);
      // 18.16 reads an Enum in JSONEachRow only by name (a number is Code 26).
      if (name !== undefined) return name;
    }
    throw new RangeError(`${show(value)} is not one of the values of ${typeText} for ${where}`);
  };
}
