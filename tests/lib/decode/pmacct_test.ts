import { decodePmacct } from "../../../lib/decode/pmacct.ts";
import { JsonNumber } from "../../../lib/json.ts";
import { assert, assertEquals, assertMatch } from "../../_assert.ts";

const SAMPLE = new URL("../../testdata/samples/pmacctd-print-json.jsonl", import.meta.url);
const TESTDATA = new URL("../../testdata/pmacct/", import.meta.url);

Deno.test("decodePmacct() reads every record of real pmacct output", async () => {
  const lines = (await Deno.readTextFile(SAMPLE)).split("\n").filter((l) => l.trim() !== "");
  assert(lines.length >= 5);
  for (const line of lines) {
    const result = decodePmacct(new TextEncoder().encode(line));
    assertEquals(result.errors, []);
    assertEquals(result.skipped, 0);
    assertEquals(result.records.length, 1);
    assertEquals(result.records[0]!.record, JSON.parse(line));
  }
});

Deno.test("decodePmacct() reads kafka_multi_values messages as several records", async () => {
  const text = await Deno.readTextFile(SAMPLE);
  const count = text.split("\n").filter((l) => l.trim() !== "").length;
  const result = decodePmacct(text);
  assertEquals(result.errors, []);
  assertEquals(result.records.length, count);
  assertEquals(result.records.map((r) => r.index), [...Array(count).keys()]);
});

Deno.test("decodePmacct() skips and counts purge_init and purge_close markers", () => {
  const message = [
    '{"event_type": "purge_init", "seq": 1, "timestamp": "2026-11-21 23:30:00", "writer_id": "nfacctd/123"}',
    '{"event_type": "purge", "ip_src": "10.0.0.1", "packets": 1, "bytes": 60}',
    '{"event_type": "purge_close", "seq": 1, "purged_entries": 1, "writer_id": "nfacctd/123"}',
  ].join("\n");
  const result = decodePmacct(message);
  assertEquals(result.skipped, 2);
  assertEquals(result.errors, []);
  assertEquals(result.records.map((r) => r.record["ip_src"]), ["10.0.0.1"]);
});

Deno.test("decodePmacct() keeps the good lines of a message with a broken one", () => {
  const result = decodePmacct('{"a": 1}\n{"a": 2\n[1, 2]\n{"a": 3}\n');
  assertEquals(result.records.map((r) => r.record["a"]), [1, 3]);
  assertEquals(result.records.map((r) => r.index), [0, 3]);
  assertEquals(result.errors.map((e) => e.index), [1, 2]);
  assertMatch(result.errors[0]!.error, /^Cannot decode pmacct JSON: .*got "\{\\"a\\": 2"$/);
  assertMatch(result.errors[1]!.error, /expected an object, got "\[1, 2\]"/);
});

Deno.test("decodePmacct() reports tombstones, empty and non-UTF-8 messages", () => {
  assertMatch(decodePmacct(null).errors[0]!.error, /tombstone/);
  assertMatch(decodePmacct("\n \n").errors[0]!.error, /empty/);
  assertMatch(decodePmacct(new Uint8Array([0x7b, 0xff, 0x7d])).errors[0]!.error, /UTF-8/);
  assertEquals(decodePmacct(null).records, []);
});

Deno.test("decodePmacct() reads the golden fixtures: real kafka plugin markers and multi values, poison lines", async () => {
  let cases = 0;
  for await (const dir of Deno.readDir(TESTDATA)) {
    if (!dir.isDirectory) continue;
    cases++;
    const folder = new URL(`${dir.name}/`, TESTDATA);
    const expected = JSON.parse(await Deno.readTextFile(new URL("expected.json", folder)));
    const got = { records: 0, skipped: 0, errors: 0 };
    // input.txt holds one message per line; message-N.txt one message each
    // (kafka_multi_values messages contain newlines).
    const names = [...Deno.readDirSync(folder)].map((f) => f.name).sort();
    const messages: string[] = [];
    for (const name of names) {
      const text = await Deno.readTextFile(new URL(name, folder));
      if (name === "input.txt") messages.push(...text.split("\n").filter((l) => l !== ""));
      else if (name.startsWith("message-")) messages.push(text);
    }
    for (const message of messages) {
      const result = decodePmacct(message);
      got.records += result.records.length;
      got.skipped += result.skipped;
      got.errors += result.errors.length;
    }
    assertEquals(got, expected, dir.name);
  }
  assert(cases >= 2, `expected fixture folders in ${TESTDATA}`);
});

Deno.test("decodePmacct() keeps counters beyond 2^53 and numbers a double cannot hold exactly", () => {
  const result = decodePmacct(
    '{"bytes": 18446744073709551615, "packets": 9007199254740993, "flows": 1e400, "tos": 0}',
  );
  assertEquals(result.errors, []);
  const record = result.records[0]!.record;
  assert(record["bytes"] instanceof JsonNumber);
  assertEquals(String(record["bytes"]), "18446744073709551615");
  assertEquals(String(record["packets"]), "9007199254740993");
  assertEquals(String(record["flows"]), "1e400");
  assertEquals(record["tos"], 0);
  assertEquals(
    JSON.stringify(record),
    '{"bytes":18446744073709551615,"packets":9007199254740993,"flows":1e400,"tos":0}',
  );
});
