/**
 * The VictoriaMetrics sink's variables: the defaults of pmacct-kafka-vm, the
 * fixes (one slash, verification honoured) and every problem reported at once.
 *
 * @module
 */

import { allVariables, describeConfig, isSelected, parseConfig } from "../../../lib/config.ts";
import { ConfigError, VarReader } from "../../../lib/variables.ts";
import type { BatchLimits } from "../../../lib/sink.ts";
import {
  DEFAULT_AVOID_LABELS,
  joinUrl,
  VICTORIAMETRICS,
  type VictoriaMetricsConfig,
} from "../../../sinks/victoriametrics/config.ts";
import { victoriaMetricsSink } from "../../../sinks/victoriametrics/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";
import { REGISTRIES } from "../../../sinks/mod.ts";

const REQUIRED = { VM_URL: "http://127.0.0.1:8428", VM_JOB: "pmacct", VM_INSTANCE: "nfacctd-1" };

function parse(env: Record<string, string>): {
  config: VictoriaMetricsConfig;
  batch: BatchLimits;
  problems: VarReader["problems"];
} {
  const reader = new VarReader(env, VICTORIAMETRICS.specs);
  const { config, batch } = victoriaMetricsSink.parseConfig(reader);
  return { config, batch, problems: reader.problems };
}

Deno.test("parseVictoriaMetricsConfig() applies the original script's defaults", () => {
  const { config, batch, problems } = parse(REQUIRED);
  assertEquals(problems, []);
  assertEquals(batch, { maxRows: 1000, maxBytes: 10485760, maxAgeMs: 10000 });
  assertEquals(config, {
    url: "http://127.0.0.1:8428",
    importUrl: "http://127.0.0.1:8428/api/v1/import",
    healthUrl: "http://127.0.0.1:8428/health",
    tlsVerify: true,
    caFile: undefined,
    job: "pmacct",
    instance: "nfacctd-1",
    metricNames: ["bytes", "packets"],
    avoidLabels: DEFAULT_AVOID_LABELS.split(","),
    labels: undefined,
    timestampField: "stamp_updated",
    maxAgeMs: 31 * 86400 * 1000,
    maxFutureMs: 600_000,
    maxLabels: 30,
    maxLabelValueBytes: 16384,
    requestTimeoutMs: 30_000,
    compression: true,
    commitDelayMs: 15_000,
    auth: { kind: "none" },
  });
  assertStrictEquals(victoriaMetricsSink.consumerGroupDefault, "kafka2vm");
  assertStrictEquals(victoriaMetricsSink.name, "vm");
});

Deno.test("the default VM_AVOID_LABELS keeps the original's fields and the per-purge ones out", () => {
  const avoided = DEFAULT_AVOID_LABELS.split(",");
  for (const field of ["bytes", "packets", "stamp_updated"]) assert(avoided.includes(field), field);
  for (const field of ["stamp_inserted", "writer_id", "event_type", "timestamp_*"]) {
    assert(avoided.includes(field), field);
  }
});

Deno.test("parseVictoriaMetricsConfig() joins VM_URL and VM_IMPORT_PATH with exactly one slash", () => {
  const cases: Array<[string, string, string]> = [
    ["http://vm:8428", "/api/v1/import", "http://vm:8428/api/v1/import"],
    ["http://vm:8428/", "/api/v1/import", "http://vm:8428/api/v1/import"],
    ["http://vm:8428//", "api/v1/import", "http://vm:8428/api/v1/import"],
    ["http://vm:8428", "//api/v1/import", "http://vm:8428/api/v1/import"],
    [
      "https://vmauth.example:8427/tenant-a/",
      "/insert/0/prometheus/api/v1/import",
      "https://vmauth.example:8427/tenant-a/insert/0/prometheus/api/v1/import",
    ],
    [
      "http://vm:8428",
      "/api/v1/import?extra_label=dc=fra",
      "http://vm:8428/api/v1/import?extra_label=dc=fra",
    ],
  ];
  for (const [url, path, expected] of cases) {
    const { config, problems } = parse({ ...REQUIRED, VM_URL: url, VM_IMPORT_PATH: path });
    assertEquals(problems, [], `${url} + ${path}`);
    assertStrictEquals(config.importUrl, expected);
  }
  assertStrictEquals(joinUrl("http://vm:8428/", "/health"), "http://vm:8428/health");
  assertStrictEquals(
    parse({ ...REQUIRED, VM_URL: "http://vm:8428/p/" }).config.healthUrl,
    "http://vm:8428/p/health",
  );
});

Deno.test("parseVictoriaMetricsConfig() reads VM_SSL_VERIFY as the original's false words, and more", () => {
  for (const word of ["False", "false", "FALSE", "no", "No", "NO", "0", "off"]) {
    const { config, problems } = parse({ ...REQUIRED, VM_SSL_VERIFY: word });
    assertEquals(problems, []);
    assertStrictEquals(config.tlsVerify, false, word);
  }
  for (const word of ["True", "yes", "1"]) {
    assertStrictEquals(parse({ ...REQUIRED, VM_SSL_VERIFY: word }).config.tlsVerify, true, word);
  }
});

Deno.test("parseVictoriaMetricsConfig() takes VM_METRIC_NAME only when VM_METRICS_NAMES is unset", () => {
  assertEquals(parse({ ...REQUIRED, VM_METRIC_NAME: "bytes" }).config.metricNames, ["bytes"]);
  assertEquals(
    parse({ ...REQUIRED, VM_METRIC_NAME: "bytes", VM_METRICS_NAMES: "packets, flows" }).config
      .metricNames,
    ["packets", "flows"],
  );
});

Deno.test("parseVictoriaMetricsConfig() reads credentials from VM_URL, VM_USERNAME/VM_PASSWORD or VM_BEARER_TOKEN", () => {
  const fromUrl = parse({ ...REQUIRED, VM_URL: "https://writer:s%40cret@vm.example:8427/" });
  assertEquals(fromUrl.problems, []);
  assertStrictEquals(fromUrl.config.url, "https://vm.example:8427");
  assertEquals(fromUrl.config.auth, { kind: "basic", username: "writer", password: "s@cret" });
  assertEquals(parse({ ...REQUIRED, VM_USERNAME: "u", VM_PASSWORD: "p" }).config.auth, {
    kind: "basic",
    username: "u",
    password: "p",
  });
  assertEquals(parse({ ...REQUIRED, VM_BEARER_TOKEN: "t0k" }).config.auth, {
    kind: "bearer",
    token: "t0k",
  });
  const secret = VICTORIAMETRICS.specs.filter((v) => v.secret).map((v) => v.name);
  assertEquals(secret, ["VM_PASSWORD", "VM_BEARER_TOKEN"]);
});

Deno.test("parseVictoriaMetricsConfig() reports every invalid value at once, secrets masked", () => {
  const { problems } = parse({
    VM_URL: "ftp://u:hunter2@vm",
    VM_PASSWORD: "hunter2",
    VM_BEARER_TOKEN: "t0k",
    VM_METRICS_NAMES: "bytes,in-bytes,bytes",
    VM_MAX_SAMPLES_PER_SEND: "0",
    VM_MAX_TIME_TO_SEND: "0",
    VM_REQUEST_TIMEOUT: "-1",
    VM_TIMESTAMP_MAX_FUTURE: "-5",
    VM_MAX_LABELS: "2",
    VM_AVOID_LABELS: "a*b",
    VM_COMPRESSION: "maybe",
  });
  assertEquals(problems, [
    // First the values each declaration checks, in table order, then the rules between them.
    { name: "VM_URL", value: "ftp://u:***@vm", message: "must be an http:// or https:// URL" },
    { name: "VM_JOB", value: undefined, message: "is required and not set" },
    { name: "VM_INSTANCE", value: undefined, message: "is required and not set" },
    { name: "VM_TIMESTAMP_MAX_FUTURE", value: "-5", message: "must be a number >= 0" },
    { name: "VM_MAX_LABELS", value: "2", message: "must be an integer >= 3" },
    { name: "VM_MAX_SAMPLES_PER_SEND", value: "0", message: "must be an integer >= 1" },
    { name: "VM_MAX_TIME_TO_SEND", value: "0", message: "must be a number of seconds > 0" },
    { name: "VM_REQUEST_TIMEOUT", value: "-1", message: "must be a number of seconds > 0" },
    {
      name: "VM_COMPRESSION",
      value: "maybe",
      message: "must be YES or NO (also true/false, 1/0, on/off)",
    },
    {
      name: "VM_METRICS_NAMES",
      value: "in-bytes",
      message: "must name fields that are valid metric names ([a-zA-Z_:][a-zA-Z0-9_:]*)",
    },
    { name: "VM_METRICS_NAMES", value: "bytes", message: "must not name a field twice" },
    {
      name: "VM_AVOID_LABELS",
      value: "a*b",
      message: "may use * only at the end of a name (a prefix)",
    },
    {
      name: "VM_BEARER_TOKEN/VM_USERNAME",
      value: undefined,
      message: "are exclusive: use a bearer token or basic authentication, not both",
    },
  ]);
});

Deno.test("parseVictoriaMetricsConfig() refuses contradicting settings", () => {
  const names = (env: Record<string, string>) =>
    parse({ ...REQUIRED, ...env }).problems.map((p) => p.name);
  assertEquals(names({ VM_LABELS: "ip_src", VM_AVOID_LABELS: "ip_dst" }), [
    "VM_LABELS/VM_AVOID_LABELS",
  ]);
  assertEquals(names({ VM_LABELS: "ip_src,bytes" }), ["VM_LABELS"]);
  assertEquals(names({ VM_LABELS: "stamp_*" }), ["VM_LABELS"]);
  assertEquals(names({ VM_PASSWORD: "p" }), ["VM_PASSWORD"]);
  assertEquals(names({ VM_URL: "http://u:p@vm:8428", VM_USERNAME: "v" }), ["VM_URL"]);
  assertEquals(names({ VM_URL: "http://vm:8428?x=1" }), ["VM_URL"]);
  assertEquals(names({ VM_CA_FILE: "/etc/hostname" }), ["VM_CA_FILE"]);
  assertEquals(names({ VM_TIMESTAMP_FIELD: "bytes" }), ["VM_TIMESTAMP_FIELD"]);
  assertEquals(names({ VM_IMPORT_PATH: "http://other/api/v1/import" }), ["VM_IMPORT_PATH"]);
});

Deno.test("the VictoriaMetrics target and the --check-config summary mask the password and the token", () => {
  const kafka = { KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9092", KAFKA_TOPIC: "pmacct.acct" };
  const basic = parseConfig(
    { ...kafka, ...REQUIRED, VM_URL: "https://w:hunter2@vm:8427", VM_SSL_VERIFY: "no" },
    REGISTRIES,
  );
  const text = describeConfig(basic).join("\n");
  assert(!text.includes("hunter2"), text);
  assertMatch(text, /VM_URL=https:\/\/w:\*\*\*@vm:8427\n/);
  assertMatch(text, /VM_SSL_VERIFY=no\n/);
  assertMatch(text, /: https:\/\/vm:8427\/api\/v1\/import\n/);
  const bearer = parseConfig({ ...kafka, ...REQUIRED, VM_BEARER_TOKEN: "t0ken-value" }, REGISTRIES);
  const bearerText = describeConfig(bearer).join("\n");
  assert(!bearerText.includes("t0ken-value"));
  assertMatch(bearerText, /VM_BEARER_TOKEN=\*\*\*/);
});

Deno.test("SINK=vm is chosen by VM_URL alone and reads the original's consumer group", () => {
  const env = {
    ...REQUIRED,
    KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9092",
    KAFKA_TOPIC: "pmacct.acct",
  };
  const config = parseConfig(env, REGISTRIES);
  assertStrictEquals(config.sink.module.name, "vm");
  assertStrictEquals(config.kafka.groupId, "kafka2vm");
  assertStrictEquals(parseConfig({ ...env, SINK: "vm" }, REGISTRIES).sink.module.name, "vm");
  assert(isSelected(victoriaMetricsSink, { VM_URL: "http://vm" }));
  assert(!isSelected(victoriaMetricsSink, { VM_URL: " " }));
  let error: unknown;
  try {
    parseConfig({ ...env, VM_PASSWORD: "hunter2" }, REGISTRIES);
  } catch (caught) {
    error = caught;
  }
  assert(error instanceof ConfigError);
  assert(!error.message.includes("hunter2"));
  for (const spec of VICTORIAMETRICS.specs) {
    assert(allVariables(REGISTRIES).some((v) => v.name === spec.name), spec.name);
  }
});
