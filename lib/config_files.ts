/**
 * Where settings come from besides the environment: the `.env` file (read
 * as data with the runtime's dotenv parser, `node:util`'s `parseEnv`, the
 * same rules as `process.loadEnvFile`), kafka-influxdb's YAML file (`-c`,
 * read with the `yaml` library), and the one pure function that merges
 * them with the flags and the environment. Nothing here writes to the
 * process environment.
 *
 * Precedence, highest first: command-line flags, the environment, the env
 * file, the YAML file, then the defaults of the variable table.
 *
 * @module
 */

import { parseEnv } from "node:util";
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import {
  closestNames,
  ConfigError,
  type ConfigProblem,
  didYouMean,
  type Env,
} from "./variables.ts";

/**
 * Reads a `.env` file as data (python-dotenv's format, as the replaced
 * scripts read it: `NAME=value`, quotes, `#` comments, `export`).
 *
 * @param path The file; a missing default file is not an error.
 * @param required Whether a missing file is an error (an explicit `--env-file`).
 * @returns The variables it sets, or `undefined` when there is no such file.
 * @throws {Error} When the file exists but cannot be read, or is required and missing.
 */
export function readEnvFile(path = ".env", required = false): Record<string, string> | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !required) return undefined;
    throw new Error(`Cannot read env file "${path}"`, { cause: error });
  }
  return { ...parseEnv(text) } as Record<string, string>;
}

/** One setting of a YAML file, flattened to a variable name. */
export interface YamlSetting {
  /** The variable: nested keys joined with `_`, upper-cased (`kafka: {host: x}` is `KAFKA_HOST`). */
  name: string;
  /** The value as text, as an environment variable would hold it; lists joined with `,`. */
  value: string;
  /** The line of the key, from 1. */
  line: number;
}

/**
 * Reads a YAML configuration file's text and flattens it the way
 * kafka-influxdb did. Scalars are kept as written (the failsafe schema:
 * `1.10` stays `1.10`, `False` stays `False`); `null`, `~` and empty values
 * are unset.
 *
 * @param text The file's content.
 * @param source The file name, for error messages.
 * @returns The settings in file order.
 * @throws {SyntaxError} Naming the file, the line and what is wrong.
 */
export function flattenYaml(text: string, source = "config"): YamlSetting[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    schema: "failsafe",
    uniqueKeys: true,
    lineCounter: lines,
    prettyErrors: false,
  });
  const lineOf = (offset: number | undefined) => lines.linePos(offset ?? 0).line;
  const fail = (offset: number | undefined, message: string): never => {
    throw new SyntaxError(`Cannot read ${source} line ${lineOf(offset)}: ${message}`);
  };
  const error = doc.errors[0];
  if (error !== undefined) fail(error.pos[0], firstLine(error.message));
  const settings: YamlSetting[] = [];
  const walk = (node: Node | null, prefix: string, at: number | undefined): void => {
    if (!isMap(node)) return fail(node?.range?.[0] ?? at, "expected a mapping of `key: value`");
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      const start = key?.range?.[0];
      if (!isScalar(key) || typeof key.value !== "string") fail(start, "keys must be plain text");
      const keyText = (key as { value: string }).value;
      const name = (prefix ? `${prefix}_${keyText}` : keyText).toUpperCase().replace(/[.-]/g, "_");
      const value = resolved(pair.value as Node | null);
      if (value === null || isScalar(value)) {
        const text = scalarText(value);
        if (text !== undefined) settings.push({ name, value: text, line: lineOf(start) });
      } else if (isSeq(value)) {
        const items = value.items.map((item) => {
          const node = resolved(item as Node | null);
          if (!isScalar(node)) fail(node?.range?.[0] ?? start, "lists may hold only values");
          return scalarText(node as Node) ?? "";
        });
        settings.push({ name, value: items.join(","), line: lineOf(start) });
      } else walk(value, name, start);
    }
  };
  // An alias stands for the node its anchor names.
  const resolved = (node: Node | null): Node | null => {
    let current = node;
    for (let depth = 0; depth < 16 && isAlias(current); depth++) {
      current = (current.resolve(doc) as Node | undefined) ?? null;
    }
    return current;
  };
  if (doc.contents !== null) walk(doc.contents, "", 0);
  return settings;
}

/** A plain `null`, `~` or empty scalar is unset; anything quoted is text. */
function scalarText(node: Node | null): string | undefined {
  if (node === null || !isScalar(node)) return undefined;
  const text = String(node.value);
  if (node.type === "PLAIN" && (text === "" || text === "~" || /^null$/i.test(text))) {
    return undefined;
  }
  return text;
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? text;
  return line.replace(/ at line \d+, column \d+:?$/, "");
}

/** kafka-influxdb file keys that sluice reads but has no use for, with why. */
const IGNORED_FILE_KEYS: Readonly<Record<string, string>> = {
  KAFKA_READER: "sluice has one Kafka client",
  KAFKA_RECONNECT_WAIT_TIME_MS: "reconnects back off by RETRY_BACKOFF_INITIAL/RETRY_BACKOFF_MAX",
  CONFIGFILE: "a file cannot name another file",
};

/**
 * Reads a YAML configuration file (kafka-influxdb's `config.yaml`, `-c`)
 * into variables. A key that names no variable is a problem, reported with
 * the others of the configuration, with the closest key sluice knows; its
 * value is never quoted (a misspelt `password` key holds a password).
 *
 * @param path The file.
 * @param known Every variable name sluice reads.
 * @returns The variables it sets, notes on keys that were ignored, and the keys refused.
 * @throws {ConfigError} When the file cannot be read or parsed.
 */
export function readConfigFile(
  path: string,
  known: ReadonlySet<string>,
): { vars: Map<string, string>; ignored: string[]; problems: ConfigProblem[] } {
  let settings: YamlSetting[];
  try {
    settings = flattenYaml(Deno.readTextFileSync(path), path);
  } catch (error) {
    const message = error instanceof SyntaxError
      ? error.message
      : `cannot be read (${error instanceof Error ? error.message : String(error)})`;
    throw new ConfigError([{ name: "-c", value: path, message }]);
  }
  const vars = new Map<string, string>();
  const ignored: string[] = [];
  const problems: ConfigProblem[] = [];
  for (const { name, value, line } of settings) {
    if (name === "BUFFER_TIMEOUT" && /^(false|no|off|0)$/i.test(value)) {
      ignored.push(
        `BUFFER_TIMEOUT: ${value} never flushed a partial buffer in kafka-influxdb; ` +
          "sluice uses its default so that a quiet topic is still written",
      );
    } else if (known.has(name)) vars.set(name, value);
    else if (Object.hasOwn(IGNORED_FILE_KEYS, name)) {
      ignored.push(`${name}: ${IGNORED_FILE_KEYS[name]}`);
    } else {
      const closest = closestNames(name, known).map((n) => `${n.toLowerCase()} (${n})`);
      problems.push({
        name: name.toLowerCase(),
        message: `in ${path} line ${line} is not a setting sluice knows (no variable ${name}; ${
          didYouMean(closest) || "see --help"
        })`,
      });
    }
  }
  return { vars, ignored, problems };
}

/** The sources of settings, each a map of variable names to text. */
export interface Sources {
  /** Variables given as command-line flags. */
  flags?: Readonly<Record<string, string>>;
  /** The process environment. */
  env: Env;
  /** The env file's variables. */
  envFile?: Readonly<Record<string, string>>;
  /** The YAML file's variables. */
  yaml?: ReadonlyMap<string, string>;
}

/**
 * Merges the sources by precedence: flags, then the environment (a variable
 * set there wins, even empty, as python-dotenv had it), then the env file,
 * then the YAML file for what is still unset or empty. Pure.
 *
 * @param sources The sources.
 * @returns The environment sluice reads its configuration from.
 */
export function mergeSources(sources: Sources): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...sources.envFile, ...sources.env };
  for (const [name, value] of sources.yaml ?? []) {
    if ((merged[name] ?? "") === "") merged[name] = value;
  }
  return { ...merged, ...sources.flags };
}
