/**
 * The command line against the local Kafka and ClickHouse
 * (`scripts/services.sh`): `--check-config --connect` and a start with no
 * broker answering. Fails when a service is missing.
 */
import { createTopic } from "../_kafka.ts";
import { clickhouseUrl, kafkaBrokers, uniqueName } from "../_services.ts";
import { assertEquals, assertMatch } from "../_assert.ts";
import { sluice, VALID } from "../_main.ts";

/** A fresh topic on the local broker, and VALID pointed at the local Kafka and ClickHouse. */
async function localEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const topic = uniqueName("check");
  await createTopic(topic, 1);
  return {
    ...VALID,
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    CLICKHOUSE_HOST: clickhouseUrl(),
    KAFKA_TOPIC: topic,
    ...extra,
  };
}

Deno.test("main.ts --check-config --connect reaches the real Kafka and ClickHouse", async () => {
  const env = await localEnv();
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
  const env = await localEnv({ CLICKHOUSE_DB: uniqueName("t_check") });
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
    [
      { DEAD_LETTER_TOPIC: `${env.KAFKA_TOPIC}-dead` },
      /^Dead-letter topic: topics not found: .*-dead/m,
    ],
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
  const env = await localEnv();
  const dead = `${env.KAFKA_TOPIC}-dead`;
  const run = await sluice(["--check-config", "--connect"], { ...env, DEAD_LETTER_TOPIC: dead });
  assertEquals(run.code, 1, run.stdout + run.stderr);
  assertMatch(run.stdout, new RegExp(`topics not found: ${dead}`));
});
