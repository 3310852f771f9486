/**
 * sluice's configuration: the table of common variables, the `.env` loader,
 * and `parseConfig()`, which resolves everything once and reports every
 * problem at once. Nothing downstream reads the environment.
 *
 * The variable names of pmacct-kafka-clickhouse (and of the other tools
 * sluice replaces) are a compatibility contract: same names, same meaning,
 * same defaults. Sink variables live next to each sink (`sinks/<name>/`).
 *
 * @module
 */

import process from "node:process";
import { type DecoderModule, DECODERS, findDecoder } from "./decode/mod.ts";
import { isValidTimeZone } from "./time.ts";
import { flattenYaml, parseYaml } from "./yaml.ts";
import type { Level } from "./log.ts";
import type { Decoder } from "./decode/mod.ts";
import { ConfigError, type Env, VarReader, type VarSpec } from "./variables.ts";
import { SINKS } from "../sinks/mod.ts";
import type { BatchLimits, SinkModule } from "../sinks/registry_types.ts";

/** Kafka consumer settings. */
export interface KafkaConfig {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Topics to consume. */
  topics: string[];
  /** Consumer group id. @default per sink, e.g. `kafka2clickhouse` */
  groupId: string;
  /** Client id sent to the brokers. @default "sluice" */
  clientId: string;
  /** Where a new group starts. @default true (earliest) */
  fromBeginning: boolean;
  /** TLS settings, when enabled. */
  tls?: { verify: boolean; caFile?: string; certFile?: string; keyFile?: string };
  /** SASL credentials, when enabled. */
  sasl?: {
    mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
    username: string;
    password: string;
  };
  /** Group session timeout in milliseconds. @default 30000 */
  sessionTimeoutMs: number;
}

/** The fully resolved configuration. */
export interface Config {
  /** The selected sink, its resolved settings and batch limits. */
  sink: { module: SinkModule; config: unknown; batch: BatchLimits };
  /** Kafka consumer settings. */
  kafka: KafkaConfig;
  /** The input decoder, built from its variables. @default pmacct (collectd_graphite for influxdb) */
  decoder: { module: DecoderModule; decode: Decoder };
  /** IANA zone of pmacct's local timestamps. @default "UTC" */
  timeZone: string;
  /** Metrics and health endpoint. */
  metrics: { host: string; port: number };
  /** Backoff between write attempts, in milliseconds. */
  retry: { initialMs: number; maxMs: number };
  /** How long a shutdown may spend flushing, in milliseconds. @default 30000 */
  shutdownTimeoutMs: number;
  /** `/healthz` fails when no progress was made for this long with work pending. @default 120000 */
  stallTimeoutMs: number;
  /** Minimum log level. @default "info" */
  logLevel: Level;
  /** File that rejected records are appended to as JSON lines, if set. */
  deadLetterFile?: string;
  /** Print the throughput of every flush to standard output (kafka-influxdb's `-s`). @default false */
  statistics: boolean;
  /** Benchmark mode: produce sample messages, then consume them and report rates. */
  benchmark: { enabled: boolean; messages: number; topic: string };
}

const sinkNames = Object.keys(SINKS);

/** The common variables, read whichever sink is selected. */
export const COMMON_VARIABLES: readonly VarSpec[] = [
  {
    name: "SINK",
    type: "enum",
    group: "General",
    choices: sinkNames,
    doc: `Backend to write to (${
      sinkNames.join(", ")
    }); when unset, the only sink whose variables are set`,
  },
  {
    name: "ENCODER",
    type: "string",
    group: "General",
    doc: `Format of the Kafka messages (${
      Object.keys(DECODERS).join(", ")
    }; kafka-influxdb's module names are accepted); default pmacct, collectd_graphite with SINK=influxdb`,
  },
  {
    name: "PMACCT_TIMEZONE",
    type: "string",
    group: "General",
    default: "UTC",
    doc: "IANA time zone in which pmacct wrote local timestamps (YYYY-MM-DD HH:MM:SS)",
  },
  {
    name: "LOG_LEVEL",
    type: "enum",
    group: "General",
    choices: ["debug", "info", "warn", "error"],
    default: "info",
    doc: "Minimum level of the JSON log lines written to standard error",
  },
  {
    name: "VERBOSE",
    type: "int",
    group: "General",
    default: "0",
    min: 0,
    doc: "kafka-influxdb's verbosity (-v): 1 or more means LOG_LEVEL=debug unless LOG_LEVEL is set",
  },
  {
    name: "STATISTICS",
    type: "bool",
    group: "General",
    default: "NO",
    doc:
      "Print each flush's throughput (points and messages written per second) to standard output (-s)",
  },
  {
    name: "BENCHMARK",
    type: "bool",
    group: "Benchmark",
    default: "NO",
    doc:
      "Benchmark mode (-b): produce BENCHMARK_MESSAGES sample messages in the ENCODER's format to BENCHMARK_TOPIC, consume them through the sink, report rates, exit",
  },
  {
    name: "BENCHMARK_MESSAGES",
    type: "int",
    group: "Benchmark",
    default: "1000000",
    min: 1,
    doc: "Number of sample messages the benchmark produces",
  },
  {
    name: "BENCHMARK_TOPIC",
    type: "string",
    group: "Benchmark",
    default: "benchmark",
    doc: "Topic the benchmark produces to and consumes from (created when missing)",
  },
  {
    name: "DEAD_LETTER_FILE",
    type: "string",
    group: "General",
    doc:
      "File to append rejected records to as JSON lines (with reason and origin); unset: log only",
  },
  {
    name: "KAFKA_BOOTSTRAP_SERVERS",
    type: "list",
    group: "Kafka",
    required: true,
    example: "127.0.0.1:9092",
    doc: "Comma-separated Kafka bootstrap servers, host:port (or KAFKA_HOST and KAFKA_PORT)",
  },
  {
    name: "KAFKA_HOST",
    type: "string",
    group: "Kafka",
    doc:
      "kafka-influxdb's broker host, used with KAFKA_PORT when KAFKA_BOOTSTRAP_SERVERS is unset; default localhost with SINK=influxdb",
  },
  {
    name: "KAFKA_PORT",
    type: "int",
    group: "Kafka",
    default: "9092",
    min: 1,
    max: 65535,
    doc: "kafka-influxdb's broker port, used with KAFKA_HOST",
  },
  {
    name: "KAFKA_TOPIC",
    type: "list",
    group: "Kafka",
    required: true,
    example: "pmacct.acct",
    doc: "Topic to consume (several: comma-separated); default my_topic with SINK=influxdb",
  },
  {
    name: "KAFKA_CONSUMER_GROUP_ID",
    type: "string",
    group: "Kafka",
    doc: "Consumer group id; default per sink, as the tool it replaces had it (" +
      Object.values(SINKS).map((s) => `${s.name}: ${s.consumerGroupDefault}`).join(", ") + ")",
  },
  {
    name: "KAFKA_GROUP",
    type: "string",
    group: "Kafka",
    doc: "kafka-influxdb's name for KAFKA_CONSUMER_GROUP_ID",
  },
  {
    name: "KAFKA_CLIENT_ID",
    type: "string",
    group: "Kafka",
    default: "sluice",
    doc: "Client id sent to the brokers",
  },
  {
    name: "KAFKA_AUTO_OFFSET_RESET",
    type: "enum",
    group: "Kafka",
    choices: ["earliest", "latest"],
    default: "earliest",
    doc: "Where a consumer group without committed offsets starts",
  },
  {
    name: "KAFKA_SESSION_TIMEOUT",
    type: "seconds",
    group: "Kafka",
    default: "30",
    min: 6,
    doc: "Consumer group session timeout, in seconds",
  },
  {
    name: "KAFKA_TLS",
    type: "bool",
    group: "Kafka",
    default: "NO",
    doc: "Connect to the brokers with TLS",
  },
  {
    name: "KAFKA_TLS_VERIFY",
    type: "bool",
    group: "Kafka",
    default: "YES",
    doc: "Verify the brokers' TLS certificates",
  },
  {
    name: "KAFKA_TLS_CA_FILE",
    type: "string",
    group: "Kafka",
    doc: "PEM file of the CA that signed the brokers' certificates",
  },
  {
    name: "KAFKA_TLS_CERT_FILE",
    type: "string",
    group: "Kafka",
    doc: "PEM client certificate for mutual TLS",
  },
  {
    name: "KAFKA_TLS_KEY_FILE",
    type: "string",
    group: "Kafka",
    doc: "PEM private key of the client certificate",
  },
  {
    name: "KAFKA_SASL_MECHANISM",
    type: "enum",
    group: "Kafka",
    choices: ["none", "plain", "scram-sha-256", "scram-sha-512"],
    default: "none",
    doc: "SASL mechanism: none, plain, scram-sha-256 or scram-sha-512",
  },
  {
    name: "KAFKA_SASL_USERNAME",
    type: "string",
    group: "Kafka",
    doc: "SASL user name",
  },
  {
    name: "KAFKA_SASL_PASSWORD",
    type: "string",
    group: "Kafka",
    secret: true,
    doc: "SASL password",
  },
  {
    name: "PROMETHEUS_CLIENT_PORT",
    type: "int",
    group: "Metrics",
    default: "9003",
    min: 0,
    max: 65535,
    doc: "Port of the /metrics and /healthz HTTP server (0: any free port)",
  },
  {
    name: "PROMETHEUS_CLIENT_HOST",
    type: "string",
    group: "Metrics",
    default: "0.0.0.0",
    doc: "Address the /metrics and /healthz HTTP server listens on",
  },
  {
    name: "RETRY_BACKOFF_INITIAL",
    type: "seconds",
    group: "Delivery",
    default: "0.5",
    min: 0.001,
    doc: "First wait before retrying a failed write, in seconds; doubles each attempt",
  },
  {
    name: "RETRY_BACKOFF_MAX",
    type: "seconds",
    group: "Delivery",
    default: "30",
    min: 0.001,
    doc:
      "Cap of the wait between write attempts, in seconds (writes are retried until they succeed)",
  },
  {
    name: "SHUTDOWN_TIMEOUT",
    type: "seconds",
    group: "Delivery",
    default: "30",
    min: 0,
    doc: "How long SIGTERM/SIGINT may spend writing the last batch before giving up (uncommitted)",
  },
  {
    name: "HEALTH_STALL_TIMEOUT",
    type: "seconds",
    group: "Delivery",
    default: "120",
    min: 1,
    doc: "/healthz answers 503 when records wait this long without a successful write",
  },
];

/**
 * Every variable sluice reads: the common ones, then each sink's.
 *
 * @returns The declarations, in help order.
 */
export function allVariables(): VarSpec[] {
  const seen = new Set<string>();
  const all: VarSpec[] = [];
  for (
    const spec of [
      ...COMMON_VARIABLES,
      ...Object.values(DECODERS).flatMap((d) => d.variables),
      ...Object.values(SINKS).flatMap((s) => s.variables),
    ]
  ) {
    if (seen.has(spec.name)) continue;
    seen.add(spec.name);
    all.push(spec);
  }
  return all;
}

/**
 * Loads a `.env` file into the process environment; variables already set win.
 * This is the one place the env file is read (Deno's Node compatibility
 * provides `process.loadEnvFile`).
 *
 * @param path The file; a missing default file is not an error.
 * @param required Whether a missing file is an error (an explicit `--env-file`).
 * @returns Whether a file was loaded.
 * @throws {Error} When the file exists but cannot be read, or is required and missing.
 */
export function loadEnvFile(path = ".env", required = false): boolean {
  try {
    Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !required) return false;
    throw new Error(`Cannot read env file "${path}"`, { cause: error });
  }
  // Deno 2.9's loadEnvFile overwrites variables that are already set; the
  // contract (python-dotenv's, which the replaced scripts used) is that the
  // environment wins, so put the earlier values back.
  const before = Deno.env.toObject();
  process.loadEnvFile(path);
  for (const [name, value] of Object.entries(before)) {
    if (Deno.env.get(name) !== value) Deno.env.set(name, value);
  }
  return true;
}

/** kafka-influxdb file keys that sluice reads but has no use for, with why. */
const IGNORED_FILE_KEYS: Readonly<Record<string, string>> = {
  KAFKA_READER: "sluice has one Kafka client",
  KAFKA_RECONNECT_WAIT_TIME_MS: "reconnects back off by RETRY_BACKOFF_INITIAL/RETRY_BACKOFF_MAX",
  CONFIGFILE: "a file cannot name another file",
};

/**
 * Reads a YAML configuration file (kafka-influxdb's `config.yaml`, `-c`):
 * nested keys are joined with `_` and upper-cased into variable names.
 *
 * @param path The file.
 * @returns The variables it sets, and notes on keys that were ignored.
 * @throws {ConfigError} When the file cannot be read or names unknown keys.
 */
export function readConfigFile(path: string): { vars: Map<string, string>; ignored: string[] } {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new ConfigError([{
      name: "-c",
      value: path,
      message: `cannot be read (${error instanceof Error ? error.message : String(error)})`,
    }]);
  }
  let flat: Map<string, string>;
  try {
    flat = flattenYaml(parseYaml(text, path));
  } catch (error) {
    throw new ConfigError([{ name: "-c", value: path, message: (error as Error).message }]);
  }
  const known = new Set(allVariables().map((v) => v.name));
  const vars = new Map<string, string>();
  const ignored: string[] = [];
  const problems = [];
  for (const [name, value] of flat) {
    if (name === "BUFFER_TIMEOUT" && /^(false|no|off|0)$/i.test(value)) {
      ignored.push(
        `BUFFER_TIMEOUT: ${value} never flushed a partial buffer in kafka-influxdb; ` +
          "sluice uses its default so that a quiet topic is still written",
      );
    } else if (known.has(name)) vars.set(name, value);
    else if (name in IGNORED_FILE_KEYS) ignored.push(`${name}: ${IGNORED_FILE_KEYS[name]}`);
    else {
      problems.push({
        name: name.toLowerCase(),
        value,
        message: `in ${path} is not a setting sluice knows (no variable ${name}; see --help)`,
      });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { vars, ignored };
}

/**
 * Picks the sink: `SINK` when set, else the only sink whose variables are set.
 *
 * @param reader The reader.
 * @param env The environment.
 * @returns The sink module, or `undefined` with a problem recorded.
 */
function selectSink(reader: VarReader, env: Env): SinkModule | undefined {
  if (reader.isSet("SINK")) {
    const name = reader.choice("SINK");
    return SINKS[name];
  }
  const configured = Object.values(SINKS).filter((s) => s.isConfigured(env));
  if (configured.length === 1) return configured[0];
  if (configured.length === 0) {
    reader.problem(
      "SINK",
      undefined,
      `is not set and no sink is configured; set SINK to one of ${sinkNames.join(", ")}`,
    );
  } else {
    reader.problem(
      "SINK",
      undefined,
      `is not set and several sinks are configured (${
        configured.map((s) => s.name).join(", ")
      }); choose one`,
    );
  }
  return undefined;
}

/**
 * Resolves the whole configuration from an environment.
 *
 * @param env The environment (after `.env` was merged in).
 * @returns The resolved configuration.
 * @throws {ConfigError} Listing every problem, when anything is invalid.
 */
export function parseConfig(env: Env): Config {
  const variables = allVariables();
  // The sink decides some common defaults (kafka-influxdb's ENCODER, topic
  // and broker host), so it is picked first; variables set by the user win.
  const chosen = selectSink(new VarReader(env, variables), env);
  const merged: Record<string, string | undefined> = { ...env };
  for (const [name, value] of Object.entries(chosen?.commonDefaults ?? {})) {
    if ((merged[name] ?? "").trim() === "") merged[name] = value;
  }
  const reader = new VarReader(merged, variables);
  const sinkModule = selectSink(reader, merged);
  const sink = sinkModule ? sinkModule.parseConfig(reader) : undefined;
  const decoder = resolveDecoder(reader, sinkModule);

  const timeZone = reader.string("PMACCT_TIMEZONE");
  if (!isValidTimeZone(timeZone)) {
    reader.problem(
      "PMACCT_TIMEZONE",
      timeZone,
      "must be an IANA time zone such as UTC or Europe/Berlin",
    );
  }

  const tlsOn = reader.bool("KAFKA_TLS");
  const mechanism = reader.choice("KAFKA_SASL_MECHANISM") as
    | NonNullable<KafkaConfig["sasl"]>["mechanism"]
    | "none";
  const username = reader.optional("KAFKA_SASL_USERNAME");
  const password = reader.optional("KAFKA_SASL_PASSWORD");
  if (mechanism !== "none" && (username === undefined || password === undefined)) {
    reader.problem(
      "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD",
      undefined,
      `are both required with KAFKA_SASL_MECHANISM=${mechanism}`,
    );
  }
  for (const name of ["KAFKA_TLS_CA_FILE", "KAFKA_TLS_CERT_FILE", "KAFKA_TLS_KEY_FILE"]) {
    const path = reader.optional(name);
    if (path !== undefined && !fileExists(path)) {
      reader.problem(name, path, "must name a readable file");
    }
  }
  // Settings that only take effect with a switch on are refused without it,
  // rather than ignored: an operator who set a CA file expects TLS.
  if (!tlsOn) {
    for (
      const name of [
        "KAFKA_TLS_CA_FILE",
        "KAFKA_TLS_CERT_FILE",
        "KAFKA_TLS_KEY_FILE",
        "KAFKA_TLS_VERIFY",
      ]
    ) {
      if (reader.isSet(name)) {
        reader.problem(name, reader.raw(name), "is set but KAFKA_TLS is NO; set KAFKA_TLS=YES");
      }
    }
  }
  if (mechanism === "none") {
    for (const name of ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]) {
      if (reader.isSet(name)) {
        reader.problem(
          name,
          reader.raw(name),
          "is set but KAFKA_SASL_MECHANISM is none; choose plain, scram-sha-256 or scram-sha-512",
        );
      }
    }
  }
  if (
    (reader.optional("KAFKA_TLS_CERT_FILE") === undefined) !==
      (reader.optional("KAFKA_TLS_KEY_FILE") === undefined)
  ) {
    reader.problem("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE", undefined, "must be set together");
  }
  const brokers = resolveBrokers(reader, env);
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(broker)) {
      reader.problem("KAFKA_BOOTSTRAP_SERVERS", broker, "must list host:port entries");
    }
  }
  const retry = {
    initialMs: reader.millis("RETRY_BACKOFF_INITIAL"),
    maxMs: reader.millis("RETRY_BACKOFF_MAX"),
  };
  if (retry.maxMs < retry.initialMs) {
    reader.problem(
      "RETRY_BACKOFF_MAX",
      reader.raw("RETRY_BACKOFF_MAX"),
      "must be >= RETRY_BACKOFF_INITIAL",
    );
  }

  const config: Config = {
    sink: sink && sinkModule
      ? { module: sinkModule, config: sink.config, batch: sink.batch }
      : undefined!,
    kafka: {
      brokers,
      topics: reader.list("KAFKA_TOPIC"),
      groupId: resolveGroup(reader) ?? sinkModule?.consumerGroupDefault ?? "sluice",
      clientId: reader.string("KAFKA_CLIENT_ID"),
      fromBeginning: reader.choice("KAFKA_AUTO_OFFSET_RESET") === "earliest",
      tls: tlsOn
        ? {
          verify: reader.bool("KAFKA_TLS_VERIFY"),
          caFile: reader.optional("KAFKA_TLS_CA_FILE"),
          certFile: reader.optional("KAFKA_TLS_CERT_FILE"),
          keyFile: reader.optional("KAFKA_TLS_KEY_FILE"),
        }
        : undefined,
      sasl: mechanism === "none"
        ? undefined
        : { mechanism, username: username ?? "", password: password ?? "" },
      sessionTimeoutMs: reader.millis("KAFKA_SESSION_TIMEOUT"),
    },
    decoder: decoder!,
    timeZone,
    metrics: {
      host: reader.string("PROMETHEUS_CLIENT_HOST"),
      port: reader.int("PROMETHEUS_CLIENT_PORT"),
    },
    retry,
    shutdownTimeoutMs: reader.millis("SHUTDOWN_TIMEOUT"),
    stallTimeoutMs: reader.millis("HEALTH_STALL_TIMEOUT"),
    logLevel:
      (reader.isSet("LOG_LEVEL") || reader.int("VERBOSE") === 0
        ? reader.choice("LOG_LEVEL")
        : "debug") as Level,
    deadLetterFile: reader.optional("DEAD_LETTER_FILE"),
    statistics: reader.bool("STATISTICS"),
    benchmark: {
      enabled: reader.bool("BENCHMARK"),
      messages: reader.int("BENCHMARK_MESSAGES"),
      topic: reader.string("BENCHMARK_TOPIC"),
    },
  };
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return config;
}

/**
 * Describes a resolved configuration for `--check-config`, secrets masked.
 *
 * @param config The configuration.
 * @returns Lines of text.
 */
export function describeConfig(config: Config): string[] {
  const k = config.kafka;
  return [
    `kafka brokers=${k.brokers.join(",")} topics=${k.topics.join(",")} group=${k.groupId} ` +
    `start=${k.fromBeginning ? "earliest" : "latest"} tls=${k.tls ? "yes" : "no"} ` +
    `sasl=${k.sasl ? `${k.sasl.mechanism} user=${k.sasl.username} password=***` : "none"}`,
    `decoder ${config.decoder.module.name} timezone=${config.timeZone}`,
    ...config.sink.module.describe(config.sink.config),
    `batch max_rows=${config.sink.batch.maxRows} max_bytes=${config.sink.batch.maxBytes} ` +
    `max_age=${config.sink.batch.maxAgeMs / 1000}s`,
    `retry backoff=${config.retry.initialMs / 1000}s..${config.retry.maxMs / 1000}s ` +
    `shutdown_timeout=${config.shutdownTimeoutMs / 1000}s`,
    `metrics http://${config.metrics.host}:${config.metrics.port}/metrics`,
  ];
}

/**
 * Picks and builds the decoder named by `ENCODER`, checking that the sink
 * can write what it produces.
 */
function resolveDecoder(
  reader: VarReader,
  sink: SinkModule | undefined,
): Config["decoder"] | undefined {
  const name = reader.optional("ENCODER") ?? "pmacct";
  const module = findDecoder(name);
  if (module === undefined) {
    reader.problem(
      "ENCODER",
      name,
      `must be one of ${Object.keys(DECODERS).join(", ")} (or kafka-influxdb's module name of one)`,
    );
    return undefined;
  }
  const inputs = sink?.inputs ?? ["flows"];
  if (sink !== undefined && !inputs.includes(module.kind)) {
    const takers = Object.values(SINKS).filter((s) => (s.inputs ?? ["flows"]).includes(module.kind))
      .map((s) => s.name);
    reader.problem(
      "ENCODER",
      name,
      `produces ${module.kind}, which SINK=${sink.name} cannot write; use SINK=${
        takers.join(" or ")
      }`,
    );
  }
  return { module, decode: module.create(reader) };
}

/**
 * The brokers: `KAFKA_BOOTSTRAP_SERVERS`, or kafka-influxdb's `KAFKA_HOST` and
 * `KAFKA_PORT` (host defaulted by the sink), but not both.
 */
function resolveBrokers(reader: VarReader, env: Env): string[] {
  const userHost = (env["KAFKA_HOST"] ?? "").trim() !== "" ||
    (env["KAFKA_PORT"] ?? "").trim() !== "";
  if (reader.isSet("KAFKA_BOOTSTRAP_SERVERS")) {
    if (userHost) {
      reader.problem(
        "KAFKA_BOOTSTRAP_SERVERS/KAFKA_HOST",
        undefined,
        "are both set; set KAFKA_BOOTSTRAP_SERVERS, or KAFKA_HOST and KAFKA_PORT",
      );
    }
    return reader.list("KAFKA_BOOTSTRAP_SERVERS");
  }
  const host = reader.optional("KAFKA_HOST");
  if (host === undefined) return reader.list("KAFKA_BOOTSTRAP_SERVERS");
  const port = reader.int("KAFKA_PORT");
  return [host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`];
}

/** `KAFKA_CONSUMER_GROUP_ID`, or kafka-influxdb's `KAFKA_GROUP`; both set must agree. */
function resolveGroup(reader: VarReader): string | undefined {
  const id = reader.optional("KAFKA_CONSUMER_GROUP_ID");
  const group = reader.optional("KAFKA_GROUP");
  if (id !== undefined && group !== undefined && id !== group) {
    reader.problem(
      "KAFKA_CONSUMER_GROUP_ID/KAFKA_GROUP",
      undefined,
      `name different groups (${JSON.stringify(id)} and ${JSON.stringify(group)}); set one`,
    );
  }
  return id ?? group;
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
