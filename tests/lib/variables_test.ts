import { makeTestCertificates } from "../_tls.ts";
import {
  closestNames,
  ConfigError,
  declareVariables,
  describeVariables,
  type Env,
  formatProblem,
  formatWarning,
  unknownVariables,
  variablePrefixes,
  VarReader,
  writableFileProblem,
} from "../../lib/variables.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const TABLE = declareVariables("Test", {
  T_URL: { type: "url", required: true, selects: true, doc: "A base URL" },
  T_URL_NOCRED: { type: "url", urlCredentialsIn: "T_USER and T_PASSWORD", doc: "No credentials" },
  T_HOSTS: { type: "hostports", default: "localhost:9092", doc: "Brokers" },
  T_SIZE: { type: "int", default: "1000", min: 1, max: 100_000, doc: "Rows" },
  T_RATIO: { type: "number", default: "0.5", min: 0, max: 1, doc: "A ratio" },
  T_WAIT: { type: "seconds", default: "10", doc: "A positive duration" },
  T_DELAY: { type: "seconds", default: "15", min: 0, doc: "A duration that may be zero" },
  T_ON: { type: "bool", default: "NO", doc: "A switch" },
  T_MODE: { type: "enum", default: "gzip", choices: ["none", "gzip", "lz4"], doc: "A choice" },
  T_LIST: { type: "list", doc: "A list" },
  T_SECURE: { type: "bool", default: "NO", doc: "TLS" },
  T_CA_FILE: { type: "file", pem: true, onlyWith: { name: "T_SECURE", is: "YES" }, doc: "CA" },
  T_AUTH: { type: "enum", default: "none", choices: ["none", "plain"], doc: "Auth" },
  T_PASSWORD: { type: "string", secret: true, onlyWith: { name: "T_AUTH", not: "none" }, doc: "" },
  T_OLD_WAIT: { type: "seconds", supersededBy: "T_WAIT", doc: "The old name of T_WAIT" },
});

/** Variables of two groups, one of them a server's address, one a file written to. */
const SERVERS = declareVariables("Servers", {
  SRV_BROKERS: { type: "hostports", required: true, connection: true, doc: "Brokers" },
  SRV_URL: { type: "url", required: true, connection: true, doc: "The sink" },
  SRV_JOB: { type: "string", required: true, doc: "A label every row carries" },
  SRV_ORDER_BY: { type: "string", default: "", doc: "Keys" },
  SRV_MAX_SAMPLES_PER_SEND: { type: "int", default: "10", min: 1, doc: "Rows" },
  SRV_OUT: { type: "output", doc: "A file appended to" },
});

function read(env: Env) {
  const reader = new VarReader(env, TABLE.specs);
  return { values: TABLE.read(reader), problems: reader.problems.map(formatProblem) };
}

Deno.test("VarTable.read() gives every default, typed, with no problem", () => {
  const { values, problems } = read({ T_URL: "http://h:8123/" });
  assertEquals(problems, []);
  assertEquals([values.T_URL.url, values.T_URL.secure], ["http://h:8123", false]);
  assertEquals(values.T_URL_NOCRED, undefined);
  assertEquals(values.T_HOSTS, ["localhost:9092"]);
  assertEquals(values.T_SIZE, 1000);
  assertEquals(values.T_RATIO, 0.5);
  assertEquals(values.T_WAIT, 10_000);
  assertEquals(values.T_DELAY, 15_000);
  assertEquals(values.T_ON, false);
  assertEquals(values.T_MODE, "gzip");
  assertEquals(values.T_LIST, undefined);
  assertEquals(TABLE.specs.map((s) => s.group), TABLE.specs.map(() => "Test"));
});

Deno.test("VarTable.read() reads each kind as written", () => {
  const { values, problems } = read({
    T_URL: "https://u%40x:p%3Aw@h/prefix",
    T_HOSTS: "a:1, [::1]:2",
    T_SIZE: "5",
    T_WAIT: "0.25",
    T_DELAY: "0",
    T_ON: "yes",
    T_MODE: "LZ4",
    T_LIST: "a, b,,c",
  });
  assertEquals(problems, []);
  assertEquals(values.T_URL, {
    url: "https://h/prefix",
    secure: true,
    username: "u@x",
    password: "p:w",
  });
  assertEquals(values.T_HOSTS, ["a:1", "[::1]:2"]);
  assertEquals([values.T_SIZE, values.T_WAIT, values.T_DELAY], [5, 250, 0]);
  assertEquals([values.T_ON, values.T_MODE, values.T_LIST], [true, "lz4", ["a", "b", "c"]]);
});

Deno.test("VarReader reports every problem at once, naming the variable, the rule and the value", () => {
  const { problems } = read({
    T_URL_NOCRED: "http://user:secret@h",
    T_HOSTS: "a:1,nohost",
    T_SIZE: "abc",
    T_RATIO: "2",
    T_WAIT: "0",
    T_ON: "maybe",
    T_MODE: "zstd",
  });
  assertEquals(problems.length, 8, problems.join("\n"));
  const text = problems.join("\n");
  assertMatch(text, /"T_URL" is required and not set/);
  assertMatch(text, /"T_URL_NOCRED" must not contain credentials; set T_USER and T_PASSWORD/);
  assert(!text.includes("secret"), "a URL's password is never quoted");
  assertMatch(text, /"T_HOSTS" must list host:port entries, got "nohost"/);
  assertMatch(text, /"T_SIZE" must be an integer/);
  assertMatch(text, /"T_RATIO" must be a number between 0 and 1, got "2"/);
  assertMatch(text, /"T_WAIT" must be a number of seconds > 0, got "0"/);
  assertMatch(text, /"T_ON" must be YES or NO/i);
  assertMatch(text, /"T_MODE" must be one of/);
});

Deno.test("VarReader checks a file variable is readable and holds a PEM certificate", async () => {
  const certs = await makeTestCertificates();
  const dir = certs.dir;
  try {
    const good = certs.ca;
    const bad = `${dir}/not.pem`;
    Deno.writeTextFileSync(bad, "hello");
    assertEquals(read({ T_URL: "http://h", T_SECURE: "YES", T_CA_FILE: good }).problems, []);
    assertMatch(
      read({ T_URL: "http://h", T_SECURE: "YES", T_CA_FILE: bad }).problems.join(),
      /"T_CA_FILE" must be a PEM file with at least one certificate/,
    );
    assertMatch(
      read({ T_URL: "http://h", T_SECURE: "YES", T_CA_FILE: `${dir}/missing` }).problems.join(),
      /"T_CA_FILE" must be a readable file \(/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("VarReader refuses a setting whose switch is off (onlyWith) instead of ignoring it", () => {
  const { problems } = read({
    T_URL: "http://h",
    T_CA_FILE: "/etc/hostname",
    T_PASSWORD: "hunter2",
  });
  assertEquals(problems.filter((p) => p.includes("T_CA_FILE") || p.includes("T_PASSWORD")), [
    '"T_CA_FILE" is set but T_SECURE is NO; set T_SECURE=YES, got "/etc/hostname"',
    '"T_CA_FILE" must be a PEM file with at least one certificate, got "/etc/hostname"',
    '"T_PASSWORD" is set but T_AUTH is none; choose plain, got "***"',
  ]);
});

Deno.test("VarReader.requireTls() replaces a TLS setting's problems with the one that matters", () => {
  const reader = new VarReader({ T_URL: "http://h", T_CA_FILE: "/missing" }, TABLE.specs);
  TABLE.read(reader);
  reader.requireTls("T_CA_FILE", false, "give T_URL as https://");
  assertEquals(reader.problems.filter((p) => p.name === "T_CA_FILE").map(formatProblem), [
    '"T_CA_FILE" is only used with TLS: give T_URL as https://, got "/missing"',
  ]);
});

Deno.test("ConfigError lists every problem under one Cannot start line, secrets masked", () => {
  const reader = new VarReader({ T_PASSWORD: "hunter2" }, TABLE.specs);
  TABLE.read(reader);
  const error = new ConfigError(reader.problems);
  assertMatch(error.message, /^Cannot start: 2 configuration problems\n {2}- "T_URL"/);
  assert(!error.message.includes("hunter2"));
});

Deno.test("describeVariables() prints what is set and the defaults in effect, secrets masked", () => {
  const lines = describeVariables(TABLE.specs, {
    T_URL: "http://user:pw@h:1",
    T_AUTH: "plain",
    T_PASSWORD: "hunter2",
    T_LIST: "a b",
  }, { T_SIZE: "500" });
  assertEquals(lines, [
    "Test:",
    "  T_URL=http://user:***@h:1",
    "  T_HOSTS=localhost:9092  # default",
    "  T_SIZE=500  # default",
    "  T_RATIO=0.5  # default",
    "  T_WAIT=10  # default",
    "  T_DELAY=15  # default",
    "  T_ON=NO  # default",
    "  T_MODE=gzip  # default",
    '  T_LIST="a b"',
    "  T_SECURE=NO  # default",
    "  T_AUTH=plain",
    "  T_PASSWORD=***",
  ]);
});

Deno.test("VarReader reads a superseded name only while the new one is unset", () => {
  assertEquals(read({ T_URL: "http://h", T_OLD_WAIT: "3" }).values.T_OLD_WAIT, 3000);
  const both = read({ T_URL: "http://h", T_WAIT: "2", T_OLD_WAIT: "junk" });
  assertEquals([both.values.T_WAIT, both.values.T_OLD_WAIT, both.problems], [2000, undefined, []]);
  assertMatch(
    read({ T_URL: "http://h", T_OLD_WAIT: "junk" }).problems.join(),
    /"T_OLD_WAIT" must be/,
  );
});

Deno.test("closestNames() finds the name meant by a misspelt one, and none for a stranger", () => {
  const names = SERVERS.specs.map((s) => s.name);
  assertEquals(closestNames("SRV_ORDERBY", names), ["SRV_ORDER_BY"]);
  assertEquals(closestNames("SRV_MAX_SAMPLE_PER_SEND", names), ["SRV_MAX_SAMPLES_PER_SEND"]);
  assertEquals(closestNames("SRV_BROKER", names), ["SRV_BROKERS"]);
  assertEquals(closestNames("srv_url", names), ["SRV_URL"]);
  assertEquals(closestNames("SRV_JBO", names), ["SRV_JOB"]);
  assertEquals(closestNames("SRV_SOMETHING_ELSE", names), []);
  assertEquals(closestNames("clickhous", ["clickhouse", "elastic", "influxdb", "vm"]), [
    "clickhouse",
  ]);
  assertEquals(closestNames("elasticsearch", ["clickhouse", "elastic", "influxdb", "vm"]), [
    "elastic",
  ]);
  assertEquals(closestNames("warning", ["debug", "info", "warn", "error"]), ["warn"]);
  assertEquals(closestNames("vm", ["clickhouse", "elastic", "influxdb", "vm"]), []);
  assertEquals(closestNames("3", ["auto", "1", "2"]), []);
});

Deno.test("unknownVariables() warns about a name with a table's prefix that no table declares", () => {
  const specs = [...TABLE.specs, ...SERVERS.specs];
  assertEquals(variablePrefixes(SERVERS.specs), ["SRV_", "SERVERS_"]);
  const env = {
    SRV_ORDERBY: "ts",
    SRV_MAX_SAMPLE_PER_SEND: "5000",
    SRV_PASWORD: "hunter2",
    SERVERS_URL: "http://h",
    SRV_URL: "http://h",
    PATH: "/usr/bin",
    SLUICE_KAFKA_PORT: "19092",
    SLUICE_SRV_JOB: "x",
    OTHER_SRV_ORDERBY: "x",
  };
  const warnings = unknownVariables(env, specs, ["SLUICE_"]).map(formatWarning);
  assertEquals(warnings, [
    '"SERVERS_URL" is not a variable sluice reads and is ignored; see --help for the variables',
    '"SRV_MAX_SAMPLE_PER_SEND" is not a variable sluice reads and is ignored; ' +
    "did you mean SRV_MAX_SAMPLES_PER_SEND?",
    '"SRV_ORDERBY" is not a variable sluice reads and is ignored; did you mean SRV_ORDER_BY?',
    '"SRV_PASWORD" is not a variable sluice reads and is ignored; see --help for the variables',
  ]);
  // Under another tool's prefix, only a near miss of a declared name is worth a word.
  assertEquals(unknownVariables(env, specs, ["SRV_"]).map((w) => w.name), [
    "SERVERS_URL",
    "SRV_MAX_SAMPLE_PER_SEND",
    "SRV_ORDERBY",
  ]);
  assert(!warnings.join().includes("hunter2"), "values are never quoted");
});

Deno.test("VarReader names a variable set under a near name when a required one is missing", () => {
  const reader = new VarReader(
    { SRV_BROKER: "k:9092", SRV_URL: "http://h", SRV_JOB: "j" },
    SERVERS.specs,
  );
  SERVERS.read(reader);
  assertEquals(reader.problems.map(formatProblem), [
    '"SRV_BROKERS" is required and not set (SRV_BROKER is set: a misspelling of SRV_BROKERS?)',
  ]);
});

Deno.test("VarReader offers the choice meant by a misspelt one", () => {
  assertEquals(read({ T_URL: "http://h", T_MODE: "gzp" }).problems, [
    '"T_MODE" must be one of none, gzip, lz4 (did you mean gzip?), got "gzp"',
  ]);
});

Deno.test("VarReader offline does not require the variables that only say where a server is", () => {
  const online = new VarReader({}, SERVERS.specs);
  SERVERS.read(online);
  assertEquals(online.problems.map((p) => p.name), ["SRV_BROKERS", "SRV_URL", "SRV_JOB"]);
  const offline = new VarReader({}, SERVERS.specs, { offline: true });
  const values = SERVERS.read(offline);
  assertEquals(offline.problems.map((p) => p.name), ["SRV_JOB"]);
  assertEquals(values.SRV_BROKERS, []);
  assertEquals(values.SRV_URL, { url: "", secure: false });
  const bad = new VarReader({ SRV_URL: "ftp://h", SRV_JOB: "j" }, SERVERS.specs, {
    offline: true,
  });
  SERVERS.read(bad);
  assertEquals(bad.problems.map((p) => p.name), ["SRV_URL"], "a value set is still checked");
});

Deno.test("VarReader refuses an output file sluice could not write to, leaving nothing behind", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const problemsOf = (path: string) => {
      const reader = new VarReader({ SRV_OUT: path }, SERVERS.specs, { offline: true });
      SERVERS.read(reader);
      return reader.problems.filter((p) => p.name === "SRV_OUT").map(formatProblem);
    };
    assertEquals(problemsOf(`${dir}/letters.jsonl`), []);
    Deno.writeTextFileSync(`${dir}/existing.jsonl`, "kept\n");
    assertEquals(problemsOf(`${dir}/existing.jsonl`), []);
    assertEquals(Deno.readTextFileSync(`${dir}/existing.jsonl`), "kept\n");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["existing.jsonl"]);
    assertEquals(problemsOf("/nonexistent/dir/x"), [
      '"SRV_OUT" must be in a directory that exists; there is no directory /nonexistent/dir, ' +
      'got "/nonexistent/dir/x"',
    ]);
    assertEquals(problemsOf(dir), [
      `"SRV_OUT" must name a file, not a directory, got ${JSON.stringify(dir)}`,
    ]);
    assertEquals(problemsOf(`${dir}/existing.jsonl/x`), [
      `"SRV_OUT" must be in a directory; ${dir}/existing.jsonl is not one, got ` +
      JSON.stringify(`${dir}/existing.jsonl/x`),
    ]);
    assertMatch(
      problemsOf("/proc/sluice-dead-letters")[0] ?? "",
      /^"SRV_OUT" must be in a directory sluice can write to; \/proc is not \(/,
    );
    assertEquals(writableFileProblem("/dev/null"), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ConfigError masks URL credentials in every problem and lists the warnings after them", () => {
  const error = new ConfigError(
    [{ name: "-c", message: "cannot use http://admin:supersecret123@ch:8123" }],
    [{
      name: "SRV_ORDERBY",
      message: "is not a variable sluice reads; did you mean SRV_ORDER_BY?",
    }],
  );
  assertEquals(
    error.message,
    "Cannot start: 1 configuration problem\n" +
      '  - "-c" cannot use http://admin:***@ch:8123\n' +
      "and 1 warning\n" +
      '  - "SRV_ORDERBY" is not a variable sluice reads; did you mean SRV_ORDER_BY?',
  );
});
