import { describeConfig, isSelected, parseConfig } from "../../../lib/config.ts";
import { REGISTRIES } from "../../../sinks/mod.ts";
import { VarReader } from "../../../lib/variables.ts";
import {
  CLICKHOUSE,
  type ClickHouseConfig,
  parseClickHouseConfig,
  resolveServerAddress,
} from "../../../sinks/clickhouse/config.ts";
import { clickhouseSink } from "../../../sinks/clickhouse/mod.ts";
import type { BatchLimits } from "../../../lib/sink.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

function parse(env: Record<string, string>): {
  config: ClickHouseConfig;
  batch: BatchLimits;
  problems: VarReader["problems"];
} {
  const reader = new VarReader(
    { CLICKHOUSE_DATA_SCHEMA: "a:String", ...env },
    CLICKHOUSE.specs,
  );
  const { config, batch } = clickhouseSink.parseConfig(reader);
  return { config, batch, problems: reader.problems };
}

Deno.test("parseClickHouseConfig() applies the original script's defaults", () => {
  const { config, batch, problems } = parse({ CLICKHOUSE_HOST: "127.0.0.1" });
  assertEquals(problems, []);
  assertEquals(batch, { maxRows: 1000, maxBytes: 10485760, maxAgeMs: 10000 });
  assertStrictEquals(config.url, "http://127.0.0.1:8123");
  assertStrictEquals(config.database, "pmacct");
  assertStrictEquals(config.table, "sflowstat");
  assertStrictEquals(config.username, "default");
  assertStrictEquals(config.password, "");
  assertStrictEquals(config.createTable, true);
  assertStrictEquals(config.orderBy, "");
  assertStrictEquals(config.partitionBy, "");
  assertStrictEquals(config.secure, false);
  assertStrictEquals(config.tlsVerify, true);
  assertStrictEquals(config.requestTimeoutMs, 30000);
  assertStrictEquals(config.compression, true);
  assertStrictEquals(config.timestampTemplate, undefined);
});

Deno.test("parseClickHouseConfig() reads batch limits, decimal seconds and a non-default template", () => {
  const { config, batch, problems } = parse({
    CLICKHOUSE_HOST: "ch",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "50",
    CLICKHOUSE_MAX_BYTES_PER_SEND: "4096",
    CLICKHOUSE_MAX_TIME_TO_SEND: "0.5",
    CLICKHOUSE_CREATE_TABLE: "no",
    TIMESTAMP_TEMPLATE: "%d/%m/%Y %H:%M:%S",
  });
  assertEquals(problems, []);
  assertEquals(batch, { maxRows: 50, maxBytes: 4096, maxAgeMs: 500 });
  assertStrictEquals(config.createTable, false);
  assertStrictEquals(config.timestampTemplate, "%d/%m/%Y %H:%M:%S");
});

Deno.test("parseClickHouseConfig() reports every invalid value at once", () => {
  const { problems } = parse({
    CLICKHOUSE_DATA_SCHEMA: "",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "0",
    CLICKHOUSE_MAX_TIME_TO_SEND: "0",
    CLICKHOUSE_REQUEST_TIMEOUT: "-1",
    CLICKHOUSE_SECURE: "maybe",
  });
  assertEquals(problems, [
    { name: "CLICKHOUSE_HOST", value: undefined, message: "is required and not set" },
    {
      name: "CLICKHOUSE_SECURE",
      value: "maybe",
      message: "must be YES or NO (also true/false, 1/0, on/off)",
    },
    { name: "CLICKHOUSE_DATA_SCHEMA", value: undefined, message: "is required and not set" },
    { name: "CLICKHOUSE_MAX_SAMPLES_PER_SEND", value: "0", message: "must be an integer >= 1" },
    { name: "CLICKHOUSE_MAX_TIME_TO_SEND", value: "0", message: "must be a number of seconds > 0" },
    { name: "CLICKHOUSE_REQUEST_TIMEOUT", value: "-1", message: "must be a number of seconds > 0" },
  ]);
});

Deno.test("resolveServerAddress() reads host, host:port, IPv6 and URLs", () => {
  const url = (host: string, port?: number, secure?: boolean) => {
    const r = resolveServerAddress(host, port, secure);
    return r.ok ? `${r.address.url}${r.address.pathname}` : `${r.name}: ${r.message}`;
  };
  assertStrictEquals(url("ch.example"), "http://ch.example:8123");
  assertStrictEquals(url("ch.example", 9123), "http://ch.example:9123");
  assertStrictEquals(url("ch.example", undefined, true), "https://ch.example:8443");
  assertStrictEquals(url("10.0.0.5:18123"), "http://10.0.0.5:18123");
  assertStrictEquals(url("::1"), "http://[::1]:8123");
  assertStrictEquals(url("[2001:db8::1]:8124"), "http://[2001:db8::1]:8124");
  assertStrictEquals(url("http://127.0.0.1:18123"), "http://127.0.0.1:18123");
  assertStrictEquals(url("https://ch.example"), "https://ch.example:8443");
  assertStrictEquals(
    url("https://proxy.example/clickhouse/"),
    "https://proxy.example:8443/clickhouse",
  );
  assertStrictEquals(
    url("ch.example:1", 2),
    "CLICKHOUSE_HOST/CLICKHOUSE_PORT: must agree: the host has port 1 but CLICKHOUSE_PORT is 2",
  );
  assertStrictEquals(
    url("http://ch.example", undefined, true),
    "CLICKHOUSE_HOST/CLICKHOUSE_SECURE: must agree: the URL uses http but CLICKHOUSE_SECURE is YES",
  );
  assertStrictEquals(
    url("http://u:p@ch.example"),
    "CLICKHOUSE_HOST: must not contain credentials; set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD",
  );
  assertStrictEquals(
    url("tcp://ch.example"),
    "CLICKHOUSE_HOST: must use http:// or https:// when it is a URL",
  );
  assertStrictEquals(
    url("ch example"),
    "CLICKHOUSE_HOST: must be a host name or IP, optionally with :port, or an http(s):// URL",
  );
});

Deno.test("parseClickHouseConfig() reports a CA file that is missing or given without TLS", () => {
  assertEquals(
    parse({ CLICKHOUSE_HOST: "ch", CLICKHOUSE_CA_FILE: "/nonexistent/ca.pem" }).problems,
    [{
      name: "CLICKHOUSE_CA_FILE",
      value: "/nonexistent/ca.pem",
      message: "is only used with TLS: set CLICKHOUSE_SECURE=YES or an https:// URL",
    }],
  );
  const [problem] =
    parse({ CLICKHOUSE_HOST: "https://ch", CLICKHOUSE_CA_FILE: "/nonexistent/ca.pem" }).problems;
  assertStrictEquals(problem?.name, "CLICKHOUSE_CA_FILE");
  assertMatch(problem?.message ?? "", /^must be a readable file \(/);
});

Deno.test("the ClickHouse target and the --check-config summary show the table, the password masked", () => {
  const config = parseConfig({
    KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9092",
    KAFKA_TOPIC: "t",
    CLICKHOUSE_HOST: "127.0.0.1",
    CLICKHOUSE_PASSWORD: "hunter2",
    CLICKHOUSE_DATA_SCHEMA: "ip_src:IPv4,bytes:UInt64",
  }, REGISTRIES);
  const lines = describeConfig(config);
  assertStrictEquals(
    clickhouseSink.target(config.sink.config as ClickHouseConfig),
    "http://127.0.0.1:8123 table pmacct.sflowstat",
  );
  assert(lines.includes("  CLICKHOUSE_PASSWORD=***"), lines.join("\n"));
  assert(lines.includes("  CLICKHOUSE_DATA_SCHEMA=ip_src:IPv4,bytes:UInt64"), lines.join("\n"));
  assert(!lines.join("\n").includes("hunter2"));
});

Deno.test("clickhouseSink declares its variables, group and consumer group", () => {
  assertStrictEquals(clickhouseSink.name, "clickhouse");
  assertStrictEquals(clickhouseSink.consumerGroupDefault, "kafka2clickhouse");
  for (const spec of clickhouseSink.variables) {
    assertStrictEquals(spec.group, "ClickHouse", spec.name);
    assert(spec.doc.length > 10 && !spec.doc.includes("\n"), spec.name);
    if (spec.required) assert(spec.example !== undefined, spec.name);
  }
  assertStrictEquals(
    clickhouseSink.variables.find((v) => v.name === "CLICKHOUSE_PASSWORD")?.secret,
    true,
  );
  assertStrictEquals(isSelected(clickhouseSink, { CLICKHOUSE_HOST: "ch" }), true);
  assertStrictEquals(isSelected(clickhouseSink, { CLICKHOUSE_DATA_SCHEMA: "a:String" }), true);
  assertStrictEquals(
    isSelected(clickhouseSink, { CLICKHOUSE_HOST: " ", KAFKA_TOPIC: "x" }),
    false,
  );
});

Deno.test("parseClickHouseConfig() reports schema problems through the reader, naming CLICKHOUSE_DATA_SCHEMA", () => {
  const reader = new VarReader(
    {
      CLICKHOUSE_HOST: "127.0.0.1",
      CLICKHOUSE_DATA_SCHEMA: "bytes,amount:Decimal(100,2),ok:String",
    },
    CLICKHOUSE.specs,
  );
  const { config } = parseClickHouseConfig(reader);
  assertEquals(config.columns.map((c) => c.name), ["ok"]);
  assertEquals(reader.problems, [
    {
      name: "CLICKHOUSE_DATA_SCHEMA",
      value: "bytes",
      message: `needs a type for column "bytes" (field:Type)`,
    },
    {
      name: "CLICKHOUSE_DATA_SCHEMA",
      value: "amount:Decimal(100,2)",
      message:
        `has an invalid type for column "amount": Decimal precision P must be between 1 and 76, got 100`,
    },
  ]);
});

Deno.test("parseClickHouseConfig() refuses an unsupported TIMESTAMP_TEMPLATE", () => {
  const reader = new VarReader(
    { CLICKHOUSE_HOST: "h", CLICKHOUSE_DATA_SCHEMA: "a:String", TIMESTAMP_TEMPLATE: "%a %b %d" },
    CLICKHOUSE.specs,
  );
  parseClickHouseConfig(reader);
  assertEquals(reader.problems, [{
    name: "TIMESTAMP_TEMPLATE",
    value: "%a %b %d",
    message: "must use only %Y %m %d %H %M %S %f %z %% (each once) and literals",
  }]);
});

Deno.test("parseClickHouseConfig() refuses ORDER BY and PARTITION BY values that would reshape the DDL", () => {
  const { config, problems } = parse({
    CLICKHOUSE_HOST: "ch",
    CLICKHOUSE_ORDER_BY: "(((",
    CLICKHOUSE_PARTITION_BY: "toYYYYMM(s)) SETTINGS index_granularity = 1 --",
  });
  assertEquals(problems.map((p) => p.name), ["CLICKHOUSE_ORDER_BY", "CLICKHOUSE_PARTITION_BY"]);
  assertMatch(problems[0]!.message, /must close every bracket/);
  assertMatch(problems[1]!.message, /"\)" at 12 closes nothing/);
  assertEquals([config.orderBy, config.partitionBy], ["", ""]);
  const good = parse({
    CLICKHOUSE_HOST: "ch",
    CLICKHOUSE_ORDER_BY: "stamp_updated, tag",
    CLICKHOUSE_PARTITION_BY: "toYYYYMMDD(stamp_updated)",
  });
  assertEquals(good.problems, []);
  assertEquals(
    [good.config.orderBy, good.config.partitionBy],
    ["stamp_updated, tag", "toYYYYMMDD(stamp_updated)"],
  );
});

Deno.test("parseClickHouseConfig() reads a list of servers and the cluster, with defaults from the table", () => {
  const { config, problems } = parse({
    CLICKHOUSE_HOST: "ch1:8123, http://ch2:8124,ch3",
    CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64",
    CLICKHOUSE_DB: "pm",
    CLICKHOUSE_TABLE: "flows",
    CLICKHOUSE_CLUSTER: "sluice",
  });
  assertEquals(problems, []);
  assertStrictEquals(config.url, "http://ch1:8123");
  assertEquals(config.urls, ["http://ch1:8123", "http://ch2:8124", "http://ch3:8123"]);
  assertEquals(config.cluster, {
    name: "sluice",
    localTable: "flows_local",
    replicaPath: "/clickhouse/tables/{shard}/pm/flows_local",
    replicaName: "{replica}",
    shardingKey: "cityHash64(`ip_src`, `bytes`)",
    direct: false,
  });
  // Direct writes: the Distributed table (for reads) spreads rows at random, as sluice does.
  const direct = parse({
    CLICKHOUSE_HOST: "ch1,ch2",
    CLICKHOUSE_CLUSTER: "sluice",
    CLICKHOUSE_WRITE_PATH: "DIRECT",
  });
  assertEquals(direct.problems, []);
  assertEquals(direct.config.cluster?.direct, true);
  assertStrictEquals(direct.config.cluster?.shardingKey, "rand()");
  // One server: no cluster.
  assertStrictEquals(parse({ CLICKHOUSE_HOST: "ch1" }).config.cluster, undefined);
  assertEquals(parse({ CLICKHOUSE_HOST: "ch1" }).config.urls, ["http://ch1:8123"]);
});

Deno.test("parseClickHouseConfig() refuses a sharding key of one's own with direct writes, and an unknown write path", () => {
  const keyed = parse({
    CLICKHOUSE_HOST: "ch1",
    CLICKHOUSE_CLUSTER: "sluice",
    CLICKHOUSE_WRITE_PATH: "direct",
    CLICKHOUSE_SHARDING_KEY: "cityHash64(ip_src)",
  }).problems;
  assertEquals(keyed.map((p) => p.name), ["CLICKHOUSE_SHARDING_KEY"]);
  assertMatch(keyed[0]!.message, /empty or rand\(\) with CLICKHOUSE_WRITE_PATH=direct/);
  const random = parse({
    CLICKHOUSE_HOST: "ch1",
    CLICKHOUSE_CLUSTER: "sluice",
    CLICKHOUSE_WRITE_PATH: "direct",
    CLICKHOUSE_SHARDING_KEY: "rand()",
  });
  assertEquals(random.problems, []);
  const unknown = parse({
    CLICKHOUSE_HOST: "ch1",
    CLICKHOUSE_CLUSTER: "sluice",
    CLICKHOUSE_WRITE_PATH: "local",
  }).problems;
  assertEquals(unknown.map((p) => p.name), ["CLICKHOUSE_WRITE_PATH"]);
});

Deno.test("parseClickHouseConfig() refuses mixed server lists, a sharding key that could reshape the DDL and a local table named as the table", () => {
  const mixed = parse({ CLICKHOUSE_HOST: "https://ch1,http://ch2" }).problems;
  assertEquals(mixed.map((p) => p.name), ["CLICKHOUSE_HOST"]);
  assertMatch(mixed[0]!.message, /same scheme and path/);
  const key = parse({
    CLICKHOUSE_HOST: "ch1",
    CLICKHOUSE_CLUSTER: "c",
    CLICKHOUSE_SHARDING_KEY: "rand(); DROP TABLE x",
  }).problems;
  assertEquals(key.map((p) => p.name), ["CLICKHOUSE_SHARDING_KEY"]);
  const same = parse({
    CLICKHOUSE_HOST: "ch1",
    CLICKHOUSE_CLUSTER: "c",
    CLICKHOUSE_TABLE: "t",
    CLICKHOUSE_LOCAL_TABLE: "t",
  }).problems;
  assertEquals(same.map((p) => p.name), ["CLICKHOUSE_LOCAL_TABLE"]);
});
