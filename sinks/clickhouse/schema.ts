/**
 * The table sluice writes to, as `CLICKHOUSE_DATA_SCHEMA` declares it:
 * `field:Type` entries, parsed into typed columns, validated the way
 * ClickHouse would validate them, and rendered into the DDL that creates
 * the table.
 *
 * Entries are separated by any of `,;\r\n\t\f\v`, as in the original
 * pmacct-kafka-clickhouse script, but only outside brackets and quotes, so
 * `amount:Decimal(10,2)` and `x:DateTime64(6, 'UTC')` stay whole.
 *
 * Type names and their parameters follow
 * https://clickhouse.com/docs/en/sql-reference/data-types; type names are
 * case-sensitive there, and so they are here.
 *
 * @module
 */

import { isValidTimeZone } from "../../lib/time.ts";

/** Integer widths ClickHouse knows. */
export type IntBits = 8 | 16 | 32 | 64 | 128 | 256;

/** A parsed ClickHouse column type. `family` is the type name as written. */
export type ClickHouseType =
  | { kind: "string"; family: string }
  | { kind: "fixed_string"; family: string; length: number }
  | { kind: "int"; family: string; bits: IntBits; signed: boolean }
  | { kind: "float"; family: string; bits: 32 | 64 }
  | { kind: "decimal"; family: string; precision: number; scale: number }
  | { kind: "bool"; family: string }
  | { kind: "uuid"; family: string }
  | { kind: "date"; family: string; wide: boolean }
  | { kind: "datetime"; family: string; timezone?: string }
  | { kind: "datetime64"; family: string; precision: number; timezone?: string }
  | { kind: "ipv4"; family: string }
  | { kind: "ipv6"; family: string }
  | { kind: "enum"; family: string; bits: 8 | 16; entries: Array<[name: string, value: number]> }
  | { kind: "nullable"; family: string; inner: ClickHouseType }
  | { kind: "low_cardinality"; family: string; inner: ClickHouseType }
  | { kind: "array"; family: string; element: ClickHouseType };

/** One column of the table: the pmacct field it is filled from, and its type. */
export interface ColumnSpec {
  /** Column name, also the pmacct field name read from each record. */
  name: string;
  /** The parsed type. */
  type: ClickHouseType;
  /** The type as sluice writes it in DDL, e.g. `Decimal(10, 2)`. */
  typeText: string;
}

/** A problem with one `CLICKHOUSE_DATA_SCHEMA` entry. */
export interface SchemaProblem {
  /** The entry at fault, as written (trimmed). */
  entry: string;
  /** What is wrong, as a sentence fragment following the variable name. */
  message: string;
}

/** Decimal precision limits of `Decimal32/64/128/256(S)`. */
const DECIMAL_BITS: Record<string, number> = {
  Decimal32: 9,
  Decimal64: 18,
  Decimal128: 38,
  Decimal256: 76,
};

/** The largest `FixedString(N)` ClickHouse allows (0xFFFFFF). */
const MAX_FIXED_STRING = 0xFFFFFF;

// --- Splitting the variable into entries ------------------------------------

const SEPARATORS = new Set([",", ";", "\r", "\n", "\t", "\f", "\v"]);

/**
 * Splits `CLICKHOUSE_DATA_SCHEMA` into entries at separators outside brackets
 * and quotes.
 *
 * @param text The variable's value.
 * @returns Each non-empty entry, trimmed, and whether its brackets or quotes
 *   are unbalanced.
 */
export function splitSchemaEntries(text: string): Array<{ entry: string; balanced: boolean }> {
  const out: Array<{ entry: string; balanced: boolean }> = [];
  let start = 0;
  let depth = 0;
  let quote = false;
  let balanced = true;
  const push = (end: number) => {
    const entry = text.slice(start, end).trim();
    if (entry !== "") out.push({ entry, balanced: balanced && depth === 0 && !quote });
    start = end + 1;
    depth = 0;
    quote = false;
    balanced = true;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === "'") quote = false;
      continue;
    }
    if (ch === "'") quote = true;
    else if (ch === "(") depth++;
    else if (ch === ")") {
      if (depth === 0) balanced = false;
      else depth--;
    } else if (depth === 0 && SEPARATORS.has(ch)) push(i);
  }
  push(text.length);
  return out;
}

/**
 * Parses and validates `CLICKHOUSE_DATA_SCHEMA`, collecting every problem.
 *
 * @param text The variable's value, e.g. `ip_src:IPv4,bytes:UInt64`.
 * @returns The valid columns in order, and one problem per bad entry.
 */
export function parseSchema(text: string): { columns: ColumnSpec[]; problems: SchemaProblem[] } {
  const columns: ColumnSpec[] = [];
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const { entry, balanced } of splitSchemaEntries(text)) {
    if (!balanced) {
      problems.push({ entry, message: "has unbalanced brackets or quotes in an entry" });
      continue;
    }
    const colon = entry.indexOf(":");
    const name = colon < 0 ? entry : entry.slice(0, colon).trim();
    const typeText = colon < 0 ? "" : entry.slice(colon + 1).trim();
    if (name === "") {
      problems.push({ entry, message: "needs a field name in every entry (field:Type)" });
      continue;
    }
    if (typeText === "") {
      problems.push({ entry, message: `needs a type for column "${name}" (field:Type)` });
      continue;
    }
    if (seen.has(name)) {
      problems.push({ entry, message: `must not declare column "${name}" twice` });
      continue;
    }
    seen.add(name);
    try {
      const type = parseType(typeText);
      columns.push({ name, type, typeText: renderType(type) });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      problems.push({ entry, message: `has an invalid type for column "${name}": ${why}` });
    }
  }
  if (columns.length === 0 && problems.length === 0) {
    problems.push({ entry: text.trim(), message: "must declare at least one column (field:Type)" });
  }
  return { columns, problems };
}

// --- Parsing one type ----------------------------------------------------------

type Token =
  | { t: "ident"; v: string }
  | { t: "number"; v: string }
  | { t: "string"; v: string }
  | { t: "(" | ")" | "," | "=" };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "(" || ch === ")" || ch === "," || ch === "=") {
      tokens.push({ t: ch });
      i++;
    } else if (ch === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= text.length) throw new SyntaxError("a quoted name is not closed");
        const c = text[i]!;
        if (c === "\\" && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'" && text[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      tokens.push({ t: "string", v: value });
    } else {
      const m = /^(?:[A-Za-z_][A-Za-z0-9_]*|[+-]?[0-9A-Za-z_.]+)/.exec(text.slice(i));
      if (!m) throw new SyntaxError(`unexpected character ${JSON.stringify(ch)}`);
      const word = m[0];
      tokens.push(/^[A-Za-z_]/.test(word) ? { t: "ident", v: word } : { t: "number", v: word });
      i += word.length;
    }
  }
  return tokens;
}

/** A parsed type expression before validation: a name and raw arguments. */
type Expr = { name: string; args: Arg[] | undefined };
type Arg =
  | { a: "type"; expr: Expr }
  | { a: "number"; v: string }
  | { a: "string"; v: string }
  | { a: "pair"; name: string; value: string };

class TypeParser {
  #tokens: Token[];
  #pos = 0;
  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  parse(): Expr {
    const expr = this.#expr();
    if (this.#pos < this.#tokens.length) {
      throw new SyntaxError(`unexpected ${describeToken(this.#tokens[this.#pos]!)} after the type`);
    }
    return expr;
  }

  #expr(): Expr {
    const tok = this.#tokens[this.#pos];
    if (tok === undefined || tok.t !== "ident") {
      throw new SyntaxError(
        tok === undefined
          ? "a type name is missing"
          : `expected a type name, got ${describeToken(tok)}`,
      );
    }
    this.#pos++;
    if (this.#tokens[this.#pos]?.t !== "(") return { name: tok.v, args: undefined };
    this.#pos++;
    const args: Arg[] = [];
    if (this.#tokens[this.#pos]?.t === ")") {
      this.#pos++;
      return { name: tok.v, args };
    }
    for (;;) {
      args.push(this.#arg());
      const next = this.#tokens[this.#pos++];
      if (next?.t === ")") return { name: tok.v, args };
      if (next?.t !== ",") {
        throw new SyntaxError(
          next === undefined
            ? `${tok.v}(...) is not closed`
            : `expected "," or ")", got ${describeToken(next)}`,
        );
      }
    }
  }

  #arg(): Arg {
    const tok = this.#tokens[this.#pos];
    if (tok === undefined) throw new SyntaxError("a type parameter is missing");
    if (tok.t === "ident") return { a: "type", expr: this.#expr() };
    if (tok.t === "number") {
      this.#pos++;
      return { a: "number", v: tok.v };
    }
    if (tok.t === "string") {
      this.#pos++;
      if (this.#tokens[this.#pos]?.t !== "=") return { a: "string", v: tok.v };
      this.#pos++;
      const value = this.#tokens[this.#pos++];
      if (value?.t !== "number") {
        throw new SyntaxError(`expected a number after '${tok.v}' =, got ${describeToken(value)}`);
      }
      return { a: "pair", name: tok.v, value: value.v };
    }
    throw new SyntaxError(`unexpected ${describeToken(tok)}`);
  }
}

function describeToken(tok: Token | undefined): string {
  if (tok === undefined) return "the end";
  if (tok.t === "ident" || tok.t === "number") return JSON.stringify(tok.v);
  if (tok.t === "string") return `'${tok.v}'`;
  return `"${tok.t}"`;
}

const SIMPLE: Record<string, (family: string) => ClickHouseType> = {
  String: (family) => ({ kind: "string", family }),
  Float32: (family) => ({ kind: "float", family, bits: 32 }),
  Float64: (family) => ({ kind: "float", family, bits: 64 }),
  Bool: (family) => ({ kind: "bool", family }),
  Boolean: (family) => ({ kind: "bool", family }),
  UUID: (family) => ({ kind: "uuid", family }),
  Date: (family) => ({ kind: "date", family, wide: false }),
  Date32: (family) => ({ kind: "date", family, wide: true }),
  IPv4: (family) => ({ kind: "ipv4", family }),
  IPv6: (family) => ({ kind: "ipv6", family }),
};
for (const bits of [8, 16, 32, 64, 128, 256] as const) {
  SIMPLE[`Int${bits}`] = (family) => ({ kind: "int", family, bits, signed: true });
  SIMPLE[`UInt${bits}`] = (family) => ({ kind: "int", family, bits, signed: false });
}

/** Every type name sluice understands, for the "did you mean" hint. */
const KNOWN_NAMES = [
  ...Object.keys(SIMPLE),
  "FixedString",
  "Decimal",
  ...Object.keys(DECIMAL_BITS),
  "DateTime",
  "DateTime64",
  "Enum8",
  "Enum16",
  "Nullable",
  "LowCardinality",
  "Array",
];

/**
 * Parses and validates one ClickHouse type.
 *
 * @param text E.g. `Nullable(Decimal(10, 2))`.
 * @returns The type.
 * @throws {SyntaxError} When the text is not a type expression.
 * @throws {RangeError} When ClickHouse would refuse the type or its parameters.
 */
export function parseType(text: string): ClickHouseType {
  return build(new TypeParser(tokenize(text)).parse());
}

function build(expr: Expr): ClickHouseType {
  const { name, args } = expr;
  const simple = SIMPLE[name];
  if (simple !== undefined) {
    if (args !== undefined) throw new RangeError(`${name} takes no parameters`);
    return simple(name);
  }
  switch (name) {
    case "FixedString": {
      const length = intArg(name, args, 0, "a length N", 1, MAX_FIXED_STRING, 1);
      return { kind: "fixed_string", family: name, length };
    }
    case "Decimal": {
      if (args === undefined || args.length < 1 || args.length > 2) {
        throw new RangeError("Decimal needs a precision and a scale: Decimal(P, S)");
      }
      const precision = intArg(name, args, 0, "a precision P", 1, 76, args.length);
      const scale = args.length === 2 ? intArg(name, args, 1, "a scale S", 0, precision, 2) : 0;
      return { kind: "decimal", family: name, precision, scale };
    }
    case "Decimal32":
    case "Decimal64":
    case "Decimal128":
    case "Decimal256": {
      const precision = DECIMAL_BITS[name]!;
      const scale = intArg(name, args, 0, "a scale S", 0, precision, 1);
      return { kind: "decimal", family: name, precision, scale };
    }
    case "DateTime": {
      if (args === undefined || args.length === 0) return { kind: "datetime", family: name };
      if (args.length !== 1) {
        throw new RangeError("DateTime takes at most a time zone: DateTime('Zone')");
      }
      return { kind: "datetime", family: name, timezone: zoneArg(name, args[0]!) };
    }
    case "DateTime64": {
      if (args === undefined || args.length < 1 || args.length > 2) {
        throw new RangeError(
          "DateTime64 needs a precision and optionally a time zone: DateTime64(P[, 'Zone'])",
        );
      }
      const precision = intArg(name, args, 0, "a precision P", 0, 9, args.length);
      const timezone = args.length === 2 ? zoneArg(name, args[1]!) : undefined;
      return { kind: "datetime64", family: name, precision, timezone };
    }
    case "Enum8":
    case "Enum16":
      return buildEnum(name, args);
    case "Nullable": {
      const inner = oneTypeArg(name, args);
      if (inner.kind === "nullable" || inner.kind === "array" || inner.kind === "low_cardinality") {
        throw new RangeError(
          `Nullable cannot contain ${inner.family}: ${renderType(inner)} cannot be inside Nullable`,
        );
      }
      return { kind: "nullable", family: name, inner };
    }
    case "LowCardinality": {
      const inner = oneTypeArg(name, args);
      const base = inner.kind === "nullable" ? inner.inner : inner;
      if (!LOW_CARDINALITY_OK.has(base.kind)) {
        throw new RangeError(`LowCardinality cannot contain ${renderType(inner)}`);
      }
      return { kind: "low_cardinality", family: name, inner };
    }
    case "Array":
      return { kind: "array", family: name, element: oneTypeArg(name, args) };
  }
  const hint = KNOWN_NAMES.find((known) => known.toLowerCase() === name.toLowerCase());
  throw new RangeError(
    `unknown type "${name}"${
      hint === undefined ? "" : ` (type names are case-sensitive: ${hint}?)`
    }`,
  );
}

/** Kinds ClickHouse allows inside `LowCardinality(...)` (optionally made Nullable). */
const LOW_CARDINALITY_OK = new Set<ClickHouseType["kind"]>([
  "string",
  "fixed_string",
  "int",
  "float",
  "date",
  "datetime",
  "uuid",
  "ipv4",
  "ipv6",
]);

function intArg(
  family: string,
  args: Arg[] | undefined,
  index: number,
  what: string,
  min: number,
  max: number,
  count: number,
): number {
  if (args === undefined || args.length !== count) {
    throw new RangeError(`${family} needs ${count === 1 ? what : `${count} parameters`}`);
  }
  const arg = args[index]!;
  const shown = arg.a === "number" || arg.a === "string"
    ? arg.v
    : arg.a === "type"
    ? arg.expr.name
    : arg.name;
  if (arg.a !== "number" || !/^\d+$/.test(arg.v)) {
    throw new RangeError(`${family} needs ${what} as an integer, got ${JSON.stringify(shown)}`);
  }
  const value = Number(arg.v);
  if (value < min || value > max) {
    throw new RangeError(
      `${family} ${what.replace(/^an? /, "")} must be between ${min} and ${max}, got ${value}`,
    );
  }
  return value;
}

function zoneArg(family: string, arg: Arg): string {
  if (arg.a !== "string") {
    throw new RangeError(`${family} needs the time zone as a quoted name, e.g. 'UTC'`);
  }
  if (!isValidTimeZone(arg.v)) {
    throw new RangeError(`${family} has an unknown time zone '${arg.v}'`);
  }
  return arg.v;
}

function oneTypeArg(family: string, args: Arg[] | undefined): ClickHouseType {
  if (args === undefined || args.length !== 1 || args[0]!.a !== "type") {
    throw new RangeError(`${family} needs exactly one type: ${family}(T)`);
  }
  return build(args[0]!.expr);
}

function buildEnum(family: "Enum8" | "Enum16", args: Arg[] | undefined): ClickHouseType {
  const bits = family === "Enum8" ? 8 : 16;
  const min = -(2 ** (bits - 1)), max = 2 ** (bits - 1) - 1;
  if (args === undefined || args.length === 0) {
    throw new RangeError(`${family} needs its values: ${family}('name' = 1, ...)`);
  }
  const entries: Array<[string, number]> = [];
  const names = new Set<string>();
  const values = new Set<number>();
  for (const arg of args) {
    if (arg.a !== "pair") throw new RangeError(`${family} values must be written 'name' = number`);
    if (!/^[+-]?\d+$/.test(arg.value)) {
      throw new RangeError(
        `${family} value of '${arg.name}' must be an integer, got ${JSON.stringify(arg.value)}`,
      );
    }
    const value = Number(arg.value);
    if (value < min || value > max) {
      throw new RangeError(
        `${family} value of '${arg.name}' must be between ${min} and ${max}, got ${value}`,
      );
    }
    if (names.has(arg.name)) throw new RangeError(`${family} names '${arg.name}' twice`);
    if (values.has(value)) throw new RangeError(`${family} uses the value ${value} twice`);
    names.add(arg.name);
    values.add(value);
    entries.push([arg.name, value]);
  }
  return { kind: "enum", family, bits, entries };
}

// --- Rendering -----------------------------------------------------------------

/**
 * Writes a ClickHouse string literal: single quotes, backslash escapes.
 *
 * @param value The text.
 * @returns E.g. `'it\'s'`.
 */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * Writes an identifier back-quoted, escaping back quotes and backslashes,
 * so any column, database or table name is passed through intact.
 *
 * @param name The identifier.
 * @returns E.g. `` `bytes` ``.
 */
export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/\\/g, "\\\\").replace(/`/g, "\\`")}\``;
}

/**
 * Renders a type as DDL, keeping the family names as written.
 *
 * @param type The type.
 * @returns E.g. `Nullable(Decimal(10, 2))`.
 */
export function renderType(type: ClickHouseType): string {
  switch (type.kind) {
    case "fixed_string":
      return `${type.family}(${type.length})`;
    case "decimal":
      return type.family === "Decimal"
        ? `Decimal(${type.precision}, ${type.scale})`
        : `${type.family}(${type.scale})`;
    case "datetime":
      return type.timezone === undefined
        ? type.family
        : `${type.family}(${quoteString(type.timezone)})`;
    case "datetime64":
      return type.timezone === undefined
        ? `${type.family}(${type.precision})`
        : `${type.family}(${type.precision}, ${quoteString(type.timezone)})`;
    case "enum":
      return `${type.family}(${
        type.entries.map(([n, v]) => `${quoteString(n)} = ${v}`).join(", ")
      })`;
    case "nullable":
    case "low_cardinality":
      return `${type.family}(${renderType(type.inner)})`;
    case "array":
      return `${type.family}(${renderType(type.element)})`;
    default:
      return type.family;
  }
}

/**
 * Renders a type the way the server reports it in `system.columns`
 * (`Decimal32(2)` as `Decimal(9, 2)`, `Boolean` as `Bool`), so a schema type
 * and a table's type compare as text.
 *
 * @param type The type.
 * @returns The canonical text.
 */
export function canonicalType(type: ClickHouseType): string {
  switch (type.kind) {
    case "bool":
      return "Bool";
    case "decimal":
      return `Decimal(${type.precision}, ${type.scale})`;
    case "nullable":
    case "low_cardinality":
      return `${type.family}(${canonicalType(type.inner)})`;
    case "array":
      return `Array(${canonicalType(type.element)})`;
    default:
      return renderType(type);
  }
}

/**
 * Tells whether a table column's type (as `system.columns` prints it) is the
 * schema's type.
 *
 * @param schema The schema type.
 * @param serverText The type text from the server.
 * @returns `true` when they are the same type.
 */
export function sameType(schema: ClickHouseType, serverText: string): boolean {
  try {
    return canonicalType(parseType(serverText)) === canonicalType(schema);
  } catch {
    return false;
  }
}

/**
 * The type family names a type uses, outermost first, e.g. `Nullable`, `IPv4`.
 *
 * @param type The type.
 * @returns Family names as written, for a check against `system.data_type_families`.
 */
export function typeFamilies(type: ClickHouseType): string[] {
  switch (type.kind) {
    case "nullable":
    case "low_cardinality":
      return [type.family, ...typeFamilies(type.inner)];
    case "array":
      return [type.family, ...typeFamilies(type.element)];
    default:
      return [type.family];
  }
}

/**
 * Whether any column uses `LowCardinality`, which ClickHouse before 19.x
 * only creates with `allow_experimental_low_cardinality_type = 1`.
 *
 * @param columns The columns.
 * @returns `true` when one does.
 */
export function usesLowCardinality(columns: readonly ColumnSpec[]): boolean {
  return columns.some((c) => typeFamilies(c.type).includes("LowCardinality"));
}

/**
 * The settings the `CREATE TABLE` of these columns needs on a server of
 * this version, sent with the statement. Before 20.x `LowCardinality` is
 * experimental (18.16 refuses it without `allow_experimental_low_cardinality_type`).
 * Since, a `LowCardinality` of anything but `String` or `FixedString`
 * (`LowCardinality(IPv4)`, `(UInt32)`, `(DateTime)`, ...) is refused as
 * "suspicious", Code 455 SUSPICIOUS_TYPE_FOR_LOW_CARDINALITY, unless
 * `allow_suspicious_low_cardinality_types` is on (seen on 26.9; `UUID` is
 * allowed by newer servers only, so it asks for the setting too). The
 * schema asked for that type, so the setting is sent rather than the type
 * changed. Inserting into such a table needs no setting.
 * https://github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp (455)
 *
 * @param columns The columns.
 * @param version The server version (from {@link parseServerVersion}).
 * @returns The settings, or `undefined` when none is needed.
 */
export function createTableSettings(
  columns: readonly ColumnSpec[],
  version: readonly number[],
): Record<string, 1> | undefined {
  if (!usesLowCardinality(columns)) return undefined;
  if (!versionAtLeast(version, [20])) return { allow_experimental_low_cardinality_type: 1 };
  return columns.some((c) => hasSuspiciousLowCardinality(c.type))
    ? { allow_suspicious_low_cardinality_types: 1 }
    : undefined;
}

function hasSuspiciousLowCardinality(type: ClickHouseType): boolean {
  switch (type.kind) {
    case "low_cardinality": {
      const base = type.inner.kind === "nullable" ? type.inner.inner : type.inner;
      return base.kind !== "string" && base.kind !== "fixed_string";
    }
    case "nullable":
      return hasSuspiciousLowCardinality(type.inner);
    case "array":
      return hasSuspiciousLowCardinality(type.element);
    default:
      return false;
  }
}

// --- Server versions -------------------------------------------------------------

/**
 * Reads `SELECT version()` output into numbers.
 *
 * @param text E.g. `18.16.1` or `23.8.2.7`.
 * @returns The numeric parts; missing parts are 0.
 */
export function parseServerVersion(text: string): number[] {
  const parts = text.trim().split(".").map((p) => Number.parseInt(p, 10));
  return parts.map((p) => (Number.isFinite(p) ? p : 0));
}

/**
 * Compares a server version with a minimum.
 *
 * @param version Parsed version.
 * @param minimum The minimum, e.g. `[22, 2]`.
 * @returns `true` when `version >= minimum`.
 */
export function versionAtLeast(version: readonly number[], minimum: readonly number[]): boolean {
  for (let i = 0; i < minimum.length; i++) {
    const v = version[i] ?? 0, m = minimum[i]!;
    if (v !== m) return v > m;
  }
  return true;
}

/**
 * The first version whose MergeTree honours `insert_deduplication_token`
 * (with `non_replicated_deduplication_window`): ClickHouse 22.2.
 * https://github.com/ClickHouse/ClickHouse/pull/34180
 */
export const DEDUPLICATION_SINCE: readonly number[] = [22, 2];

/** How many recent inserts a non-replicated table remembers for deduplication. */
export const DEDUPLICATION_WINDOW = 1000;

// --- DDL -------------------------------------------------------------------------

/**
 * The statement creating the database.
 *
 * @param database The database name.
 * @returns `CREATE DATABASE IF NOT EXISTS `db``.
 */
export function createDatabaseSql(database: string, cluster?: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}${onCluster(cluster)}`;
}

/** ` ON CLUSTER `name``, or nothing for one server. */
function onCluster(cluster: string | undefined): string {
  return cluster === undefined ? "" : ` ON CLUSTER ${quoteIdentifier(cluster)}`;
}

/**
 * A ClickHouse cluster and its tables: a Distributed table over a
 * ReplicatedMergeTree table on each shard. What {@link createTableSql} and
 * {@link createDistributedSql} need, as the configuration resolves it.
 */
export interface ClusterTables {
  /** The cluster's name in `remote_servers` (`CLICKHOUSE_CLUSTER`). */
  name: string;
  /** The ReplicatedMergeTree table on each shard (`CLICKHOUSE_LOCAL_TABLE`). */
  localTable: string;
  /** Its ZooKeeper path, macros such as `{shard}` allowed (`CLICKHOUSE_REPLICA_PATH`). */
  replicaPath: string;
  /** The replica's name in it (`CLICKHOUSE_REPLICA_NAME`, `{replica}`). */
  replicaName: string;
  /** The Distributed table's sharding key, an expression already checked (`CLICKHOUSE_SHARDING_KEY`). */
  shardingKey: string;
  /**
   * Rows go straight to each shard's local table, split by sluice
   * (`CLICKHOUSE_WRITE_PATH=direct`), instead of through the Distributed table.
   */
  direct: boolean;
}

/**
 * The statement creating the Distributed table over a cluster's local
 * tables, with the local table's columns.
 *
 * @param database The database.
 * @param table The Distributed table.
 * @param cluster The cluster and its local table.
 * @returns The `CREATE TABLE IF NOT EXISTS ... ON CLUSTER ... ENGINE = Distributed` statement.
 * @throws {RangeError} When the sharding key could reshape the statement.
 */
export function createDistributedSql(
  database: string,
  table: string,
  cluster: ClusterTables,
): string {
  const problem = keyExpressionProblem(cluster.shardingKey);
  if (problem !== undefined) {
    throw new RangeError(`The key ${JSON.stringify(cluster.shardingKey)} ${problem}`);
  }
  const db = quoteIdentifier(database);
  return `CREATE TABLE IF NOT EXISTS ${db}.${quoteIdentifier(table)}${onCluster(cluster.name)} ` +
    `AS ${db}.${quoteIdentifier(cluster.localTable)} ENGINE = Distributed(${
      quoteString(cluster.name)
    }, ${quoteString(database)}, ${
      quoteString(cluster.localTable)
    }, (${cluster.shardingKey.trim()}))`;
}

/** What {@link createTableSql} needs. */
export interface CreateTableOptions {
  /** Database name. */
  database: string;
  /** Table name. */
  table: string;
  /** The columns, in order. */
  columns: readonly ColumnSpec[];
  /** ORDER BY expression list as written; empty means `tuple()`. */
  orderBy: string;
  /** PARTITION BY expression as written; empty means no partitioning. */
  partitionBy: string;
  /** Add `SETTINGS non_replicated_deduplication_window` (servers >= 22.2; not on a cluster). */
  deduplication: boolean;
  /** On a cluster: the ReplicatedMergeTree local table is made, on every shard, instead. */
  cluster?: ClusterTables;
}

// --- ORDER BY and PARTITION BY ----------------------------------------------------

/** Keywords that end an expression and start a clause of their own. */
const CLAUSE_KEYWORDS = new Set(["SETTINGS", "FORMAT"]);

/**
 * Why an ORDER BY or PARTITION BY expression cannot be put into the
 * `CREATE TABLE` as written, if it cannot: the check that keeps the value
 * inside the parentheses sluice writes around it, so that it can neither end
 * the statement nor reshape it (`x) SETTINGS index_granularity = 1 --`).
 *
 * The text is read the way ClickHouse's lexer reads it, on 18.16 as on
 * 26.x: strings in `'...'`, identifiers in `` `...` `` or `"..."` (a
 * backslash escapes the next character, a doubled quote stands for one),
 * everything else a token. Outside quotes it refuses what a key expression
 * never needs and what could change the statement around it: a `;`, a
 * comment (`--`, `/*`, `* /`, and `#`, which 26.x reads as one and 18.16
 * refuses), `$` (26.x's `$$...$$` strings, which 18.16 does not know, so
 * the two would read the rest differently), braces (query parameters),
 * control characters, any character outside letters, digits, white space
 * and the operators of expressions, parentheses or brackets that do not
 * pair, a quote left open, and `SETTINGS` or `FORMAT` outside parentheses
 * (they start clauses; back-quote a column of that name). Whether the
 * expression means something for the schema's columns is for the server
 * to say ({@link keyCheckSql}).
 *
 * @param text The expression as the user wrote it.
 * @returns What is wrong, worded to follow the variable's name, or `undefined`.
 */
export function keyExpressionProblem(text: string): string | undefined {
  const closers: string[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const code = ch.charCodeAt(0);
    if ((code < 0x20 && ch !== "\t" && ch !== "\n" && ch !== "\r") || code === 0x7f) {
      return `must not contain control characters (${JSON.stringify(ch)} at ${i + 1})`;
    }
    if (ch === "'" || ch === "`" || ch === '"') {
      const end = closingQuote(text, i);
      if (end === undefined) return `must close the quote ${ch} opened at ${i + 1}`;
      i = end + 1;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === "--" || two === "/*" || two === "*/" || ch === "#") {
      return `must not contain a comment (${ch === "#" ? "#" : two} at ${i + 1}): ` +
        "it would hide the rest of the statement";
    }
    if (ch === ";") return `must not contain ";" (at ${i + 1}): it would end the statement`;
    if (ch === "(" || ch === "[") closers.push(ch === "(" ? ")" : "]");
    else if (ch === ")" || ch === "]") {
      const expected = closers.pop();
      if (expected !== ch) {
        return `must pair its brackets: "${ch}" at ${i + 1} closes ${
          expected === undefined ? "nothing" : `a "${expected === ")" ? "(" : "["}"`
        }`;
      }
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))![0];
      if (closers.length === 0 && CLAUSE_KEYWORDS.has(word.toUpperCase())) {
        return `must hold expressions only, not ${word.toUpperCase()} (at ${i + 1}), ` +
          "which starts a clause of its own; back-quote a column of that name";
      }
      i += word.length;
      continue;
    } else if (!/[0-9\s,.+\-*/%<>=!?:|&^~]/.test(ch)) {
      return `must not contain ${JSON.stringify(ch)} (at ${i + 1}) outside quotes`;
    }
    i++;
  }
  if (closers.length > 0) {
    return `must close every bracket: ${closers.length} "${
      closers.at(-1) === ")" ? "(" : "["
    }" left open`;
  }
  return undefined;
}

/** Where the quote opened at `start` closes, backslash escapes and doubled quotes read; `undefined` when never. */
function closingQuote(text: string, start: number): number | undefined {
  const quote = text[start];
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\") i++;
    else if (ch === quote) {
      if (text[i + 1] === quote) i++;
      else return i;
    }
  }
  return undefined;
}

/**
 * The statement with which the server checks a key expression before a
 * table is created with it, without side effects: a `SELECT` of the
 * expression, in the parentheses the DDL puts around it, over one row of
 * the schema's columns that is never read (`WHERE 0`). The server parses
 * it, resolves its columns and functions and types it, as `CREATE TABLE`
 * would; 18.16 and 26.x both run it (18.16 has no `EXPLAIN`, and a
 * temporary table there cannot be a MergeTree). Each column is the
 * element of an empty array cast to its type (18.16 has no
 * `defaultValueOfTypeName`), `LowCardinality` left out (26.x refuses
 * `LowCardinality(UInt32)` in a cast without a setting, and it does not
 * change what an expression means).
 *
 * @param columns The schema's columns.
 * @param expression The ORDER BY or PARTITION BY expression, already
 *   accepted by {@link keyExpressionProblem}.
 * @returns The `SELECT` statement.
 */
export function keyCheckSql(columns: readonly ColumnSpec[], expression: string): string {
  const values = columns.map((c) =>
    `arrayElement(CAST('[]' AS Array(${renderType(withoutLowCardinality(c.type))})), 1) AS ${
      quoteIdentifier(c.name)
    }`
  );
  return `SELECT (${expression.trim()}) FROM (SELECT ${values.join(", ")}) WHERE 0`;
}

function withoutLowCardinality(type: ClickHouseType): ClickHouseType {
  switch (type.kind) {
    case "low_cardinality":
      return withoutLowCardinality(type.inner);
    case "nullable":
      return { ...type, inner: withoutLowCardinality(type.inner) };
    case "array":
      return { ...type, element: withoutLowCardinality(type.element) };
    default:
      return type;
  }
}

/**
 * The statement creating the table: MergeTree (on a cluster, the
 * ReplicatedMergeTree local table, `ON CLUSTER`), identifiers back-quoted,
 * ORDER BY and PARTITION BY expressions passed as written, each in
 * parentheses (the configuration accepts only expressions that stay inside
 * them: {@link keyExpressionProblem}).
 *
 * @param options Names, columns, keys and whether to enable deduplication.
 * @returns The `CREATE TABLE IF NOT EXISTS` statement.
 * @throws {RangeError} When a key expression could reshape the statement.
 */
export function createTableSql(options: CreateTableOptions): string {
  for (const key of [options.orderBy, options.partitionBy]) {
    const problem = keyExpressionProblem(key);
    if (problem !== undefined) throw new RangeError(`The key ${JSON.stringify(key)} ${problem}`);
  }
  const columns = options.columns.map((c) => `${quoteIdentifier(c.name)} ${c.typeText}`).join(", ");
  const cluster = options.cluster;
  // Replicated tables deduplicate by themselves (replicated_deduplication_window).
  const engine = cluster === undefined
    ? "MergeTree()"
    : `ReplicatedMergeTree(${quoteString(cluster.replicaPath)}, ${
      quoteString(cluster.replicaName)
    })`;
  let sql = `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(options.database)}.${
    quoteIdentifier(cluster?.localTable ?? options.table)
  }${onCluster(cluster?.name)} (${columns}) ENGINE = ${engine}`;
  if (options.partitionBy.trim() !== "") sql += ` PARTITION BY (${options.partitionBy.trim()})`;
  sql += options.orderBy.trim() === ""
    ? " ORDER BY tuple()"
    : ` ORDER BY (${options.orderBy.trim()})`;
  if (options.deduplication && cluster === undefined) {
    sql += ` SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}`;
  }
  return sql;
}
