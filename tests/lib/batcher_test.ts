import { Batcher } from "../../lib/batcher.ts";
import { assertEquals } from "../_assert.ts";

const origin = { topic: "t", partition: 0, offset: "0", index: 0 };
const row = (bytes: number) => ({ row: {}, bytes, origin });

Deno.test("Batcher is due at the row cap", () => {
  const b = new Batcher({ maxRows: 3, maxBytes: 1e9, maxAgeMs: 1e9 });
  assertEquals(b.add(row(1)), undefined);
  assertEquals(b.add(row(1)), undefined);
  assertEquals(b.add(row(1)), "rows");
});

Deno.test("Batcher is due at the byte cap, and asks for a flush before it would overflow", () => {
  const b = new Batcher({ maxRows: 100, maxBytes: 100, maxAgeMs: 1e9 });
  assertEquals(b.wouldOverflow(60), false);
  assertEquals(b.add(row(60)), undefined);
  assertEquals(b.wouldOverflow(50), true);
  assertEquals(b.add(row(40)), "bytes");
  b.take();
  // A row bigger than the cap still goes, alone.
  assertEquals(b.wouldOverflow(500), false);
  assertEquals(b.add(row(500)), "bytes");
});

Deno.test("Batcher is due by age, measured from the first entry, on an injected clock", () => {
  let now = 1000;
  const b = new Batcher({ maxRows: 100, maxBytes: 1e9, maxAgeMs: 500 }, () => now);
  assertEquals(b.isDue(), false);
  assertEquals(b.msUntilDue(), undefined);
  b.add(row(1));
  now += 499;
  assertEquals(b.isDue(), false);
  assertEquals(b.msUntilDue(), 1);
  now += 1;
  assertEquals(b.isDue(), true);
  b.take();
  assertEquals(b.isDue(), false);
});

Deno.test("Batcher commits the offset after the last consumed message of each partition", () => {
  const b = new Batcher({ maxRows: 100, maxBytes: 1e9, maxAgeMs: 1e9 });
  b.markConsumed("t", 0, "41");
  b.markConsumed("t", 0, "42");
  b.markConsumed("t", 1, "9007199254740993");
  b.markConsumed("u", 0, "0");
  assertEquals(b.empty, false);
  const batch = b.take();
  assertEquals(batch.rows, []);
  assertEquals(batch.offsets, [
    { topic: "t", partition: 0, offset: "43" },
    { topic: "t", partition: 1, offset: "9007199254740994" },
    { topic: "u", partition: 0, offset: "1" },
  ]);
  assertEquals(b.empty, true);
});

Deno.test("Batcher keeps the newest Kafka timestamp of each partition's consumed messages for the batch", () => {
  const b = new Batcher({ maxRows: 100, maxBytes: 1e9, maxAgeMs: 1e9 });
  b.markConsumed("t", 0, "1", 5000);
  // CreateTime is the producer's clock: a later offset may carry an older time.
  b.markConsumed("t", 0, "2", 4000);
  b.markConsumed("t", 1, "7", 4500);
  b.markConsumed("u", 0, "0");
  b.markConsumed("v", 0, "0");
  b.markConsumed("v", 0, "1", 3000);
  const alone = b.take("t\u00001");
  assertEquals(alone.timestamps, [{ topic: "t", partition: 1, timestamp: 4500 }]);
  assertEquals(b.take().timestamps, [
    { topic: "t", partition: 0, timestamp: 5000 },
    { topic: "v", partition: 0, timestamp: 3000 },
  ]);
  assertEquals(b.take().timestamps, []);
});
