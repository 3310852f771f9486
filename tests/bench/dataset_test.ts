/**
 * `generate()` and `pack()` of the benchmark's dataset: K records per Kafka
 * message as pmacct's `kafka_multi_values` packs them, the records and their
 * sums unchanged (`deno test -A tests/bench/dataset_test.ts`).
 *
 * @module
 */

import { assert, assertEquals, assertStrictEquals, assertThrows } from "../_assert.ts";
import { generate, MAX_PER_MESSAGE, pack } from "../../bench/_dataset.ts";
import { decodePmacct } from "../../lib/decode/pmacct.ts";

Deno.test("generate() packs K records per message, ceil(N/K) messages whose lines are the records in order", () => {
  for (const columns of [11, 20] as const) {
    for (const [n, k] of [[100, 20], [101, 20], [7, 3], [5, 10], [1, 1000]] as const) {
      const data = generate(n, columns, k);
      assertStrictEquals(data.records.length, n);
      assertStrictEquals(data.perMessage, k);
      assertStrictEquals(data.messages.length, Math.ceil(n / k));
      const lines = data.messages.flatMap((m) => m.split("\n"));
      assertEquals(lines, data.records);
      data.messages.forEach((m, i) => {
        assert(!m.endsWith("\n"), `message ${i} ends with a newline`);
        const want = i < data.messages.length - 1 ? k : n - k * (data.messages.length - 1);
        assertStrictEquals(m.split("\n").length, want);
      });
    }
  }
});

Deno.test("generate() keeps one record per message, the same array, by default", () => {
  const data = generate(50, 20);
  assertStrictEquals(data.perMessage, 1);
  assertStrictEquals(data.messages, data.records);
  assertStrictEquals(data.messages.length, 50);
  assert(data.messages.every((m) => !m.includes("\n")));
});

Deno.test("generate() gives the same records and sums whatever the packing", () => {
  const one = generate(1_003, 20, 1);
  const packed = generate(1_003, 20, 20);
  assertStrictEquals(packed.bytes, one.bytes);
  assertStrictEquals(packed.packets, one.packets);
  // The records carry times relative to now: compare them without those.
  const strip = (text: string) => {
    const { bytes, packets, ip_src, ip_dst, port_src, port_dst } = JSON.parse(text);
    return { bytes, packets, ip_src, ip_dst, port_src, port_dst };
  };
  assertEquals(packed.records.map(strip), one.records.map(strip));
  let bytes = 0, packets = 0;
  for (const record of packed.records) {
    const parsed = JSON.parse(record);
    bytes += parsed.bytes;
    packets += parsed.packets;
  }
  assertStrictEquals(bytes, packed.bytes);
  assertStrictEquals(packets, packed.packets);
});

Deno.test("generate() packs messages that sluice's pmacct decoder reads back as the records, in order", () => {
  const data = generate(95, 20, 20);
  const encoder = new TextEncoder();
  const decoded = data.messages.flatMap((m) => {
    const result = decodePmacct(encoder.encode(m));
    assertEquals(result.errors, []);
    assertEquals(result.records.map((r) => r.index), result.records.map((_, i) => i));
    return result.records.map((r) => r.record);
  });
  assertStrictEquals(decoded.length, 95);
  decoded.forEach((record, i) => {
    const want = JSON.parse(data.records[i]!);
    assertStrictEquals(Number(record["bytes"]), want.bytes);
    assertStrictEquals(record["ip_src"], want.ip_src);
  });
});

Deno.test("pack() joins the records with newlines, no trailing one, the rest in the last message", () => {
  assertEquals(pack(["a", "b", "c", "d", "e"], 2), ["a\nb", "c\nd", "e"]);
  assertEquals(pack(["a", "b"], 5), ["a\nb"]);
  assertEquals(pack([], 3), []);
  const records = ["a", "b"];
  assertStrictEquals(pack(records, 1), records);
});

Deno.test("generate() refuses a records-per-message count out of 1..MAX_PER_MESSAGE", () => {
  for (const k of [0, -1, 1.5, MAX_PER_MESSAGE + 1, Number.NaN]) {
    assertThrows(() => generate(10, 11, k), RangeError);
  }
  assertStrictEquals(generate(10, 11, MAX_PER_MESSAGE).messages.length, 1);
});
