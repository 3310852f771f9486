/**
 * The InfluxDB sink's variables: kafka-influxdb's defaults, the URLs built
 * from them, the choice between API 1 and 2, and every problem reported at once.
 *
 * @module
 */

import { describeConfig, isSelected, parseConfig } from "../../../lib/config.ts";
import { formatProblem, VarReader } from "../../../lib/variables.ts";
import type { BatchLimits } from "../../../lib/sink.ts";
import {
  DEFAULT_AVOID_TAGS,
  INFLUXDB,
  type InfluxDBConfig,
  parsePrecision,
} from "../../../sinks/influxdb/config.ts";
import { influxDBSink } from "../../../sinks/influxdb/mod.ts";
import { REGISTRIES, SINKS } from "../../../sinks/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

function parse(env: Record<string, string>): {
  config: InfluxDBConfig;
  batch: BatchLimits;
  problems: string[];
} {
  const reader = new VarReader(env, INFLUXDB.specs);
  const { config, batch } = influxDBSink.parseConfig(reader);
  return { config, batch, problems: reader.problems.map(formatProblem) };
}

function problems(env: Record<string, string>): string[] {
  return parse(env).problems;
}

Deno.test("parseInfluxDBConfig() applies kafka-influxdb's defaults", () => {
  const { config, batch, problems } = parse({});
  assertEquals(problems, []);
  // kafka-influxdb: buffer_size 1000 (points here), buffer_timeout False (10 s here).
  assertEquals(batch, { maxRows: 1000, maxBytes: 10_000_000, maxAgeMs: 10_000 });
  assertEquals(config, {
    apiVersion: 1,
    // host localhost, port 8086, use_ssl false
    url: "http://localhost:8086",
    // dbname metrics, time_precision s; retention_policy autogen is left out on purpose
    writeUrl: "http://localhost:8086/write?db=metrics&precision=s",
    pingUrl: "http://localhost:8086/ping",
    queryUrl: "http://localhost:8086/query",
    // verify_ssl false
    tlsVerify: false,
    caFile: undefined,
    // user root, password root
    auth: { kind: "basic", username: "root", password: "root" },
    database: "metrics",
    retentionPolicy: undefined,
    org: "",
    bucket: "",
    precision: "s",
    createDatabase: true,
    // timeout 5
    requestTimeoutMs: 5000,
    gzip: true,
    flows: {
      measurement: "pmacct",
      fields: ["bytes", "packets", "flows"],
      tags: ["*"],
      avoidTags: DEFAULT_AVOID_TAGS.split(","),
      timestampField: "stamp_updated",
      fieldTypes: {},
    },
  });
});

Deno.test("influxDBSink takes points, lines and flows, with kafka-influxdb's group, encoder and topic", () => {
  assertStrictEquals(influxDBSink.name, "influxdb");
  assertStrictEquals(SINKS.influxdb, influxDBSink);
  assertStrictEquals(influxDBSink.consumerGroupDefault, "kafka-influxdb");
  assertEquals(influxDBSink.inputs, ["points", "lines", "flows"]);
  assertEquals(influxDBSink.commonDefaults, {
    ENCODER: "collectd_graphite",
    KAFKA_TOPIC: "my_topic",
    KAFKA_HOST: "localhost",
  });
  const names = INFLUXDB.specs.map((v) => v.name);
  for (
    const name of [
      "INFLUXDB_HOST",
      "INFLUXDB_PORT",
      "INFLUXDB_USER",
      "INFLUXDB_PASSWORD",
      "INFLUXDB_DBNAME",
      "INFLUXDB_USE_SSL",
      "INFLUXDB_VERIFY_SSL",
      "INFLUXDB_TIMEOUT",
      "INFLUXDB_USE_UDP",
      "INFLUXDB_RETENTION_POLICY",
      "INFLUXDB_TIME_PRECISION",
      "BUFFER_SIZE",
      "BUFFER_TIMEOUT",
    ]
  ) assert(names.includes(name), `kafka-influxdb's ${name} is read`);
  assertEquals(
    INFLUXDB.specs.filter((v) => v.secret).map((v) => v.name),
    ["INFLUXDB_PASSWORD", "INFLUXDB_TOKEN"],
  );
  assert(INFLUXDB.specs.every((v) => v.group === "InfluxDB" && v.doc.length > 0));
});

Deno.test("isSelected() picks the InfluxDB sink when any INFLUXDB_ variable is set", () => {
  assert(isSelected(influxDBSink, { INFLUXDB_HOST: "influx" }));
  assert(isSelected(influxDBSink, { INFLUXDB_URL: "http://influx:8086" }));
  assert(!isSelected(influxDBSink, { INFLUXDB_HOST: " " }));
  assert(!isSelected(influxDBSink, { BUFFER_SIZE: "10", VM_URL: "http://vm:8428" }));
});

Deno.test("parseInfluxDBConfig() builds the write URL from host, port, TLS, database, policy and precision", () => {
  const cases: Array<[Record<string, string>, string]> = [
    [
      { INFLUXDB_HOST: "influx", INFLUXDB_PORT: "9086", INFLUXDB_USE_SSL: "YES" },
      "https://influx:9086/write?db=metrics&precision=s",
    ],
    [{ INFLUXDB_HOST: "::1" }, "http://[::1]:8086/write?db=metrics&precision=s"],
    [{ INFLUXDB_HOST: "[::1]" }, "http://[::1]:8086/write?db=metrics&precision=s"],
    [
      { INFLUXDB_URL: "https://proxy.example/influx/", INFLUXDB_DBNAME: "my db" },
      "https://proxy.example/influx/write?db=my%20db&precision=s",
    ],
    [
      { INFLUXDB_RETENTION_POLICY: "two weeks", INFLUXDB_TIME_PRECISION: "ms" },
      "http://localhost:8086/write?db=metrics&rp=two%20weeks&precision=ms",
    ],
    // 1.6.7 reads precision=us and ns as nanoseconds silently: u and n are sent.
    [{ INFLUXDB_TIME_PRECISION: "us" }, "http://localhost:8086/write?db=metrics&precision=u"],
    [{ INFLUXDB_TIME_PRECISION: "u" }, "http://localhost:8086/write?db=metrics&precision=u"],
    [{ INFLUXDB_TIME_PRECISION: "ns" }, "http://localhost:8086/write?db=metrics&precision=n"],
    [{ INFLUXDB_TIME_PRECISION: "n" }, "http://localhost:8086/write?db=metrics&precision=n"],
    [
      { INFLUXDB_TOKEN: "t", INFLUXDB_ORG: "my org", INFLUXDB_BUCKET: "flows/raw" },
      "http://localhost:8086/api/v2/write?org=my%20org&bucket=flows%2Fraw&precision=s",
    ],
    [
      { INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b", INFLUXDB_TIME_PRECISION: "n" },
      "http://localhost:8086/api/v2/write?bucket=b&precision=ns",
    ],
  ];
  for (const [env, url] of cases) {
    const { config, problems } = parse(env);
    assertEquals(problems, [], JSON.stringify(env));
    assertStrictEquals(config.writeUrl, url, JSON.stringify(env));
  }
});

Deno.test("parseInfluxDBConfig() picks API 2 when a token, org or bucket is set, else API 1", () => {
  const version = (env: Record<string, string>) => parse(env).config.apiVersion;
  assertStrictEquals(version({}), 1);
  assertStrictEquals(version({ INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b" }), 2);
  assertStrictEquals(version({ INFLUXDB_ORG: "o" }), 2);
  assertStrictEquals(version({ INFLUXDB_BUCKET: "b" }), 2);
  assertStrictEquals(
    version({ INFLUXDB_API_VERSION: "2", INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b" }),
    2,
  );
  assertStrictEquals(version({ INFLUXDB_API_VERSION: "AUTO" }), 1);

  const { config, problems } = parse({ INFLUXDB_TOKEN: "s3cret", INFLUXDB_BUCKET: "b" });
  assertEquals(problems, []);
  assertEquals(config.auth, { kind: "token", token: "s3cret" });
  assertStrictEquals(config.createDatabase, false, "API 2 creates nothing");
});

Deno.test("parseInfluxDBConfig() reports every problem at once, with the value", () => {
  const cases: Array<[Record<string, string>, string[]]> = [
    [{ INFLUXDB_USE_UDP: "YES" }, [
      '"INFLUXDB_USE_UDP" is not supported: UDP has no acknowledgement, so sluice could not ' +
      'commit offsets safely; use HTTP, got "YES"',
    ]],
    [{ INFLUXDB_URL: "ftp://influx" }, [
      '"INFLUXDB_URL" must be an http:// or https:// URL, got "ftp://influx"',
    ]],
    [{ INFLUXDB_URL: "http://admin:pw@influx:8086" }, [
      '"INFLUXDB_URL" must not contain credentials; set INFLUXDB_USER/INFLUXDB_PASSWORD or ' +
      'INFLUXDB_TOKEN, got "http://admin:***@influx:8086"',
    ]],
    [{ INFLUXDB_URL: "http://influx:8086/?db=x" }, [
      '"INFLUXDB_URL" must not contain a query or fragment, got "http://influx:8086/?db=x"',
    ]],
    [{ INFLUXDB_URL: "http://influx:8086", INFLUXDB_HOST: "other", INFLUXDB_USE_SSL: "YES" }, [
      '"INFLUXDB_URL/INFLUXDB_HOST/INFLUXDB_USE_SSL" are exclusive: INFLUXDB_URL names the ' +
      "host, port and scheme; set one or the other",
    ]],
    [{ INFLUXDB_HOST: "http://influx" }, [
      '"INFLUXDB_HOST" must be a host name or IP address; give a URL in INFLUXDB_URL, ' +
      'got "http://influx"',
    ]],
    [{ INFLUXDB_PORT: "70000" }, [
      '"INFLUXDB_PORT" must be an integer between 1 and 65535, got "70000"',
    ]],
    [{ INFLUXDB_TIME_PRECISION: "m" }, [
      '"INFLUXDB_TIME_PRECISION" must be s, ms, us or ns: minutes and hours put every point ' +
      "of a series within one minute or hour at the same time, where they overwrite each " +
      'other (and InfluxDB 2 does not take them), got "m"',
    ]],
    [{ INFLUXDB_TIME_PRECISION: "seconds" }, [
      '"INFLUXDB_TIME_PRECISION" must be s, ms, us or ns (or u, n), got "seconds"',
    ]],
    [{ INFLUXDB_TIMEOUT: "0" }, ['"INFLUXDB_TIMEOUT" must be a number of seconds > 0, got "0"']],
    [{ BUFFER_SIZE: "0", BUFFER_TIMEOUT: "abc", INFLUXDB_MAX_BATCH_BYTES: "-1" }, [
      '"BUFFER_SIZE" must be an integer >= 1, got "0"',
      '"BUFFER_TIMEOUT" must be a number, got "abc"',
      '"INFLUXDB_MAX_BATCH_BYTES" must be an integer >= 1, got "-1"',
    ]],
    [{ INFLUXDB_DBNAME: "a/b" }, [
      '"INFLUXDB_DBNAME" must not be . or .. or contain /, \\ or control characters ' +
      '(InfluxDB: invalid name), got "a/b"',
    ]],
    [{ INFLUXDB_RETENTION_POLICY: ".." }, [
      '"INFLUXDB_RETENTION_POLICY" must not be . or .. or contain /, \\ or control characters ' +
      '(InfluxDB: invalid name), got ".."',
    ]],
    [{ INFLUXDB_API_VERSION: "1", INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b" }, [
      '"INFLUXDB_TOKEN" is for API version 2, but INFLUXDB_API_VERSION is 1; set it to 2 or ' +
      'auto, or unset this, got "***"',
      '"INFLUXDB_BUCKET" is for API version 2, but INFLUXDB_API_VERSION is 1; set it to 2 or ' +
      'auto, or unset this, got "b"',
    ]],
    [{ INFLUXDB_API_VERSION: "2" }, [
      '"INFLUXDB_BUCKET" is required with API version 2',
      '"INFLUXDB_TOKEN" is required with API version 2',
    ]],
    [{ INFLUXDB_ORG: "o" }, [
      '"INFLUXDB_BUCKET" is required with API version 2',
      '"INFLUXDB_TOKEN" is required with API version 2',
    ]],
    [{
      INFLUXDB_TOKEN: "t",
      INFLUXDB_BUCKET: "b",
      INFLUXDB_USER: "root",
      INFLUXDB_PASSWORD: "pw",
      INFLUXDB_DBNAME: "metrics",
      INFLUXDB_CREATE_DATABASE: "YES",
    }, [
      '"INFLUXDB_USER" is for API version 1; API version 2 authenticates with INFLUXDB_TOKEN ' +
      'only, got "root"',
      '"INFLUXDB_PASSWORD" is for API version 1; API version 2 authenticates with ' +
      'INFLUXDB_TOKEN only, got "***"',
      '"INFLUXDB_DBNAME" is for API version 1; with API version 2 name the bucket in ' +
      'INFLUXDB_BUCKET, got "metrics"',
      '"INFLUXDB_CREATE_DATABASE" creates 1.x databases only; with API version 2 create the ' +
      'bucket beforehand, got "YES"',
    ]],
    [{ INFLUXDB_API_VERSION: "3" }, ['"INFLUXDB_API_VERSION" must be one of auto, 1, 2, got "3"']],
    [{ INFLUXDB_CA_FILE: "/nonexistent.pem" }, [
      '"INFLUXDB_CA_FILE" is only used with TLS: give an https:// INFLUXDB_URL or ' +
      'INFLUXDB_USE_SSL=YES, got "/nonexistent.pem"',
    ]],
    [{ INFLUXDB_USE_SSL: "YES", INFLUXDB_CA_FILE: "/etc/hostname" }, [
      '"INFLUXDB_CA_FILE" is set but INFLUXDB_VERIFY_SSL is NO; set INFLUXDB_VERIFY_SSL=YES, ' +
      'got "/etc/hostname"',
      '"INFLUXDB_CA_FILE" must be a PEM file with at least one certificate, got "/etc/hostname"',
    ]],
    [{ INFLUXDB_MEASUREMENT: "#flows", INFLUXDB_FIELDS: "bytes,time,bytes,pack*" }, [
      '"INFLUXDB_MEASUREMENT" a measurement must not begin with # (InfluxDB reads the line ' +
      'as a comment and drops it), got "#flows"',
      '"INFLUXDB_FIELDS" a field key must not be "time" (InfluxDB refuses it), got "time"',
      '"INFLUXDB_FIELDS" must name fields, not patterns, got "pack*"',
      '"INFLUXDB_FIELDS" must not name a field twice, got "bytes"',
    ]],
    [{ INFLUXDB_FIELDS: " , ", INFLUXDB_TAGS: "," }, [
      '"INFLUXDB_FIELDS" must name a field, got ","',
      '"INFLUXDB_TAGS" must name a field or be *, got ","',
    ]],
    [{ INFLUXDB_TIMESTAMP_FIELD: "bytes" }, [
      '"INFLUXDB_TIMESTAMP_FIELD" must not be a field too, got "bytes"',
    ]],
    [{ INFLUXDB_FIELD_TYPES: "bytes:unsigned,rate:float,packets:int,flows,bytes:float" }, [
      '"INFLUXDB_FIELD_TYPES" must name a field of INFLUXDB_FIELDS, got "rate:float"',
      '"INFLUXDB_FIELD_TYPES" must list field:type entries, type one of integer, unsigned, ' +
      'float, string, boolean, got "packets:int"',
      '"INFLUXDB_FIELD_TYPES" must list field:type entries, type one of integer, unsigned, ' +
      'float, string, boolean, got "flows"',
      '"INFLUXDB_FIELD_TYPES" must not name a field twice, got "bytes:float"',
    ]],
    [{ INFLUXDB_TAGS: "ip_*,*_as,time", INFLUXDB_AVOID_TAGS: "a*b" }, [
      '"INFLUXDB_TAGS" may use * only at the end of a name (a prefix), got "*_as"',
      '"INFLUXDB_AVOID_TAGS" may use * only at the end of a name (a prefix), got "a*b"',
      '"INFLUXDB_TAGS" must not name "time" (InfluxDB refuses it as a tag key), got "time"',
    ]],
  ];
  for (const [env, expected] of cases) assertEquals(problems(env), expected, JSON.stringify(env));
});

Deno.test("parseInfluxDBConfig() reads a CA file only with TLS and verification on", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/ca.pem`;
    await Deno.writeTextFile(good, "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n");
    const bad = `${dir}/not.pem`;
    await Deno.writeTextFile(bad, "hello");
    const tls = { INFLUXDB_URL: "https://influx:8086", INFLUXDB_VERIFY_SSL: "YES" };
    assertEquals(problems({ ...tls, INFLUXDB_CA_FILE: good }), []);
    assertStrictEquals(parse({ ...tls, INFLUXDB_CA_FILE: good }).config.caFile, good);
    assertEquals(problems({ ...tls, INFLUXDB_CA_FILE: bad }), [
      `"INFLUXDB_CA_FILE" must be a PEM file with at least one certificate, got "${bad}"`,
    ]);
    const [missing] = problems({ ...tls, INFLUXDB_CA_FILE: `${dir}/none.pem` });
    assert(missing?.startsWith('"INFLUXDB_CA_FILE" must be a readable file ('), missing);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parsePrecision() takes 1.x's u and n and refuses minutes and hours", () => {
  assertEquals(parsePrecision("u"), { ok: true, precision: "us" });
  assertEquals(parsePrecision("n"), { ok: true, precision: "ns" });
  assertEquals(parsePrecision("ms"), { ok: true, precision: "ms" });
  assertStrictEquals(parsePrecision("h").ok, false);
});

Deno.test("describeConfig() shows the InfluxDB write URL and masks the password and the token", () => {
  const v1 = describeConfig(
    parseConfig({ INFLUXDB_PASSWORD: "hunter2", INFLUXDB_URL: "https://influx:8086" }, REGISTRIES),
  ).join("\n");
  assertMatch(v1, /^Sink influxdb \(.*\): https:\/\/influx:8086\/write\?db=metrics&precision=s$/m);
  assertMatch(v1, /^ {2}INFLUXDB_PASSWORD=\*\*\*$/m);
  assertMatch(v1, /^ {2}INFLUXDB_VERIFY_SSL=NO {2}# default$/m);
  assertMatch(v1, /^ {2}INFLUXDB_CREATE_DATABASE=YES {2}# default$/m);
  assert(v1.includes(`\n  INFLUXDB_AVOID_TAGS=${DEFAULT_AVOID_TAGS}  # default\n`), v1);
  const v2 = describeConfig(
    parseConfig(
      { INFLUXDB_TOKEN: "s3cret-token", INFLUXDB_BUCKET: "b", INFLUXDB_GZIP: "NO" },
      REGISTRIES,
    ),
  ).join("\n");
  assertMatch(
    v2,
    /^Sink influxdb \(.*\): http:\/\/localhost:8086\/api\/v2\/write\?bucket=b&precision=s$/m,
  );
  assertMatch(v2, /^ {2}INFLUXDB_TOKEN=\*\*\*$/m);
  assertMatch(v2, /^ {2}INFLUXDB_GZIP=NO$/m);
  assert(![v1, v2].some((text) => text.includes("hunter2") || text.includes("s3cret")));
});
