/**
 * The local ClickHouse cluster of scripts/services.sh (service
 * `clickhouse-cluster`: four Debian 18.16 nodes, 2 shards x 2 replicas of the
 * cluster `sluice`, replicated through the `zookeeper` service) does what the
 * cluster tests of sluice rely on: ON CLUSTER DDL on every node, a
 * ReplicatedMergeTree local table with a Distributed table over it, replicas
 * that hold the same rows, a killed replica that the Distributed table works
 * around and that catches up when it is back, and ReplicatedMergeTree's
 * deduplication of a block inserted twice. Plain HTTP queries, no sluice code.
 *
 * Without the cluster these fail, they never skip: `scripts/test.sh` starts it
 * (`scripts/services.sh start clickhouse-cluster`).
 */
import {
  CLICKHOUSE_CLUSTER,
  CLICKHOUSE_CLUSTER_NODES,
  type ClickHouseClusterNode,
} from "../_clickhouse.ts";
import { services, uniqueName } from "../_services.ts";
import { waitFor } from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

/** Rows per insert. */
const N = 10_000;

/**
 * How long an ON CLUSTER query waits for every node (18.16's default is 180 s);
 * `wait_end_of_query` makes a failure the HTTP status, not a line after a 200.
 */
const DDL = { distributed_ddl_task_timeout: "60", wait_end_of_query: "1" };

/** Node N of the cluster (1 to 4). */
function node(n: number): ClickHouseClusterNode {
  const found = CLICKHOUSE_CLUSTER_NODES[n - 1];
  if (found === undefined) throw new RangeError(`Cannot find cluster node ${n}`);
  return found;
}

/** Fails, naming the service to start, unless every node answers as ClickHouse 18.16. */
async function expectCluster(): Promise<void> {
  assertEquals(CLICKHOUSE_CLUSTER_NODES.length, 4);
  for (const n of CLICKHOUSE_CLUSTER_NODES) {
    try {
      await n.expectVersion();
    } catch (error) {
      throw new Error(
        `Cannot test the ClickHouse cluster: ${n.replica} at ${n.url} does not answer as ` +
          `ClickHouse 18.16 (scripts/services.sh start clickhouse-cluster)`,
        { cause: error },
      );
    }
  }
}

/**
 * Runs an ON CLUSTER statement from node 1 and checks that every node ran it:
 * the answer has one line per host, `host port status error ...`, status 0.
 */
async function onCluster(sql: string): Promise<void> {
  const text = await node(1).query(sql, DDL);
  const hosts = text.split("\n").filter((line) => line !== "").map((line) => line.split("\t"));
  const what = `${sql.slice(0, 60)}...: ${JSON.stringify(text)}`;
  assertEquals(hosts.length, CLICKHOUSE_CLUSTER_NODES.length, `every node runs ${what}`);
  assert(hosts.every(([, , status]) => status === "0"), `every node succeeds in ${what}`);
}

/** A fresh database with a replicated local table and a Distributed table over it, on every node. */
async function clusterTables() {
  await expectCluster();
  const db = uniqueName("cluster");
  await onCluster(`CREATE DATABASE ${db} ON CLUSTER ${CLICKHOUSE_CLUSTER}`);
  await onCluster(
    `CREATE TABLE ${db}.local ON CLUSTER ${CLICKHOUSE_CLUSTER} (id UInt64, s String) ` +
      `ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/${db}/local', '{replica}') ` +
      `ORDER BY id`,
  );
  await onCluster(
    `CREATE TABLE ${db}.dist ON CLUSTER ${CLICKHOUSE_CLUSTER} AS ${db}.local ` +
      `ENGINE = Distributed(${CLICKHOUSE_CLUSTER}, ${db}, local, rand())`,
  );
  return {
    local: `${db}.local`,
    dist: `${db}.dist`,
    drop: () =>
      node(1).query(`DROP DATABASE IF EXISTS ${db} ON CLUSTER ${CLICKHOUSE_CLUSTER}`, DDL),
  };
}

/** Inserts rows `from` to `to - 1` into `table` on node `on`, as JSONEachRow, synchronously on every shard. */
async function insertRows(on: ClickHouseClusterNode, table: string, from: number, to: number) {
  const lines: string[] = [];
  for (let id = from; id < to; id++) lines.push(JSON.stringify({ id, s: `row ${id}` }));
  await on.query(`INSERT INTO ${table} FORMAT JSONEachRow\n${lines.join("\n")}\n`, {
    insert_distributed_sync: "1",
  });
}

/** Waits until node `n` has fetched every part its replication queue names. */
async function syncReplica(n: ClickHouseClusterNode, local: string): Promise<void> {
  await n.query(`SYSTEM SYNC REPLICA ${local}`);
}

/** What a node's local table holds: rows, distinct ids, and an order-free hash of the rows. */
async function fingerprint(n: ClickHouseClusterNode, local: string): Promise<string> {
  const [row] = await n.rows<Record<string, string | number>>(
    `SELECT count() AS rows, uniqExact(id) AS ids, groupBitXor(cityHash64(id, s)) AS hash FROM ${local}`,
  );
  return `${row?.rows} rows, ${row?.ids} ids, hash ${row?.hash}`;
}

/** Rows and distinct ids seen through the Distributed table from node `n`, as "rows/ids". */
async function distCount(n: ClickHouseClusterNode, dist: string): Promise<string> {
  const [row] = await n.rows<Record<string, string | number>>(
    `SELECT count() AS rows, uniqExact(id) AS ids FROM ${dist}`,
  );
  return `${row?.rows}/${row?.ids}`;
}

Deno.test("ClickHouse cluster: four 18.16 nodes form cluster sluice of 2 shards x 2 replicas, each with its shard and replica macros and a ZooKeeper session", async () => {
  await expectCluster();
  for (const n of CLICKHOUSE_CLUSTER_NODES) {
    const macros = await n.rows<{ macro: string; substitution: string }>(
      "SELECT macro, substitution FROM system.macros ORDER BY macro",
    );
    assertEquals(macros, [
      { macro: "replica", substitution: n.replica },
      { macro: "shard", substitution: `0${n.shard}` },
    ]);
    assertEquals(await n.scalar("SELECT count() > 0 FROM system.zookeeper WHERE path = '/'"), 1);
    // Each address of the cluster, asked for its own macros, is the node the layout says.
    const replicas = await n.rows<{ shard_num: number; replica_num: number; port: number }>(
      `SELECT shard_num, replica_num, port FROM system.clusters ` +
        `WHERE cluster = '${CLICKHOUSE_CLUSTER}' ORDER BY shard_num, replica_num`,
    );
    const names: string[] = [];
    for (const r of replicas) {
      const name = await n.query(
        `SELECT substitution FROM remote('127.0.0.1:${r.port}', system.macros) WHERE macro = 'replica'`,
      );
      names.push(`shard ${r.shard_num} replica ${r.replica_num}: ${name.trim()}`);
    }
    assertEquals(names, [
      "shard 1 replica 1: clickhouse-cluster-1",
      "shard 1 replica 2: clickhouse-cluster-2",
      "shard 2 replica 1: clickhouse-cluster-3",
      "shard 2 replica 2: clickhouse-cluster-4",
    ]);
  }
});

Deno.test("ClickHouse cluster: N rows inserted through the Distributed table are N rows from every node, split over both shards, the same on both replicas of each", async () => {
  const t = await clusterTables();
  try {
    await insertRows(node(1), t.dist, 0, N);
    for (const n of CLICKHOUSE_CLUSTER_NODES) await syncReplica(n, t.local);
    for (const n of CLICKHOUSE_CLUSTER_NODES) {
      assertEquals(await distCount(n, t.dist), `${N}/${N}`, `through ${n.replica}`);
    }
    const shard1 = await fingerprint(node(1), t.local);
    const shard2 = await fingerprint(node(3), t.local);
    assertEquals(await fingerprint(node(2), t.local), shard1, "the replicas of shard 1");
    assertEquals(await fingerprint(node(4), t.local), shard2, "the replicas of shard 2");
    const rows1 = await node(1).scalar(`SELECT count() FROM ${t.local}`);
    const rows2 = await node(3).scalar(`SELECT count() FROM ${t.local}`);
    assertEquals(rows1 + rows2, N);
    // rand() sends about half to each shard.
    assert(rows1 > N / 4 && rows2 > N / 4, `both shards get rows: ${rows1} and ${rows2}`);
  } finally {
    await t.drop();
  }
});

Deno.test("ClickHouse cluster: with one replica killed the Distributed table takes and counts every row, and the replica catches up when it starts again", async () => {
  const t = await clusterTables();
  const victim = node(3);
  const partner = node(4);
  try {
    await insertRows(node(1), t.dist, 0, N);
    // Both replicas hold the first rows before one of them dies.
    for (const n of CLICKHOUSE_CLUSTER_NODES) await syncReplica(n, t.local);
    await services("kill", victim.service);
    try {
      // Through a node of the other shard and through the victim's partner.
      await insertRows(node(1), t.dist, N, 2 * N);
      await insertRows(partner, t.dist, 2 * N, 3 * N);
      for (const n of [node(1), node(2), partner]) await syncReplica(n, t.local);
      for (const n of [node(1), node(2), partner]) {
        assertEquals(await distCount(n, t.dist), `${3 * N}/${3 * N}`, `through ${n.replica}`);
      }
      assertEquals(
        await fingerprint(node(2), t.local),
        await fingerprint(node(1), t.local),
        "the replicas of shard 1",
      );
    } finally {
      await services("start", victim.service);
    }
    // The restarted replica fetches the parts it missed from its partner.
    const expected = await fingerprint(partner, t.local);
    await waitFor(async () => {
      await syncReplica(victim, t.local).catch(() => undefined);
      return await fingerprint(victim, t.local) === expected;
    }, `${victim.replica} holding what ${partner.replica} holds (${expected})`);
    for (const n of CLICKHOUSE_CLUSTER_NODES) {
      assertEquals(await distCount(n, t.dist), `${3 * N}/${3 * N}`, `through ${n.replica}`);
    }
  } finally {
    await t.drop();
  }
});

Deno.test("ClickHouse cluster: ReplicatedMergeTree stores a block inserted twice once, also when the second copy goes to the other replica", async () => {
  const t = await clusterTables();
  try {
    const block = "INSERT INTO " + t.local + " VALUES (1, 'a'), (2, 'b'), (3, 'c')";
    await node(1).query(block);
    await node(1).query(block);
    await node(2).query(block);
    // Another block is stored: only identical ones are dropped.
    await node(2).query(`INSERT INTO ${t.local} VALUES (4, 'd')`);
    for (const n of [node(1), node(2)]) await syncReplica(n, t.local);
    for (const n of [node(1), node(2)]) {
      assertEquals(await n.scalar(`SELECT count() FROM ${t.local}`), 4, `rows on ${n.replica}`);
    }
    assertEquals(await fingerprint(node(2), t.local), await fingerprint(node(1), t.local));
    // The other shard's local table got nothing.
    assertEquals(await node(3).scalar(`SELECT count() FROM ${t.local}`), 0);
    assertEquals(await distCount(node(4), t.dist), "4/4");
  } finally {
    await t.drop();
  }
});
