/**
 * JSON numbers kept exact: what `JSON.parse` would round is kept as the
 * text it was written as.
 *
 * `JSON.parse` reads every number into a double, so `18446744073709551615`
 * (a UInt64 counter at its maximum) becomes 18446744073709551616,
 * `9007199254740993` becomes ...992, `1e400` becomes `Infinity` (and `null`
 * when written back out) and `1e-400` becomes 0. {@link parseJson} reads such
 * a number into a {@link JsonNumber} instead, which holds the literal's text:
 *
 * - `JSON.stringify` writes it as that text, unquoted (its `toJSON()` gives
 *   `JSON.rawJSON(text)`), so a record written back out (an Elasticsearch
 *   document, a dead letter) carries the digits it came with, with no
 *   replacer and nothing to remember;
 * - code that only knows numbers sees an object and refuses it, instead of
 *   using a rounded value; the converters that know it ({@link integerOf},
 *   {@link floatOf}, {@link decimalOf}) take its exact value or say why a
 *   destination cannot hold it.
 *
 * A number stays a plain `number` when the double denotes the same decimal
 * value as the literal (`1.5`, `1e5`, `0.1`: the shortest text that reads
 * back as the double, `String(n)`, has the literal's value) and is below 2^53
 * in magnitude. So a plain number in a record is always exact, and
 * `Number.isInteger()` of it is the truth about the literal.
 *
 * Bigints were the other choice for integers: they are exact too, but
 * `JSON.stringify` throws on them, so every writer of records would need a
 * replacer, and literals such as `1e400` or `0.1000000000000000000001` would
 * still need a type of their own. One type does both.
 *
 * The common path stays fast: the text is parsed once with plain
 * `JSON.parse`, and parsed again with a reviver (which sees each literal's
 * text, `context.source`; about three times the cost) only when a number may
 * have been changed: a value that is not an integer below 10^15 in magnitude
 * (fractions, large or non-finite numbers), and in the text a run of 17 or
 * more digits and points around a point or a negative exponent (a literal
 * that rounds to an integer, `1.00000000000000001`, or to 0, `1e-400`). A
 * pmacct record has integers only and no such text, so it is parsed once;
 * `bench/decode_encode.ts` measures it.
 *
 * @module
 */

// `JSON.rawJSON` (V8 11.4+) is not yet in TypeScript's lib: the value it
// makes serialises as the given JSON text, unquoted.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** 2^53: doubles hold every integer below it in magnitude, and not all above. */
const TWO_53 = 9007199254740992;

/** A JSON number a double does not hold exactly, kept as its literal. */
export class JsonNumber {
  /** The literal as written, e.g. `18446744073709551615`, `1e400`. */
  readonly text: string;
  /** The nearest double (what `JSON.parse` gives): may be rounded, ±Infinity or 0. */
  readonly value: number;

  /**
   * @param text A JSON number literal.
   */
  constructor(text: string) {
    this.text = text;
    this.value = Number(text);
  }

  /**
   * What `JSON.stringify` writes: the literal, unquoted.
   *
   * @returns A raw JSON value.
   */
  toJSON(): unknown {
    return rawJSON(this.text);
  }

  /**
   * The literal.
   *
   * @returns The text as written.
   */
  toString(): string {
    return this.text;
  }
}

/**
 * A decimal number: `(-1)^negative × digits × 10^exponent`, `digits` without
 * leading or trailing zeros (`""` for zero), so that equal values have equal
 * forms.
 */
export interface Decimal {
  /** The sign (false for zero). */
  negative: boolean;
  /** The significant digits. */
  digits: string;
  /** The power of ten of the last digit; ±Infinity when beyond any use. */
  exponent: number;
}

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * Reads decimal text: JSON numbers, and also a leading `+`, a leading or
 * trailing point (`.5`, `5.`), as `Number()` reads them, without rounding.
 *
 * @param text The text (no spaces).
 * @returns The decimal, or `undefined` when the text is not a number.
 */
export function parseDecimal(text: string): Decimal | undefined {
  const m = DECIMAL_RE.exec(text);
  if (m === null) return undefined;
  const whole = m[2]!;
  const fraction = m[3] ?? "";
  if (whole === "" && fraction === "") return undefined;
  let digits = whole + fraction;
  let exponent = m[4] === undefined ? 0 : Number(m[4]);
  if (!Number.isSafeInteger(exponent)) exponent = exponent < 0 ? -Infinity : Infinity;
  exponent -= fraction.length;
  let start = 0;
  while (start < digits.length && digits.charCodeAt(start) === 48) start++;
  let end = digits.length;
  while (end > start && digits.charCodeAt(end - 1) === 48) end--;
  exponent += digits.length - end;
  digits = digits.slice(start, end);
  if (digits === "") return { negative: false, digits, exponent: 0 };
  return { negative: m[1] === "-", digits, exponent };
}

/**
 * The exact decimal value of a number as a record holds it.
 *
 * @param value A plain number (read as `String(value)`, the shortest text
 *   that reads back as it: what a plain number in a record stands for; from
 *   2^53 up, where every double is an integer, as that integer), a
 *   {@link JsonNumber}, a bigint, or decimal text.
 * @returns The decimal, or `undefined` for anything else (NaN, ±Infinity included).
 */
export function decimalOf(value: unknown): Decimal | undefined {
  if (value instanceof JsonNumber) return parseDecimal(value.text);
  switch (typeof value) {
    case "number":
      if (!Number.isFinite(value)) return undefined;
      // An integer double from 2^53 up is its exact value (2^60 is
      // 1152921504606846976, not the 1152921504606847000 String() writes).
      return parseDecimal(
        Math.abs(value) >= TWO_53 ? BigInt(value).toString() : String(value),
      );
    case "bigint":
      return parseDecimal(String(value));
    case "string":
      return parseDecimal(value);
    default:
      return undefined;
  }
}

/**
 * Whether two decimals have the same value.
 *
 * @param a One.
 * @param b The other.
 * @returns `true` when equal.
 */
export function sameDecimal(a: Decimal, b: Decimal): boolean {
  return a.digits === b.digits && a.exponent === b.exponent && a.negative === b.negative;
}

/**
 * The integer a decimal is, exactly.
 *
 * @param d The decimal.
 * @param maxDigits Integers with more digits are `"huge"` (not computed).
 * @returns The bigint, `"fraction"` when it is not an integer, or `"huge"`.
 */
export function decimalToBigInt(d: Decimal, maxDigits = 100): bigint | "fraction" | "huge" {
  if (d.digits === "") return 0n;
  if (d.exponent < 0) return "fraction";
  if (d.digits.length + d.exponent > maxDigits) return "huge";
  const big = BigInt(d.digits) * 10n ** BigInt(d.exponent);
  return d.negative ? -big : big;
}

/** What {@link integerOf} made of a value. */
export type IntegerResult =
  | { ok: true; value: bigint }
  | { ok: false; why: "not a number" | "not an integer" | "out of range" };

const INT_TEXT = /^[+-]?\d+$/;

/**
 * The exact integer of a record value, within bounds.
 *
 * @param value A number, a {@link JsonNumber}, a bigint, or (with `text`)
 *   integer text such as `"42"` (digits only: `"1e3"` and `"0x10"` are not integers).
 * @param min The least value accepted.
 * @param max The greatest value accepted.
 * @param text Whether integer text is read too.
 * @returns The integer, or why there is none. Booleans are not numbers.
 */
export function integerOf(value: unknown, min: bigint, max: bigint, text = false): IntegerResult {
  let big: bigint;
  if (typeof value === "number" && Number.isSafeInteger(value)) {
    big = BigInt(value);
  } else if (typeof value === "bigint") {
    big = value;
  } else if (typeof value === "string" && text) {
    const trimmed = value.trim();
    if (!INT_TEXT.test(trimmed)) {
      return { ok: false, why: parseDecimal(trimmed) ? "not an integer" : "not a number" };
    }
    big = BigInt(trimmed[0] === "+" ? trimmed.slice(1) : trimmed);
  } else if (typeof value === "number" || value instanceof JsonNumber) {
    const d = decimalOf(value);
    if (d === undefined) return { ok: false, why: "out of range" };
    const exact = decimalToBigInt(d, max.toString().length + 1);
    if (exact === "fraction") return { ok: false, why: "not an integer" };
    if (exact === "huge") return { ok: false, why: "out of range" };
    big = exact;
  } else {
    return { ok: false, why: "not a number" };
  }
  return big < min || big > max ? { ok: false, why: "out of range" } : { ok: true, value: big };
}

/** What {@link floatOf} made of a value. */
export type FloatResult = { ok: true; value: number } | { ok: false; why: string };

/**
 * The double of a number for a destination that stores doubles (a float
 * field or column). What the literal says decides:
 *
 * - A float literal (with a point or an exponent: `0.1`, `2.5E+300`,
 *   `1.5e308`, `1e20`) is a float as written, and a double holds it as well
 *   as any float does: its digits beyond a double's are rounded, whatever
 *   its magnitude and whether or not its value is an integer
 *   (`9007199254740993.0` is 9007199254740992, as `1.00000000000000001`
 *   is 1: the writer chose a float).
 * - An integer literal (digits only, with an optional sign) from 2^53 up is
 *   a count, and a double would change it there: it is taken only when it
 *   is exactly a double (`100000000000000000000` is, `18446744073709551615`
 *   would be 18446744073709551616 and is refused).
 * - Any literal a double cannot stand for at all is refused: one beyond its
 *   range (`1e400` would be Infinity) and a nonzero one so small it would
 *   be 0 (`1e-400`).
 *
 * @param value A plain number (exact by construction, see the module
 *   documentation) or a {@link JsonNumber}; anything else is not a number.
 * @returns The double, or why there is none (a sentence fragment after the value).
 */
export function floatOf(value: unknown): FloatResult {
  if (typeof value === "number") {
    return Number.isFinite(value)
      ? { ok: true, value }
      : { ok: false, why: "is not a finite number" };
  }
  if (value instanceof JsonNumber) return floatOfText(value.text, value.value);
  return { ok: false, why: "is not a number" };
}

/**
 * Whether decimal text is an integer literal: digits only, with an optional
 * sign (`42`, `-7`, `18446744073709551615`), no point and no exponent.
 *
 * @param text The text (no spaces).
 * @returns `true` for an integer literal.
 */
export function isIntegerLiteral(text: string): boolean {
  return INT_TEXT.test(text);
}

/**
 * {@link floatOf} for decimal text already read with `Number()`.
 *
 * @param text The decimal text.
 * @param n `Number(text)`.
 * @returns The double, or why there is none.
 */
export function floatOfText(text: string, n: number): FloatResult {
  if (!Number.isFinite(n)) {
    return { ok: false, why: "is beyond the range of a 64-bit float (about 1.8e308)" };
  }
  const magnitude = Math.abs(n);
  if (magnitude !== 0 && magnitude < TWO_53) return { ok: true, value: n };
  const trimmed = text.trim();
  const d = parseDecimal(trimmed);
  if (d === undefined) return { ok: false, why: "is not a number" };
  if (n === 0) {
    return d.digits === ""
      ? { ok: true, value: n }
      : { ok: false, why: "is closer to 0 than a 64-bit float can hold (about 5e-324)" };
  }
  // A float literal is rounded as every float is; an integer literal from
  // 2^53 up (where every double is an integer) must be that integer.
  if (!INT_TEXT.test(trimmed)) return { ok: true, value: n };
  const stored = BigInt(n);
  if (BigInt(trimmed) === stored) return { ok: true, value: n };
  return { ok: false, why: `is beyond 2^53, where a 64-bit float would store ${stored} instead` };
}

/**
 * Reads JSON text, keeping every number a double would change as a
 * {@link JsonNumber} (see the module documentation for when the text is
 * read a second time).
 *
 * @param text JSON text.
 * @returns The value.
 * @throws {SyntaxError} When the text is not JSON.
 */
export function parseJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  return mayHoldInexact(value) || textMayHoldInexact(text)
    ? JSON.parse(text, exactReviver as (key: string, value: unknown) => unknown)
    : value;
}

/**
 * Reads JSON text for destinations that store every number as a double
 * (collectd values): plain `JSON.parse`, read again keeping
 * {@link JsonNumber}s only when a number may be one {@link floatOf} refuses:
 * non-finite, 2^53 or more in magnitude, or 0 from a literal that is not.
 * Fractions with more digits than a double holds are left to the double.
 *
 * @param text JSON text.
 * @returns The value.
 * @throws {SyntaxError} When the text is not JSON.
 */
export function parseJsonFloats(text: string): unknown {
  const value: unknown = JSON.parse(text);
  const seen = floatsCheck(value, 0);
  return seen === "inexact" || (seen === "zero" && textMayHoldInexact(text))
    ? JSON.parse(text, exactReviver as (key: string, value: unknown) => unknown)
    : value;
}

/** What {@link parseJsonFloats} looks for, at any depth (up to 64). */
function floatsCheck(value: unknown, depth: number): "inexact" | "zero" | undefined {
  if (typeof value === "number") {
    if (value === 0) return "zero";
    return Number.isFinite(value) && Math.abs(value) < TWO_53 ? undefined : "inexact";
  }
  if (typeof value !== "object" || value === null) return undefined;
  if (depth > 64) return "inexact";
  let seen: "zero" | undefined;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    const found = floatsCheck(item, depth + 1);
    if (found === "inexact") return found;
    if (found === "zero") seen = found;
  }
  return seen;
}

/**
 * Whether parsed values hold a number that is not an integer below 10^15,
 * or objects and arrays deeper than one level (not looked into).
 */
function mayHoldInexact(value: unknown): boolean {
  if (typeof value === "number") return !(value < 1e15 && value > -1e15 && Number.isInteger(value));
  if (typeof value !== "object" || value === null) return false;
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === "object" ? item !== null : mayHoldInexact(item)) return true;
    }
    return false;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const v = record[key];
    if (typeof v === "number") {
      if (!(v < 1e15 && v > -1e15 && Number.isInteger(v))) return true;
    } else if (typeof v === "object" && v !== null) return true;
  }
  return false;
}

const DOT = 46;
const QUOTE = 34;
const ZERO = 48;
const NINE = 57;
const LOWER_E = 101;

function isNumberChar(code: number): boolean {
  return (code >= ZERO && code <= NINE) || code === DOT;
}

/**
 * Whether the text may hold a literal whose double is an integer below 10^15
 * but not its value: a run of 17 or more digits and points with a point in
 * it (`1.00000000000000001`), or a negative exponent (`1e-400`, `5E-7`).
 * Strings are not told apart from numbers: a match in a string only costs
 * the second reading.
 */
function textMayHoldInexact(text: string): boolean {
  const length = text.length;
  let i = text.indexOf(".");
  while (i >= 0) {
    let from = i - 1;
    while (from >= 0 && isNumberChar(text.charCodeAt(from))) from--;
    if (text.charCodeAt(from) === QUOTE) {
      // The run opens a string (an IP address, a time): skip the string.
      const close = text.indexOf('"', i + 1);
      if (close < 0) break;
      i = text.indexOf(".", close);
      continue;
    }
    let to = i + 1;
    while (to < length && isNumberChar(text.charCodeAt(to))) to++;
    if (to - from - 1 >= 17) return true;
    i = text.indexOf(".", to);
  }
  i = text.indexOf("-", 2);
  while (i >= 0) {
    if ((text.charCodeAt(i - 1) | 32) === LOWER_E && isNumberChar(text.charCodeAt(i - 2))) {
      return true;
    }
    i = text.indexOf("-", i + 1);
  }
  return false;
}

/** Keeps a number whose double is not its literal as a {@link JsonNumber}. */
function exactReviver(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number") return value;
  const source = context?.source;
  if (source === undefined || isExact(source, value)) return value;
  return new JsonNumber(source);
}

/** Whether a double stands for its literal: below 2^53 and the same decimal value. */
function isExact(source: string, n: number): boolean {
  if (!Number.isFinite(n) || Math.abs(n) >= TWO_53) return false;
  // Most literals are already the shortest text of their double.
  const shortest = String(n);
  if (shortest === source) return true;
  const a = parseDecimal(source);
  const b = parseDecimal(shortest);
  if (a === undefined || b === undefined) return false;
  // -0 reads as 0 here: its sign is kept by the double.
  return a.digits === "" ? b.digits === "" : sameDecimal(a, b);
}

/**
 * Writes a value as JSON with every number exact: {@link JsonNumber}s as
 * their literal (as `JSON.stringify` does by itself) and bigints as their
 * digits, unquoted, where `JSON.stringify` would throw.
 *
 * @param value The value.
 * @returns The JSON text (`undefined` for `undefined`, as `JSON.stringify`).
 */
export function stringifyExact(value: unknown): string {
  return JSON.stringify(value, bigintDigits);
}

function bigintDigits(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? rawJSON(value.toString()) : value;
}
