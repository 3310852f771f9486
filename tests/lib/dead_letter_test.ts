import { DeadLetters } from "../../lib/dead_letter.ts";
import { assert, assertEquals } from "../_assert.ts";

Deno.test("DeadLetters.add() appends one JSON line per record with reason, error, origin and data", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    Deno.writeTextFileSync(path, '{"earlier":true}\n');
    const letters = new DeadLetters(path);
    const origin = { topic: "flows", partition: 2, offset: "9007199254740993", index: 1 };
    letters.add(origin, { reason: "convert", error: "bad port" }, { port: "x", n: 12n });
    letters.add(
      { ...origin, index: 0 },
      { reason: "decode", error: "not JSON" },
      new TextEncoder().encode("{oops"),
    );
    letters.close();
    const lines = Deno.readTextFileSync(path).trimEnd().split("\n");
    assertEquals(lines.length, 3);
    assertEquals(lines[0], '{"earlier":true}');
    const first = JSON.parse(lines[1]!);
    assert(!Number.isNaN(Date.parse(first.ts)), first.ts);
    delete first.ts;
    assertEquals(first, {
      reason: "convert",
      error: "bad port",
      topic: "flows",
      partition: 2,
      offset: "9007199254740993",
      index: 1,
      data: { port: "x", n: "12" },
    });
    const second = JSON.parse(lines[2]!);
    assertEquals([second.reason, second.data, second.index], ["decode", "{oops", 0]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("new DeadLetters() throws when the file cannot be opened", () => {
  let thrown: unknown;
  try {
    new DeadLetters("/nonexistent-sluice-dir/dead.jsonl");
  } catch (error) {
    thrown = error;
  }
  assert(thrown instanceof Deno.errors.NotFound, String(thrown));
});
