/**
 * The command line as users meet it: `deno run main.ts` with flags, with no
 * service involved (`tests/integration/main_connect_test.ts` has those that
 * reach the local Kafka and ClickHouse).
 */
import { VERSION } from "../lib/cli.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { sluice, VALID } from "./_main.ts";

const ROOT = new URL("../", import.meta.url);
const SAMPLE = new URL("tests/testdata/samples/pmacctd-print-json.jsonl", ROOT);

Deno.test("main.ts --help prints usage and every variable", async () => {
  const { code, stdout } = await sluice(["--help"], {});
  assertEquals(code, 0);
  assertMatch(stdout, /^sluice \d+\.\d+\.\d+/);
  for (
    const name of [
      "KAFKA_BOOTSTRAP_SERVERS",
      "CLICKHOUSE_DATA_SCHEMA",
      "PROMETHEUS_CLIENT_PORT",
      "--dry-run",
    ]
  ) {
    assert(stdout.includes(name), name);
  }
});

Deno.test("main.ts --version prints the version", async () => {
  const { code, stdout } = await sluice(["--version"], {});
  assertEquals(code, 0);
  assertEquals(stdout, `sluice ${VERSION}\n`);
});

Deno.test("main.ts refuses an unknown flag with exit code 2", async () => {
  const { code, stderr } = await sluice(["--frobnicate"], {});
  assertEquals(code, 2);
  assertMatch(stderr, /frobnicate/);
});

Deno.test("main.ts --check-config accepts a valid configuration and masks secrets", async () => {
  const { code, stdout } = await sluice(["--check-config"], {
    ...VALID,
    CLICKHOUSE_PASSWORD: "s3cret",
  });
  assertEquals(code, 0);
  assertMatch(stdout, /Configuration is valid/);
  assert(!stdout.includes("s3cret"));
});

Deno.test("main.ts --check-config lists every problem and exits 1", async () => {
  const { code, stderr } = await sluice(["--check-config"], {
    ...VALID,
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "ten",
    CLICKHOUSE_DATA_SCHEMA: "bytes,packets:UInt64",
    KAFKA_TOPIC: "",
  });
  assertEquals(code, 1);
  assertMatch(stderr, /Cannot start: 3 configuration problems/);
  assertMatch(stderr, /"CLICKHOUSE_MAX_SAMPLES_PER_SEND" must be an integer >= 1, got "ten"/);
  assertMatch(stderr, /"KAFKA_TOPIC" is required/);
  assertMatch(stderr, /"CLICKHOUSE_DATA_SCHEMA"/);
});

Deno.test("main.ts reads .env and lets the environment win", async () => {
  const cwd = await Deno.makeTempDir();
  const envFile = `${cwd}/custom.env`;
  await Deno.writeTextFile(
    envFile,
    Object.entries(VALID).map(([k, v]) => `${k}=${v}`).join("\n") +
      "\nCLICKHOUSE_TABLE=from_file\nCLICKHOUSE_DB=from_file\n",
  );
  const { code, stdout } = await sluice(["--check-config", "--env-file", envFile], {
    CLICKHOUSE_DB: "from_env",
  });
  assertEquals(code, 0);
  assertMatch(stdout, /from_env\.from_file/);
});

Deno.test("main.ts --check-config warns about misspelt variables and reports every problem at once", async () => {
  const warned = await sluice(["--check-config"], {
    ...VALID,
    CLICKHOUSE_ORDERBY: "stamp_updated",
    CLICKHOUSE_MAX_SAMPLE_PER_SEND: "5000",
    SLUICE_KAFKA_PORT: "19092",
  });
  assertEquals(warned.code, 0, warned.stderr);
  assertMatch(
    warned.stdout,
    /^Warning: "CLICKHOUSE_ORDERBY" is not a variable sluice reads and is ignored; did you mean CLICKHOUSE_ORDER_BY\?$/m,
  );
  assertMatch(warned.stdout, /did you mean CLICKHOUSE_MAX_SAMPLES_PER_SEND\?/);
  assert(
    !warned.stdout.includes("SLUICE_KAFKA_PORT"),
    "the test services' variables are no sluice's",
  );
  const { KAFKA_BOOTSTRAP_SERVERS: _, ...rest } = VALID;
  const refused = await sluice(["--check-config"], {
    ...rest,
    SINK: "clickhous",
    KAFKA_BOOTSTRAP_SERVER: "127.0.0.1:9",
    CLICKHOUSE_DATA_SCHEMA: "bytes:UInt46",
    CLICKHOUSE_ORDER_BY: "a) SETTINGS index_granularity = 1 --",
  });
  assertEquals(refused.code, 1);
  assertMatch(refused.stderr, /^Cannot start: 4 configuration problems/);
  assertMatch(
    refused.stderr,
    /"SINK" must be one of clickhouse, elastic, influxdb, vm \(did you mean clickhouse\?\)/,
  );
  assertMatch(
    refused.stderr,
    /"KAFKA_BOOTSTRAP_SERVERS" is required and not set \(KAFKA_BOOTSTRAP_SERVER is set: a misspelling of KAFKA_BOOTSTRAP_SERVERS\?\)/,
  );
  assertMatch(refused.stderr, /"CLICKHOUSE_DATA_SCHEMA" .*UInt46/);
  assertMatch(refused.stderr, /"CLICKHOUSE_ORDER_BY" must pair its brackets/);
});

Deno.test("main.ts refuses a DEAD_LETTER_FILE in a directory that does not exist, with --check-config and at start", async () => {
  const env = { ...VALID, DEAD_LETTER_FILE: "/nonexistent/dir/x" };
  for (const args of [["--check-config"], []]) {
    const run = await sluice(args, env);
    assertEquals(run.code, 1, run.stdout + run.stderr);
    assertEquals(
      run.stderr,
      "Cannot start: 1 configuration problem\n" +
        '  - "DEAD_LETTER_FILE" must be in a directory that exists; there is no directory ' +
        '/nonexistent/dir, got "/nonexistent/dir/x"\n',
    );
  }
});

Deno.test("main.ts --dry-run needs no Kafka and no sink address, and logs misspelt variables", async () => {
  const record = JSON.stringify({ ip_src: "10.0.0.1", bytes: 1 });
  const { code, stdout, stderr } = await sluice(["--dry-run"], {
    CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64",
    CLICKHOUSE_ORDERBY: "ip_src",
  }, record + "\n");
  assertEquals(code, 0, stderr);
  assertEquals(JSON.parse(stdout), { ip_src: "10.0.0.1", bytes: 1 });
  assertMatch(stderr, /CLICKHOUSE_ORDERBY.*did you mean CLICKHOUSE_ORDER_BY\?/);
  const vm = await sluice(["--dry-run"], { SINK: "vm", VM_JOB: "j", VM_INSTANCE: "i" }, "");
  assertEquals(vm.code, 0, vm.stderr);
});

Deno.test("main.ts --dry-run prints exactly the JSONEachRow lines and a summary", async () => {
  const sample = await Deno.readTextFile(SAMPLE);
  const input = sample + "not json\n" + '{"event_type": "purge_init"}\n' +
    '{"ip_src": "10.0.0.1", "port_src": 70000}\n';
  const { code, stdout, stderr } = await sluice(["--dry-run"], VALID, input);
  assertEquals(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  const records = sample.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(lines.length, records.length);
  assertEquals(JSON.parse(lines[0]!), {
    ip_src: records[0].ip_src,
    ip_dst: records[0].ip_dst,
    port_src: records[0].port_src,
    port_dst: records[0].port_dst,
    stamp_updated: Date.UTC(2026, 10, 21, 23, 27, 47) / 1000,
    packets: records[0].packets,
    bytes: records[0].bytes,
  });
  assertMatch(
    stderr,
    /Dry run: 13 messages, 11 records, 10 rows, 1 skipped, 2 rejected \((decode 1, convert 1|convert 1, decode 1)\)/,
  );
  assertMatch(stderr, /"reason":"convert".*70000/);
});

Deno.test("main.ts --dry-run reads local timestamps in PMACCT_TIMEZONE", async () => {
  const line = JSON.stringify({ stamp_updated: "2026-11-21 23:27:47" });
  const { stdout } = await sluice(
    ["--dry-run"],
    { ...VALID, PMACCT_TIMEZONE: "Europe/Berlin" },
    line + "\n",
  );
  assertEquals(JSON.parse(stdout).stamp_updated, Date.UTC(2026, 10, 21, 22, 27, 47) / 1000);
});

Deno.test("main.ts --dry-run prints the exact bulk lines with SINK=elastic", async () => {
  const record = { ip_src: "10.0.0.1", bytes: 60, stamp_updated: "2026-11-21 23:27:47" };
  const { code, stdout, stderr } = await sluice(["--dry-run"], {
    KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9",
    KAFKA_TOPIC: "flows",
    SINK: "elastic",
  }, JSON.stringify(record) + "\n");
  assertEquals(code, 0, stderr);
  const [action, source, ...rest] = stdout.trim().split("\n").map((l) => JSON.parse(l));
  assertEquals(rest, []);
  assertEquals(action, { index: { _index: "sflow-2026-11-21", _id: "stdin-0-0-0" } });
  assertEquals(source, { ...record, "@timestamp": "2026-11-21T23:27:47.000Z" });
  assertMatch(stderr, /Dry run: 1 messages, 1 records, 1 rows/);
});

Deno.test("main.ts --dry-run prints the exact import lines with SINK=vm", async () => {
  const record = {
    ip_src: "10.0.0.1",
    packets: 1,
    bytes: 60,
    stamp_updated: "2026-11-21 23:27:47",
    writer_id: "k/1",
  };
  const { code, stdout, stderr } = await sluice(["--dry-run"], {
    KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9",
    KAFKA_TOPIC: "flows",
    VM_URL: "http://127.0.0.1:9",
    VM_JOB: "pmacct",
    VM_INSTANCE: "nf1",
    VM_TIMESTAMP_MAX_AGE: String(100 * 365 * 86400),
  }, JSON.stringify(record) + "\n");
  assertEquals(code, 0, stderr);
  const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
  const ms = Date.UTC(2026, 10, 21, 23, 27, 47);
  // One line per VM_METRICS_NAMES entry (bytes,packets), in that order; writer_id is no label.
  const metric = { job: "pmacct", instance: "nf1", ip_src: "10.0.0.1" };
  assertEquals(lines, [
    { metric: { __name__: "bytes", ...metric }, values: [60], timestamps: [ms] },
    { metric: { __name__: "packets", ...metric }, values: [1], timestamps: [ms] },
  ]);
});
