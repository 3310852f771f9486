import { flattenYaml, mergeSources, readConfigFile, readEnvFile } from "../../lib/config_files.ts";
import { ConfigError } from "../../lib/variables.ts";
import { assert, assertEquals, assertThrows } from "../_assert.ts";

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

/** The settings of a YAML text as a map of variable names to values. */
function flat(text: string): Map<string, string> {
  return new Map(flattenYaml(text).map((s) => [s.name, s.value]));
}

Deno.test("flattenYaml() joins kafka-influxdb's nested keys with _ into variable names", () => {
  const settings = flattenYaml(KAFKA_INFLUXDB_EXAMPLE);
  const vars = new Map(settings.map((s) => [s.name, s.value]));
  assertEquals(vars.get("KAFKA_HOST"), "kafka");
  assertEquals(vars.get("KAFKA_PORT"), "9092");
  assertEquals(vars.get("INFLUXDB_DBNAME"), "metrics");
  assertEquals(vars.get("INFLUXDB_VERIFY_SSL"), "False");
  assertEquals(vars.get("INFLUXDB_TIME_PRECISION"), "s");
  assertEquals(vars.get("ENCODER"), "kafka_influxdb.encoder.collectd_graphite_encoder");
  assertEquals(vars.get("BUFFER_SIZE"), "1000");
  assertEquals(vars.get("STATISTICS"), "true");
  assertEquals(settings.length, 19);
  // Line numbers are the key's line in the file (the `---` is line 1).
  assertEquals(settings.find((s) => s.name === "KAFKA_HOST")?.line, 3);
  assertEquals(settings.find((s) => s.name === "STATISTICS")?.line, 22);
});

Deno.test("flattenYaml() reads comments, quotes, lists and nulls, keeping scalars as written", () => {
  const vars = flat([
    "# a comment",
    "a: 'it''s' # trailing comment",
    'b: "x # not a comment\\ty"',
    "c: [one, 'two, three', \"four\"]",
    "d:",
    "  - x",
    "  - y",
    "e: ~",
    "f:",
    "url: http://h:1/p#frag",
    "version: 1.10",
    "quoted_null: 'null'",
  ].join("\n"));
  assertEquals(Object.fromEntries(vars), {
    A: "it's",
    B: "x # not a comment\ty",
    C: "one,two, three,four",
    D: "x,y",
    URL: "http://h:1/p#frag",
    VERSION: "1.10",
    QUOTED_NULL: "null",
  });
});

Deno.test("flattenYaml() reads keys named constructor, __proto__ and toString as ordinary keys", () => {
  const vars = flat("constructor: 1\n__proto__: 2\ntoString: 3\nhasOwnProperty: {x: 4}\n");
  assertEquals(Object.fromEntries(vars), {
    CONSTRUCTOR: "1",
    __PROTO__: "2",
    TOSTRING: "3",
    HASOWNPROPERTY_X: "4",
  });
  assertEquals(({} as Record<string, unknown>)["x"], undefined);
});

Deno.test("flattenYaml() resolves anchors and aliases to the value they name", () => {
  const vars = flat("base: &h kafka\nkafka:\n  host: *h\n");
  assertEquals(vars.get("KAFKA_HOST"), "kafka");
});

Deno.test("flattenYaml() refuses what is not a mapping of settings, naming the file and line", () => {
  const cases: Array<[string, RegExp]> = [
    ["a: 1\n  b: 2", /line 1: /],
    // PyYAML, which kafka-influxdb used, refuses this too.
    ["g: plain text: with colon", /line 1: /],
    ["a: 1\na: 2", /line 2: .*unique/i],
    ["constructor: 1\nconstructor: 2", /line 2: .*unique/i],
    ["__proto__: 1\n__proto__: 2", /line 2: .*unique/i],
    ["just text", /line 1: expected a mapping of `key: value`/],
    ["a: 'open", /line 1: /],
    ["a:\n\t b: 1", /line 2: /],
    ["a:\n  - {b: 1}", /line 2: lists may hold only values/],
    ["? [a, b]\n: 1", /line 1: keys must be plain text/],
  ];
  for (const [text, message] of cases) {
    assertThrows(() => flattenYaml(text, "c.yaml"), SyntaxError, text);
    try {
      flattenYaml(text, "c.yaml");
    } catch (error) {
      const got = (error as Error).message;
      assert(got.startsWith("Cannot read c.yaml line "), got);
      assert(message.test(got), `${JSON.stringify(text)}: ${got}`);
    }
  }
});

Deno.test("readConfigFile() refuses a key that names no variable with its line, whatever its name", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/config.yaml`;
    Deno.writeTextFileSync(path, "kafka:\n  host: k\nconstructor: 1\n__proto__:\n  x: 2\n");
    const known = new Set(["KAFKA_HOST"]);
    const { problems } = readConfigFile(path, known);
    const messages = problems.map((p) => `${p.name}: ${p.message}`);
    assertEquals(messages, [
      `constructor: in ${path} line 3 is not a setting sluice knows (no variable CONSTRUCTOR; see --help)`,
      `__proto___x: in ${path} line 5 is not a setting sluice knows (no variable __PROTO___X; see --help)`,
    ]);
    Deno.writeTextFileSync(path, "kafka:\n  host: k\n  reader: confluent\n");
    const { vars, ignored, problems: none } = readConfigFile(path, known);
    assertEquals(Object.fromEntries(vars), { KAFKA_HOST: "k" });
    assertEquals(ignored, ["KAFKA_READER: sluice has one Kafka client"]);
    assertEquals(none, []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("readConfigFile() never quotes the value of an unknown key, and names the key meant", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/config.yaml`;
    Deno.writeTextFileSync(path, "influxdb:\n  host: h\n  pasword: secret123\n");
    const { vars, problems } = readConfigFile(
      path,
      new Set(["INFLUXDB_HOST", "INFLUXDB_PASSWORD"]),
    );
    assertEquals(Object.fromEntries(vars), { INFLUXDB_HOST: "h" });
    assertEquals(problems.length, 1);
    assertEquals(problems[0]!.value, undefined);
    const text = new ConfigError(problems).message;
    assert(!text.includes("secret123"), text);
    assert(
      text.includes(
        `"influxdb_pasword" in ${path} line 3 is not a setting sluice knows (no variable ` +
          "INFLUXDB_PASWORD; did you mean influxdb_password (INFLUXDB_PASSWORD)?)",
      ),
      text,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("readEnvFile() reads .env as data without touching the process environment", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/.env`;
    Deno.writeTextFileSync(
      path,
      "# comment\nSLUICE_TEST_A=one\nexport SLUICE_TEST_B='two words'\nSLUICE_TEST_C=\"x#y\" # c\n",
    );
    assertEquals(readEnvFile(path), {
      SLUICE_TEST_A: "one",
      SLUICE_TEST_B: "two words",
      SLUICE_TEST_C: "x#y",
    });
    assertEquals(Deno.env.get("SLUICE_TEST_A"), undefined);
    assertEquals(readEnvFile(`${dir}/missing`), undefined);
    assertThrows(() => readEnvFile(`${dir}/missing`, true), /Cannot read env file/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("mergeSources() ranks flags, then the environment, then .env, then YAML", () => {
  const merged = mergeSources({
    flags: { A: "flag" },
    env: { A: "env", B: "env", E: "" },
    envFile: { A: "file", B: "file", C: "file", E: "file" },
    yaml: new Map([["A", "yaml"], ["C", "yaml"], ["D", "yaml"], ["E", "yaml"]]),
  });
  assertEquals(merged, { A: "flag", B: "env", C: "file", D: "yaml", E: "yaml" });
});
