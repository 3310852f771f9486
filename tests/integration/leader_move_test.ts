/**
 * Partition leaders moving between brokers while sluice reads, against the
 * real three-node Kafka cluster of `scripts/services.sh` (service
 * `kafka-cluster`; node N is broker id N and service `kafka-cluster-N`) and
 * the current ClickHouse (26.x, service `clickhouse26`), where insert
 * deduplication tokens make a batch written again harmless.
 *
 * The moves: a planned one (the partitions reassigned so that other brokers
 * are their preferred leaders, then a preferred leader election), an
 * unplanned one (SIGKILL of the broker that then leads most partitions, back
 * 15 s later), and the leaderships handed back to that broker once it is in
 * sync again. Records are produced all along, by an idempotent producer, so
 * that Kafka holds each one exactly once. The group's coordinator is on a
 * broker that stays up in the first test, on the broker killed in the second.
 */
import { flowRecord } from "../../scripts/demo_feed.ts";
import { CLICKHOUSE_26 } from "../_clickhouse.ts";
import { flowMessages } from "../_flows.ts";
import {
  allCommitted,
  client,
  createTopic,
  groupCoordinator,
  offsets,
  type PartitionPlace,
  partitionPlaces,
  preferLeaders,
  produce,
} from "../_kafka.ts";
import { kafkaClusterBrokers, services, uniqueName } from "../_services.ts";
import {
  clickhouseSinkEnv,
  type SluiceProcess,
  startSluice,
  stopQuietly,
  stopSluice,
  waitFor,
  warnings,
} from "../_sluice.ts";
import { assertEquals } from "../_assert.ts";

/** The demo's pmacct columns, plus `tag`: the record's number, unique. */
const SCHEMA = "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
  "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime,packets:UInt64," +
  "bytes:UInt64,tag:UInt64";

/** Records, produced in slices with a pause between them. */
const RECORDS = 60_000;
const SLICE = 1_000;
const SLICE_PAUSE_MS = 300;

/** Each partition's replicas at creation, preferred leader first: brokers 1, 2, 3 and 1 lead. */
const INITIAL = [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2]];
/** After the planned move every partition has another leader, and broker 2 leads three of four. */
const PLANNED = [[2, 1, 3], [3, 2, 1], [2, 3, 1], [2, 1, 3]];
/** The broker killed: it leads most partitions after the planned move. */
const VICTIM = 2;
/** A broker that stays up. */
const SURVIVOR = 3;
/** How long the killed broker stays down. */
const DOWN_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

function leadersOf(places: readonly PartitionPlace[]): number[] {
  return places.map((p) => p.leader);
}

function describe(places: readonly PartitionPlace[]): string {
  return places.map((p) => `p${p.partition}:${p.leader}[${p.replicas}]{${p.isr}}`).join(" ");
}

/** Whether two lists are equal, for a wait. */
function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** What sluice logged above info level, each message and error once with its count. */
function tally(sluice: SluiceProcess): string {
  const counts = new Map<string, number>();
  for (const l of sluice.logs) {
    if (l["level"] === "info" || l["level"] === "debug") continue;
    const line = `${l["level"]} ${l["msg"]}${
      l["error"] ? `: ${String(l["error"]).slice(0, 100)}` : ""
    }`;
    counts.set(line, (counts.get(line) ?? 0) + 1 + Number(l["suppressed"] ?? 0));
  }
  return [...counts].map(([line, n]) => `${n} x ${line}`).join("\n");
}

/** What `read` returns once it does not fail (a leader election under way), within 30 s. */
function settled<T>(read: () => Promise<T>, what: string): Promise<NonNullable<T>> {
  return waitFor(() => read().catch(() => undefined), what, 30_000);
}

/**
 * Runs the scenario with the group's coordinator on broker `coordinator`.
 *
 * @param coordinator The broker whose `__consumer_offsets` partition holds the group.
 */
async function leadersMove(coordinator: number): Promise<void> {
  const brokers = kafkaClusterBrokers();
  const cluster = await (async () => {
    const admin = client(brokers).admin();
    await admin.connect();
    try {
      return (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort((a, b) => a - b);
    } finally {
      await admin.disconnect();
    }
  })().catch((error) => {
    throw new Error(
      `Cannot reach the Kafka cluster at ${brokers} (${error}); ` +
        "start it with bash scripts/services.sh start kafka-cluster",
    );
  });
  assertEquals(cluster, [1, 2, 3], `the brokers of kafka-cluster at ${brokers}`);
  await CLICKHOUSE_26.expectVersion();

  const topic = uniqueName("leader_move");
  const db = `sluice_${topic}`;
  const table = `${db}.flows`;
  await createTopic(topic, INITIAL.length, { brokers, replicas: INITIAL });
  // The group's __consumer_offsets partition is led by `coordinator`, moved there if need be.
  const group = `g_${topic}`;
  const home = await groupCoordinator(group, brokers);
  if (home.leader !== coordinator) {
    const replicas = [coordinator, ...home.replicas.filter((id) => id !== coordinator)];
    await preferLeaders("__consumer_offsets", { [home.partition]: replicas }, brokers);
  }
  const env: Record<string, string> = {
    ...clickhouseSinkEnv({ topic, group, database: db, schema: SCHEMA, brokers }),
    CLICKHOUSE_HOST: CLICKHOUSE_26.url,
    CLICKHOUSE_ORDER_BY: "tag",
    // Small batches: hundreds of inserts, many of them around each move.
    CLICKHOUSE_MAX_SAMPLES_PER_SEND: "250",
    CLICKHOUSE_MAX_TIME_TO_SEND: "0.5",
    RETRY_BACKOFF_INITIAL: "0.2",
    RETRY_BACKOFF_MAX: "2",
  };
  const written = () => CLICKHOUSE_26.scalar(`SELECT count() FROM ${table}`);
  const distinct = () => CLICKHOUSE_26.scalar(`SELECT uniqExact(tag) FROM ${table}`);

  // The producer runs beside everything below, until all is produced or the test ends.
  const now = Date.now();
  const values = flowMessages(0, RECORDS, (i) => ({ ...flowRecord(i, now), tag: i }));
  let produced = 0;
  let ended = false;
  const producing = (async () => {
    for (let from = 0; from < RECORDS && !ended; from += SLICE) {
      await produce(topic, values.slice(from, from + SLICE), { brokers, idempotent: true });
      produced = from + SLICE;
      await sleep(SLICE_PAUSE_MS);
    }
  })().then(() => undefined, (error: unknown) => error);

  // What happened when, for the error messages.
  const t0 = Date.now();
  const history: string[] = [];
  const note = async (what: string) => {
    const places = await partitionPlaces(topic, brokers).then(describe, (e) => `(${e})`);
    history.push(
      `${((Date.now() - t0) / 1000).toFixed(1)} s ${what}: ${await written()} rows, ` +
        `${produced} produced, leaders ${places}`,
    );
  };

  let sluice: SluiceProcess | undefined;
  let exited: Deno.CommandStatus | undefined;
  let victimDown = false;
  // Every broker's metadata follows the controller's a moment later.
  const ledBy = (leaders: number[], what: string) =>
    waitFor(
      async () => sameList(leadersOf(await partitionPlaces(topic, brokers)), leaders),
      `${what} (${leaders}) in the metadata`,
      30_000,
    );
  // sluice must live through every move: a wait fails at once when it exited.
  const alive = () => {
    if (exited) throw new Error(`sluice exited with code ${exited.code}`);
  };
  const rows = async (at: number) => {
    alive();
    return (await written()) >= at;
  };
  try {
    sluice = await startSluice(env);
    void sluice.status.then((status) => {
      exited = status;
    });
    await note("sluice started");

    // (a) Planned: other preferred leaders, and an election.
    await waitFor(() => rows(10_000), "10,000 rows before the planned move", 180_000);
    await note("planned move");
    await preferLeaders(topic, { ...PLANNED }, brokers);
    await ledBy(PLANNED.map((r) => r[0]!), "the planned leaders");
    await note("planned move done");

    // (b) Unplanned: the broker leading most partitions dies (with the
    // group's coordinator, in the second test).
    await waitFor(() => rows(25_000), "25,000 rows before the kill", 180_000);
    const current = (await groupCoordinator(group, brokers)).leader;
    await note(`kill broker ${VICTIM} (the group's coordinator: ${current})`);
    const killedAt = Date.now();
    victimDown = true;
    await services("kill", `kafka-cluster-${VICTIM}`);
    await waitFor(
      async () => {
        const leaders = leadersOf(await partitionPlaces(topic, brokers));
        return leaders.every((leader) => leader >= 0 && leader !== VICTIM);
      },
      `other leaders for broker ${VICTIM}'s partitions`,
      60_000,
    );
    await note(`broker ${VICTIM}'s partitions have new leaders`);
    await sleep(DOWN_MS - (Date.now() - killedAt));
    await note(`start broker ${VICTIM}`);
    await services("start", `kafka-cluster-${VICTIM}`);
    victimDown = false;

    // (c) The leaderships go back to it once it is in sync.
    await preferLeaders(topic, { ...PLANNED }, brokers);
    await ledBy(PLANNED.map((r) => r[0]!), `the leaders back on broker ${VICTIM}`);
    await note(`leaders back on broker ${VICTIM}`);

    const producerError = await producing;
    if (producerError) throw new Error(`Cannot produce the records: ${producerError}`);
    // A new leader's high watermark may lag a moment, until its followers fetch again.
    const stored = async () => {
      const { end } = await offsets(group, topic, brokers);
      return Object.values(end).reduce((sum, high) => sum + Number(high), 0);
    };
    await waitFor(
      async () => (await stored().catch(() => -1)) === RECORDS,
      `Kafka holding each of the ${RECORDS} records once (the producer is idempotent)`,
      60_000,
    );
    await note("all produced");

    await waitFor(
      async () => {
        alive();
        return (await distinct()) === RECORDS;
      },
      `all ${RECORDS} distinct records`,
      180_000,
    );
    await waitFor(() => allCommitted(group, topic, brokers), "every offset committed", 120_000);
    await note("all written and committed");
    const count = await written();
    const unique = await distinct();
    assertEquals(
      { missing: RECORDS - unique, duplicates: count - unique },
      { missing: 0, duplicates: 0 },
      "every record once",
    );
    const final = await settled(() => offsets(group, topic, brokers), "the offsets");
    assertEquals(final.committed, final.end, "the committed offsets are the end offsets");
    alive();
    assertEquals(await stopSluice(sluice), 0, "sluice stops cleanly");
  } catch (error) {
    const state = await settled(() => offsets(group, topic, brokers), "the offsets")
      .catch((e) => String(e));
    const dups = await CLICKHOUSE_26.query(
      `SELECT count() AS tags, groupArray(10)(tag) AS some FROM (SELECT tag FROM ${table} ` +
        `GROUP BY tag HAVING count() > 1) FORMAT JSONEachRow`,
    ).catch((e) => String(e));
    const missing = await CLICKHOUSE_26.query(
      `SELECT count() AS tags, groupArray(10)(number) AS some FROM numbers(${produced}) ` +
        `WHERE number NOT IN (SELECT tag FROM ${table}) FORMAT JSONEachRow`,
    ).catch((e) => String(e));
    throw new Error(
      `${error instanceof Error ? error.message : error}\n` +
        `history:\n${history.join("\n")}\noffsets: ${JSON.stringify(state)}\n` +
        `duplicated tags: ${dups.trim()}\nmissing tags: ${missing.trim()}\n` +
        `sluice said (how often):\n${sluice ? tally(sluice) : "(not started)"}\n` +
        `sluice said (last):\n${sluice ? warnings(sluice) : "(not started)"}`,
      { cause: error },
    );
  } finally {
    ended = true;
    await stopQuietly(sluice);
    if (victimDown) await services("start", `kafka-cluster-${VICTIM}`).catch(() => {});
    await producing;
    await CLICKHOUSE_26.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
  }
}

Deno.test("sluice writes every record once into ClickHouse 26.x while partition leaders move between brokers", async () => {
  await leadersMove(SURVIVOR);
});

Deno.test("sluice writes every record once into ClickHouse 26.x when the broker coordinating its group dies", async () => {
  await leadersMove(VICTIM);
});
