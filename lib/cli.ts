/**
 * Command-line flags and the `--help` text, generated from the variable
 * table so that help, README and `.env.example` cannot drift apart.
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
  /** With `checkConfig`: also reach Kafka and the sink. */
  connect: boolean;
  /** Read messages from stdin and print rows instead of writing them. */
  dryRun: boolean;
  /** The env file to load, and whether it was given explicitly. */
  envFile: { path: string; explicit: boolean };
}

/**
 * Reads the command line.
 *
 * @param args The arguments (without the program name).
 * @returns The flags.
 * @throws {TypeError} On an unknown flag or a missing value, naming it.
 */
export function parseFlags(args: string[]): CliFlags {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
      "check-config": { type: "boolean" },
      connect: { type: "boolean" },
      "dry-run": { type: "boolean" },
      "env-file": { type: "string" },
    },
  });
  return {
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
    `sluice ${VERSION}: pmacct flow records from Kafka to ClickHouse, Elasticsearch/OpenSearch or VictoriaMetrics`,
    "",
    "Usage: sluice [--env-file PATH] [--check-config [--connect] | --dry-run]",
    "",
    "Flags:",
    "  -h, --help        Print this help and exit",
    "  -V, --version     Print the version and exit",
    "  --check-config    Validate the configuration, print it (secrets masked), exit 0 or 1",
    "  --connect         With --check-config: also reach Kafka and the sink",
    "  --dry-run         Read messages from standard input, one per line, and print the rows",
    "                    the sink would receive; a summary goes to standard error",
    "  --env-file PATH   Load variables from PATH (default .env; the environment wins)",
    "",
    "Configuration comes from environment variables and the env file:",
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
