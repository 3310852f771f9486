/**
 * The command line as users meet it: `deno run main.ts` with flags.
 */
import { VERSION } from "../lib/cli.ts";
import { createTopic } from "./_kafka.ts";
import { clickhouseUrl, kafkaBrokers, uniqueName } from "./_services.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { MAIN_ARGS } from "./_sluice.ts";

const ROOT = new URL("../", import.meta.url);
const SAMPLE = new URL("tests/testdata/samples/pmacctd-print-json.jsonl", ROOT);

const VALID = {
  KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9",
  KAFKA_TOPIC: "pmacct.acct",
  CLICKHOUSE_HOST: "127.0.0.1",
  CLICKHOUSE_DATA_SCHEMA:
    "ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,stamp_updated:DateTime,packets:UInt64,bytes:UInt64",
};

async function sluice(args: string[], env: Record<string, string>, stdin?: string) {
  const cwd = await Deno.makeTempDir({ prefix: "sluice-cli-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [...MAIN_ARGS, ...args],
    cwd,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp", ...env },
    clearEnv: true,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    cwd,
  };
}

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

Deno.test("main.ts --check-config --connect reaches the real Kafka and ClickHouse", async () => {
  const topic = uniqueName("check");
  await createTopic(topic, 1);
  const env = {
    ...VALID,
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    CLICKHOUSE_HOST: clickhouseUrl(),
    KAFKA_TOPIC: topic,
  };
  const ok = await sluice(["--check-config", "--connect"], env);
  assertEquals(ok.code, 0, ok.stdout + ok.stderr);
  assertMatch(ok.stdout, /Kafka: reachable/);
  assertMatch(ok.stdout, /clickhouse: reachable/);
  // The local broker creates topics (auto.create.topics.enable=true): sluice would wait for it.
  const missing = await sluice(["--check-config", "--connect"], {
    ...env,
    KAFKA_TOPIC: "no_such_topic_here",
  });
  assertEquals(missing.code, 0, missing.stdout + missing.stderr);
  assertMatch(
    missing.stdout,
    /topics not found: no_such_topic_here \(a warning: the broker creates a topic .*auto\.create\.topics\.enable=true/,
  );
  assertMatch(missing.stdout, /Connection check passed with 1 warning/);
  const down = await sluice(["--check-config", "--connect"], {
    ...env,
    CLICKHOUSE_HOST: "http://127.0.0.1:9",
  });
  assertEquals(down.code, 1);
  assertMatch(
    down.stdout,
    /clickhouse: cannot reach \(sluice would wait for it at start\): Cannot connect to ClickHouse at http:\/\/127\.0\.0\.1:9: .*ECONNREFUSED/,
  );
});

Deno.test("main.ts --check-config --connect does what the start does: credentials, types, keys, the reason on the line", async () => {
  const topic = uniqueName("check");
  await createTopic(topic, 1);
  const env = {
    ...VALID,
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    CLICKHOUSE_HOST: clickhouseUrl(),
    CLICKHOUSE_DB: uniqueName("t_check"),
    KAFKA_TOPIC: topic,
  };
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { CLICKHOUSE_PASSWORD: "wrong" },
      /^clickhouse: sluice would not start: Cannot connect to ClickHouse at .*(Wrong password|Authentication failed)/m,
    ],
    [{ CLICKHOUSE_USER: "no_such_user" }, /^clickhouse: sluice would not start: .*no_such_user/m],
    // 18.16 has no IPv4.
    [
      { CLICKHOUSE_DATA_SCHEMA: "ip_src:IPv4" },
      /^clickhouse: sluice would not start: .*this server has no type IPv4/m,
    ],
    [
      { CLICKHOUSE_ORDER_BY: "(((no_such_column)))" },
      /^clickhouse: sluice would not start: Cannot use "CLICKHOUSE_ORDER_BY" .*no_such_column/m,
    ],
    [
      { CLICKHOUSE_CREATE_TABLE: "NO" },
      /^clickhouse: sluice would not start: .*does not exist and "CLICKHOUSE_CREATE_TABLE" is NO/m,
    ],
    [{ DEAD_LETTER_TOPIC: `${topic}-dead` }, /^Dead-letter topic: topics not found: .*-dead/m],
  ];
  for (const [change, reason] of cases) {
    const run = await sluice(["--check-config", "--connect"], { ...env, ...change });
    assertEquals(run.code, 1, JSON.stringify(change) + run.stdout + run.stderr);
    assertMatch(run.stdout, reason);
    assertMatch(run.stdout, /^Connection check failed: 1 of \d checks$/m);
  }
  const ok = await sluice(["--check-config", "--connect"], {
    ...env,
    CLICKHOUSE_ORDER_BY: "stamp_updated, ip_src",
    CLICKHOUSE_PARTITION_BY: "toYYYYMM(stamp_updated)",
  });
  assertEquals(ok.code, 0, ok.stdout + ok.stderr);
  assertMatch(
    ok.stdout,
    /does not exist and will be created, with ORDER BY and PARTITION BY checked by the server/,
  );
  const created = await fetch(clickhouseUrl(), {
    method: "POST",
    body: `SELECT count() FROM system.databases WHERE name = '${env.CLICKHOUSE_DB}'`,
  });
  assertEquals((await created.text()).trim(), "0", "--check-config --connect creates nothing");
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

Deno.test("main.ts exits 1 naming the brokers when no Kafka broker answers at start", async () => {
  const run = await sluice([], {
    ...VALID,
    KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9",
    CLICKHOUSE_HOST: clickhouseUrl(),
    PROMETHEUS_CLIENT_PORT: "0",
    RETRY_BACKOFF_INITIAL: "0.1",
    RETRY_BACKOFF_MAX: "0.3",
  });
  assertEquals(run.code, 1, run.stderr);
  const failed = run.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .find((l) => l["msg"] === "Cannot start consuming from Kafka");
  assertEquals(failed?.["brokers"], ["127.0.0.1:9"], run.stderr);
  assertMatch(String(failed?.["error"]), /ECONNREFUSED 127\.0\.0\.1:9/);
});

Deno.test("main.ts --check-config --connect names a DEAD_LETTER_TOPIC that does not exist", async () => {
  const topic = uniqueName("check");
  await createTopic(topic, 1);
  const run = await sluice(["--check-config", "--connect"], {
    ...VALID,
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    CLICKHOUSE_HOST: clickhouseUrl(),
    KAFKA_TOPIC: topic,
    DEAD_LETTER_TOPIC: `${topic}-dead`,
  });
  assertEquals(run.code, 1, run.stdout + run.stderr);
  assertMatch(run.stdout, new RegExp(`topics not found: ${topic}-dead`));
});
