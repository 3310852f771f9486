/**
 * sluice against the local ClickHouse cluster (`clickhouse-cluster`: 2
 * shards x 2 replicas of 18.16, `scripts/services.sh`) with
 * `CLICKHOUSE_CLUSTER`: it creates the ReplicatedMergeTree local tables and
 * the Distributed table on every node, writes every record once, through the
 * Distributed table or straight to each shard (`CLICKHOUSE_WRITE_PATH`), and
 * keeps doing so when one replica of each shard is killed mid-stream
 * (`CLICKHOUSE_HOST` lists every node: the one it talks to may be the one
 * killed; what a killed replica held and had not passed on is counted once
 * it is back), when a whole shard is stopped for 30 s, when a Kafka broker
 * of the three-node cluster (`kafka-cluster`) is killed, and when one of
 * three sluice processes of a group is SIGKILLed. Without the clusters these
 * fail, they never skip.
 */
import { CLICKHOUSE_CLUSTER, CLICKHOUSE_CLUSTER_NODES } from "../_clickhouse.ts";
import { flowMessages } from "../_flows.ts";
import { allCommitted, createTopic, partitionPlaces, produce } from "../_kafka.ts";
import { kafkaClusterBrokers, services, uniqueName } from "../_services.ts";
import { clickhouseSinkEnv, startSluice, stopQuietly, stopSluice, waitFor } from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

const SCHEMA =
  "seq:UInt64,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,ip_proto:String," +
  "stamp_updated:DateTime,packets:UInt64,bytes:UInt64";

/** The two ways into the cluster. */
const PATHS = ["distributed", "direct"] as const;

/**
 * A fresh topic, group and database on the cluster, and the env that points
 * sluice at them; with `brokers`, the topic is on that Kafka cluster, its
 * partitions replicated to `replicas` brokers.
 */
async function fixture(
  extra: Record<string, string> = {},
  kafka: { brokers?: string; partitions?: number; replicas?: number[][] } = {},
) {
  assertEquals(CLICKHOUSE_CLUSTER_NODES.length, 4);
  for (const node of CLICKHOUSE_CLUSTER_NODES) await node.expectVersion();
  const name = uniqueName("cl");
  await createTopic(name, kafka.partitions ?? 4, {
    brokers: kafka.brokers,
    replicas: kafka.replicas,
  });
  const db = `sluice_${name}`;
  const env = {
    ...clickhouseSinkEnv({
      topic: name,
      group: `g_${name}`,
      database: db,
      schema: SCHEMA,
      brokers: kafka.brokers,
    }),
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
    brokers: kafka.brokers,
    env,
    db,
    /** Rows in each node's local table, node 1 first. */
    local: () =>
      Promise.all(
        CLICKHOUSE_CLUSTER_NODES.map((node) =>
          node.scalar(`SELECT count() FROM ${db}.flows_local`)
        ),
      ),
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

for (const path of PATHS) {
  Deno.test(`sluice with CLICKHOUSE_CLUSTER (${path} writes) creates the tables on every node and writes N records as N rows over both shards`, async () => {
    const f = await fixture({ CLICKHOUSE_WRITE_PATH: path });
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
      const local = await f.local();
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
      assert(
        sluice.logs.some((l) => l["msg"] === "Connected to ClickHouse" && l["write_path"] === path),
      );
      for (const shard of ["1", "2"]) {
        assertEquals(await sluice.metric("sluice_clickhouse_shard_up", { shard }), 1);
      }
      if (path === "direct") {
        // Each shard counted what it took, and the rows are spread evenly.
        const taken = [
          await sluice.metric("sluice_clickhouse_shard_rows_total", { shard: "1" }),
          await sluice.metric("sluice_clickhouse_shard_rows_total", { shard: "2" }),
        ];
        assertEquals(taken, [local[0], local[2]]);
        assert(Math.abs(taken[0]! - taken[1]!) < n / 10, `an even split: ${taken.join(", ")}`);
      }
      assertEquals(await stopSluice(sluice), 0);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });

  Deno.test(`sluice on the cluster (${path} writes) writes every record exactly once when one replica of each shard is killed mid-stream`, async () => {
    const f = await fixture({ CLICKHOUSE_WRITE_PATH: path });
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

  Deno.test(`sluice on the cluster (${path} writes) holds the rows while a whole shard is stopped for 30 s, shows which, then writes every record exactly once`, async () => {
    const f = await fixture({ CLICKHOUSE_WRITE_PATH: path });
    const n = 10_000;
    await produce(f.topic, flowMessages(0, n / 2));
    const sluice = await startSluice(f.env);
    const shard2 = [CLICKHOUSE_CLUSTER_NODES[2]!, CLICKHOUSE_CLUSTER_NODES[3]!];
    let restarted = false;
    try {
      await waitFor(async () => (await f.rows()) >= n / 2, "the first half");
      const before = await f.local();
      for (const node of shard2) await services("stop", node.service);
      await produce(f.topic, flowMessages(n / 2, n));
      await new Promise((resolve) => setTimeout(resolve, 30_000));
      // The second half is not all acknowledged while shard 2 is away: the
      // offsets are not committed, and /metrics says which shard fails.
      assertEquals(await allCommitted(f.group, f.topic), false);
      assertEquals(await sluice.metric("sluice_clickhouse_shard_up", { shard: "2" }), 0);
      assertEquals(await sluice.metric("sluice_clickhouse_shard_up", { shard: "1" }), 1);
      assert(await sluice.metric("sluice_clickhouse_shard_errors_total", { shard: "2" }) > 0);
      assertEquals(await sluice.metric("sluice_clickhouse_shard_errors_total", { shard: "1" }), 0);
      if (path === "direct") {
        // Shard 1 took its part of the batch under way meanwhile.
        const during = await CLICKHOUSE_CLUSTER_NODES[0]!.scalar(
          `SELECT count() FROM ${f.db}.flows_local`,
        );
        assert(during > before[0]!, `shard 1 written meanwhile: ${before[0]} -> ${during}`);
      } else {
        // Through the Distributed table every insert waits for both shards.
        assertEquals(await sluice.metric("sluice_sink_up"), 0);
      }
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
}

Deno.test("sluice on the cluster writes every record exactly once when a Kafka broker is killed mid-stream", async () => {
  // Replication factor 3 on the three-node Kafka cluster; each broker leads some partitions.
  const brokers = kafkaClusterBrokers();
  const f = await fixture({}, {
    brokers,
    replicas: [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2]],
  });
  const n = 20_000;
  const sluice = await startSluice(f.env);
  // Broker 1 leads two of the four partitions.
  const victim = "kafka-cluster-1";
  let restarted = false;
  try {
    await produce(f.topic, flowMessages(0, n / 2), { brokers, idempotent: true });
    await waitFor(async () => (await f.rows()) >= 2000, "the first rows");
    await services("kill", victim);
    await produce(f.topic, flowMessages(n / 2, n), { brokers, idempotent: true });
    // The partitions that broker led have other leaders now.
    await waitFor(
      async () =>
        (await partitionPlaces(f.topic, brokers)).every((p) => p.leader > 0 && p.leader !== 1),
      "new leaders for broker 1's partitions",
    );
    await waitFor(async () => (await f.rows()) >= n, `${n} rows with broker 1 down`, 180_000);
    await services("start", victim);
    restarted = true;
    await waitFor(() => allCommitted(f.group, f.topic, brokers), "every offset committed", 120_000);
    assertEquals(await f.counts(), { rows: n, distinct: n });
    assertEquals(await stopSluice(sluice), 0);
  } finally {
    await stopQuietly(sluice);
    if (!restarted) await services("start", victim);
    await f.drop();
  }
});

Deno.test("three sluice processes of one group write every record exactly once to the cluster when one is SIGKILLed", async () => {
  const f = await fixture({}, { partitions: 6 });
  const n = 30_000;
  const slice = 2_000;
  const group = [await startSluice(f.env), await startSluice(f.env), await startSluice(f.env)];
  try {
    let produced = 0;
    for (; produced < n / 2; produced += slice) {
      await produce(f.topic, flowMessages(produced, produced + slice));
    }
    // Every process holds partitions and has written, then one dies mid-batch.
    await waitFor(async () => (await f.rows()) >= n / 4, "the first quarter");
    for (const sluice of group) {
      await waitFor(
        async () => await sluice.metric("sluice_kafka_assigned_partitions") > 0,
        "partitions for each process",
      );
    }
    group[0]!.kill("SIGKILL");
    for (; produced < n; produced += slice) {
      await produce(f.topic, flowMessages(produced, produced + slice));
    }
    // The other two take its partitions over and write what it had not committed.
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed", 180_000);
    await waitFor(async () => (await f.rows()) >= n, `${n} rows`);
    assertEquals(await f.counts(), { rows: n, distinct: n });
    for (const sluice of group.slice(1)) assertEquals(await stopSluice(sluice), 0);
  } finally {
    for (const sluice of group) await stopQuietly(sluice);
    await f.drop();
  }
});
