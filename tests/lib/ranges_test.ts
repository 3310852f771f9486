import {
  comparePositions,
  formatPin,
  parsePin,
  partitionRows,
  rangeToken,
} from "../../lib/ranges.ts";
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";

const row = (partition: number, offset: string, index = 0) => ({
  row: { partition, offset, index },
  bytes: 3,
  origin: { topic: "flows", partition, offset, index },
});

Deno.test("partitionRows() splits a batch by partition, in order, with each range's ends", () => {
  const rows = [row(1, "10"), row(2, "7"), row(1, "10", 1), row(1, "12"), row(2, "8", 3)];
  const ranges = partitionRows(rows);
  assertEquals(ranges.map((r) => [r.partition, r.from, r.to, r.rows.length]), [
    [1, { offset: "10", index: 0 }, { offset: "12", index: 0 }, 3],
    [2, { offset: "7", index: 0 }, { offset: "8", index: 3 }, 2],
  ]);
  assertEquals(partitionRows([]), []);
});

Deno.test("rangeToken() names a range by topic, partition and both ends", () => {
  const [range] = partitionRows([row(3, "1200"), row(3, "1399", 4)]);
  assertStrictEquals(rangeToken(range!), "flows/3/1200.0-1399.4");
});

Deno.test("formatPin() and parsePin() round-trip, and parsePin() ignores other metadata", () => {
  const range = {
    from: { offset: "9007199254740993", index: 2 },
    to: { offset: "9007199254740999", index: 0 },
  };
  assertEquals(parsePin(formatPin(range)), range);
  assertStrictEquals(formatPin(range), "sluice-range:9007199254740993.2-9007199254740999.0");
  for (
    const other of [null, undefined, "", "event-id-3", "sluice-range:", "sluice-range:5.0-4.0"]
  ) {
    assertStrictEquals(parsePin(other), undefined, String(other));
  }
});

Deno.test("comparePositions() orders by offset as a 64-bit integer, then index", () => {
  assert(comparePositions({ offset: "9", index: 5 }, { offset: "10", index: 0 }) < 0);
  assert(comparePositions({ offset: "10", index: 1 }, { offset: "10", index: 0 }) > 0);
  assertStrictEquals(comparePositions({ offset: "10", index: 1 }, { offset: "10", index: 1 }), 0);
  assert(
    comparePositions({ offset: "9007199254740993", index: 0 }, {
      offset: "9007199254740992",
      index: 9,
    }) > 0,
  );
});

Deno.test("formatPin() and parsePin() also carry a start without an end", () => {
  const next = { from: { offset: "7", index: 2 } };
  assertStrictEquals(formatPin(next), "sluice-range:7.2-");
  assertEquals(parsePin("sluice-range:7.2-"), next);
});
