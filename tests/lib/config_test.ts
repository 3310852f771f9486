import {
  allVariables,
  commonSpecs,
  describeConfig,
  loadConfig,
  parseConfig,
} from "../../lib/config.ts";
import { readConfigFile } from "../../lib/config_files.ts";
import { helpText, parseFlags, VERSION } from "../../lib/cli.ts";
import { ConfigError, formatWarning, VarReader } from "../../lib/variables.ts";
import type { ClickHouseConfig } from "../../sinks/clickhouse/config.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../_assert.ts";
import { REGISTRIES } from "../../sinks/mod.ts";
import { CONFIG_PAGE, configReference, generatedPart } from "../../scripts/config_table.ts";

/** The smallest environment an existing pmacct-kafka-clickhouse .env has. */
const ORIGINAL = {
  KAFKA_BOOTSTRAP_SERVERS: "kafka1:9094,kafka2:9094",
  KAFKA_TOPIC: "pmacct.sfacct",
  CLICKHOUSE_HOST: "clickhouse.my.domain",
  CLICKHOUSE_USER: "pmlab",
  CLICKHOUSE_PASSWORD: "mypassword",
  CLICKHOUSE_DATA_SCHEMA:
    "tag:UInt16,label:String,as_src:UInt32,ip_src:IPv4,ip_dst:IPv4,port_src:UInt16,stamp_updated:DateTime,packets:UInt64,bytes:UInt64",
  CLICKHOUSE_ORDER_BY: "stamp_updated,tag",
  CLICKHOUSE_PARTITION_BY: "toYYYYMMDD(stamp_updated)",
};

const KNOWN = new Set(allVariables(REGISTRIES).map((v) => v.name));

function configError(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env, REGISTRIES);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("parseConfig() accepted an invalid configuration");
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env, REGISTRIES);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.name);
    throw error;
  }
  return [];
}

Deno.test("parseConfig() keeps every default of pmacct-kafka-clickhouse", () => {
  const config = parseConfig(ORIGINAL, REGISTRIES);
  const ch = config.sink.config as ClickHouseConfig;
  assertEquals(config.sink.module.name, "clickhouse");
  assertEquals(config.kafka.brokers, ["kafka1:9094", "kafka2:9094"]);
  assertEquals(config.kafka.topics, ["pmacct.sfacct"]);
  assertEquals(config.kafka.groupId, "kafka2clickhouse");
  assertEquals(config.kafka.fromBeginning, true);
  assertEquals(ch.database, "pmacct");
  assertEquals(ch.table, "sflowstat");
  assertEquals(ch.createTable, true);
  assertEquals(ch.username, "pmlab");
  assertEquals(ch.password, "mypassword");
  assertEquals(ch.columns.map((c) => c.name), [
    "tag",
    "label",
    "as_src",
    "ip_src",
    "ip_dst",
    "port_src",
    "stamp_updated",
    "packets",
    "bytes",
  ]);
  assertEquals(config.sink.batch.maxRows, 1000);
  assertEquals(config.sink.batch.maxAgeMs, 10_000);
  assertEquals(config.metrics.port, 9003);
  assertEquals(config.timeZone, "UTC");
});

Deno.test("parseConfig() reports every problem at once, naming each variable and value", () => {
  const error = configError({
    ...ORIGINAL,
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "abc",
    CLICKHOUSE_MAX_TIME_TO_SEND: "-1",
    CLICKHOUSE_DATA_SCHEMA: "bytes,packets:UInt64,amount:Decimal(10,2),x:Strnig",
    PROMETHEUS_CLIENT_PORT: "99999",
    PMACCT_TIMEZONE: "Mars/Olympus",
    KAFKA_SASL_MECHANISM: "scram-sha-256",
  });
  const text = error.message;
  assertMatch(text, /^Cannot start: \d+ configuration problems/);
  assertMatch(text, /"CLICKHOUSE_MAX_SAMPLES_PER_SEND" must be an integer >= 1, got "abc"/);
  assertMatch(text, /"CLICKHOUSE_MAX_TIME_TO_SEND" .*got "-1"/);
  assertMatch(text, /"CLICKHOUSE_DATA_SCHEMA" .*bytes/);
  assertMatch(text, /"CLICKHOUSE_DATA_SCHEMA" .*Strnig/);
  assert(!/Decimal/.test(text), "Decimal(10,2) is valid and must not be reported");
  assertMatch(text, /"PROMETHEUS_CLIENT_PORT" must be an integer between 0 and 65535, got "99999"/);
  assertMatch(text, /"PMACCT_TIMEZONE" .*got "Mars\/Olympus"/);
  assertMatch(text, /KAFKA_SASL_USERNAME\/KAFKA_SASL_PASSWORD/);
});

Deno.test("parseConfig() requires the variables the original required, all reported together", () => {
  const names = problemsOf({ SINK: "clickhouse" });
  for (
    const name of [
      "KAFKA_BOOTSTRAP_SERVERS",
      "KAFKA_TOPIC",
      "CLICKHOUSE_HOST",
      "CLICKHOUSE_DATA_SCHEMA",
    ]
  ) {
    assert(names.includes(name), `${name} missing from ${names}`);
  }
});

Deno.test("parseConfig() selects the sink from SINK, or from the only configured sink", () => {
  assertEquals(
    parseConfig({ ...ORIGINAL, SINK: "clickhouse" }, REGISTRIES).sink.module.name,
    "clickhouse",
  );
  assertEquals(problemsOf({ KAFKA_BOOTSTRAP_SERVERS: "k:9092", KAFKA_TOPIC: "t" }), ["SINK"]);
  assertEquals(problemsOf({ ...ORIGINAL, SINK: "nosuchsink" }).includes("SINK"), true);
});

Deno.test("parseConfig() reads Kafka TLS and SASL settings", () => {
  const config = parseConfig({
    ...ORIGINAL,
    KAFKA_TLS: "yes",
    KAFKA_TLS_VERIFY: "no",
    KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
    KAFKA_SASL_USERNAME: "u",
    KAFKA_SASL_PASSWORD: "p",
    KAFKA_AUTO_OFFSET_RESET: "latest",
    KAFKA_CONSUMER_GROUP_ID: "mine",
  }, REGISTRIES);
  assertEquals(config.kafka.tls, {
    verify: false,
    caFile: undefined,
    certFile: undefined,
    keyFile: undefined,
  });
  assertEquals(config.kafka.sasl, { mechanism: "scram-sha-512", username: "u", password: "p" });
  assertEquals(config.kafka.fromBeginning, false);
  assertEquals(config.kafka.groupId, "mine");
  assertEquals(
    problemsOf({ ...ORIGINAL, KAFKA_TLS: "yes", KAFKA_TLS_CA_FILE: "/nonexistent.pem" }),
    [
      "KAFKA_TLS_CA_FILE",
    ],
  );
  assertEquals(problemsOf({ ...ORIGINAL, KAFKA_BOOTSTRAP_SERVERS: "kafka1" }), [
    "KAFKA_BOOTSTRAP_SERVERS",
  ]);
});

Deno.test("ConfigError masks the values of secret variables", () => {
  const reader = new VarReader({ KAFKA_SASL_PASSWORD: "hunter2" }, allVariables(REGISTRIES));
  reader.problem("KAFKA_SASL_PASSWORD", reader.raw("KAFKA_SASL_PASSWORD"), "is refused");
  const error = new ConfigError(reader.problems);
  assert(!error.message.includes("hunter2"));
  assertMatch(error.message, /"KAFKA_SASL_PASSWORD" is refused, got "\*\*\*"/);
});

Deno.test(".env.example documents every variable", async () => {
  const text = await Deno.readTextFile(new URL("../../.env.example", import.meta.url));
  const documented = new Set([...text.matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
  const missing = allVariables(REGISTRIES).map((v) => v.name).filter((name) =>
    !documented.has(name)
  );
  assertEquals(missing, []);
});

Deno.test("--help lists every variable and the version matches deno.json", async () => {
  const help = helpText(allVariables(REGISTRIES));
  for (const v of allVariables(REGISTRIES)) assert(help.includes(`  ${v.name}`), v.name);
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assertEquals(denoJson.version, VERSION);
  assert(commonSpecs(REGISTRIES).length > 10);
});

Deno.test("parseFlags() reads the flags and refuses unknown ones", () => {
  assertEquals(parseFlags(["--check-config", "--connect", "--env-file", "x.env"]), {
    help: false,
    version: false,
    checkConfig: true,
    connect: true,
    dryRun: false,
    envFile: { path: "x.env", explicit: true },
    configFile: undefined,
    vars: {},
  });
  assertEquals(parseFlags([]).envFile, { path: ".env", explicit: false });
  assertThrows(() => parseFlags(["--frobnicate"]), TypeError);
});

Deno.test("docs/configuration.md holds the reference generated from the variable table", async () => {
  const page = await Deno.readTextFile(CONFIG_PAGE);
  // deno fmt wraps the generated lines; the words and their order are what must match.
  const words = (text: string) => text.split(/\s+/).filter((word) => word !== "");
  const generated = configReference(allVariables(REGISTRIES));
  assert(
    words(generatedPart(page)).join(" ") === words(generated).join(" "),
    "run `deno run -A scripts/config_table.ts --write`",
  );
  const missing = allVariables(REGISTRIES).map((v) => v.name).filter((name) =>
    !page.includes(`- \`${name}\``)
  );
  assertEquals(missing, []);
});

Deno.test("parseConfig() refuses TLS and SASL settings whose switch is off instead of ignoring them", () => {
  assertEquals(problemsOf({ ...ORIGINAL, KAFKA_TLS_VERIFY: "NO" }), ["KAFKA_TLS_VERIFY"]);
  assertEquals(problemsOf({ ...ORIGINAL, KAFKA_SASL_USERNAME: "u", KAFKA_SASL_PASSWORD: "p" }), [
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
  ]);
  const error = configError({ ...ORIGINAL, KAFKA_SASL_PASSWORD: "hunter2" });
  assertMatch(error.message, /"KAFKA_SASL_PASSWORD" is set but KAFKA_SASL_MECHANISM is none/);
  assert(!error.message.includes("hunter2"));
});

Deno.test("parseFlags() turns variable flags into variables, kafka-influxdb style", () => {
  const flags = parseFlags([
    "--kafka_topic",
    "metrics",
    "--kafka_port=9093",
    "--kafka_tls",
    "-c",
    "config.yaml",
    "-s",
    "-vv",
  ], allVariables(REGISTRIES));
  assertEquals(flags.vars, {
    KAFKA_TOPIC: "metrics",
    KAFKA_PORT: "9093",
    KAFKA_TLS: "YES",
    STATISTICS: "YES",
    VERBOSE: "2",
  });
  assertEquals(flags.configFile, "config.yaml");
  assertThrows(
    () => parseFlags(["--kafka_topic"], allVariables(REGISTRIES)),
    TypeError,
    "argument missing",
  );
  assertThrows(() => parseFlags(["--kafka_topics", "x"], allVariables(REGISTRIES)), TypeError);
});

Deno.test("parseConfig() takes kafka-influxdb's KAFKA_HOST, KAFKA_PORT and KAFKA_GROUP", () => {
  const { KAFKA_BOOTSTRAP_SERVERS: _, ...rest } = ORIGINAL;
  const config = parseConfig({
    ...rest,
    KAFKA_HOST: "broker",
    KAFKA_PORT: "9093",
    KAFKA_GROUP: "g",
  }, REGISTRIES);
  assertEquals(config.kafka.brokers, ["broker:9093"]);
  assertEquals(config.kafka.groupId, "g");
  assertEquals(parseConfig({ ...rest, KAFKA_HOST: "::1" }, REGISTRIES).kafka.brokers, [
    "[::1]:9092",
  ]);
  assertEquals(problemsOf({ ...ORIGINAL, KAFKA_HOST: "broker" }), [
    "KAFKA_BOOTSTRAP_SERVERS/KAFKA_HOST",
  ]);
  assertEquals(problemsOf({ ...ORIGINAL, KAFKA_GROUP: "a", KAFKA_CONSUMER_GROUP_ID: "b" }), [
    "KAFKA_CONSUMER_GROUP_ID/KAFKA_GROUP",
  ]);
  assertEquals(problemsOf(rest), ["KAFKA_BOOTSTRAP_SERVERS"]);
});

Deno.test("parseConfig() refuses an unknown ENCODER and one the sink cannot write", () => {
  const error = configError({ ...ORIGINAL, ENCODER: "heapster_json_encoder" });
  assertMatch(error.message, /"ENCODER" must be one of pmacct/);
  assertEquals(
    parseConfig({ ...ORIGINAL, ENCODER: "PMACCT" }, REGISTRIES).decoder.module.name,
    "pmacct",
  );
});

Deno.test("parseConfig() sets debug logging for VERBOSE unless LOG_LEVEL is set", () => {
  assertEquals(parseConfig({ ...ORIGINAL, VERBOSE: "1" }, REGISTRIES).logLevel, "debug");
  assertEquals(
    parseConfig({ ...ORIGINAL, VERBOSE: "2", LOG_LEVEL: "warn" }, REGISTRIES).logLevel,
    "warn",
  );
  assertEquals(parseConfig(ORIGINAL, REGISTRIES).logLevel, "info");
});

Deno.test("readConfigFile() maps nested keys to variables and refuses unknown ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.yaml`;
    await Deno.writeTextFile(
      good,
      "kafka:\n  host: broker\n  reader: kafka_influxdb.reader.confluent\nbuffer_timeout: False\n" +
        "clickhouse:\n  host: ch\n",
    );
    const { vars, ignored } = readConfigFile(good, KNOWN);
    assertEquals([...vars], [["KAFKA_HOST", "broker"], ["CLICKHOUSE_HOST", "ch"]]);
    assertEquals(ignored.length, 2);
    assertMatch(ignored[0]!, /^KAFKA_READER: sluice has one Kafka client/);
    const bad = `${dir}/bad.yaml`;
    await Deno.writeTextFile(bad, "kafka:\n  hots: broker\n");
    assertMatch(
      new ConfigError(readConfigFile(bad, KNOWN).problems).message,
      new RegExp(`"kafka_hots" in ${bad} line 2 is not a setting sluice knows .*kafka_host`),
    );
    assertThrows(() => readConfigFile(`${dir}/missing.yaml`, KNOWN), ConfigError, "cannot be read");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseConfig() gives SINK=influxdb kafka-influxdb's defaults of the common variables", () => {
  const config = parseConfig({ INFLUXDB_HOST: "influx" }, REGISTRIES);
  assertEquals(config.sink.module.name, "influxdb");
  assertEquals(config.kafka.brokers, ["localhost:9092"]);
  assertEquals(config.kafka.topics, ["my_topic"]);
  assertEquals(config.kafka.groupId, "kafka-influxdb");
  assertEquals(config.decoder.module.name, "collectd_graphite");
  const json = parseConfig({
    SINK: "influxdb",
    ENCODER: "kafka_influxdb.encoder.collectd_json_encoder",
    KAFKA_BOOTSTRAP_SERVERS: "k:9092",
    KAFKA_TOPIC: "metrics",
  }, REGISTRIES);
  assertEquals(json.decoder.module.name, "collectd_json");
  assertEquals(json.kafka.brokers, ["k:9092"]);
  assertEquals(json.kafka.topics, ["metrics"]);
});

Deno.test("parseConfig() refuses a decoder whose records the sink cannot write", () => {
  const error = configError({ ...ORIGINAL, ENCODER: "collectd_graphite" });
  assertMatch(
    error.message,
    /"ENCODER" produces points, which SINK=clickhouse cannot write; use SINK=influxdb/,
  );
});

Deno.test("parseConfig() warns about misspelt variables, naming the one meant", () => {
  const config = parseConfig({
    ...ORIGINAL,
    CLICKHOUSE_ORDERBY: "stamp_updated",
    CLICKHOUSE_MAX_SAMPLE_PER_SEND: "5000",
    ELASTICSEARCH_HOSTS: "es:9200",
    METRICS_PORT: "9100",
    DEAD_LETTER_FIEL: "/tmp/x",
    SLUICE_KAFKA_PORT: "19092",
    SLUICE_CLICKHOUSE_HTTP_PORT: "18123",
    BENCH_SLUICE_CLICKHOUSE_COMPRESSION: "NO",
    HOME: "/root",
  }, REGISTRIES);
  assertEquals(config.warnings.map(formatWarning), [
    '"CLICKHOUSE_MAX_SAMPLE_PER_SEND" is not a variable sluice reads and is ignored; ' +
    "did you mean CLICKHOUSE_MAX_SAMPLES_PER_SEND?",
    '"CLICKHOUSE_ORDERBY" is not a variable sluice reads and is ignored; ' +
    "did you mean CLICKHOUSE_ORDER_BY?",
    '"DEAD_LETTER_FIEL" is not a variable sluice reads and is ignored; ' +
    "did you mean DEAD_LETTER_FILE?",
    '"ELASTICSEARCH_HOSTS" is not a variable sluice reads and is ignored; ' +
    "see --help for the variables",
    '"METRICS_PORT" is not a variable sluice reads and is ignored; see --help for the variables',
  ]);
  const described = describeConfig(config).join("\n");
  assertMatch(described, /Warning: "CLICKHOUSE_ORDERBY" .*did you mean CLICKHOUSE_ORDER_BY\?/);
  assertEquals(parseConfig(ORIGINAL, REGISTRIES).warnings, []);
});

Deno.test("parseConfig() names the near miss of a missing required variable once", () => {
  const { KAFKA_BOOTSTRAP_SERVERS: _, ...rest } = ORIGINAL;
  const error = configError({ ...rest, KAFKA_BOOTSTRAP_SERVER: "kafka1:9094" });
  assertEquals(error.problems.map((p) => p.message), [
    "is required and not set (KAFKA_BOOTSTRAP_SERVER is set: " +
    "a misspelling of KAFKA_BOOTSTRAP_SERVERS?)",
  ]);
  assertEquals(error.warnings, []);
});

Deno.test("parseConfig() reports an unknown SINK once, with the sink meant, and that sink's problems", () => {
  const error = configError({
    ...ORIGINAL,
    SINK: "clickhous",
    CLICKHOUSE_DATA_SCHEMA: "bytes:UInt46",
    CLICKHOUSE_ORDERBY: "x",
  });
  assertEquals(error.problems.map((p) => p.name).sort(), ["CLICKHOUSE_DATA_SCHEMA", "SINK"]);
  assertMatch(
    error.message,
    /"SINK" must be one of clickhouse, elastic, influxdb, vm \(did you mean clickhouse\?\), got "clickhous"/,
  );
  assertMatch(error.message, /and 1 warning\n {2}- "CLICKHOUSE_ORDERBY" .*CLICKHOUSE_ORDER_BY/);
  // No sink close to the name: the one configured is read all the same.
  const other = configError({
    ...ORIGINAL,
    SINK: "postgres",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "0",
  });
  assertEquals(other.problems.map((p) => p.name).sort(), [
    "CLICKHOUSE_MAX_SAMPLES_PER_SEND",
    "SINK",
  ]);
  const prototype = configError({ ...ORIGINAL, SINK: "constructor" });
  assertEquals(prototype.problems.map((p) => p.name), ["SINK"]);
});

Deno.test("parseConfig() offers the ENCODER meant by a misspelt one", () => {
  assertMatch(
    configError({ ...ORIGINAL, ENCODER: "pmact" }).message,
    /"ENCODER" must be one of .*; did you mean pmacct\?, got "pmact"/,
  );
});

Deno.test("parseConfig() offline (--dry-run) needs no broker and no sink address", () => {
  const schema = ORIGINAL.CLICKHOUSE_DATA_SCHEMA;
  assertEquals(problemsOf({ CLICKHOUSE_DATA_SCHEMA: schema }).sort(), [
    "CLICKHOUSE_HOST",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
  ]);
  const dry = parseConfig({ CLICKHOUSE_DATA_SCHEMA: schema }, REGISTRIES, { offline: true });
  assertEquals(dry.sink.module.name, "clickhouse");
  assertEquals(dry.kafka.brokers, []);
  const vm = parseConfig({ SINK: "vm", VM_JOB: "j", VM_INSTANCE: "i" }, REGISTRIES, {
    offline: true,
  });
  assertEquals(vm.sink.module.name, "vm");
  assertEquals(
    parseConfig({ SINK: "elastic" }, REGISTRIES, { offline: true }).sink.module.name,
    "elastic",
  );
  // What the rows carry is still required.
  let error: unknown;
  try {
    parseConfig({ SINK: "vm" }, REGISTRIES, { offline: true });
  } catch (e) {
    error = e;
  }
  assert(error instanceof ConfigError);
  assertEquals(error.problems.map((p) => p.name), ["VM_JOB", "VM_INSTANCE"]);
});

Deno.test("parseConfig() refuses a DEAD_LETTER_FILE sluice could not write to", () => {
  assertMatch(
    configError({ ...ORIGINAL, DEAD_LETTER_FILE: "/nonexistent/dir/x" }).message,
    /"DEAD_LETTER_FILE" must be in a directory that exists; there is no directory \/nonexistent\/dir, got "\/nonexistent\/dir\/x"/,
  );
  const dir = Deno.makeTempDirSync();
  try {
    assertMatch(
      configError({ ...ORIGINAL, DEAD_LETTER_FILE: dir }).message,
      /"DEAD_LETTER_FILE" must name a file, not a directory/,
    );
    const config = parseConfig({ ...ORIGINAL, DEAD_LETTER_FILE: `${dir}/dead.jsonl` }, REGISTRIES);
    assertEquals(config.deadLetterFile, `${dir}/dead.jsonl`);
    assertEquals([...Deno.readDirSync(dir)], [], "the check leaves nothing behind");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reports the YAML file's unknown keys with every other problem", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/config.yaml`;
    Deno.writeTextFileSync(path, "influxdb:\n  pasword: secret123\n");
    Deno.writeTextFileSync(`${dir}/empty.env`, "");
    const flags = parseFlags(
      ["-c", path, "--env-file", `${dir}/empty.env`],
      allVariables(REGISTRIES),
    );
    let error: unknown;
    try {
      loadConfig(flags, { SINK: "influxdb", INFLUXDB_PORT: "0" }, REGISTRIES);
    } catch (e) {
      error = e;
    }
    assert(error instanceof ConfigError);
    assertEquals(error.problems.map((p) => p.name), ["influxdb_pasword", "INFLUXDB_PORT"]);
    assert(!error.message.includes("secret123"), error.message);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadConfig() warns about misspelt variables of the env file and of the environment", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const envFile = `${dir}/sluice.env`;
    Deno.writeTextFileSync(
      envFile,
      Object.entries(ORIGINAL).map(([k, v]) => `${k}=${v}`).join("\n") +
        "\nCLICKHOUSE_ORDERBY=stamp_updated\n",
    );
    const flags = parseFlags(["--env-file", envFile], allVariables(REGISTRIES));
    const { config } = loadConfig(flags, { KAFKA_TOPICS: "x" }, REGISTRIES);
    assertEquals(config.warnings.map((w) => w.name), ["CLICKHOUSE_ORDERBY", "KAFKA_TOPICS"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
