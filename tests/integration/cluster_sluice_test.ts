/**
 * sluice against the local ClickHouse cluster (`clickhouse-cluster`: 2
 * shards x 2 replicas of 18.16, `scripts/services.sh`) with
 * `CLICKHOUSE_CLUSTER`: it creates the ReplicatedMergeTree local tables and
 * the Distributed table on every node, writes every record once through it,
 * and keeps doing so when one replica of each shard is killed mid-stream
 * (`CLICKHOUSE_HOST` lists every node: the one it talks to may be the one
 * killed; what a killed replica held and had not passed on is counted once
 * it is back). Without the cluster these fail, they never skip.
 */
import { CLICKHOUSE_CLUSTER, CLICKHOUSE_CLUSTER_NODES } from "../_clickhouse.ts";
import { flowMessages } from "../_flows.ts";
import { allCommitted, createTopic, produce } from "../_kafka.ts";
import { services, uniqueName } from "../_services.ts";
import { clickhouseSinkEnv, startSluice, stopQuietly, stopSluice, waitFor } from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

const SCHEMA =
  "seq:UInt64,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,ip_proto:String," +
  "stamp_updated:DateTime,packets:UInt64,bytes:UInt64";

/** A fresh topic, group and database on the cluster, and the env that points sluice at them. */
async function fixture(extra: Record<string, string> = {}) {
  assertEquals(CLICKHOUSE_CLUSTER_NODES.length, 4);
  for (const node of CLICKHOUSE_CLUSTER_NODES) await node.expectVersion();
  const name = uniqueName("cl");
  await createTopic(name, 4);
  const db = `sluice_${name}`;
  const env = {
    ...clickhouseSinkEnv({ topic: name, group: `g_${name}`, database: db, schema: SCHEMA }),
    CLICKHOUSE_HOST: CLICKHOUSE_CLUSTER_NODES.map((n) => n.url).join(","),
    CLICKHOUSE_CLUSTER,
    CLICKHOUSE_ORDER_BY: "seq",
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "500",
    CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
    ...extra,
  };
  const first = CLICKHOUSE_CLUSTER_NODES[0]!;
  return {
    topic: name,
    group: `g_${name}`,
    env,
    db,
    /** Rows and distinct records through the Distributed table, asked of a live node. */
    async counts(node = first): Promise<{ rows: number; distinct: number }> {
      // Replication is asynchronous: every live replica first takes what it lacks.
      for (const n of CLICKHOUSE_CLUSTER_NODES) {
        await n.query(`SYSTEM SYNC REPLICA ${db}.flows_local`).catch(() => {});
      }
      const [row] = await node.rows<{ c: string; d: string }>(
        `SELECT count() AS c, uniqExact(seq) AS d FROM ${db}.flows`,
      );
      return { rows: Number(row!.c), distinct: Number(row!.d) };
    },
    /** The rows so far, 0 while sluice has not created the tables yet. */
    async rows(node = first): Promise<number> {
      return (await this.counts(node).catch(() => ({ rows: 0 }))).rows;
    },
    drop: () =>
      first.query(`DROP DATABASE IF EXISTS ${db} ON CLUSTER ${CLICKHOUSE_CLUSTER}`).catch(() => {}),
  };
}

Deno.test("sluice with CLICKHOUSE_CLUSTER creates the tables on every node and writes N records as N rows over both shards", async () => {
  const f = await fixture();
  const n = 5000;
  await produce(f.topic, flowMessages(0, n));
  const sluice = await startSluice(f.env);
  try {
    await waitFor(async () => (await f.rows()) === n, `${n} rows in the Distributed table`);
    assertEquals(await f.counts(), { rows: n, distinct: n });
    for (const node of CLICKHOUSE_CLUSTER_NODES) {
      const [t] = await node.rows<{ engine: string }>(
        `SELECT engine FROM system.tables WHERE database = '${f.db}' AND name = 'flows_local'`,
      );
      assertEquals(t?.engine, "ReplicatedMergeTree");
    }
    // Both shards hold rows, and the replicas of a shard the same ones.
    const local = await Promise.all(
      CLICKHOUSE_CLUSTER_NODES.map((node) =>
        node.scalar(`SELECT count() FROM ${f.db}.flows_local`)
      ),
    );
    assertEquals(local[0], local[1]);
    assertEquals(local[2], local[3]);
    assertEquals(local[0]! + local[2]!, n);
    assert(local[0]! > 0 && local[2]! > 0, `rows on both shards: ${local.join(", ")}`);
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    assert(
      sluice.logs.some((l) =>
        l["msg"] === "Created ClickHouse table" && l["cluster"] === CLICKHOUSE_CLUSTER
      ),
    );
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});

Deno.test("sluice on the cluster writes every record exactly once when one replica of each shard is killed mid-stream", async () => {
  const f = await fixture();
  const n = 20_000;
  await produce(f.topic, flowMessages(0, n / 2));
  const sluice = await startSluice(f.env);
  // Node 1 is the one sluice talks to first: killing it makes sluice fail over.
  const victims = [CLICKHOUSE_CLUSTER_NODES[0]!, CLICKHOUSE_CLUSTER_NODES[3]!];
  let restarted = false;
  try {
    await waitFor(async () => (await f.rows()) >= 2000, "the first rows");
    for (const victim of victims) await services("kill", victim.service);
    await produce(f.topic, flowMessages(n / 2, n));
    // Acknowledged by the live replicas: every offset is committed.
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed", 120_000);
    assert(sluice.logs.some((l) => l["msg"] === "Trying the next ClickHouse server"));
    assertEquals(await stopSluice(sluice), 0);
    // A part the killed replica took and had not passed on yet is back with
    // it: the replicas catch up, and the shards hold every record once.
    for (const victim of victims) await services("start", victim.service);
    restarted = true;
    await waitFor(async () => (await f.rows()) >= n, `${n} rows once the replicas are back`);
    assertEquals(await f.counts(), { rows: n, distinct: n });
  } finally {
    await stopQuietly(sluice);
    if (!restarted) { for (const victim of victims) await services("start", victim.service); }
    await f.drop();
  }
});

Deno.test("sluice on the cluster holds the rows while a whole shard is stopped for 30 s, then writes every record exactly once", async () => {
  const f = await fixture();
  const n = 10_000;
  await produce(f.topic, flowMessages(0, n / 2));
  const sluice = await startSluice(f.env);
  const shard2 = [CLICKHOUSE_CLUSTER_NODES[2]!, CLICKHOUSE_CLUSTER_NODES[3]!];
  let restarted = false;
  try {
    await waitFor(async () => (await f.rows()) >= n / 2, "the first half");
    for (const node of shard2) await services("stop", node.service);
    await produce(f.topic, flowMessages(n / 2, n));
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    // Nothing of the second half is acknowledged while shard 2 is away: its
    // offsets are not committed, and sluice says why.
    assertEquals(await allCommitted(f.group, f.topic), false);
    assertEquals(await sluice.metric("sluice_sink_up"), 0);
    for (const node of shard2) await services("start", node.service);
    restarted = true;
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed", 120_000);
    await waitFor(async () => (await f.rows()) >= n, `${n} rows once shard 2 is back`);
    assertEquals(await f.counts(), { rows: n, distinct: n });
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    if (!restarted) { for (const node of shard2) await services("start", node.service); }
    await f.drop();
  }
});
