/**
 * `deno run -A bench/rebalance_stall.ts [SESSION_SECONDS]`: how long the
 * partitions of a SIGKILLed group member stay uncommitted. Two sluice
 * processes share a 4-partition topic into ClickHouse 26.x while records
 * keep coming; one is killed; prints, per partition, the milliseconds until
 * its committed offset moved again. Needs the local services.
 *
 * @module
 */
import { writeStdout } from "../lib/log.ts";
import { flowMessages } from "../tests/_flows.ts";
import { CLICKHOUSE_26 } from "../tests/_clickhouse.ts";
import { createTopic, offsets, produce } from "../tests/_kafka.ts";
import { uniqueName } from "../tests/_services.ts";
import { clickhouseSinkEnv, startSluice, stopQuietly } from "../tests/_sluice.ts";

const session = Deno.args[0] ?? "10";
const name = uniqueName("stall");
await createTopic(name, 4);
const db = `sluice_${name}`;
const env = {
  ...clickhouseSinkEnv({
    topic: name,
    group: `g_${name}`,
    database: db,
    schema: "seq:UInt64,bytes:UInt64",
  }),
  CLICKHOUSE_HOST: CLICKHOUSE_26.url,
  CLICKHOUSE_ORDER_BY: "seq",
  CLICKHOUSE_MAX_SAMPLES_PER_SEND: "200",
  CLICKHOUSE_MAX_TIME_TO_SEND: "0.5",
  KAFKA_SESSION_TIMEOUT: session,
};
const a = await startSluice(env);
const b = await startSluice(env);
let seq = 0;
let producing = true;
const producer = (async () => {
  while (producing) {
    await produce(name, flowMessages(seq, seq + 200));
    seq += 200;
    await new Promise((r) => setTimeout(r, 100));
  }
})();
await new Promise((r) => setTimeout(r, 20000));
const held = b.logs.filter((l) => l["msg"] === "Joined consumer group").at(-1)?.["assignment"];
writeStdout(`killing the member holding ${JSON.stringify(held)}\n`);
const before = (await offsets(`g_${name}`, name)).committed;
const t0 = Date.now();
b.kill("SIGKILL");
const moved = new Map<number, number>();
while (moved.size < 4 && Date.now() - t0 < 120000) {
  const now = (await offsets(`g_${name}`, name)).committed;
  for (const [p, o] of Object.entries(now)) {
    if (!moved.has(Number(p)) && BigInt(o) > BigInt(before[Number(p)] ?? "0")) {
      moved.set(Number(p), Date.now() - t0);
    }
  }
  await new Promise((r) => setTimeout(r, 100));
}
producing = false;
await producer;
writeStdout(
  `KAFKA_SESSION_TIMEOUT=${session}: partitions committed again after (ms) ` +
    `${JSON.stringify(Object.fromEntries(moved))}\n`,
);
await stopQuietly(a);
await CLICKHOUSE_26.query(`DROP DATABASE IF EXISTS ${db}`);
