/**
 * The Elasticsearch sink's variables: the defaults of pmacct-kafka-elastic,
 * the host list, the template file, and every problem reported at once.
 *
 * @module
 */

import { describeConfig, isSelected, parseConfig } from "../../../lib/config.ts";
import { VarReader } from "../../../lib/variables.ts";
import {
  DEFAULT_TEMPLATE_FILE,
  ELASTIC,
  type ElasticConfig,
  indexPrefixProblem,
  loadTemplate,
  parseHosts,
  withDefaultSettings,
} from "../../../sinks/elastic/config.ts";
import { elasticSink } from "../../../sinks/elastic/mod.ts";
import type { BatchLimits } from "../../../lib/sink.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";
import { REGISTRIES } from "../../../sinks/mod.ts";

const SHIPPED_TEMPLATE = new URL("../../../new-index-template.json", import.meta.url);

function parse(env: Record<string, string>): {
  config: ElasticConfig;
  batch: BatchLimits;
  problems: VarReader["problems"];
} {
  const reader = new VarReader(env, ELASTIC.specs);
  const { config, batch } = elasticSink.parseConfig(reader);
  return { config, batch, problems: reader.problems };
}

/** Runs `body` with the working directory set to a fresh empty directory. */
async function inEmptyDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-elastic-" });
  const before = Deno.cwd();
  Deno.chdir(dir);
  try {
    await body(dir);
  } finally {
    Deno.chdir(before);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseElasticConfig() applies the defaults of pmacct-kafka-elastic", async () => {
  await inEmptyDir(() => {
    const { config, batch, problems } = parse({});
    assertEquals(problems, []);
    assertEquals(batch, { maxRows: 1000, maxBytes: 10485760, maxAgeMs: 10000 });
    assertEquals(config.hosts, ["http://127.0.0.1:9200"]);
    assertStrictEquals(config.secure, false);
    assertStrictEquals(config.tlsVerify, true);
    assertStrictEquals(config.indexPrefix, "sflow");
    assertStrictEquals(config.templateMode, "create_index");
    assertEquals(config.timestampFields, ["stamp_updated"]);
    assertStrictEquals(config.requestTimeoutMs, 30000);
    assertStrictEquals(config.username, undefined);
    assertStrictEquals(config.apiKey, undefined);
    // The default file is not in the working directory: the built-in copy.
    assertStrictEquals(config.template.source, "new-index-template.json (built in)");
    assertEquals(config.template.settings, { number_of_shards: 1, number_of_replicas: 0 });
  });
  assertStrictEquals(elasticSink.consumerGroupDefault, "kafka2elastic");
});

Deno.test("parseElasticConfig() falls back to the built-in template: the original script's mappings, as shipped at the repo root", async () => {
  const shipped = JSON.parse(await Deno.readTextFile(SHIPPED_TEMPLATE));
  await inEmptyDir(() => {
    const { config } = parse({});
    assertEquals(config.template.mappings, shipped.mappings);
  });
  assertEquals(shipped.mappings.properties, {
    "@timestamp": { type: "date" },
    stamp_updated: { type: "date", format: "yyyy-MM-dd HH:mm:ss" },
    stamp_inserted: { type: "date", format: "yyyy-MM-dd HH:mm:ss" },
    bytes: { type: "long" },
    packets: { type: "long" },
    flows: { type: "long" },
  });
});

Deno.test("parseElasticConfig() reads the misspelt ELASTC_MAX_TIME_TO_SEND, and ELASTIC_MAX_TIME_TO_SEND wins", () => {
  assertStrictEquals(parse({ ELASTC_MAX_TIME_TO_SEND: "3" }).batch.maxAgeMs, 3000);
  assertStrictEquals(parse({ ELASTIC_MAX_TIME_TO_SEND: "2.5" }).batch.maxAgeMs, 2500);
  const both = parse({ ELASTIC_MAX_TIME_TO_SEND: "7", ELASTC_MAX_TIME_TO_SEND: "3" });
  assertEquals(both.problems, []);
  assertStrictEquals(both.batch.maxAgeMs, 7000);
  // The misspelt name has no effect then, so its value is not checked either.
  assertEquals(
    parse({ ELASTIC_MAX_TIME_TO_SEND: "7", ELASTC_MAX_TIME_TO_SEND: "0" }).problems,
    [],
  );
  assertEquals(parse({ ELASTC_MAX_TIME_TO_SEND: "0" }).problems, [
    { name: "ELASTC_MAX_TIME_TO_SEND", value: "0", message: "must be a number of seconds > 0" },
  ]);
});

Deno.test("parseElasticConfig() reads every variable", async () => {
  await inEmptyDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/mine.json`,
      JSON.stringify({
        settings: { number_of_shards: 3 },
        mappings: { properties: { bytes: { type: "double" } } },
      }),
    );
    const { config, batch, problems } = parse({
      ELASTIC_HOSTS: "es1, es2:9201,https://es3.example/proxy/",
      ELASTIC_USERNAME: "sluice",
      ELASTIC_PASSWORD: "secret",
      ELASTIC_VERIFY_SSL: "no",
      ELASTIC_INDEX_PREFIX: "flows",
      ELASTIC_INDEX_TEMPLATE: "mine.json",
      ELASTIC_TEMPLATE_MODE: "INDEX_TEMPLATE",
      ELASTIC_TIMESTAMP_FIELD: "timestamp_end, stamp_updated",
      ELASTIC_MAX_SAMPLES_PER_SEND: "50",
      ELASTIC_MAX_BYTES_PER_SEND: "4096",
      ELASTIC_MAX_TIME_TO_SEND: "0.5",
      ELASTIC_REQUEST_TIMEOUT: "2",
    });
    assertEquals(problems, []);
    assertEquals(batch, { maxRows: 50, maxBytes: 4096, maxAgeMs: 500 });
    assertEquals(config.hosts, [
      "http://es1:9200",
      "http://es2:9201",
      "https://es3.example:9200/proxy",
    ]);
    assertStrictEquals(config.secure, true);
    assertStrictEquals(config.tlsVerify, false);
    assertStrictEquals(config.username, "sluice");
    assertStrictEquals(config.password, "secret");
    assertStrictEquals(config.indexPrefix, "flows");
    assertStrictEquals(config.templateMode, "index_template");
    assertEquals(config.timestampFields, ["timestamp_end", "stamp_updated"]);
    assertStrictEquals(config.requestTimeoutMs, 2000);
    assertStrictEquals(config.template.source, "mine.json");
    assertEquals(config.template.mappings, { properties: { bytes: { type: "double" } } });
    assertEquals(config.template.settings, { number_of_shards: 3, number_of_replicas: 0 });
  });
});

Deno.test("parseElasticConfig() reads the default template file from the working directory first", async () => {
  await inEmptyDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/${DEFAULT_TEMPLATE_FILE}`,
      JSON.stringify({ mappings: { properties: { x: { type: "keyword" } } } }),
    );
    const { config, problems } = parse({});
    assertEquals(problems, []);
    assertStrictEquals(config.template.source, DEFAULT_TEMPLATE_FILE);
    assertEquals(config.template.mappings, { properties: { x: { type: "keyword" } } });
  });
});

Deno.test("parseElasticConfig() reports every invalid value at once, secrets masked", async () => {
  await inEmptyDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/broken.json`, '{"settings": {}}');
    const { problems } = parse({
      ELASTIC_HOSTS: "http://u:p@es1,es 2,es3:70000",
      ELASTIC_USE_SSL: "maybe",
      ELASTIC_PASSWORD: "hunter2",
      ELASTIC_API_KEY: "abc",
      ELASTIC_INDEX_PREFIX: "Flows",
      ELASTIC_INDEX_TEMPLATE: "broken.json",
      ELASTIC_TEMPLATE_MODE: "mapping",
      ELASTIC_MAX_SAMPLES_PER_SEND: "0",
      ELASTIC_REQUEST_TIMEOUT: "-1",
    });
    assertEquals(problems, [
      // First the values each declaration checks, in table order, then the rules between them.
      {
        name: "ELASTIC_USE_SSL",
        value: "maybe",
        message: "must be YES or NO (also true/false, 1/0, on/off)",
      },
      {
        name: "ELASTIC_TEMPLATE_MODE",
        value: "mapping",
        message: "must be one of create_index, index_template, none",
      },
      {
        name: "ELASTIC_MAX_SAMPLES_PER_SEND",
        value: "0",
        message: "must be an integer >= 1",
      },
      {
        name: "ELASTIC_REQUEST_TIMEOUT",
        value: "-1",
        message: "must be a number of seconds > 0",
      },
      {
        name: "ELASTIC_HOSTS",
        value: "http://u:***@es1",
        message:
          "must not contain credentials; set ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY",
      },
      {
        name: "ELASTIC_HOSTS",
        value: "es 2",
        message: "must be a host name or IP, optionally with :port, or an http(s):// URL",
      },
      {
        name: "ELASTIC_HOSTS",
        value: "es3:70000",
        message: "must have a port between 1 and 65535",
      },
      {
        name: "ELASTIC_USERNAME/ELASTIC_PASSWORD",
        value: undefined,
        message: "must be set together",
      },
      {
        name: "ELASTIC_API_KEY",
        value: undefined,
        message: "cannot be combined with ELASTIC_USERNAME/ELASTIC_PASSWORD; choose one",
      },
      {
        name: "ELASTIC_INDEX_PREFIX",
        value: "Flows",
        message: "must be lowercase (index names are)",
      },
      {
        name: "ELASTIC_INDEX_TEMPLATE",
        value: "broken.json",
        message: 'must hold a JSON object with a "mappings" object',
      },
    ]);
    assert(!JSON.stringify(problems).includes("hunter2"));
  });
});

Deno.test("parseElasticConfig() refuses a missing template file it was told to read", async () => {
  await inEmptyDir(() => {
    const { problems } = parse({ ELASTIC_INDEX_TEMPLATE: "missing.json" });
    assertStrictEquals(problems.length, 1);
    assertStrictEquals(problems[0]!.name, "ELASTIC_INDEX_TEMPLATE");
    assertMatch(problems[0]!.message, /^must be a readable file \(No such file/);
  });
});

Deno.test("parseElasticConfig() refuses ELASTIC_CA_FILE without TLS and an unreadable one with it", () => {
  const file = new URL(import.meta.url).pathname;
  assertEquals(parse({ ELASTIC_CA_FILE: file }).problems, [{
    name: "ELASTIC_CA_FILE",
    value: file,
    message: "is only used with TLS: set ELASTIC_USE_SSL=YES or use https:// hosts",
  }]);
  const missing = parse({ ELASTIC_USE_SSL: "yes", ELASTIC_CA_FILE: "/nonexistent/ca.pem" });
  assertStrictEquals(missing.problems[0]?.name, "ELASTIC_CA_FILE");
  assertMatch(missing.problems[0]!.message, /^must be a readable file/);
  assertEquals(parse({ ELASTIC_USE_SSL: "yes", ELASTIC_CA_FILE: file }).problems, [{
    name: "ELASTIC_CA_FILE",
    value: file,
    message: "must be a PEM file with at least one certificate",
  }]);
  // ELASTIC_VERIFY_SSL without TLS is accepted and ignored, as the original did.
  assertEquals(parse({ ELASTIC_VERIFY_SSL: "NO" }).problems, []);
});

Deno.test("parseHosts() reads host, host:port, IPv6 and URLs with port 9200 by default", () => {
  const hosts = (text: string, ssl = false, sslSet = false) => {
    const r = parseHosts(text.split(",").map((s) => s.trim()).filter(Boolean), ssl, sslSet);
    return r.problems.length > 0 ? r.problems.map((p) => `${p.value}: ${p.message}`) : r.hosts;
  };
  assertEquals(hosts("127.0.0.1:9200"), ["http://127.0.0.1:9200"]);
  assertEquals(hosts("es1,es2:9300"), ["http://es1:9200", "http://es2:9300"]);
  assertEquals(hosts("es1", true), ["https://es1:9200"]);
  assertEquals(hosts("::1,[2001:db8::1]:9201"), ["http://[::1]:9200", "http://[2001:db8::1]:9201"]);
  assertEquals(hosts("https://es.example"), ["https://es.example:9200"]);
  assertEquals(hosts("https://es.example:443"), ["https://es.example:443"]);
  assertEquals(hosts("http://es.example:80/es/"), ["http://es.example:80/es"]);
  assertEquals(hosts("es1,es1:9200"), ["http://es1:9200"], "duplicates are dropped");
  assertEquals(hosts("http://es1", true, true), [
    "http://es1: must agree with ELASTIC_USE_SSL: the URL uses http but ELASTIC_USE_SSL is YES",
  ]);
  assertEquals(hosts("ftp://es1"), ["ftp://es1: must use http:// or https:// when it is a URL"]);
  assertEquals(hosts("http://es1/?pretty"), [
    "http://es1/?pretty: must not contain a query or fragment",
  ]);
  assertEquals(hosts(""), [": must list at least one host"]);
});

Deno.test("indexPrefixProblem() applies the index name rules", () => {
  assertStrictEquals(indexPrefixProblem("sflow"), undefined);
  assertStrictEquals(indexPrefixProblem("pmacct.flows_v2"), undefined);
  assertStrictEquals(indexPrefixProblem(""), "must not be empty");
  assertStrictEquals(indexPrefixProblem("Sflow"), "must be lowercase (index names are)");
  assertMatch(indexPrefixProblem("s flow")!, /must not contain/);
  assertMatch(indexPrefixProblem("a:b")!, /must not contain/);
  assertMatch(indexPrefixProblem("_sflow")!, /must not start with/);
  assertMatch(indexPrefixProblem("x".repeat(245))!, /at most 244 bytes/);
});

Deno.test("loadTemplate() keeps shards and replicas the file sets, in any spelling", () => {
  const read = (text: string) => () => text;
  const settings = (text: string) => {
    const r = loadTemplate("t.json", read(text));
    return r.ok ? r.template.settings : r.message;
  };
  assertEquals(settings('{"mappings":{}}'), { number_of_shards: 1, number_of_replicas: 0 });
  assertEquals(settings('{"mappings":{},"settings":{"index":{"number_of_replicas":2}}}'), {
    index: { number_of_replicas: 2 },
    number_of_shards: 1,
  });
  assertEquals(settings('{"mappings":{},"settings":{"index.number_of_shards":4}}'), {
    "index.number_of_shards": 4,
    number_of_replicas: 0,
  });
  assertEquals(
    settings('{"mappings":{},"settings":[]}'),
    'must have an object as "settings" when it has one',
  );
  assertMatch(String(settings("{not json")), /^must be a JSON file/);
  assertEquals(withDefaultSettings({ refresh_interval: "30s" }), {
    refresh_interval: "30s",
    number_of_shards: 1,
    number_of_replicas: 0,
  });
});

Deno.test("the Elasticsearch target and the --check-config summary mask the password and the API key", () => {
  const kafka = {
    SINK: "elastic",
    KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9092",
    KAFKA_TOPIC: "pmacct.acct",
  };
  const basic = parseConfig(
    { ...kafka, ELASTIC_USERNAME: "sluice", ELASTIC_PASSWORD: "hunter2" },
    REGISTRIES,
  );
  const text = describeConfig(basic).join("\n");
  assertMatch(text, /ELASTIC_USERNAME=sluice\n/);
  assertMatch(text, /ELASTIC_PASSWORD=\*\*\*\n/);
  assertMatch(text, /: http:\/\/127\.0\.0\.1:9200 indexes sflow-YYYY-MM-DD\n/);
  assert(!text.includes("hunter2"));
  const key = describeConfig(parseConfig({ ...kafka, ELASTIC_API_KEY: "c2VjcmV0" }, REGISTRIES))
    .join("\n");
  assertMatch(key, /ELASTIC_API_KEY=\*\*\*/);
  assert(!key.includes("c2VjcmV0"));
});

Deno.test("elasticSink is selected by ELASTIC_HOSTS and consumes as group kafka2elastic", () => {
  const env = { KAFKA_BOOTSTRAP_SERVERS: "k:9092", KAFKA_TOPIC: "t" };
  const config = parseConfig({ ...env, ELASTIC_HOSTS: "es1:9200" }, REGISTRIES);
  assertStrictEquals(config.sink.module.name, "elastic");
  assertStrictEquals(config.kafka.groupId, "kafka2elastic");
  assertStrictEquals(isSelected(elasticSink, { ELASTIC_HOSTS: " " }), false);
  assertStrictEquals(
    parseConfig({ ...env, SINK: "elastic", KAFKA_CONSUMER_GROUP_ID: "mine" }, REGISTRIES).kafka
      .groupId,
    "mine",
  );
});
