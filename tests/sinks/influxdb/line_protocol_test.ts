/**
 * Points to InfluxDB line protocol: escaping, number formats, precision,
 * and what is refused before sending. The expectations come from InfluxDB
 * 1.6.7: each escaped case was written to it and read back with
 * `SELECT`/`SHOW ...` (the stored value is quoted in the comments), and
 * each refused case is one the server answered 400 to, or stored changed.
 *
 * @module
 */

import type { Point } from "../../../lib/record.ts";
import {
  checkRawLine,
  encodePoint,
  escapeKey,
  escapeMeasurement,
  formatFieldValue,
  formatFloat,
  MAX_KEY_BYTES,
  nameProblem,
  type Precision,
  quoteString,
  toPrecision,
} from "../../../sinks/influxdb/line_protocol.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

function line(point: Point, precision: Precision = "s"): string {
  const result = encodePoint(point, precision);
  if (!result.ok) throw new Error(`Expected a line, got ${result.error}`);
  return result.line;
}

function refusal(point: Point, precision: Precision = "s", api: 1 | 2 = 1): string {
  const result = encodePoint(point, precision, api);
  if (result.ok) throw new Error(`Expected a refusal, got ${result.line}`);
  return result.error;
}

const T = 1_700_000_000_000_000_000n;

Deno.test("escapeMeasurement() escapes comma and space, and nothing else", () => {
  // [name, written, what 1.6.7 stored (SHOW MEASUREMENTS)]
  const cases: Array<[string, string, string]> = [
    ["cpu", "cpu", "cpu"],
    ["e 1,m", "e\\ 1\\,m", "e 1,m"],
    ["c=1", "c=1", "c=1"],
    [" c9", "\\ c9", " c9"],
    ['d8"x', 'd8"x', 'd8"x'],
    ["a\\b", "a\\b", "a\\b"],
  ];
  for (const [name, written] of cases) assertStrictEquals(escapeMeasurement(name), written, name);
});

Deno.test("escapeKey() escapes comma, equals and space in tag keys, tag values and field keys", () => {
  // [text, written]; 1.6.7 stored "t k,=1" = "v 1,=x" and field "f 1,=k" from the first three.
  const cases: Array<[string, string]> = [
    ["t k,=1", "t\\ k\\,\\=1"],
    ["v 1,=x", "v\\ 1\\,\\=x"],
    ["f 1,=k", "f\\ 1\\,\\=k"],
    ['q"q', 'q"q'],
    ["a\\b", "a\\b"],
    ["plain_key", "plain_key"],
  ];
  for (const [text, written] of cases) assertStrictEquals(escapeKey(text), written, text);
});

Deno.test("encodePoint() refuses a control character in a name instead of writing it as \\n", () => {
  // 1.6.7 stored "l\\nf" (a backslash and an n) for the "\\n" escape Telegraf writes, and a raw
  // newline ends the line: no name with a control character can be written as it is.
  const why = "must not contain control characters such as a newline or a tab " +
    "(line protocol cannot carry them)";
  for (const bad of ["l\nf", "t1\tx", "c\rr", "f\ff", "nul\u0000", "del\u007f"]) {
    assertStrictEquals(
      refusal({ measurement: "m", tags: { host: bad }, fields: { v: 1 } }),
      `Cannot write to InfluxDB: a tag value ${why} (tag "host"), got ${JSON.stringify(bad)}`,
    );
    assertStrictEquals(
      refusal({ measurement: "m", tags: { [bad]: "x" }, fields: { v: 1 } }),
      `Cannot write to InfluxDB: a tag key ${why}, got ${JSON.stringify(bad)}`,
    );
    assertStrictEquals(
      refusal({ measurement: "m", tags: {}, fields: { [bad]: 1 } }),
      `Cannot write to InfluxDB: a field key ${why}, got ${JSON.stringify(bad)}`,
    );
    assertStrictEquals(
      refusal({ measurement: bad, tags: {}, fields: { v: 1 } }),
      `Cannot write to InfluxDB: a measurement ${why}, got ${JSON.stringify(bad)}`,
    );
  }
  // A string field value keeps its newline: 1.6.7 stored "multi\nline" unchanged.
  assertStrictEquals(line({ measurement: "m", tags: {}, fields: { s: "a\nb" } }), 'm s="a\nb"');
});

Deno.test("quoteString() escapes only the quote and the backslash", () => {
  // 1.6.7 stored `a "q" b\` from "a \"q\" b\\", `back\slash` from "back\\slash", and a raw newline as is.
  assertStrictEquals(quoteString('a "q" b\\'), '"a \\"q\\" b\\\\"');
  assertStrictEquals(quoteString("back\\slash"), '"back\\\\slash"');
  assertStrictEquals(quoteString("multi\nline"), '"multi\nline"');
  assertStrictEquals(quoteString(""), '""');
});

Deno.test("formatFloat() writes the shortest text that reads back as the same number", () => {
  // Each written to 1.6.7 and read back equal: 1e+21, 5e-324, -0, 1.7976931348623157e+308, 1e-7.
  const cases: Array<[number, string]> = [
    [1.5, "1.5"],
    [42, "42"],
    [0.1, "0.1"],
    [1e21, "1e+21"],
    [5e-324, "5e-324"],
    [-0, "-0"],
    [0, "0"],
    [Number.MAX_VALUE, "1.7976931348623157e+308"],
    [1e-7, "1e-7"],
    [-1.5e-10, "-1.5e-10"],
    [30364, "30364"],
  ];
  for (const [value, text] of cases) assertStrictEquals(formatFloat(value), text, String(value));
  for (let i = 0; i < 1000; i++) {
    const value = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 600 - 300);
    assert(Object.is(Number(formatFloat(value)), value), `${value} reads back`);
  }
});

Deno.test("formatFieldValue() writes floats, 64-bit integers, strings and booleans, and refuses the rest", () => {
  const ok = (v: Parameters<typeof formatFieldValue>[0]) => {
    const r = formatFieldValue(v);
    if (!r.ok) throw new Error(r.why);
    return r.text;
  };
  assertStrictEquals(ok(42n), "42i");
  // 1.6.7 accepted both ends and refused one beyond each ("value out of range").
  assertStrictEquals(ok(9223372036854775807n), "9223372036854775807i");
  assertStrictEquals(ok(-9223372036854775808n), "-9223372036854775808i");
  assertStrictEquals(ok(true), "true");
  assertStrictEquals(ok(false), "false");
  assertStrictEquals(ok("x"), '"x"');
  const why = (v: unknown) => {
    const r = formatFieldValue(v as number);
    if (r.ok) throw new Error(`Expected a refusal, got ${r.text}`);
    return r.why;
  };
  assertStrictEquals(
    why(9223372036854775808n),
    "is 9223372036854775808, outside the 64-bit integers InfluxDB stores",
  );
  assertMatch(why(-9223372036854775809n), /outside the 64-bit integers/);
  // 1.6.7: "v=NaN" is "invalid number", "v=Inf" "invalid boolean".
  assertStrictEquals(why(NaN), "is NaN, which line protocol cannot carry");
  assertStrictEquals(why(Infinity), "is Infinity, which line protocol cannot carry");
  assertStrictEquals(why(-Infinity), "is -Infinity, which line protocol cannot carry");
  assertStrictEquals(why("\ud800"), "is not valid Unicode (a lone surrogate)");
  assertStrictEquals(why(null), "is null, not a number, bigint, string or boolean");
  assertStrictEquals(why({}), "is object, not a number, bigint, string or boolean");
});

Deno.test("encodePoint() writes measurement, sorted tags, fields in order and the time", () => {
  assertStrictEquals(
    line({
      measurement: "cpu value",
      tags: { type_instance: "idle", host: "a,b", "k=1": "v 1" },
      fields: { value: 1.5, n: 42n, s: 'q"\\', ok: true },
      time: 1_700_000_000_123_456_789n,
    }),
    // Written to 1.6.7: stored as measurement "cpu value", tags host "a,b", k=1 "v 1".
    'cpu\\ value,host=a\\,b,k\\=1=v\\ 1,type_instance=idle value=1.5,n=42i,s="q\\"\\\\",ok=true 1700000000',
  );
  assertStrictEquals(line({ measurement: "m", tags: {}, fields: { v: 1 } }), "m v=1");
});

Deno.test("encodePoint() leaves out tags with empty values", () => {
  // 1.6.7 refuses "b1,t= v=1": "missing tag value".
  assertStrictEquals(
    line({ measurement: "m", tags: { a: "", b: "x", c: "" }, fields: { v: 1 }, time: T }),
    "m,b=x v=1 1700000000",
  );
});

Deno.test("encodePoint() rounds the time down to the precision", () => {
  const t = 1_700_000_000_123_456_789n;
  const cases: Array<[Precision, string]> = [
    ["s", "1700000000"],
    ["ms", "1700000000123"],
    ["us", "1700000000123456"],
    ["ns", "1700000000123456789"],
  ];
  for (const [precision, text] of cases) {
    assertStrictEquals(
      line({ measurement: "m", tags: {}, fields: { v: 1 }, time: t }, precision),
      `m v=1 ${text}`,
    );
  }
  assertStrictEquals(toPrecision(-1n, "s"), -1n, "before 1970, down is further back");
  assertStrictEquals(toPrecision(-1_000_000_000n, "s"), -1n);
  assertStrictEquals(toPrecision(-1_500_000n, "ms"), -2n);
  assertStrictEquals(toPrecision(1_999_999_999n, "s"), 1n);
});

Deno.test("encodePoint() refuses times outside what InfluxDB stores", () => {
  // 1.6.7: "time outside range -9223372036854775806 - 9223372036854775806".
  const at = (time: bigint, precision: Precision = "ns") =>
    encodePoint({ measurement: "m", tags: {}, fields: { v: 1 }, time }, precision).ok;
  assert(at(9_223_372_036_854_775_806n));
  assert(!at(9_223_372_036_854_775_807n));
  assert(at(-9_223_372_036_854_775_806n));
  assert(!at(-9_223_372_036_854_775_807n));
  // Rounded down to the second, the earliest nanosecond time falls outside.
  assert(!at(-9_223_372_036_854_775_806n, "s"));
  assertStrictEquals(
    refusal({ measurement: "m", tags: {}, fields: { v: 1 }, time: 9_223_372_037_000_000_000n }),
    'Cannot write to InfluxDB: the time is outside the range InfluxDB stores (1677-09-21 to 2262-04-11), got "9223372037000000000 ns"',
  );
});

Deno.test("encodePoint() refuses what InfluxDB 1.6.7 refuses, with the value", () => {
  const cases: Array<[Point, string]> = [
    [
      { measurement: "", tags: {}, fields: { v: 1 } },
      'Cannot write to InfluxDB: a measurement must not be empty, got ""',
    ],
    [
      { measurement: "m", tags: {}, fields: {} },
      'Cannot write to InfluxDB: a point needs at least one field, got "m"',
    ],
    [
      // 1.6.7: "missing tag key".
      { measurement: "m", tags: { "": "x" }, fields: { v: 1 } },
      'Cannot write to InfluxDB: a tag key must not be empty, got ""',
    ],
    [
      // 1.6.7: "missing field key".
      { measurement: "m", tags: {}, fields: { "": 1 } },
      'Cannot write to InfluxDB: a field key must not be empty, got ""',
    ],
    [
      // 1.6.7: partial write: invalid tag key: input tag "time" on measurement "m" is invalid.
      { measurement: "m", tags: { time: "a" }, fields: { v: 1 } },
      'Cannot write to InfluxDB: a tag key must not be "time" (InfluxDB refuses it), got "time"',
    ],
    [
      // 1.6.7: partial write: invalid field name: input field "time" on measurement "m" is invalid.
      { measurement: "m", tags: {}, fields: { time: 1 } },
      'Cannot write to InfluxDB: a field key must not be "time" (InfluxDB refuses it), got "time"',
    ],
    [
      { measurement: "m", tags: {}, fields: { v: NaN } },
      'Cannot write to InfluxDB: field "v" is NaN, which line protocol cannot carry, got "NaN"',
    ],
    [
      { measurement: "m", tags: { host: "\ud800" }, fields: { v: 1 } },
      'Cannot write to InfluxDB: a tag value must be valid Unicode (it has a lone surrogate) (tag "host"), got "\\ud800"',
    ],
  ];
  for (const [point, message] of cases) assertStrictEquals(refusal(point), message);
});

Deno.test("encodePoint() refuses a measurement beginning with #, which InfluxDB drops as a comment", () => {
  // 1.6.7 answered 204 to "#c2 v=1 1700000000" and stored nothing.
  assertStrictEquals(
    refusal({ measurement: "#c2", tags: {}, fields: { v: 1 } }),
    'Cannot write to InfluxDB: a measurement must not begin with # (InfluxDB reads the line as a comment and drops it), got "#c2"',
  );
  assertStrictEquals(line({ measurement: "c#2", tags: {}, fields: { v: 1 } }), "c#2 v=1");
});

Deno.test("encodePoint() refuses a backslash that InfluxDB would read as an escape", () => {
  // 1.6.7 stored tag "a\\\\,b" for a\\\,b (one backslash became two), refused "t=ab\\ v=4"
  // (invalid tag format), stored field key `a"b` for a\"b and measurement d2=x for d2\=x,
  // but kept a backslash before other characters (tag `a\"b`, `a\b`) as it is.
  const refused: Array<[Point, RegExp]> = [
    [
      { measurement: "m", tags: { t: "ab\\" }, fields: { v: 1 } },
      /tag value must not have a backslash at its end or before , = or space/,
    ],
    [{ measurement: "m", tags: { t: "a\\,b" }, fields: { v: 1 } }, /tag value/],
    [{ measurement: "m", tags: { t: "a\\ b" }, fields: { v: 1 } }, /tag value/],
    [{ measurement: "m", tags: { t: "a\\=b" }, fields: { v: 1 } }, /tag value/],
    [{ measurement: "m", tags: { "k\\": "x" }, fields: { v: 1 } }, /tag key/],
    [
      { measurement: "m", tags: {}, fields: { 'a\\"b': 1 } },
      /field key must not have a backslash at its end or before , = space or "/,
    ],
    [{ measurement: "d2\\=x", tags: {}, fields: { v: 1 } }, /measurement/],
    [{ measurement: 'd8\\"x', tags: {}, fields: { v: 1 } }, /measurement/],
    [{ measurement: "m\\", tags: {}, fields: { v: 1 } }, /measurement/],
  ];
  for (const [point, message] of refused) assertMatch(refusal(point), message);
  assertStrictEquals(
    line({ measurement: "a\\b", tags: { t: 'a\\"b', u: "a\\b" }, fields: { "g\\h": 1 }, time: T }),
    'a\\b,t=a\\"b,u=a\\b g\\h=1 1700000000',
  );
});

Deno.test("encodePoint() refuses a series key and field key longer than 65535 bytes", () => {
  // 1.6.7 accepted "d9,t=" + 65000 characters with field v, refused 65530 ("max key length
  // exceeded: 65540 > 65535", the series key, "#!~#" and the field key).
  const point = (n: number): Point => ({
    measurement: "d9",
    tags: { t: "c".repeat(n) },
    fields: { v: 1 },
  });
  assert(encodePoint(point(65525), "s").ok);
  assertMatch(
    refusal(point(65526)),
    new RegExp(
      `the series key and field key are 65536 bytes, more than InfluxDB's ${MAX_KEY_BYTES}`,
    ),
  );
  assertMatch(refusal(point(65530)), /65540 bytes/);
  // Bytes, not characters: 3 bytes each.
  assertMatch(
    refusal({ measurement: "d9", tags: { t: "€".repeat(21842) }, fields: { v: 1 } }),
    /65536 bytes/,
  );
});

Deno.test("encodePoint() refuses the tag keys InfluxDB 2 reserves only for API 2", () => {
  // 2.7.12: 400 "cannot use reserved tag key \"_field\"" (and _measurement); 1.6.7 stored both.
  for (const key of ["_field", "_measurement"]) {
    const point = { measurement: "m", tags: { [key]: "x" }, fields: { v: 1 } };
    assertStrictEquals(line(point), `m,${key}=x v=1`);
    assertStrictEquals(
      refusal(point, "s", 2),
      "Cannot write to InfluxDB: a tag key must not be _measurement or _field with API version 2 " +
        `(InfluxDB 2 reserves them), got "${key}"`,
    );
  }
  // 2.7.12 took _field and _measurement as field keys.
  assert(encodePoint({ measurement: "m", tags: {}, fields: { _field: 1, _value: 2 } }, "s", 2).ok);
});

Deno.test("nameProblem() accepts what InfluxDB stores unchanged", () => {
  for (const name of ["cpu", " c9", "c=1", "ü", "_field", "_measurement", "a\\b"]) {
    assertStrictEquals(nameProblem("measurement", name), undefined, name);
  }
  // 1.6.7 accepted "time" as a measurement.
  assertStrictEquals(nameProblem("measurement", "time"), undefined);
  // 1.6.7 accepted _field, _measurement, _value, _start as keys.
  assertStrictEquals(nameProblem("tag key", "_field"), undefined);
  assertStrictEquals(nameProblem("field key", "_value"), undefined);
});

Deno.test("checkRawLine() passes a line unchanged and refuses only an empty one or one with a newline", () => {
  for (const text of ["cpu,host=a value=1 1700000000", "not line protocol at all"]) {
    assertEquals(checkRawLine(text), { ok: true, line: text });
  }
  const refused: Array<[unknown, string]> = [
    ["", 'a line must not be empty, got ""'],
    ["  ", 'a line must not be empty, got "  "'],
    ["a v=1\nb v=2", 'a line must not contain a newline, got "a v=1\\nb v=2"'],
    [undefined, 'a raw line must be a string, got "undefined"'],
  ];
  for (const [text, error] of refused) {
    assertEquals(checkRawLine(text), { ok: false, error: `Cannot write to InfluxDB: ${error}` });
  }
});
