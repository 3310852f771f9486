/**
 * The machinery behind sluice's configuration: one declaration per
 * environment variable (name, kind, default, doc, and the rules that go
 * with it), read in one pass that collects every problem instead of
 * stopping at the first.
 *
 * A table of declarations ({@link declareVariables}) is all a sink or a
 * decoder writes for its variables: reading, defaults, bounds, readable
 * files, URLs, host:port lists, "only with X" and masking are done here,
 * once, for every table. `--help`, `--check-config`, docs/configuration.md
 * and `.env.example` are generated from the same declarations.
 *
 * @module
 */

import { dirname } from "node:path";
import { type BaseUrl, isHostPort, maskUrlPassword, parseBaseUrl } from "./address.ts";

/** The kinds of value a variable can hold. */
export type VarType =
  /** Text. */
  | "string"
  /** An integer, within `min`/`max`. */
  | "int"
  /** A decimal number, within `min`/`max`. */
  | "number"
  /** YES/NO (also true/false, 1/0, on/off). */
  | "bool"
  /** One of `choices`, compared case-insensitively; the value is lower-cased. */
  | "enum"
  /** Comma-separated items. */
  | "list"
  /** A duration in seconds (decimals allowed), read as milliseconds; without `min`, > 0. */
  | "seconds"
  /** An http(s):// base URL; see `urlCredentialsIn`. */
  | "url"
  /** Comma-separated `host:port` entries. */
  | "hostports"
  /** A path to a readable file; with `pem`, one holding a certificate. */
  | "file"
  /** A path to a file sluice appends to: not a directory, in a directory that exists and is writable. */
  | "output";

/** The declaration of one environment variable. */
export interface VarSpec {
  /** The variable's name, e.g. `CLICKHOUSE_HOST`. */
  name: string;
  /** How the raw text is read. */
  type: VarType;
  /** One-line description for `--help`, docs/configuration.md and `.env.example`. */
  doc: string;
  /** Which part of sluice reads it, for grouping in help output. */
  group: string;
  /** The default as the user would write it; absent means "unset". */
  default?: string;
  /** Whether start fails when the variable is unset and has no default. */
  required?: boolean;
  /**
   * It says where a server is (a broker, the sink), so it is not required
   * when no server is reached (`--dry-run`); a value set is still checked.
   */
  connection?: boolean;
  /** Secrets are masked when a configuration is printed or a value is quoted in an error. */
  secret?: boolean;
  /** Allowed values for `enum`. */
  choices?: readonly string[];
  /** Lowest allowed value for `int`, `number` and `seconds`. */
  min?: number;
  /** Highest allowed value for `int`, `number` and `seconds`. */
  max?: number;
  /** Example value shown in `.env.example` for required variables. */
  example?: string;
  /** Setting it selects its sink when `SINK` is unset. */
  selects?: boolean;
  /**
   * It only takes effect when another variable has a value, so setting it
   * otherwise is refused rather than ignored (an operator who set a CA file
   * expects TLS): `is` the value needed, or `not` the value that turns it off.
   */
  onlyWith?: { name: string; is?: string; not?: string };
  /**
   * An older name of another variable, read only while that one is unset:
   * when it is set, this one is not read at all (an invalid value of it included).
   */
  supersededBy?: string;
  /** `file`: the file must hold at least one PEM certificate. */
  pem?: boolean;
  /** `url`: where credentials go instead of the URL; unset: `user:password@` is allowed. */
  urlCredentialsIn?: string;
}

/** A variable as a table declares it: its name is the key, its group the table's. */
export type VarDecl = Omit<VarSpec, "name" | "group">;

/** A problem with one variable, reported with all the others at start. */
export interface ConfigProblem {
  /** The variable at fault (or several, joined with "/", for combinations). */
  name: string;
  /** The raw value, as given (masked for secrets). */
  value?: string;
  /** What is wrong, in a sentence fragment. */
  message: string;
}

/**
 * Something in the configuration that does not stop sluice but is likely a
 * mistake, such as a misspelt variable, which would otherwise be ignored
 * without a word.
 */
export interface ConfigWarning {
  /** The variable (or file key) at fault. */
  name: string;
  /** What is wrong, in a sentence fragment following the name; never the value. */
  message: string;
}

/** Thrown when configuration is invalid; lists every problem at once, and the warnings. */
export class ConfigError extends Error {
  /** Every problem found. */
  readonly problems: readonly ConfigProblem[];
  /** The warnings found besides. */
  readonly warnings: readonly ConfigWarning[];

  /**
   * @param problems Every problem found.
   * @param warnings The warnings found besides, shown after the problems.
   */
  constructor(problems: readonly ConfigProblem[], warnings: readonly ConfigWarning[] = []) {
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
    super(
      `Cannot start: ${count(problems.length, "configuration problem")}\n` +
        problems.map((p) => `  - ${formatProblem(p)}`).join("\n") +
        (warnings.length === 0 ? "" : `\nand ${count(warnings.length, "warning")}\n` +
          warnings.map((w) => `  - ${formatWarning(w)}`).join("\n")),
    );
    this.name = "ConfigError";
    this.problems = problems;
    this.warnings = warnings;
  }
}

/**
 * Formats one problem the way every error in sluice reads: the variable, the rule, the value.
 *
 * @param problem The problem.
 * @returns A line such as `"X" must be an integer >= 1, got "abc"`.
 */
export function formatProblem(problem: ConfigProblem): string {
  const got = problem.value === undefined ? "" : `, got ${JSON.stringify(problem.value)}`;
  return maskUrlPassword(`"${problem.name}" ${problem.message}${got}`);
}

/**
 * Formats one warning: the name, then what is wrong.
 *
 * @param warning The warning.
 * @returns A line such as `"CLICKHOUSE_ORDERBY" is not a variable sluice reads ...`.
 */
export function formatWarning(warning: ConfigWarning): string {
  return maskUrlPassword(`"${warning.name}" ${warning.message}`);
}

/**
 * The names closest to a misspelt one, for a "did you mean" hint: within a
 * few edits (letters added, dropped, changed or swapped; case, `_`, `-` and
 * `.` ignored), or one the start of the other (`elasticsearch`, `elastic`).
 *
 * @param name What was written.
 * @param candidates What it may have meant.
 * @returns The closest candidates (several when tied), best first; empty when none is close.
 */
export function closestNames(name: string, candidates: Iterable<string>): string[] {
  const fold = (text: string) => text.toUpperCase().replace(/[_.\-]/g, "");
  const wanted = name.toUpperCase();
  const folded = fold(name);
  const limit = Math.max(1, Math.min(3, Math.floor(wanted.length / 5)));
  let best = Infinity;
  let found: string[] = [];
  for (const candidate of new Set(candidates)) {
    if (candidate === name) continue;
    const upper = candidate.toUpperCase();
    let distance = fold(candidate) === folded ? 0.5 : editDistance(wanted, upper);
    // Short words one edit apart share nothing ("1" and "2").
    if (distance > limit || distance * 2 > Math.min(wanted.length, upper.length)) {
      const [short, long] = upper.length < wanted.length ? [upper, wanted] : [wanted, upper];
      if (short.length < 4 || !long.startsWith(short)) continue;
      distance = limit + 0.75;
    }
    if (distance < best) [best, found] = [distance, [candidate]];
    else if (distance === best) found.push(candidate);
  }
  return found;
}

/**
 * The hint for the names {@link closestNames} found.
 *
 * @param names The names, best first.
 * @returns `did you mean X?`, `did you mean X or Y?`, or `""` for none.
 */
export function didYouMean(names: readonly string[]): string {
  if (names.length === 0) return "";
  return `did you mean ${orList(names)}?`;
}

/**
 * The optimal string alignment distance: insertions, deletions,
 * substitutions and swaps of neighbours each count 1.
 */
function editDistance(a: string, b: string): number {
  let before = Array.from({ length: b.length + 1 }, () => 0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2]! + 1);
      }
      current.push(d);
    }
    [before, previous] = [previous, current];
  }
  return previous[b.length]!;
}

/**
 * The words that mark a variable as sluice's, taken from the tables: the
 * first word of every name (`CLICKHOUSE_`, `KAFKA_`, `DEAD_`, `VM_`, ...)
 * and every group of one word (`METRICS_`, `ELASTICSEARCH_`, `VICTORIAMETRICS_`, ...).
 *
 * @param specs Every variable sluice reads.
 * @returns The prefixes, each ending in `_`.
 */
export function variablePrefixes(specs: readonly VarSpec[]): string[] {
  const prefixes = new Set<string>();
  for (const spec of specs) {
    const underscore = spec.name.indexOf("_");
    if (underscore > 0) prefixes.add(spec.name.slice(0, underscore + 1));
    if (/^[A-Za-z][A-Za-z0-9]*$/.test(spec.group)) prefixes.add(`${spec.group.toUpperCase()}_`);
  }
  return [...prefixes];
}

/**
 * Warns about variables that look like sluice's but are not, which would
 * otherwise be ignored without a word (`CLICKHOUSE_ORDERBY`): every name
 * with one of the tables' prefixes ({@link variablePrefixes}) that no table
 * declares, with the closest declared names. Names with a prefix of
 * `nearMissOnly` are warned about only when a declared name is close: other
 * tools keep their own settings there (the test services' `SLUICE_*`).
 * Values are never quoted: a misspelt password variable holds a password.
 *
 * @param env The variables set (the environment and the env file).
 * @param specs Every variable sluice reads, older names included.
 * @param nearMissOnly Prefixes of other tools' variables.
 * @returns One warning per unknown name, in name order.
 */
export function unknownVariables(
  env: Env,
  specs: readonly VarSpec[],
  nearMissOnly: readonly string[] = [],
): ConfigWarning[] {
  const known = new Set(specs.map((s) => s.name));
  const prefixes = variablePrefixes(specs);
  const warnings: ConfigWarning[] = [];
  for (const name of Object.keys(env).sort()) {
    if (known.has(name) || env[name] === undefined) continue;
    const upper = name.toUpperCase();
    const loose = nearMissOnly.some((p) => upper.startsWith(p));
    if (!loose && !prefixes.some((p) => upper.startsWith(p))) continue;
    const closest = closestNames(name, known);
    if (loose && closest.length === 0) continue;
    warnings.push({
      name,
      message: `is not a variable sluice reads and is ignored; ${
        didYouMean(closest) || "see --help for the variables"
      }`,
    });
  }
  return warnings;
}

const TRUE_WORDS = new Set(["yes", "true", "1", "on", "y"]);
const FALSE_WORDS = new Set(["no", "false", "0", "off", "n", ""]);

/** The environment as sluice sees it: names to raw strings. */
export type Env = Readonly<Record<string, string | undefined>>;

/** The value type of one declaration. */
type BaseValue<D extends VarDecl> = D["type"] extends "int" | "number" | "seconds" ? number
  : D["type"] extends "bool" ? boolean
  : D["type"] extends "list" | "hostports" ? string[]
  : D["type"] extends "url" ? BaseUrl
  : D["type"] extends "enum"
    ? D["choices"] extends readonly (infer C extends string)[] ? Lowercase<C> : string
  : string;

/** `undefined` for a variable that may be unset (no default, not required). */
type Presence<D extends VarDecl> = D extends { default: string } ? never
  : D extends { required: true } ? never
  : undefined;

/** The values of a table, by variable name, as {@link VarTable.read} returns them. */
export type Values<T extends Record<string, VarDecl>> = {
  readonly [K in keyof T]: BaseValue<T[K]> | Presence<T[K]>;
};

/** The declarations of one group of variables, in order, and their typed reading. */
export class VarTable<T extends Record<string, VarDecl>> {
  /** The group, e.g. `ClickHouse`. */
  readonly group: string;
  /** Every declaration, in order, with its name and group. */
  readonly specs: readonly VarSpec[];

  /**
   * @param group The group of every variable.
   * @param table The declarations by name.
   */
  constructor(group: string, table: T) {
    this.group = group;
    this.specs = Object.entries(table).map(([name, decl]) => ({ ...decl, name, group }));
  }

  /**
   * Reads every variable of the table; problems go to `reader.problems`.
   *
   * @param reader The reader holding the environment.
   * @returns Each variable's value (its default, when unset).
   */
  read(reader: VarReader): Values<T> {
    const values: Record<string, unknown> = {};
    for (const spec of this.specs) values[spec.name] = reader.value(spec.name);
    return values as Values<T>;
  }
}

/**
 * Declares a group of variables.
 *
 * @param group Which part of sluice reads them (a `--help` heading).
 * @param table The declarations, keyed by variable name, in help order.
 * @returns The table.
 */
export function declareVariables<const T extends Record<string, VarDecl>>(
  group: string,
  table: T,
): VarTable<T> {
  return new VarTable(group, table);
}

/**
 * Reads typed values from an environment, collecting problems.
 *
 * Each accessor returns the parsed value (or the default), and records a
 * problem and returns a fallback when the text is invalid, so that one call
 * of `parseConfig` reports everything.
 */
export class VarReader {
  readonly #env: Env;
  readonly #specs: Map<string, VarSpec>;
  readonly #offline: boolean;
  /** The names set that no table declares, and the declared names closest to each. */
  #meant: Array<{ other: string; closest: string[] }> | undefined;
  /** Problems found so far. */
  readonly problems: ConfigProblem[] = [];

  /**
   * @param env The environment to read.
   * @param specs Every variable that may be read.
   * @param options `offline`: no server will be reached (`--dry-run`), so
   *   variables marked `connection` are not required.
   */
  constructor(env: Env, specs: readonly VarSpec[], options: { offline?: boolean } = {}) {
    this.#env = env;
    this.#specs = new Map(specs.map((s) => [s.name, s]));
    this.#offline = options.offline ?? false;
  }

  /**
   * The raw text of a variable, or its default, trimmed.
   *
   * @param name The variable.
   * @returns The text, or `undefined` when unset without default.
   */
  raw(name: string): string | undefined {
    const spec = this.#spec(name);
    const value = this.#env[name];
    if (value !== undefined && value.trim() !== "") return value.trim();
    return spec.default;
  }

  /**
   * Whether the user set the variable (to something non-empty).
   *
   * @param name The variable.
   * @returns `true` when set in the environment or `.env`.
   */
  isSet(name: string): boolean {
    this.#spec(name);
    const value = this.#env[name];
    return value !== undefined && value.trim() !== "";
  }

  /**
   * Reads a variable by its declared kind, checking every rule of its
   * declaration (required, bounds, choices, readable file, URL, host:port,
   * only with another).
   *
   * @param name The variable.
   * @returns The value; `undefined` when unset without default; a fallback
   *   (the default, or empty) with a problem recorded when invalid.
   */
  value(name: string): unknown {
    const spec = this.#spec(name);
    if (spec.supersededBy !== undefined && this.isSet(spec.supersededBy)) return undefined;
    if (spec.onlyWith !== undefined && this.isSet(name)) this.#checkOnlyWith(spec);
    const text = this.raw(name);
    if (text === undefined) {
      if (spec.required) {
        this.#missing(spec);
        return emptyValue(spec.type);
      }
      return undefined;
    }
    switch (spec.type) {
      case "string":
        return text;
      case "int":
        return this.int(name);
      case "number":
        return this.number(name);
      case "seconds":
        return this.millis(name);
      case "bool":
        return this.bool(name);
      case "enum":
        return this.choice(name);
      case "list":
        return this.list(name);
      case "hostports": {
        const entries = this.list(name);
        for (const entry of entries) {
          if (!isHostPort(entry)) this.problem(name, entry, "must list host:port entries");
        }
        return entries;
      }
      case "url":
        return this.#url(spec, text);
      case "file":
        this.#checkFile(spec, text);
        return text;
      case "output": {
        const problem = writableFileProblem(text);
        if (problem !== undefined) this.problem(name, text, problem);
        return text;
      }
    }
  }

  /**
   * Reads a string variable.
   *
   * @param name The variable.
   * @returns The value; `""` (with a problem) when a required one is missing.
   */
  string(name: string): string {
    const spec = this.#spec(name);
    const value = this.raw(name);
    if (value === undefined) {
      if (spec.required) this.#missing(spec);
      return "";
    }
    return value;
  }

  /**
   * Reads an optional string variable.
   *
   * @param name The variable.
   * @returns The value, or `undefined` when unset.
   */
  optional(name: string): string | undefined {
    return this.raw(name);
  }

  /**
   * Reads an integer variable, checking its bounds.
   *
   * @param name The variable.
   * @returns The integer, or the default's value when invalid.
   */
  int(name: string): number {
    const spec = this.#spec(name);
    const text = this.raw(name);
    const fallback = Number(spec.default ?? 0);
    if (text === undefined) {
      if (spec.required) this.#missing(spec);
      return fallback;
    }
    if (!/^[+-]?\d+$/.test(text)) {
      this.problem(name, text, `must be an integer${boundsText(spec)}`);
      return fallback;
    }
    const value = Number(text);
    if (!Number.isSafeInteger(value) || outOfBounds(spec, value)) {
      this.problem(name, text, `must be an integer${boundsText(spec)}`);
      return fallback;
    }
    return value;
  }

  /**
   * Reads a decimal number variable, checking its bounds.
   *
   * @param name The variable.
   * @returns The number, or the default's value when invalid.
   */
  number(name: string): number {
    const spec = this.#spec(name);
    const text = this.raw(name);
    const fallback = Number(spec.default ?? 0);
    if (text === undefined) {
      if (spec.required) this.#missing(spec);
      return fallback;
    }
    const value = Number(text);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) || outOfBounds(spec, value)) {
      this.problem(name, text, `must be a number${boundsText(spec)}`);
      return fallback;
    }
    return value;
  }

  /**
   * Reads a duration in seconds (decimals allowed) and returns milliseconds.
   * A `seconds` variable without `min` must be more than zero.
   *
   * @param name The variable.
   * @returns The duration in milliseconds; the default's when invalid (with a problem recorded).
   */
  millis(name: string): number {
    const spec = this.#spec(name);
    const before = this.problems.length;
    const ms = Math.round(this.number(name) * 1000);
    const fallback = Math.round(
      Number(spec.default ?? (spec.min === undefined ? "1" : "0")) * 1000,
    );
    if (this.problems.length > before) return fallback;
    if (spec.min === undefined && ms <= 0 && this.raw(name) !== undefined) {
      this.problem(name, this.raw(name), "must be a number of seconds > 0");
      return fallback;
    }
    return ms;
  }

  /**
   * Reads a yes/no variable (`YES`/`NO`, `true`/`false`, `1`/`0`, `on`/`off`).
   *
   * @param name The variable.
   * @returns The boolean, or the default's value when invalid.
   */
  bool(name: string): boolean {
    const spec = this.#spec(name);
    const text = this.raw(name);
    const fallback = TRUE_WORDS.has((spec.default ?? "").toLowerCase());
    if (text === undefined) return fallback;
    const lower = text.toLowerCase();
    if (TRUE_WORDS.has(lower)) return true;
    if (FALSE_WORDS.has(lower)) return false;
    this.problem(name, text, "must be YES or NO (also true/false, 1/0, on/off)");
    return fallback;
  }

  /**
   * Reads one of a fixed set of words; the result is lower-cased.
   *
   * @param name The variable.
   * @returns The chosen word, or the default when invalid.
   */
  choice(name: string): string {
    const spec = this.#spec(name);
    const text = this.raw(name);
    const choices = spec.choices ?? [];
    if (text === undefined) {
      if (spec.required) this.#missing(spec);
      return (spec.default ?? "").toLowerCase();
    }
    const lower = text.toLowerCase();
    if (!choices.some((c) => c.toLowerCase() === lower)) {
      const hint = didYouMean(closestNames(text, choices));
      this.problem(name, text, `must be one of ${choices.join(", ")}${hint ? ` (${hint})` : ""}`);
      return (spec.default ?? "").toLowerCase();
    }
    return lower;
  }

  /**
   * Reads a comma-separated list, dropping empty items.
   *
   * @param name The variable.
   * @returns The trimmed items.
   */
  list(name: string): string[] {
    const spec = this.#spec(name);
    const text = this.raw(name);
    if (text === undefined) {
      if (spec.required) this.#missing(spec);
      return [];
    }
    return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }

  /**
   * Refuses a TLS setting (a CA file, say) on a connection without TLS,
   * rather than ignoring it: an operator who set it expects TLS. That is
   * then its one problem (whether the file is readable matters no more).
   *
   * @param name The TLS setting.
   * @param secure Whether the connection uses TLS.
   * @param how How to turn TLS on, e.g. `give VM_URL as https://`.
   */
  requireTls(name: string, secure: boolean, how: string): void {
    if (this.isSet(name) && !secure) {
      for (let i = this.problems.length - 1; i >= 0; i--) {
        if (this.problems[i]!.name === name) this.problems.splice(i, 1);
      }
      this.problem(name, this.raw(name), `is only used with TLS: ${how}`);
    }
  }

  /**
   * Records a problem; secrets and URL passwords are masked.
   *
   * @param name The variable at fault.
   * @param value The raw value, if any.
   * @param message What is wrong.
   */
  problem(name: string, value: string | undefined, message: string): void {
    const secret = this.#specs.get(name)?.secret ?? false;
    const shown = value === undefined ? undefined : secret ? "***" : maskUrlPassword(value);
    this.problems.push({ name, value: shown, message });
  }

  /**
   * Records that a required variable is unset, naming a variable set under
   * a near name (`KAFKA_BOOTSTRAP_SERVER` for `KAFKA_BOOTSTRAP_SERVERS`);
   * nothing when offline and the variable only says where a server is.
   */
  #missing(spec: VarSpec): void {
    if (this.#offline && spec.connection) return;
    this.#meant ??= Object.keys(this.#env)
      .filter((other) => !this.#specs.has(other) && (this.#env[other] ?? "").trim() !== "")
      .map((other) => ({ other, closest: closestNames(other, this.#specs.keys()) }));
    const nearMisses = this.#meant.filter((m) => m.closest.includes(spec.name)).map((m) => m.other);
    const hint = nearMisses.length === 0
      ? ""
      : ` (${orList(nearMisses)} ${nearMisses.length === 1 ? "is" : "are"} set: ${
        nearMisses.length === 1 ? "a misspelling" : "misspellings"
      } of ${spec.name}?)`;
    this.problem(spec.name, undefined, `is required and not set${hint}`);
  }

  #url(spec: VarSpec, text: string): BaseUrl {
    const parsed = parseBaseUrl(text, { credentialsIn: spec.urlCredentialsIn });
    if (!parsed.ok) {
      this.problem(spec.name, text, parsed.message);
      return { url: "", secure: false };
    }
    const { ok: _, ...url } = parsed;
    return url;
  }

  #checkFile(spec: VarSpec, path: string): void {
    let text: string;
    try {
      text = new TextDecoder().decode(Deno.readFileSync(path));
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.problem(spec.name, path, `must be a readable file (${why})`);
      return;
    }
    if (spec.pem && !text.includes("-----BEGIN CERTIFICATE-----")) {
      this.problem(spec.name, path, "must be a PEM file with at least one certificate");
    }
  }

  #checkOnlyWith(spec: VarSpec): void {
    const rule = spec.onlyWith!;
    const other = this.#spec(rule.name);
    const raw = this.raw(rule.name) ?? "";
    const value = other.type === "bool"
      ? (TRUE_WORDS.has(raw.toLowerCase()) ? "YES" : "NO")
      : raw.toLowerCase();
    if (rule.is !== undefined && value !== rule.is) {
      this.problem(
        spec.name,
        this.raw(spec.name),
        `is set but ${rule.name} is ${value}; set ${rule.name}=${rule.is}`,
      );
    } else if (rule.not !== undefined && value === rule.not) {
      const others = (other.choices ?? []).filter((c) => c !== rule.not);
      this.problem(
        spec.name,
        this.raw(spec.name),
        `is set but ${rule.name} is ${value}; choose ${orList(others)}`,
      );
    }
  }

  #spec(name: string): VarSpec {
    const spec = this.#specs.get(name);
    if (spec === undefined) throw new RangeError(`Cannot read "${name}": it is not declared`);
    return spec;
  }
}

/**
 * The variables of a configuration as `NAME=value` lines, grouped, for
 * `--check-config`: what the user set, and the defaults in effect
 * (marked `# default`); secrets and URL passwords masked, unset variables
 * without a default left out.
 *
 * @param specs The variables that apply (common, decoder's, sink's).
 * @param env What the user set.
 * @param defaults Defaults that differ from the declarations' (set by the chosen sink).
 * @returns The lines.
 */
export function describeVariables(
  specs: readonly VarSpec[],
  env: Env,
  defaults: Readonly<Record<string, string>> = {},
): string[] {
  const lines: string[] = [];
  let group = "";
  for (const spec of specs) {
    const set = (env[spec.name] ?? "").trim();
    const value = set !== "" ? set : defaults[spec.name] ?? spec.default ?? "";
    if (value === "") continue;
    if (spec.group !== group) {
      group = spec.group;
      lines.push(`${group}:`);
    }
    const shown = spec.secret ? "***" : maskUrlPassword(value);
    const text = /^[^\s#"']*$/.test(shown) ? shown : JSON.stringify(shown);
    lines.push(`  ${spec.name}=${text}${set === "" ? "  # default" : ""}`);
  }
  return lines;
}

/**
 * Why sluice could not append to a file, checked without changing anything
 * and without leaving a file behind: an existing file is opened for
 * appending and closed; for a new one, the directory must exist and take a
 * file (a probe file is created there and removed at once).
 *
 * @param path The file.
 * @returns The problem, worded to follow the variable's name, or `undefined`.
 */
export function writableFileProblem(path: string): string | undefined {
  const why = (error: unknown) => error instanceof Error ? error.message : String(error);
  const missing = (error: unknown) =>
    error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
  let info: Deno.FileInfo | undefined;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (!missing(error)) return `must be a file sluice can write to (${why(error)})`;
  }
  if (info?.isDirectory) return "must name a file, not a directory";
  if (info !== undefined) {
    // A FIFO would block the open until a reader comes; it is taken as it is.
    if (info.isFifo) return undefined;
    try {
      Deno.openSync(path, { append: true }).close();
      return undefined;
    } catch (error) {
      return `must be a file sluice can write to (${why(error)})`;
    }
  }
  const dir = dirname(path);
  let dirInfo: Deno.FileInfo;
  try {
    dirInfo = Deno.statSync(dir);
  } catch (error) {
    return missing(error)
      ? `must be in a directory that exists; there is no directory ${dir}`
      : `must be in a directory sluice can reach (${why(error)})`;
  }
  if (!dirInfo.isDirectory) return `must be in a directory; ${dir} is not one`;
  try {
    Deno.removeSync(Deno.makeTempFileSync({ dir, prefix: ".sluice-write-check-" }));
  } catch (error) {
    return `must be in a directory sluice can write to; ${dir} is not (${why(error)})`;
  }
  return undefined;
}

function emptyValue(type: VarType): unknown {
  switch (type) {
    case "int":
    case "number":
    case "seconds":
      return 0;
    case "bool":
      return false;
    case "list":
    case "hostports":
      return [];
    case "url":
      return { url: "", secure: false };
    default:
      return "";
  }
}

function orList(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

function outOfBounds(spec: VarSpec, value: number): boolean {
  return (spec.min !== undefined && value < spec.min) ||
    (spec.max !== undefined && value > spec.max);
}

function boundsText(spec: VarSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) {
    return ` between ${spec.min} and ${spec.max}`;
  }
  if (spec.min !== undefined) return ` >= ${spec.min}`;
  if (spec.max !== undefined) return ` <= ${spec.max}`;
  return "";
}
