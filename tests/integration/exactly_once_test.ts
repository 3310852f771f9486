/**
 * Effectively once into a current ClickHouse (26.x, `scripts/services.sh`
 * service `clickhouse26`): pinned ranges and insert deduplication tokens
 * (see `lib/pipeline/mod.ts`) keep every record in the table exactly once
 * through SIGKILLs and rebalances, against the real broker and server.
 */
import { flowMessages } from "../_flows.ts";
import { allCommitted, committedMetadata, createTopic, offsets, produce } from "../_kafka.ts";
import { uniqueName } from "../_services.ts";
import {
  clickhouseSinkEnv,
  type SluiceProcess,
  startSluice,
  stopQuietly,
  stopSluice,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

const SCHEMA =
  "seq:UInt64,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,ip_proto:String," +
  "stamp_updated:DateTime,packets:UInt64,bytes:UInt64";

/** The HTTP URL of the local ClickHouse 26.x. */
function clickhouse26Url(): string {
  return `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE26_HTTP_PORT") ?? "28123"}`;
}

async function query26(sql: string): Promise<string> {
  const response = await fetch(`${clickhouse26Url()}/`, { method: "POST", body: sql });
  const text = await response.text();
  if (!response.ok) throw new Error(`Cannot run ${JSON.stringify(sql)}: ${text.trim()}`);
  return text;
}

async function scalar26(sql: string): Promise<number> {
  try {
    return Number((await query26(sql)).trim());
  } catch (error) {
    // The table does not exist yet: sluice creates it at start.
    if (/Code: (60|81)\b/.test(String(error))) return 0;
    throw error;
  }
}

/** A fresh topic, group and database on ClickHouse 26.x, and the env that points sluice at them. */
async function fixture(partitions: number, extra: Record<string, string> = {}) {
  const name = uniqueName("eo");
  await createTopic(name, partitions);
  const db = `sluice_${name}`;
  const table = `${db}.flows`;
  const env: Record<string, string> = {
    ...clickhouseSinkEnv({ topic: name, group: `g_${name}`, database: db, schema: SCHEMA }),
    CLICKHOUSE_HOST: clickhouse26Url(),
    CLICKHOUSE_ORDER_BY: "seq",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "300",
    CLICKHOUSE_MAX_TIME_TO_SEND: "0.5",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    // A short session lets the group hand a killed member's partitions on quickly.
    KAFKA_SESSION_TIMEOUT: "6",
    ...extra,
  };
  return {
    topic: name,
    group: `g_${name}`,
    env,
    count: () => scalar26(`SELECT count() FROM ${table}`),
    distinct: () => scalar26(`SELECT uniqExact(seq) FROM ${table}`),
    drop: () => query26(`DROP DATABASE IF EXISTS ${db}`),
  };
}

/**
 * SIGKILLs sluice at a moment when a pinned range is committed and its
 * insert not yet acknowledged: the process is frozen (SIGSTOP), the
 * group's metadata read, and the kill sent only when a range is pinned;
 * otherwise the process goes on (SIGCONT) and the check is repeated.
 */
async function killWithPinOutstanding(sluice: SluiceProcess, group: string, topic: string) {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    sluice.kill("SIGSTOP");
    const pinned = Object.values(await committedMetadata(group, topic)).some((m) =>
      /^sluice-range:\d+\.\d+-\d+\.\d+$/.test(m)
    );
    if (pinned) {
      sluice.kill("SIGKILL");
      await sluice.status;
      return;
    }
    sluice.kill("SIGCONT");
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
  }
  throw new Error("Cannot catch sluice with a pinned range outstanding within 60 s");
}

/** Waits for every record, then checks that none is there twice and every offset is committed. */
async function assertExactlyOnce(f: Awaited<ReturnType<typeof fixture>>, n: number) {
  await waitFor(async () => (await f.distinct()) === n, `all ${n} distinct records`, 180_000);
  await waitFor(() => allCommitted(f.group, f.topic), "every offset committed", 60_000);
  assertEquals(await f.count(), n, "no record is in the table twice");
}

Deno.test("sluice writes every record once into ClickHouse 26.x though SIGKILLed three times mid-stream", async () => {
  const f = await fixture(4);
  const n = 30_000;
  await produce(f.topic, flowMessages(0, n));
  let sluice: SluiceProcess | undefined;
  try {
    for (const share of [0.15, 0.4, 0.7]) {
      sluice = await startSluice(f.env);
      await waitFor(async () => (await f.count()) >= share * n, `${share * n} rows`, 120_000);
      await killWithPinOutstanding(sluice, f.group, f.topic);
    }
    assert((await f.distinct()) < n, "the last kill came before the end");
    sluice = await startSluice(f.env);
    await assertExactlyOnce(f, n);
    assert(
      sluice.logs.some((l) => l["msg"] === "Forming a pinned range again"),
      "a killed run's pinned ranges were formed again",
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});

Deno.test("sluice writes kafka_multi_values messages once into ClickHouse 26.x though a batch ends inside a message", async () => {
  // 7 records per message and 300 rows per batch: most batches end inside a message.
  const f = await fixture(2);
  const n = 14_000;
  const records = flowMessages(0, n);
  const values: string[] = [];
  for (let i = 0; i < n; i += 7) values.push(records.slice(i, i + 7).join("\n"));
  // In slices: the producer sends up to 5,000 messages per request, too large at 7 records each.
  for (let i = 0; i < values.length; i += 500) await produce(f.topic, values.slice(i, i + 500));
  let sluice: SluiceProcess | undefined;
  try {
    for (const share of [0.3, 0.6]) {
      sluice = await startSluice(f.env);
      await waitFor(async () => (await f.count()) >= share * n, `${share * n} rows`, 120_000);
      sluice.kill("SIGKILL");
      await sluice.status;
    }
    sluice = await startSluice(f.env);
    await assertExactlyOnce(f, n);
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});

Deno.test("sluice writes every record once into ClickHouse 26.x while members join, leave and die", async () => {
  // Debug lines (every commit, pin and write) make a failure readable.
  const f = await fixture(4, { LOG_LEVEL: "debug" });
  const n = 30_000;
  await produce(f.topic, flowMessages(0, n));
  const members: SluiceProcess[] = [];
  try {
    members.push(await startSluice(f.env), await startSluice(f.env));
    await waitFor(async () => (await f.count()) >= 0.2 * n, `${0.2 * n} rows`, 120_000);
    // A third member joins: every partition is revoked and assigned again.
    members.push(await startSluice(f.env));
    await waitFor(async () => (await f.count()) >= 0.5 * n, `${0.5 * n} rows`, 120_000);
    // One dies: its partitions move once its session times out.
    members[0]!.kill("SIGKILL");
    await members[0]!.status;
    try {
      await assertExactlyOnce(f, n);
    } catch (error) {
      // Every member's log, the killed one's too: a range written twice may
      // have been written by either side of a move.
      const logs = members.map((m, i) =>
        `member ${i}${i === 0 ? " (SIGKILLed)" : ""}:\n${
          m.logs.filter((l) => l["level"] !== "debug").slice(-60).map((l) => JSON.stringify(l))
            .join("\n")
        }`
      );
      // The whole logs, debug lines too, are kept for reading after the run.
      const kept = await Deno.makeTempFile({ prefix: "sluice-eo-members-", suffix: ".log" });
      await Deno.writeTextFile(
        kept,
        members.map((m, i) => m.logs.map((l) => JSON.stringify({ member: i, ...l })).join("\n"))
          .join("\n"),
      );
      logs.push(`every member's whole log: ${kept}`);
      const committed = JSON.stringify(await offsets(f.group, f.topic)) + "\n" + await query26(
        `SELECT count() AS dups, min(seq), max(seq), groupArray(seq) FROM (SELECT seq FROM ` +
          `${f.env["CLICKHOUSE_DB"]}.flows GROUP BY seq HAVING count() > 1) FORMAT JSONEachRow`,
      );
      throw new Error(`${error}\n${committed}\n${logs.join("\n")}`);
    }
    for (const m of members.slice(1)) assertEquals(await stopSluice(m), 0);
  } finally {
    for (const m of members) await stopQuietly(m);
    await f.drop();
  }
});

Deno.test("sluice says at start when an existing ClickHouse 26.x table does not deduplicate inserts", async () => {
  const f = await fixture(1);
  const db = f.env["CLICKHOUSE_DB"]!;
  let sluice: SluiceProcess | undefined;
  try {
    await query26(`CREATE DATABASE ${db}`);
    await query26(
      `CREATE TABLE ${db}.flows (seq UInt64, ip_src String, ip_dst String, port_src UInt16, ` +
        `port_dst UInt16, ip_proto String, stamp_updated DateTime, packets UInt64, bytes UInt64) ` +
        `ENGINE = MergeTree ORDER BY seq`,
    );
    await produce(f.topic, flowMessages(0, 100));
    sluice = await startSluice(f.env);
    await waitFor(async () => (await f.count()) === 100, "100 rows");
    const warning = sluice.logs.find((l) =>
      String(l["msg"]).startsWith("The ClickHouse table does not deduplicate inserts")
    );
    assertEquals(
      warning?.["fix"],
      `ALTER TABLE \`${db}\`.\`flows\` MODIFY SETTING non_replicated_deduplication_window = 1000`,
    );
    assert(sluice.logs.some((l) => l["msg"] === "Connected to ClickHouse" && !l["deduplication"]));
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});
