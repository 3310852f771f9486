import {
  DEFAULT_TIME_WINDOW,
  epochSeconds,
  isValidTimeZone,
  readTimeWindow,
  RECORD_TIME,
  TimeReader,
} from "../../lib/time.ts";
import { formatProblem, VarReader } from "../../lib/variables.ts";
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

Deno.test("TimeReader reads the years 0000 to 0099 as those years, not 1900 to 1999", () => {
  assertEquals(utc.parse("0050-06-01 12:00:00").seconds, -60576206400);
  assertEquals(utc.parse("0000-01-01T00:00:00Z").seconds, -62167219200);
  assertEquals(utc.parse("0099-12-31 23:59:59").seconds, -59011459201);
  assertEquals(utc.localDate(utc.parse("0050-06-01 12:00:00")), "0050-06-01");
  assertEquals(berlin.localDate(berlin.parse("0050-06-01 12:00:00")), "0050-06-01");
  assertEquals(epochSeconds(1970, 1, 1), 0);
  assertEquals(epochSeconds(2026, 11, 21, 23, 25), Date.UTC(2026, 10, 21, 23, 25) / 1000);
});

Deno.test("TimeReader refuses impossible offsets, dates and times, quoting the text", () => {
  for (
    const text of [
      "2026-11-21T23:25:00+99:00",
      "2026-11-21T23:25:00+99:99",
      "2026-11-21T23:25:00-15:00",
      "2026-11-21T23:25:00+14:01",
      "2026-11-21T23:25:00+01:60",
      "2026-11-21T23:25:00+0175",
    ]
  ) {
    assertThrows(
      () => utc.parse(text),
      (error: Error) =>
        error instanceof SyntaxError && error.message ===
          `Cannot read timestamp: ${JSON.stringify(text)} has an offset no time zone has ` +
            "(from -14:00 to +14:00, minutes below 60)",
      text,
    );
  }
  assertEquals(utc.parse("2026-11-21T23:25:00+14:00").seconds, epochSeconds(2026, 11, 21, 9, 25));
  assertEquals(utc.parse("2026-11-21T23:25:00-12:00").seconds, epochSeconds(2026, 11, 22, 11, 25));
  for (
    const text of [
      "2026-13-01 00:00:00",
      "2026-00-01 00:00:00",
      "2026-01-32 00:00:00",
      "2026-02-29 00:00:00",
      "2026-04-31 00:00:00",
      "2026-01-01 24:00:00",
      "2026-01-01 23:60:00",
      "2026-01-01 23:59:60",
    ]
  ) {
    assertThrows(
      () => utc.parse(text),
      (error: Error) =>
        error.message ===
          `Cannot read timestamp: ${JSON.stringify(text)} is not a valid date and time`,
      text,
    );
  }
  assertEquals(utc.parse("2024-02-29 00:00:00").seconds, epochSeconds(2024, 2, 29));
});

Deno.test("TimeReader keeps nanoseconds and rounds an epoch number as a whole", () => {
  assertEquals(utc.parse("2026-11-21 23:27:47.123456789"), {
    seconds: Date.UTC(2026, 10, 21, 23, 27, 47) / 1000,
    micros: 123456,
    nanos: 123456789,
  });
  // 1.9999999 s is 2 s, not 1 s and 1000000 µs.
  assertEquals(utc.parse(1.9999999), { seconds: 2, micros: 0 });
});

Deno.test("TimeReader.outsideWindow() checks RECORD_TIME_MIN and RECORD_TIME_MAX_FUTURE", () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  const reader = new TimeReader("UTC", { clock: () => now });
  assertEquals(reader.outsideWindow(reader.parse("1970-01-01 00:00:00")), undefined);
  assertEquals(reader.outsideWindow(reader.parse("2026-12-07 12:00:00")), undefined);
  assertEquals(
    reader.outsideWindow(reader.parse("1969-12-31 23:59:59")),
    "is before RECORD_TIME_MIN (1970-01-01T00:00:00Z)",
  );
  assertEquals(
    reader.outsideWindow(reader.parse("2026-12-07 12:00:00.001")),
    "is more than RECORD_TIME_MAX_FUTURE (86400 s) ahead of the clock (2026-12-06T12:00:00Z); " +
      "check PMACCT_TIMEZONE and the collector's clock",
  );
  const narrow = new TimeReader("UTC", {
    clock: () => now,
    window: { minSeconds: epochSeconds(2020, 1, 1), maxFutureMs: 0 },
  });
  assertEquals(
    narrow.outsideWindow(narrow.parse("2019-12-31 23:59:59")),
    "is before RECORD_TIME_MIN (2020-01-01T00:00:00Z)",
  );
  assertEquals(
    new TimeReader("UTC", { window: false }).outsideWindow({ seconds: -1e12, micros: 0 }),
    undefined,
  );
});

Deno.test("readTimeWindow() reads RECORD_TIME_MIN and RECORD_TIME_MAX_FUTURE, with problems", () => {
  const read = (env: Record<string, string>) => {
    const reader = new VarReader(env, RECORD_TIME.specs);
    return { window: readTimeWindow(reader), problems: reader.problems.map(formatProblem) };
  };
  assertEquals(read({}), { window: DEFAULT_TIME_WINDOW, problems: [] });
  assertEquals(read({ RECORD_TIME_MIN: "2001-09-09", RECORD_TIME_MAX_FUTURE: "600" }), {
    window: { minSeconds: 999993600, maxFutureMs: 600_000 },
    problems: [],
  });
  assertEquals(read({ RECORD_TIME_MIN: "2001-09-09T01:46:40+00:00" }).window.minSeconds, 1e9);
  assertEquals(read({ RECORD_TIME_MIN: "2001-02-30", RECORD_TIME_MAX_FUTURE: "-1" }).problems, [
    '"RECORD_TIME_MAX_FUTURE" must be a number >= 0, got "-1"',
    '"RECORD_TIME_MIN" must be a date (YYYY-MM-DD) or an instant with an offset ' +
    '(2026-01-01T00:00:00Z), got "2001-02-30"',
  ]);
  assertEquals(read({ RECORD_TIME_MIN: "2001-09-09 01:46:40" }).problems.length, 1);
});
