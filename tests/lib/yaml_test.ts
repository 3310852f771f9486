import { flattenYaml, parseYaml } from "../../lib/yaml.ts";
import { assertEquals, assertThrows } from "../_assert.ts";

const KAFKA_INFLUXDB_EXAMPLE = `---
kafka:
  host: "kafka"
  port: 9092
  topic: "metrics"
  group: "kafka-influxdb"
influxdb:
  host: "influxdb"
  port: 8086
  user: "root"
  password: "root"
  dbname: "metrics"
  use_ssl: false
  verify_ssl: False
  timeout: 5
  use_udp: False
  retention_policy: "autogen"
  time_precision: "s"
encoder: "kafka_influxdb.encoder.collectd_graphite_encoder"
benchmark: false
buffer_size: 1000
statistics: true
`;

Deno.test("parseYaml() reads kafka-influxdb's example config.yaml", () => {
  const parsed = parseYaml(KAFKA_INFLUXDB_EXAMPLE);
  assertEquals(parsed["kafka"], {
    host: "kafka",
    port: "9092",
    topic: "metrics",
    group: "kafka-influxdb",
  });
  assertEquals((parsed["influxdb"] as Record<string, unknown>)["verify_ssl"], "False");
  assertEquals(parsed["encoder"], "kafka_influxdb.encoder.collectd_graphite_encoder");
});

Deno.test("flattenYaml() joins nested keys with _ into variable names", () => {
  const flat = flattenYaml(parseYaml(KAFKA_INFLUXDB_EXAMPLE));
  assertEquals(flat.get("KAFKA_HOST"), "kafka");
  assertEquals(flat.get("INFLUXDB_DBNAME"), "metrics");
  assertEquals(flat.get("INFLUXDB_TIME_PRECISION"), "s");
  assertEquals(flat.get("BUFFER_SIZE"), "1000");
  assertEquals(flat.get("STATISTICS"), "true");
  assertEquals(flat.size, 19);
});

Deno.test("parseYaml() reads comments, quotes, lists and nulls", () => {
  const parsed = parseYaml([
    "# a comment",
    "a: 'it''s' # trailing comment",
    'b: "x # not a comment\\ty"',
    "c: [one, 'two, three', \"four\"]",
    "d:",
    "  - x",
    "  - y",
    "e: ~",
    "f:",
    "g: plain text: with colon",
    "url: http://h:1/p#frag",
  ].join("\n"));
  assertEquals(parsed, {
    a: "it's",
    b: "x # not a comment\ty",
    c: ["one", "two, three", "four"],
    d: ["x", "y"],
    e: null,
    f: null,
    g: "plain text: with colon",
    url: "http://h:1/p#frag",
  });
  assertEquals(flattenYaml(parsed).get("C"), "one,two, three,four");
  assertEquals(flattenYaml(parsed).has("E"), false);
});

Deno.test("parseYaml() refuses what it does not understand, naming the line", () => {
  const cases: Array<[string, RegExp]> = [
    ["a: 1\n  b: 2", /line 2: unexpected indentation/],
    ["a: |\n  text", /line 1: multi-line scalars are not supported/],
    ["a: &x 1", /line 1: anchors, aliases and tags are not supported/],
    ["a: {b: 1}", /line 1: flow mappings are not supported/],
    ["a: 1\na: 2", /line 2: key "a" appears twice/],
    ["just text", /line 1: expected `key: value`/],
    ["a: 'open", /line 1: unterminated quote/],
    ["a:\n\t b: 1", /line 2: tabs cannot indent YAML/],
  ];
  for (const [text, message] of cases) {
    assertThrows(() => parseYaml(text, "c.yaml"), SyntaxError);
    try {
      parseYaml(text, "c.yaml");
    } catch (error) {
      assertEquals(message.test((error as Error).message), true, (error as Error).message);
      assertEquals((error as Error).message.startsWith("Cannot read c.yaml line "), true);
    }
  }
});
