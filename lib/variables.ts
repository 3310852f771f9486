/**
 * The machinery behind sluice's configuration table: one declaration per
 * environment variable (name, type, default, doc), read in one pass that
 * collects every problem instead of stopping at the first.
 *
 * `lib/config.ts` holds the common table; each sink holds its own next to
 * its code. `--help`, `--check-config` and the `.env.example` test all read
 * the same declarations.
 *
 * @module
 */

/** The kinds of value a variable can hold. */
export type VarType =
  | "string"
  | "int"
  | "number"
  | "bool"
  | "enum"
  | "list"
  | "seconds";

/** The declaration of one environment variable. */
export interface VarSpec {
  /** The variable's name, e.g. `CLICKHOUSE_HOST`. */
  name: string;
  /** How the raw text is read. */
  type: VarType;
  /** One-line description for `--help`, README and `.env.example`. */
  doc: string;
  /** The default as the user would write it; absent means "unset". */
  default?: string;
  /** Whether start fails when the variable is unset and has no default. */
  required?: boolean;
  /** Secrets are masked when a configuration is printed. */
  secret?: boolean;
  /** Allowed values for `enum` (compared case-insensitively). */
  choices?: readonly string[];
  /** Lowest allowed value for `int`, `number` and `seconds`. */
  min?: number;
  /** Highest allowed value for `int`, `number` and `seconds`. */
  max?: number;
  /** Which part of sluice reads it, for grouping in help output. */
  group: string;
  /** Example value shown in `.env.example` for required variables. */
  example?: string;
}

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
   *
   * @param name The variable.
   * @returns The duration in milliseconds.
   */
  millis(name: string): number {
    return Math.round(this.number(name) * 1000);
  }

  /**
   * Reads a duration in seconds that must be more than zero, in milliseconds.
   *
   * @param name The variable.
   * @returns The duration; the default's when invalid (with a problem recorded).
   */
  positiveMillis(name: string): number {
    const before = this.problems.length;
    const ms = this.millis(name);
    const fallback = Math.round(Number(this.#spec(name).default ?? "1") * 1000);
    if (this.problems.length > before) return fallback;
    if (ms <= 0) {
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
   * Records a problem; secrets are masked.
   *
   * @param name The variable at fault.
   * @param value The raw value, if any.
   * @param message What is wrong.
   */
  problem(name: string, value: string | undefined, message: string): void {
    const secret = this.#specs.get(name)?.secret ?? false;
    this.problems.push({ name, value: secret && value !== undefined ? "***" : value, message });
  }

  #spec(name: string): VarSpec {
    const spec = this.#specs.get(name);
    if (spec === undefined) throw new RangeError(`Cannot read "${name}": it is not declared`);
    return spec;
  }
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
