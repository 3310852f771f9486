/**
 * sluice's configuration: the tables of common variables, and
 * `parseConfig()`, which resolves everything once and reports every problem
 * at once. Nothing downstream reads the environment.
 *
 * The variable names of pmacct-kafka-clickhouse (and of the other tools
 * sluice replaces) are a compatibility contract: same names, same meaning,
 * same defaults. Sink variables live next to each sink (`sinks/<name>/config.ts`),
 * decoder variables next to each decoder; `main.ts` hands both registries in.
 *
 * @module
 */

import type { CliFlags } from "./cli.ts";
import { mergeSources, readConfigFile, readEnvFile } from "./config_files.ts";
import type { DecoderModule } from "./decoder.ts";
import type { Decoder } from "./decoder.ts";
import { findDecoder } from "./decode/mod.ts";
import type { Level, LogFormat } from "./log.ts";
import type { BatchLimits, SinkModule } from "./sink.ts";
import { isValidTimeZone, readTimeWindow, RECORD_TIME, type TimeWindow } from "./time.ts";
import {
  closestNames,
  ConfigError,
  type ConfigProblem,
  type ConfigWarning,
  declareVariables,
  describeVariables,
  didYouMean,
  type Env,
  formatWarning,
  unknownVariables,
  VarReader,
  type VarSpec,
} from "./variables.ts";

/** The static registries: every sink and every decoder, by name. */
export interface Registries {
  /** Sinks by the `SINK` value that selects them. */
  sinks: Readonly<Record<string, SinkModule>>;
  /** Decoders by the `ENCODER` value that selects them. */
  decoders: Readonly<Record<string, DecoderModule>>;
}

/** Kafka consumer settings. */
export interface KafkaConfig {
  /** Bootstrap brokers, `host:port` (`KAFKA_BOOTSTRAP_SERVERS`, or `KAFKA_HOST` and `KAFKA_PORT`). */
  brokers: string[];
  /** Topics to consume (`KAFKA_TOPIC`). */
  topics: string[];
  /** Consumer group id (`KAFKA_CONSUMER_GROUP_ID` or `KAFKA_GROUP`, else the sink's). */
  groupId: string;
  /** Client id sent to the brokers (`KAFKA_CLIENT_ID`). */
  clientId: string;
  /** Whether a new group starts at the earliest offset (`KAFKA_AUTO_OFFSET_RESET`). */
  fromBeginning: boolean;
  /** TLS settings, when `KAFKA_TLS` is on. */
  tls?: { verify: boolean; caFile?: string; certFile?: string; keyFile?: string };
  /** SASL credentials, when `KAFKA_SASL_MECHANISM` is not none. */
  sasl?: {
    mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
    username: string;
    password: string;
  };
  /** Group session timeout in milliseconds (`KAFKA_SESSION_TIMEOUT`). */
  sessionTimeoutMs: number;
}

/** The fully resolved configuration. */
export interface Config {
  /** The selected sink, its resolved settings and batch limits. */
  sink: { module: SinkModule; config: unknown; batch: BatchLimits };
  /** Kafka consumer settings. */
  kafka: KafkaConfig;
  /** The input decoder (`ENCODER`), built from its variables. */
  decoder: { module: DecoderModule; decode: Decoder };
  /** IANA zone of pmacct's local timestamps (`PMACCT_TIMEZONE`). */
  timeZone: string;
  /** The record times every sink accepts (`RECORD_TIME_MIN`, `RECORD_TIME_MAX_FUTURE`). */
  recordTime: TimeWindow;
  /** Metrics and health endpoint (`PROMETHEUS_CLIENT_HOST`, `PROMETHEUS_CLIENT_PORT`). */
  metrics: { host: string; port: number };
  /** Backoff between attempts, in milliseconds (`RETRY_BACKOFF_INITIAL`, `RETRY_BACKOFF_MAX`). */
  retry: { initialMs: number; maxMs: number };
  /** How long a shutdown may spend flushing, in milliseconds (`SHUTDOWN_TIMEOUT`). */
  shutdownTimeoutMs: number;
  /** `/healthz` fails after this long without progress with work pending (`HEALTH_STALL_TIMEOUT`). */
  stallTimeoutMs: number;
  /** Minimum log level (`LOG_LEVEL`, `VERBOSE`). */
  logLevel: Level;
  /** Format of the log lines (`LOG_FORMAT`); unset: text on a terminal, JSON otherwise. */
  logFormat?: LogFormat;
  /** File that rejected records are appended to as JSON lines (`DEAD_LETTER_FILE`), if set. */
  deadLetterFile?: string;
  /** Rotation of the dead-letter file (`DEAD_LETTER_FILE_MAX_BYTES`, `DEAD_LETTER_FILE_KEEP`). */
  deadLetterRotation: { maxBytes: number; keep: number };
  /** Kafka topic that rejected records are produced to (`DEAD_LETTER_TOPIC`), if set. */
  deadLetterTopic?: string;
  /** Print the throughput of every flush to standard output (`STATISTICS`, kafka-influxdb's `-s`). */
  statistics: boolean;
  /** Worker threads that decode and prepare (`DECODE_WORKERS`); 0: none. */
  decodeWorkers: number;
  /** Benchmark mode (`BENCHMARK`, `BENCHMARK_MESSAGES`, `BENCHMARK_TOPIC`). */
  benchmark: { enabled: boolean; messages: number; topic: string };
  /** What `--check-config` prints: the variables that apply, as the user set them. */
  settings: { specs: readonly VarSpec[]; env: Env; defaults: Readonly<Record<string, string>> };
  /** Likely mistakes that do not stop sluice (misspelt variables), logged at start. */
  warnings: readonly ConfigWarning[];
}

/** How a configuration will be used. */
export interface ParseOptions {
  /**
   * No server will be reached (`--dry-run`): the variables that only say
   * where a broker or the sink is (`connection`) are not required.
   */
  offline?: boolean;
  /** Problems found before, in the files read (reported with the others). */
  problems?: readonly ConfigProblem[];
}

/**
 * Prefixes of variables that are not sluice's though they look so: the
 * test services, the tests and the benchmarks keep their own settings
 * under `SLUICE_` (`SLUICE_KAFKA_PORT`, `SLUICE_CLICKHOUSE_HTTP_PORT`, ...),
 * in the environment sluice runs in. A name there is warned about only when
 * it is a near miss of a variable sluice reads.
 */
export const OTHER_TOOLS_PREFIXES: readonly string[] = ["SLUICE_"];

/**
 * The common variables, read whichever sink is selected, in help order.
 *
 * @param registries The sinks and decoders (their names appear in the docs).
 * @returns One table per group.
 */
export function commonVariables(registries: Registries) {
  const sinkNames = Object.keys(registries.sinks);
  const general = declareVariables("General", {
    SINK: {
      type: "enum",
      choices: sinkNames,
      doc: `Backend to write to (${
        sinkNames.join(", ")
      }); when unset, the only sink whose variables are set`,
    },
    ENCODER: {
      type: "string",
      doc: `Format of the Kafka messages (${
        Object.keys(registries.decoders).join(", ")
      }; kafka-influxdb's module names are accepted); default pmacct, collectd_graphite with SINK=influxdb`,
    },
    PMACCT_TIMEZONE: {
      type: "string",
      default: "UTC",
      doc: "IANA time zone in which pmacct wrote local timestamps (YYYY-MM-DD HH:MM:SS)",
    },
    LOG_LEVEL: {
      type: "enum",
      choices: ["debug", "info", "warn", "error"],
      default: "info",
      doc: "Minimum level of the log lines written to standard error",
    },
    LOG_FORMAT: {
      type: "enum",
      choices: ["json", "text"],
      doc: "Format of the log lines: json (one object per line) or text (time, level, " +
        "message, key=value); unset: text when standard error is a terminal, json otherwise",
    },
    VERBOSE: {
      type: "int",
      default: "0",
      min: 0,
      doc:
        "kafka-influxdb's verbosity (-v): 1 or more means LOG_LEVEL=debug unless LOG_LEVEL is set",
    },
    STATISTICS: {
      type: "bool",
      default: "NO",
      doc: "Print each flush's throughput (points and messages written per second) " +
        "to standard output (-s)",
    },
    DECODE_WORKERS: {
      type: "int",
      default: "0",
      min: 0,
      max: 64,
      doc: "Worker threads that decode and convert records while the main thread fetches, " +
        "writes and commits; 0: all on the main thread. Worth it from 4 cores on (see " +
        "docs/performance.md)",
    },
    DEAD_LETTER_FILE: {
      type: "output",
      doc: "File to append rejected records to as JSON lines (with reason and origin); " +
        "its directory must exist and be writable; unset: log only",
    },
    DEAD_LETTER_FILE_MAX_BYTES: {
      type: "int",
      default: "104857600",
      min: 0,
      doc: "Size in bytes at which DEAD_LETTER_FILE is rotated: renamed to FILE.1 (FILE.1 to " +
        "FILE.2, ...) and started anew; 0: never rotated",
    },
    DEAD_LETTER_FILE_KEEP: {
      type: "int",
      default: "5",
      min: 1,
      max: 1000,
      doc: "Rotated dead-letter files kept (FILE.1 to FILE.N); the oldest beyond is deleted",
    },
    DEAD_LETTER_TOPIC: {
      type: "string",
      example: "sluice-dead-letters",
      doc: "Kafka topic (on KAFKA_BOOTSTRAP_SERVERS, existing) to produce each rejected " +
        "record to: the original message as the value, its key, and headers sluice.reason, " +
        "sluice.error and sluice.source.topic/partition/offset/index; their offsets are " +
        "committed only once it is stored. Unset: no topic",
    },
  });
  const kafka = declareVariables("Kafka", {
    KAFKA_BOOTSTRAP_SERVERS: {
      type: "hostports",
      required: true,
      connection: true,
      example: "127.0.0.1:9092",
      doc: "Comma-separated Kafka bootstrap servers, host:port (or KAFKA_HOST and KAFKA_PORT)",
    },
    KAFKA_HOST: {
      type: "string",
      doc: "kafka-influxdb's broker host, used with KAFKA_PORT when KAFKA_BOOTSTRAP_SERVERS " +
        "is unset; default localhost with SINK=influxdb",
    },
    KAFKA_PORT: {
      type: "int",
      default: "9092",
      min: 1,
      max: 65535,
      doc: "kafka-influxdb's broker port, used with KAFKA_HOST",
    },
    KAFKA_TOPIC: {
      type: "list",
      required: true,
      connection: true,
      example: "pmacct.acct",
      doc: "Topic to consume (several: comma-separated); default my_topic with SINK=influxdb",
    },
    KAFKA_CONSUMER_GROUP_ID: {
      type: "string",
      doc: "Consumer group id; default per sink, as the tool it replaces had it (" +
        Object.values(registries.sinks).map((s) => `${s.name}: ${s.consumerGroupDefault}`)
          .join(", ") +
        ")",
    },
    KAFKA_GROUP: { type: "string", doc: "kafka-influxdb's name for KAFKA_CONSUMER_GROUP_ID" },
    KAFKA_CLIENT_ID: { type: "string", default: "sluice", doc: "Client id sent to the brokers" },
    KAFKA_AUTO_OFFSET_RESET: {
      type: "enum",
      choices: ["earliest", "latest"],
      default: "earliest",
      doc: "Where a consumer group without committed offsets starts",
    },
    KAFKA_SESSION_TIMEOUT: {
      type: "seconds",
      default: "10",
      min: 6,
      doc: "Consumer group session timeout, in seconds: how long the partitions of a member " +
        "that died stay unread before the group moves them (heartbeats every tenth of it)",
    },
    KAFKA_TLS: { type: "bool", default: "NO", doc: "Connect to the brokers with TLS" },
    KAFKA_TLS_VERIFY: {
      type: "bool",
      default: "YES",
      onlyWith: { name: "KAFKA_TLS", is: "YES" },
      doc: "Verify the brokers' TLS certificates",
    },
    KAFKA_TLS_CA_FILE: {
      type: "file",
      pem: true,
      onlyWith: { name: "KAFKA_TLS", is: "YES" },
      doc: "PEM file of the CA that signed the brokers' certificates",
    },
    KAFKA_TLS_CERT_FILE: {
      type: "file",
      pem: true,
      onlyWith: { name: "KAFKA_TLS", is: "YES" },
      doc: "PEM client certificate for mutual TLS",
    },
    KAFKA_TLS_KEY_FILE: {
      type: "file",
      onlyWith: { name: "KAFKA_TLS", is: "YES" },
      doc: "PEM private key of the client certificate",
    },
    KAFKA_SASL_MECHANISM: {
      type: "enum",
      choices: ["none", "plain", "scram-sha-256", "scram-sha-512"],
      default: "none",
      doc: "SASL mechanism: none, plain, scram-sha-256 or scram-sha-512",
    },
    KAFKA_SASL_USERNAME: {
      type: "string",
      onlyWith: { name: "KAFKA_SASL_MECHANISM", not: "none" },
      doc: "SASL user name",
    },
    KAFKA_SASL_PASSWORD: {
      type: "string",
      secret: true,
      onlyWith: { name: "KAFKA_SASL_MECHANISM", not: "none" },
      doc: "SASL password",
    },
  });
  const metrics = declareVariables("Metrics", {
    PROMETHEUS_CLIENT_PORT: {
      type: "int",
      default: "9003",
      min: 0,
      max: 65535,
      doc: "Port of the /metrics and /healthz HTTP server (0: any free port)",
    },
    PROMETHEUS_CLIENT_HOST: {
      type: "string",
      default: "0.0.0.0",
      doc: "Address the /metrics and /healthz HTTP server listens on",
    },
  });
  const delivery = declareVariables("Delivery", {
    RETRY_BACKOFF_INITIAL: {
      type: "seconds",
      default: "0.5",
      min: 0.001,
      doc: "First wait before retrying a failed write, in seconds; doubles each attempt",
    },
    RETRY_BACKOFF_MAX: {
      type: "seconds",
      default: "30",
      min: 0.001,
      doc: "Cap of the wait between write attempts, in seconds " +
        "(writes are retried until they succeed)",
    },
    SHUTDOWN_TIMEOUT: {
      type: "seconds",
      default: "30",
      min: 0,
      doc:
        "How long SIGTERM/SIGINT may spend writing the last batch before giving up (uncommitted)",
    },
    HEALTH_STALL_TIMEOUT: {
      type: "seconds",
      default: "120",
      min: 1,
      doc: "/healthz answers 503 when records wait this long without a successful write",
    },
  });
  const benchmark = declareVariables("Benchmark", {
    BENCHMARK: {
      type: "bool",
      default: "NO",
      doc: "Benchmark mode (-b): produce BENCHMARK_MESSAGES sample messages in the ENCODER's " +
        "format to BENCHMARK_TOPIC, consume them through the sink, report rates, exit",
    },
    BENCHMARK_MESSAGES: {
      type: "int",
      default: "1000000",
      min: 1,
      doc: "Number of sample messages the benchmark produces",
    },
    BENCHMARK_TOPIC: {
      type: "string",
      default: "benchmark",
      doc: "Topic the benchmark produces to and consumes from (created when missing)",
    },
  });
  return { general, recordTime: RECORD_TIME, kafka, metrics, delivery, benchmark };
}

/**
 * The common variables, in help order.
 *
 * @param registries The sinks and decoders.
 * @returns The declarations.
 */
export function commonSpecs(registries: Registries): VarSpec[] {
  return Object.values(commonVariables(registries)).flatMap((table) => table.specs);
}

/**
 * Every variable sluice reads: the common ones, each decoder's, then each sink's.
 *
 * @param registries The sinks and decoders.
 * @returns The declarations, in help order, each once.
 */
export function allVariables(registries: Registries): VarSpec[] {
  const seen = new Set<string>();
  const all: VarSpec[] = [];
  for (
    const spec of [
      ...commonSpecs(registries),
      ...Object.values(registries.decoders).flatMap((d) => d.variables),
      ...Object.values(registries.sinks).flatMap((s) => s.variables),
    ]
  ) {
    if (seen.has(spec.name)) continue;
    seen.add(spec.name);
    all.push(spec);
  }
  return all;
}

/**
 * Whether the environment configures a sink: one of its variables marked
 * `selects` is set (used when `SINK` is unset).
 *
 * @param sink The sink.
 * @param env The environment.
 * @returns `true` when one of them is set to something.
 */
export function isSelected(sink: SinkModule, env: Env): boolean {
  return sink.variables.some((v) => v.selects && (env[v.name] ?? "").trim() !== "");
}

/**
 * Picks the sink: `SINK` when set, else the only sink one of whose
 * `selects` variables is set.
 */
function selectSink(
  reader: VarReader,
  env: Env,
  sinks: Registries["sinks"],
): SinkModule | undefined {
  const configured = Object.values(sinks).filter((s) => isSelected(s, env));
  if (reader.isSet("SINK")) {
    const name = reader.raw("SINK")!.toLowerCase();
    if (Object.hasOwn(sinks, name)) return sinks[name];
    // An unknown name is reported where the General table is read. The
    // sink meant is read all the same, so that its problems are reported
    // with that one rather than after it is fixed.
    const meant = closestNames(name, Object.keys(sinks));
    if (meant.length === 1) return sinks[meant[0]!];
    return configured.length === 1 ? configured[0] : undefined;
  }
  if (configured.length === 1) return configured[0];
  const names = Object.keys(sinks).join(", ");
  reader.problem(
    "SINK",
    undefined,
    configured.length === 0
      ? `is not set and no sink is configured; set SINK to one of ${names}`
      : `is not set and several sinks are configured (${
        configured.map((s) => s.name).join(", ")
      }); choose one`,
  );
  return undefined;
}

/**
 * Reads the configuration the way `main.ts` starts: the YAML file of
 * `-c`, the env file, the environment and the flags, merged by precedence
 * (`mergeSources`), then resolved by {@link parseConfig}. Every problem of
 * the file and of the variables is reported at once.
 *
 * @param flags The command line.
 * @param env The process environment.
 * @param registries The sinks and decoders.
 * @returns The configuration, and notes on the YAML file's keys that are ignored.
 * @throws {ConfigError} Listing every problem, when anything is invalid.
 * @throws {Error} When the env file exists but cannot be read.
 */
export function loadConfig(
  flags: CliFlags,
  env: Env,
  registries: Registries,
): { config: Config; ignoredKeys: string[] } {
  const variables = allVariables(registries);
  const file = flags.configFile === undefined
    ? undefined
    : readConfigFile(flags.configFile, new Set(variables.map((v) => v.name)));
  const merged = mergeSources({
    flags: flags.vars,
    env,
    envFile: readEnvFile(flags.envFile.path, flags.envFile.explicit),
    yaml: file?.vars,
  });
  const config = parseConfig(merged, registries, {
    offline: flags.dryRun,
    problems: file?.problems,
  });
  return { config, ignoredKeys: file?.ignored ?? [] };
}

/**
 * Resolves the whole configuration from an environment.
 *
 * @param env The environment (flags, `.env` and the YAML file merged in by `mergeSources`).
 * @param registries The sinks and decoders.
 * @param options Whether servers will be reached, and problems found before.
 * @returns The resolved configuration.
 * @throws {ConfigError} Listing every problem and the warnings, when anything is invalid.
 */
export function parseConfig(env: Env, registries: Registries, options: ParseOptions = {}): Config {
  const variables = allVariables(registries);
  // The sink decides some common defaults (kafka-influxdb's ENCODER, topic
  // and broker host), so it is picked first; variables set by the user win.
  const chosen = selectSink(new VarReader(env, variables), env, registries.sinks);
  const defaults: Record<string, string> = { ...chosen?.commonDefaults };
  if (chosen !== undefined) defaults["KAFKA_CONSUMER_GROUP_ID"] = chosen.consumerGroupDefault;
  const merged: Record<string, string | undefined> = { ...env };
  for (const [name, value] of Object.entries(chosen?.commonDefaults ?? {})) {
    if ((merged[name] ?? "").trim() === "") merged[name] = value;
  }
  const reader = new VarReader(merged, variables, { offline: options.offline });
  reader.problems.push(...options.problems ?? []);
  resolveBrokerAlias(reader, env, merged);
  const sinkModule = selectSink(reader, merged, registries.sinks);
  const sink = sinkModule?.parseConfig(reader);
  const decoder = resolveDecoder(reader, sinkModule, registries);

  const common = commonVariables(registries);
  const g = common.general.read(reader);
  const k = common.kafka.read(reader);
  const m = common.metrics.read(reader);
  const d = common.delivery.read(reader);
  const b = common.benchmark.read(reader);
  const recordTime = readTimeWindow(reader);

  const deadTopic = g.DEAD_LETTER_TOPIC;
  if (deadTopic !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(deadTopic)) {
    reader.problem(
      "DEAD_LETTER_TOPIC",
      deadTopic,
      "must be a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-'",
    );
  } else if (deadTopic !== undefined && k.KAFKA_TOPIC.includes(deadTopic)) {
    reader.problem("DEAD_LETTER_TOPIC", deadTopic, "must not be a topic sluice consumes");
  }
  if (!isValidTimeZone(g.PMACCT_TIMEZONE)) {
    reader.problem(
      "PMACCT_TIMEZONE",
      g.PMACCT_TIMEZONE,
      "must be an IANA time zone such as UTC or Europe/Berlin",
    );
  }
  const mechanism = k.KAFKA_SASL_MECHANISM;
  if (
    mechanism !== "none" &&
    (k.KAFKA_SASL_USERNAME === undefined || k.KAFKA_SASL_PASSWORD === undefined)
  ) {
    reader.problem(
      "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD",
      undefined,
      `are both required with KAFKA_SASL_MECHANISM=${mechanism}`,
    );
  }
  if ((k.KAFKA_TLS_CERT_FILE === undefined) !== (k.KAFKA_TLS_KEY_FILE === undefined)) {
    reader.problem("KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE", undefined, "must be set together");
  }
  if (d.RETRY_BACKOFF_MAX < d.RETRY_BACKOFF_INITIAL) {
    reader.problem(
      "RETRY_BACKOFF_MAX",
      reader.raw("RETRY_BACKOFF_MAX"),
      "must be >= RETRY_BACKOFF_INITIAL",
    );
  }
  const groupId = resolveGroup(reader, k.KAFKA_CONSUMER_GROUP_ID, k.KAFKA_GROUP);
  // A near miss already named in a problem ("is required ... (X is set ...)") is not repeated.
  const word = /[A-Za-z0-9_]/;
  const named = (text: string, name: string) => {
    for (let at = text.indexOf(name); at !== -1; at = text.indexOf(name, at + 1)) {
      if (!word.test(text[at - 1] ?? " ") && !word.test(text[at + name.length] ?? " ")) return true;
    }
    return false;
  };
  const warnings = unknownVariables(env, variables, OTHER_TOOLS_PREFIXES).filter((w) =>
    !reader.problems.some((p) => named(p.message, w.name))
  );
  if (reader.problems.length > 0) throw new ConfigError(reader.problems, warnings);

  const specs = [
    ...commonSpecs(registries),
    ...(decoder?.module.variables ?? []),
    ...(sinkModule?.variables ?? []),
  ];
  return {
    sink: { module: sinkModule!, config: sink!.config, batch: sink!.batch },
    kafka: {
      brokers: k.KAFKA_BOOTSTRAP_SERVERS,
      topics: k.KAFKA_TOPIC,
      groupId: groupId ?? sinkModule!.consumerGroupDefault,
      clientId: k.KAFKA_CLIENT_ID,
      fromBeginning: k.KAFKA_AUTO_OFFSET_RESET === "earliest",
      tls: k.KAFKA_TLS
        ? {
          verify: k.KAFKA_TLS_VERIFY,
          caFile: k.KAFKA_TLS_CA_FILE,
          certFile: k.KAFKA_TLS_CERT_FILE,
          keyFile: k.KAFKA_TLS_KEY_FILE,
        }
        : undefined,
      sasl: mechanism === "none" ? undefined : {
        mechanism,
        username: k.KAFKA_SASL_USERNAME ?? "",
        password: k.KAFKA_SASL_PASSWORD ?? "",
      },
      sessionTimeoutMs: k.KAFKA_SESSION_TIMEOUT,
    },
    decoder: decoder!,
    timeZone: g.PMACCT_TIMEZONE,
    recordTime,
    metrics: { host: m.PROMETHEUS_CLIENT_HOST, port: m.PROMETHEUS_CLIENT_PORT },
    retry: { initialMs: d.RETRY_BACKOFF_INITIAL, maxMs: d.RETRY_BACKOFF_MAX },
    shutdownTimeoutMs: d.SHUTDOWN_TIMEOUT,
    stallTimeoutMs: d.HEALTH_STALL_TIMEOUT,
    logLevel: reader.isSet("LOG_LEVEL") || g.VERBOSE === 0 ? g.LOG_LEVEL : "debug",
    logFormat: g.LOG_FORMAT as LogFormat | undefined,
    deadLetterFile: g.DEAD_LETTER_FILE,
    deadLetterRotation: { maxBytes: g.DEAD_LETTER_FILE_MAX_BYTES, keep: g.DEAD_LETTER_FILE_KEEP },
    deadLetterTopic: g.DEAD_LETTER_TOPIC,
    statistics: g.STATISTICS,
    decodeWorkers: g.DECODE_WORKERS,
    benchmark: {
      enabled: b.BENCHMARK,
      messages: b.BENCHMARK_MESSAGES,
      topic: b.BENCHMARK_TOPIC,
    },
    settings: { specs: [...new Map(specs.map((s) => [s.name, s])).values()], env, defaults },
    warnings,
  };
}

/**
 * Describes a resolved configuration for `--check-config`: the sink's
 * target and decoder, then every variable that applies, secrets masked.
 *
 * @param config The configuration.
 * @returns Lines of text.
 */
export function describeConfig(config: Config): string[] {
  const { module } = config.sink;
  const { specs, env, defaults } = config.settings;
  return [
    `Sink ${module.name} (${module.title}): ${module.target(config.sink.config)}`,
    `Decoder ${config.decoder.module.name}: ${config.decoder.module.title}`,
    `Kafka group ${config.kafka.groupId} on ${config.kafka.brokers.join(",")}, ` +
    `topics ${config.kafka.topics.join(",")}`,
    ...describeVariables(specs, env, defaults),
    ...config.warnings.map((w) => `Warning: ${formatWarning(w)}`),
  ];
}

/**
 * Picks and builds the decoder named by `ENCODER`, checking that the sink
 * can write what it produces.
 */
function resolveDecoder(
  reader: VarReader,
  sink: SinkModule | undefined,
  registries: Registries,
): Config["decoder"] | undefined {
  const name = reader.optional("ENCODER") ?? "pmacct";
  const module = findDecoder(registries.decoders, name);
  if (module === undefined) {
    const names = Object.values(registries.decoders).flatMap((d) => [d.name, ...d.aliases ?? []]);
    const hint = didYouMean(
      closestNames(name.trim().replace(/^kafka_influxdb\.encoder\./i, ""), names),
    );
    reader.problem(
      "ENCODER",
      name,
      `must be one of ${
        Object.keys(registries.decoders).join(", ")
      } (or kafka-influxdb's module name of one)${hint ? `; ${hint}` : ""}`,
    );
    return undefined;
  }
  const inputs = sink?.inputs ?? ["flows"];
  if (sink !== undefined && !inputs.includes(module.kind)) {
    const takers = Object.values(registries.sinks)
      .filter((s) => (s.inputs ?? ["flows"]).includes(module.kind))
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
 * kafka-influxdb's `KAFKA_HOST` and `KAFKA_PORT` (the host possibly
 * defaulted by the sink) stand for `KAFKA_BOOTSTRAP_SERVERS` when that is
 * unset; the user may not set both. `merged` is what `reader` reads.
 */
function resolveBrokerAlias(
  reader: VarReader,
  env: Env,
  merged: Record<string, string | undefined>,
): void {
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
    return;
  }
  const host = reader.optional("KAFKA_HOST");
  if (host === undefined) return;
  // An invalid port is reported where the Kafka table is read.
  const port = reader.raw("KAFKA_PORT") ?? "";
  if (!/^\d{1,5}$/.test(port)) return;
  merged["KAFKA_BOOTSTRAP_SERVERS"] = host.includes(":") && !host.startsWith("[")
    ? `[${host}]:${Number(port)}`
    : `${host}:${Number(port)}`;
}

/** `KAFKA_CONSUMER_GROUP_ID`, or kafka-influxdb's `KAFKA_GROUP`; both set must agree. */
function resolveGroup(
  reader: VarReader,
  id: string | undefined,
  group: string | undefined,
): string | undefined {
  if (id !== undefined && group !== undefined && id !== group) {
    reader.problem(
      "KAFKA_CONSUMER_GROUP_ID/KAFKA_GROUP",
      undefined,
      `name different groups (${JSON.stringify(id)} and ${JSON.stringify(group)}); set one`,
    );
  }
  return id ?? group;
}
