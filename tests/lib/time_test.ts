import { isValidTimeZone, TimeReader } from "../../lib/time.ts";
import { assertEquals, assertThrows } from "../_assert.ts";

const utc = new TimeReader("UTC");
const berlin = new TimeReader("Europe/Berlin");

Deno.test("TimeReader reads pmacct local timestamps in UTC by default", () => {
  assertEquals(utc.parse("2026-11-21 23:25:00"), {
    seconds: Date.UTC(2026, 10, 21, 23, 25) / 1000,
    micros: 0,
  });
});

Deno.test("TimeReader reads local timestamps in the configured zone, DST included", () => {
  // November: CET, UTC+1.
  assertEquals(berlin.parse("2026-11-21 23:25:00").seconds, Date.UTC(2026, 10, 21, 22, 25) / 1000);
  // July: CEST, UTC+2.
  assertEquals(berlin.parse("2026-07-01 12:00:00").seconds, Date.UTC(2026, 6, 1, 10, 0) / 1000);
  // Just after the autumn change (2026-10-25 03:00 CEST -> 02:00 CET).
  assertEquals(berlin.parse("2026-10-25 04:00:00").seconds, Date.UTC(2026, 9, 25, 3, 0) / 1000);
});

Deno.test("TimeReader keeps microseconds", () => {
  assertEquals(utc.parse("2026-11-21 23:27:47.123456"), {
    seconds: Date.UTC(2026, 10, 21, 23, 27, 47) / 1000,
    micros: 123456,
  });
  assertEquals(utc.parse("2026-11-21 23:27:47.000000").micros, 0);
});

Deno.test("TimeReader reads epoch seconds as strings and numbers", () => {
  assertEquals(utc.parse("1795303694"), { seconds: 1795303694, micros: 0 });
  assertEquals(utc.parse("1795303694.250000"), { seconds: 1795303694, micros: 250000 });
  assertEquals(berlin.parse("1795303694").seconds, 1795303694);
  assertEquals(utc.parse(1795303694.5), { seconds: 1795303694, micros: 500000 });
});

Deno.test("TimeReader reads RFC 3339 and RFC 9557 timestamps with offsets, ignoring the zone setting", () => {
  const expected = Date.UTC(2026, 10, 21, 22, 25) / 1000;
  assertEquals(berlin.parse("2026-11-21T23:25:00+01:00").seconds, expected);
  assertEquals(utc.parse("2026-11-21T22:25:00Z").seconds, expected);
  assertEquals(utc.parse("2026-11-21T23:25:00+0100").seconds, expected);
  assertEquals(utc.parse("2026-11-21T23:25:00.5+01:00[Europe/Berlin]"), {
    seconds: expected,
    micros: 500000,
  });
});

Deno.test("TimeReader rejects what is not a timestamp", () => {
  assertThrows(() => utc.parse("yesterday"), SyntaxError);
  assertThrows(() => utc.parse("2026-13-01 00:00:00"), SyntaxError);
  assertThrows(() => utc.parse("2026-02-30 00:00:00"), SyntaxError);
  assertThrows(() => utc.parse(null), SyntaxError);
  assertThrows(() => utc.parse(-5), SyntaxError);
});

Deno.test("TimeReader gives the local date of an instant", () => {
  const ts = utc.parse("2026-11-21T23:30:00Z");
  assertEquals(utc.localDate(ts), "2026-11-21");
  assertEquals(berlin.localDate(ts), "2026-11-22");
});

Deno.test("isValidTimeZone() and the constructor refuse unknown zones", () => {
  assertEquals(isValidTimeZone("Europe/Berlin"), true);
  assertEquals(isValidTimeZone("Mars/Olympus"), false);
  assertThrows(() => new TimeReader("Mars/Olympus"), RangeError);
});
