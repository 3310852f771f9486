/**
 * Command-line flags and the `--help` text, generated from the variable
 * table so that help, docs/configuration.md and `.env.example` cannot
 * drift apart.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { VarSpec } from "./variables.ts";

/** The version sluice reports; kept equal to `deno.json`'s by a test. */
export const VERSION = "0.1.0";

/** Parsed command-line flags. */
export interface CliFlags {
  /** Print usage and exit. */
  help: boolean;
  /** Print the version and exit. */
  version: boolean;
  /** Validate configuration and exit 0 or 1. */
  checkConfig: boolean;
  /** With `checkConfig`: also check Kafka, the dead-letter destination and the sink, changing nothing. */
  connect: boolean;
  /** Read messages from stdin and print rows instead of writing them. */
  dryRun: boolean;
  /** The env file to load, and whether it was given explicitly. */
  envFile: { path: string; explicit: boolean };
  /** kafka-influxdb's YAML configuration file (`-c`), if given. */
  configFile?: string;
  /**
   * Variables set on the command line (`--influxdb_host x` is
   * `INFLUXDB_HOST=x`; `-s`, `-b` and `-v` are `STATISTICS`, `BENCHMARK`
   * and `VERBOSE`). They win over every other source.
   */
  vars: Record<string, string>;
}

/**
 * The command-line flag of a variable: its name in lower case, as
 * kafka-influxdb spelt its flags (`INFLUXDB_HOST` is `--influxdb_host`).
 *
 * @param name The variable.
 * @returns The flag, with its dashes.
 */
export function flagOf(name: string): string {
  return `--${name.toLowerCase()}`;
}

/**
 * Reads the command line. Every variable can be given as a flag
 * (`--kafka_topic x`, `--kafka_topic=x`; a yes/no variable alone means YES).
 *
 * @param args The arguments (without the program name).
 * @param variables Every variable, for the variable flags.
 * @returns The flags.
 * @throws {TypeError} On an unknown flag or a missing value, naming it.
 */
export function parseFlags(args: string[], variables: readonly VarSpec[] = []): CliFlags {
  const byFlag = new Map(variables.map((v) => [flagOf(v.name), v]));
  const vars: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byFlag.get(flag);
    if (spec === undefined) {
      rest.push(arg);
      continue;
    }
    let value: string | undefined = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (value === undefined && spec.type === "bool") value = "YES";
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new TypeError(`Option '${flag} <value>' argument missing`);
    }
    vars[spec.name] = value;
  }
  const { values } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
      "check-config": { type: "boolean" },
      connect: { type: "boolean" },
      "dry-run": { type: "boolean" },
      "env-file": { type: "string" },
      configfile: { type: "string", short: "c" },
      statistics: { type: "boolean", short: "s" },
      benchmark: { type: "boolean", short: "b" },
      verbose: { type: "boolean", short: "v", multiple: true },
    },
  });
  if (values.statistics) vars["STATISTICS"] ??= "YES";
  if (values.benchmark) vars["BENCHMARK"] ??= "YES";
  if (values.verbose?.length) vars["VERBOSE"] ??= String(values.verbose.length);
  return {
    configFile: values.configfile,
    vars,
    help: values.help ?? false,
    version: values.version ?? false,
    checkConfig: values["check-config"] ?? false,
    connect: values.connect ?? false,
    dryRun: values["dry-run"] ?? false,
    envFile: { path: values["env-file"] ?? ".env", explicit: values["env-file"] !== undefined },
  };
}

/**
 * The `--help` text: usage, flags, and every variable grouped, with defaults.
 *
 * @param variables Every variable sluice reads.
 * @returns The text.
 */
export function helpText(variables: readonly VarSpec[]): string {
  const lines = [
    `sluice ${VERSION}: pmacct flows and collectd metrics from Kafka to ClickHouse, Elasticsearch/OpenSearch, VictoriaMetrics or InfluxDB`,
    "",
    "Usage: sluice [--env-file PATH] [-c FILE] [--VARIABLE VALUE ...] [-s] [-v]",
    "              [--check-config [--connect] | --dry-run | -b]",
    "",
    "Flags:",
    "  -h, --help        Print this help and exit",
    "  -V, --version     Print the version and exit",
    "  --check-config    Validate the configuration, print it (secrets masked) and any warning",
    "                    (a misspelt variable: did you mean ...?), exit 0 or 1",
    "  --connect         With --check-config: also check what the start would meet, changing",
    "                    nothing: Kafka (credentials, topics), the dead-letter topic or file,",
    "                    the sink (credentials, version, types, table or bucket); one line each",
    "  --dry-run         Read messages from standard input, one per line, and print the rows",
    "                    the sink would receive; a summary goes to standard error; needs no",
    "                    broker or sink address",
    "  --env-file PATH   Load variables from PATH (default .env; the environment wins)",
    "  -c, --configfile FILE",
    "                    Load variables from a YAML file, nested keys joined with _",
    "                    (kafka-influxdb's config.yaml: kafka: {host: x} is KAFKA_HOST)",
    "  -s, --statistics  Print each flush's real throughput (STATISTICS=YES)",
    "  -b, --benchmark   Produce sample messages, consume them, report rates (BENCHMARK=YES)",
    "  -v, --verbose     Debug logging (VERBOSE=1, LOG_LEVEL=debug)",
    "  --<variable> VALUE",
    "                    Set any variable below, in lower case: --influxdb_host x,",
    "                    --kafka_topic t, --buffer_size 500; a yes/no one alone means YES",
    "",
    "Precedence, highest first: command-line flags, the environment, the env file,",
    "the YAML file, defaults.",
    "",
    "Variables:",
  ];
  let group = "";
  for (const spec of variables) {
    if (spec.group !== group) {
      group = spec.group;
      lines.push("", `${group}:`);
    }
    const flags = [
      spec.required ? "required" : undefined,
      spec.default !== undefined && spec.default !== "" ? `default ${spec.default}` : undefined,
      spec.secret ? "secret" : undefined,
    ].filter((f) => f !== undefined);
    lines.push(`  ${spec.name}${flags.length ? ` (${flags.join(", ")})` : ""}`);
    lines.push(`      ${spec.doc}`);
  }
  return lines.join("\n") + "\n";
}
