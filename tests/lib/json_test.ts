/**
 * Exact JSON numbers: what `JSON.parse` would round is kept as its literal,
 * written back with its digits, and read exactly by the converters.
 *
 * @module
 */

import { DeadLetterFile } from "../../lib/dead_letter.ts";
import {
  decimalOf,
  floatOf,
  floatOfText,
  integerOf,
  isIntegerLiteral,
  JsonNumber,
  parseDecimal,
  parseJson,
  parseJsonFloats,
  stringifyExact,
} from "../../lib/json.ts";
import { Logger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { RetryPolicy } from "../../lib/retry.ts";
import { assert, assertEquals, assertStrictEquals } from "../_assert.ts";

Deno.test("parseJson() keeps integers beyond 2^53 and literals a double cannot hold as their text", () => {
  const parsed = parseJson(
    '{"bytes": 18446744073709551615, "packets": 9007199254740993, "huge": 1e400, ' +
      '"tiny": 1e-400, "long": 1.00000000000000001, "neg": -9223372036854775809}',
  ) as Record<string, unknown>;
  for (
    const [key, text] of [
      ["bytes", "18446744073709551615"],
      ["packets", "9007199254740993"],
      ["huge", "1e400"],
      ["tiny", "1e-400"],
      ["long", "1.00000000000000001"],
      ["neg", "-9223372036854775809"],
    ]
  ) {
    const value = parsed[key!];
    assert(value instanceof JsonNumber, `${key} is a JsonNumber`);
    assertStrictEquals(value.text, text);
  }
  // Written back out with the digits it came with, by plain JSON.stringify.
  assertStrictEquals(
    JSON.stringify(parsed),
    '{"bytes":18446744073709551615,"packets":9007199254740993,"huge":1e400,"tiny":1e-400,' +
      '"long":1.00000000000000001,"neg":-9223372036854775809}',
  );
});

Deno.test("parseJson() leaves numbers a double holds exactly as plain numbers", () => {
  const text = '{"a": 0.1, "b": 1.5e3, "c": 9007199254740991, "d": 1e-7, "e": 1.50, ' +
    '"f": "18446744073709551615", "g": [1, 2.5], "h": 123456789012345.6}';
  assertEquals(parseJson(text), JSON.parse(text));
  assert(Object.is((parseJson('{"z": -0}') as { z: number }).z, -0));
  // A number that is the whole text, and arrays.
  assertStrictEquals(
    (parseJson("12345678901234567890") as JsonNumber).text,
    "12345678901234567890",
  );
  assertEquals(JSON.stringify(parseJson("[1, 12345678901234567890]")), "[1,12345678901234567890]");
});

Deno.test("parseJsonFloats() keeps only what a float refuses as text", () => {
  const parsed = parseJsonFloats(
    '[{"values": [0.1000000000000000000001, 1e400, 0, 1e-400, 18446744073709551615]}]',
  ) as Array<{ values: unknown[] }>;
  const values = parsed[0]!.values;
  assertStrictEquals(values[0], 0.1);
  assertStrictEquals(values[2], 0);
  for (const i of [1, 3, 4]) assert(values[i] instanceof JsonNumber, String(i));
  assertEquals(parseJsonFloats('[{"values": [0, 0.5]}]'), [{ values: [0, 0.5] }]);
});

Deno.test("integerOf() gives exact integers within bounds and refuses booleans, fractions and the rest", () => {
  const u64 = [0n, 18446744073709551615n] as const;
  assertEquals(integerOf(new JsonNumber("18446744073709551615"), ...u64), {
    ok: true,
    value: 18446744073709551615n,
  });
  assertEquals(integerOf(new JsonNumber("18446744073709551616"), ...u64), {
    ok: false,
    why: "out of range",
  });
  assertEquals(integerOf(new JsonNumber("1.8446744073709551615e19"), ...u64), {
    ok: true,
    value: 18446744073709551615n,
  });
  assertEquals(integerOf(true, ...u64), { ok: false, why: "not a number" });
  assertEquals(integerOf(1.5, ...u64), { ok: false, why: "not an integer" });
  assertEquals(integerOf(new JsonNumber("1e-400"), ...u64), { ok: false, why: "not an integer" });
  assertEquals(integerOf(new JsonNumber("1e999999999"), ...u64), {
    ok: false,
    why: "out of range",
  });
  assertEquals(integerOf(" 42 ", ...u64, true), { ok: true, value: 42n });
  assertEquals(integerOf("42", ...u64), { ok: false, why: "not a number" });
  assertEquals(integerOf("4.2", ...u64, true), { ok: false, why: "not an integer" });
  assertEquals(integerOf(2 ** 60, ...u64), { ok: true, value: 1152921504606846976n });
});

Deno.test("floatOf() takes what a double stands for and refuses the rest with a reason", () => {
  assertEquals(floatOf(0.1), { ok: true, value: 0.1 });
  assertEquals(floatOf(new JsonNumber("0.1000000000000000000001")), { ok: true, value: 0.1 });
  assertEquals(floatOf(new JsonNumber("1e20")), { ok: true, value: 1e20 });
  assertEquals(floatOf(new JsonNumber("1e400")), {
    ok: false,
    why: "is beyond the range of a 64-bit float (about 1.8e308)",
  });
  assertEquals(floatOf(new JsonNumber("-1e-400")), {
    ok: false,
    why: "is closer to 0 than a 64-bit float can hold (about 5e-324)",
  });
  assertEquals(floatOf(new JsonNumber("18446744073709551615")), {
    ok: false,
    why: "is beyond 2^53, where a 64-bit float would store 18446744073709551616 instead",
  });
  assertEquals(floatOfText("0.000", 0), { ok: true, value: 0 });
  assertEquals(floatOf("1"), { ok: false, why: "is not a number" });
});

Deno.test("floatOf() takes a float literal of any magnitude and refuses only integer literals a double changes", () => {
  // A float literal is a float as written, however large: collectd writes gauges so.
  assertEquals(floatOfText("2.5E+300", 2.5e300), { ok: true, value: 2.5e300 });
  assertEquals(floatOf(new JsonNumber("2.5E+300")), { ok: true, value: 2.5e300 });
  assertEquals(floatOf(new JsonNumber("1.5e308")), { ok: true, value: 1.5e308 });
  assertEquals(floatOf(new JsonNumber("-1.5e308")), { ok: true, value: -1.5e308 });
  assertEquals(floatOf(new JsonNumber("1.2345678901234567e20")), {
    ok: true,
    value: 1.2345678901234567e20,
  });
  // With a point it is a float too, rounded as 1.00000000000000001 is.
  assertEquals(floatOfText("9007199254740993.0", Number("9007199254740993.0")), {
    ok: true,
    value: 9007199254740992,
  });
  // Beyond the range or to 0: nothing a double stands for.
  assertEquals(floatOfText("1e400", Infinity), {
    ok: false,
    why: "is beyond the range of a 64-bit float (about 1.8e308)",
  });
  assertEquals(floatOfText("1e-400", 0), {
    ok: false,
    why: "is closer to 0 than a 64-bit float can hold (about 5e-324)",
  });
  // Integer literals from 2^53 up are taken only as the double they are.
  assertEquals(floatOfText("18446744073709551615", 2 ** 64), {
    ok: false,
    why: "is beyond 2^53, where a 64-bit float would store 18446744073709551616 instead",
  });
  assertEquals(floatOfText("-9007199254740993", -(2 ** 53)), {
    ok: false,
    why: "is beyond 2^53, where a 64-bit float would store -9007199254740992 instead",
  });
  assertEquals(floatOfText("+9007199254740993", 2 ** 53), {
    ok: false,
    why: "is beyond 2^53, where a 64-bit float would store 9007199254740992 instead",
  });
  assertEquals(floatOfText("100000000000000000000", 1e20), { ok: true, value: 1e20 });
  assertEquals(floatOfText("9007199254740992", 2 ** 53), { ok: true, value: 2 ** 53 });
  assertEquals(isIntegerLiteral("-18446744073709551615"), true);
  assertEquals(isIntegerLiteral("1e20"), false);
  assertEquals(isIntegerLiteral("9007199254740993.0"), false);
});

Deno.test("parseDecimal() and decimalOf() read decimal values exactly", () => {
  assertEquals(parseDecimal("12.3450"), { negative: false, digits: "12345", exponent: -3 });
  assertEquals(parseDecimal("-1.5E+3"), { negative: true, digits: "15", exponent: 2 });
  assertEquals(parseDecimal("-0.000"), { negative: false, digits: "", exponent: 0 });
  assertEquals(parseDecimal("1e"), undefined);
  assertEquals(decimalOf(1e-7), { negative: false, digits: "1", exponent: -7 });
  assertEquals(decimalOf(12.345), { negative: false, digits: "12345", exponent: -3 });
  assertEquals(decimalOf(Infinity), undefined);
});

Deno.test("stringifyExact() writes bigints and JsonNumbers as digits", () => {
  assertStrictEquals(
    stringifyExact({ a: 18446744073709551615n, b: new JsonNumber("1e400"), c: [1n] }),
    '{"a":18446744073709551615,"b":1e400,"c":[1]}',
  );
});

Deno.test("DeadLetterFile stores a decoded record's 18446744073709551615 with its digits", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    const letters = new DeadLetterFile(path, {
      log: new Logger({ write: () => {} }),
      metrics: new Metrics(),
      policy: new RetryPolicy({ initialMs: 5, maxMs: 10 }),
    });
    letters.add({
      origin: { topic: "flows", partition: 0, offset: "7", index: 0 },
      rejection: { reason: "convert", error: "x" },
      data: parseJson('{"bytes": 18446744073709551615, "huge": 1e400}'),
      value: "record",
    });
    await letters.stored();
    await letters.close();
    const line = Deno.readTextFileSync(path);
    assert(line.includes('"data":{"bytes":18446744073709551615,"huge":1e400}'), line);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
