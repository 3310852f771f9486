/**
 * The split of direct writes over a cluster's shards (`shards.ts`): the same
 * rows always split the same way, in proportion to the weights, evenly over
 * consecutive offsets; and the statements that place the servers.
 *
 * @module
 */

import type { RecordOrigin } from "../../../lib/record.ts";
import {
  ownShardSql,
  positionHash,
  shardSlots,
  shardsSql,
  splitByShard,
} from "../../../sinks/clickhouse/shards.ts";
import { assert, assertEquals } from "../../_assert.ts";

function origins(count: number, partitions = 4): RecordOrigin[] {
  return Array.from({ length: count }, (_, i) => ({
    topic: "flows",
    partition: i % partitions,
    offset: String(1_000_000 + Math.floor(i / partitions)),
    index: 0,
  }));
}

Deno.test("shardSlots() lays the weights out in order, as a Distributed table does", () => {
  assertEquals([...shardSlots([{ num: 1, weight: 1 }, { num: 2, weight: 1 }])], [0, 1]);
  assertEquals([...shardSlots([{ num: 1, weight: 2 }, { num: 2, weight: 1 }])], [0, 0, 1]);
  assertEquals([...shardSlots([{ num: 1, weight: 0 }, { num: 2, weight: 3 }])], [1, 1, 1]);
});

Deno.test("splitByShard() splits the same rows the same way every time, each row once, in order", () => {
  const rows = origins(10_000);
  const slots = shardSlots([{ num: 1, weight: 1 }, { num: 2, weight: 1 }]);
  const first = splitByShard(rows, slots, 2);
  assertEquals(splitByShard(rows, slots, 2), first);
  // A part sent again alone splits into itself: a retry is the same block.
  const part = first[1]!.map((i) => rows[i]!);
  assertEquals(splitByShard(part, slots, 2), [[], part.map((_, i) => i)]);
  const all = first.flat().sort((a, b) => a - b);
  assertEquals(all, rows.map((_, i) => i));
  for (const p of first) assertEquals(p, [...p].sort((a, b) => a - b));
});

Deno.test("splitByShard() spreads consecutive offsets evenly, and by weight", () => {
  const rows = origins(100_000);
  const even = splitByShard(rows, shardSlots([{ num: 1, weight: 1 }, { num: 2, weight: 1 }]), 2);
  const share = even[0]!.length / rows.length;
  assert(Math.abs(share - 0.5) < 0.01, `shard 1 takes ${share}`);
  const weighted = splitByShard(
    rows,
    shardSlots([{ num: 1, weight: 3 }, { num: 2, weight: 1 }]),
    2,
  );
  const heavy = weighted[0]!.length / rows.length;
  assert(Math.abs(heavy - 0.75) < 0.01, `weight 3 of 4 takes ${heavy}`);
  // Also one partition alone, and the records of one multi-record message.
  const one = origins(10_000, 1);
  const single = splitByShard(one, shardSlots([{ num: 1, weight: 1 }, { num: 2, weight: 1 }]), 2);
  assert(Math.abs(single[0]!.length / one.length - 0.5) < 0.03);
  const packed = Array.from({ length: 1000 }, (_, index) => ({ ...one[0]!, index }));
  const inMessage = splitByShard(
    packed,
    shardSlots([{ num: 1, weight: 1 }, { num: 2, weight: 1 }]),
    2,
  );
  assert(inMessage[0]!.length > 400 && inMessage[1]!.length > 400);
});

Deno.test("positionHash() depends on the partition, the offset and the index", () => {
  const at = { topic: "t", partition: 1, offset: "42", index: 0 };
  const hashes = new Set([
    positionHash(at),
    positionHash({ ...at, partition: 2 }),
    positionHash({ ...at, offset: "43" }),
    positionHash({ ...at, index: 1 }),
  ]);
  assertEquals(hashes.size, 4);
  assertEquals(positionHash(at), positionHash({ ...at, topic: "other" }));
  assert(positionHash({ ...at, offset: "18446744073709551615" }) >= 0);
});

Deno.test("shardsSql() and ownShardSql() quote the cluster's name", () => {
  assertEquals(
    shardsSql("it's"),
    "SELECT shard_num AS num, any(shard_weight) AS weight FROM system.clusters " +
      "WHERE cluster = 'it\\'s' GROUP BY shard_num ORDER BY shard_num",
  );
  assertEquals(
    ownShardSql("sluice"),
    "SELECT DISTINCT shard_num AS num FROM system.clusters " +
      "WHERE cluster = 'sluice' AND is_local = 1",
  );
});
