/**
 * The machinery behind sluice's configuration: one declaration per
 * environment variable (name, kind, default, doc, and the rules that go
 * with it), read in one pass that collects every problem instead of
 * stopping at the first.
 *
 * A table of declarations ({@link declareVariables}) is all a sink or a
 * decoder writes for its variables: reading, defaults, bounds, readable
 * files, URLs, host:port lists, "only with X" and masking are done here,
 * once, for every table. `--help`, `--check-config`, README and
 * `.env.example` are generated from the same declarations.
 *
 * @module
 */

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
  | "file";

/** The declaration of one environment variable. */
export interface VarSpec {
  /** The variable's name, e.g. `CLICKHOUSE_HOST`. */
  name: string;
  /** How the raw text is read. */
  type: VarType;
  /** One-line description for `--help`, README and `.env.example`. */
  doc: string;
  /** Which part of sluice reads it, for grouping in help output. */
  group: string;
  /** The default as the user would write it; absent means "unset". */
  default?: string;
  /** Whether start fails when the variable is unset and has no default. */
  required?: boolean;
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

/** Thrown when configuration is invalid; lists every problem at once. */
export class ConfigError extends Error {
  /** Every problem found. */
  readonly problems: readonly ConfigProblem[];

  /** @param problems Every problem found. */
  constructor(problems: readonly ConfigProblem[]) {
    super(
      `Cannot start: ${problems.length} configuration problem${
        problems.length === 1 ? "" : "s"
      }\n` +
        problems.map((p) => `  - ${formatProblem(p)}`).join("\n"),
    );
    this.name = "ConfigError";
    this.problems = problems;
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
  return `"${problem.name}" ${problem.message}${got}`;
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
  /** Problems found so far. */
  readonly problems: ConfigProblem[] = [];

  /**
   * @param env The environment to read.
   * @param specs Every variable that may be read.
   */
  constructor(env: Env, specs: readonly VarSpec[]) {
    this.#env = env;
    this.#specs = new Map(specs.map((s) => [s.name, s]));
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
        this.problem(name, undefined, "is required and not set");
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
      if (spec.required) this.problem(name, undefined, "is required and not set");
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
      if (spec.required) this.problem(name, undefined, "is required and not set");
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
      if (spec.required) this.problem(name, undefined, "is required and not set");
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
      if (spec.required) this.problem(name, undefined, "is required and not set");
      return (spec.default ?? "").toLowerCase();
    }
    const lower = text.toLowerCase();
    if (!choices.some((c) => c.toLowerCase() === lower)) {
      this.problem(name, text, `must be one of ${choices.join(", ")}`);
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
      if (spec.required) this.problem(name, undefined, "is required and not set");
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
