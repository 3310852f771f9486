import { decodePmacct } from "../../../lib/decode/pmacct.ts";
import { Logger } from "../../../lib/log.ts";
import { utf8Length } from "../../../lib/text.ts";
import { DEFAULT_TIME_WINDOW, epochSeconds, TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import { CLICKHOUSE, parseClickHouseConfig } from "../../../sinks/clickhouse/config.ts";
import {
  type ClickHouseRow,
  compileRowConverter,
  compileTimestampTemplate,
  isIPv4,
  isIPv6,
} from "../../../sinks/clickhouse/encode.ts";
import { ClickHouseSink } from "../../../sinks/clickhouse/mod.ts";
import { parseSchema } from "../../../sinks/clickhouse/schema.ts";
import type { InputRecord, PrepareResult } from "../../../lib/record.ts";
import { assert, assertEquals, assertStrictEquals, assertThrows } from "../../_assert.ts";

const SAMPLES = new URL("../../testdata/samples/pmacctd-print-json.jsonl", import.meta.url);

/** Converter options: the zone, the template, and the year RECORD_TIME_MIN is at (1970). */
type Options = { zone?: string; template?: string; minYear?: number };

function converter(
  schema: string,
  options: Options = {},
): (record: InputRecord) => PrepareResult<ClickHouseRow> {
  const { columns, problems } = parseSchema(schema);
  assertEquals(problems, []);
  const window = options.minYear === undefined
    ? DEFAULT_TIME_WINDOW
    : { ...DEFAULT_TIME_WINDOW, minSeconds: epochSeconds(options.minYear, 1, 1) };
  return compileRowConverter(columns, {
    time: new TimeReader(options.zone ?? "UTC", { window }),
    timestampTemplate: options.template,
  });
}

/** The JSON line of a converted value, or the rejection text. */
function line(
  schema: string,
  record: InputRecord,
  options: Options = {},
): string {
  const result = converter(schema, options)(record);
  return result.ok ? result.row : `rejected: ${result.rejection.error}`;
}

/** Converts `{ v: value }` for a column `v` of the type; gives the JSON line or the rejection. */
function one(
  type: string,
  value: unknown,
  options: Options = {},
): string {
  return line(`v:${type}`, { v: value }, options);
}

async function samples(): Promise<InputRecord[]> {
  return (await Deno.readTextFile(SAMPLES)).split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l)
  );
}

Deno.test("compileRowConverter() with an IPv4 schema rejects the sample's ::1 flows and accepts the others", async () => {
  const convert = converter("ip_src:IPv4,ip_dst:IPv4,peer_ip_src:IPv4,bytes:UInt64");
  const results = (await samples()).map(convert);
  const rejected = results.filter((r) => !r.ok);
  assertStrictEquals(results.length, 10);
  assertStrictEquals(rejected.length, 2);
  for (const r of rejected) {
    assertEquals(r, {
      ok: false,
      rejection: { reason: "convert", error: `IPv6 address "::1" in IPv4 column "ip_src"` },
    });
  }
  // The empty peer_ip_src is left out so ClickHouse applies the column default.
  assertEquals(results[0], {
    ok: true,
    row: `{"ip_src":"127.0.0.1","ip_dst":"127.0.0.1","bytes":402}`,
    bytes: `{"ip_src":"127.0.0.1","ip_dst":"127.0.0.1","bytes":402}`.length + 1,
  });
});

Deno.test("compileRowConverter() with an IPv6 schema accepts every sample flow, mapping IPv4 addresses", async () => {
  const convert = converter("ip_src:IPv6,peer_ip_src:IPv6");
  const rows = (await samples()).map(convert).map((r) => (r.ok ? r.row : r.rejection.error));
  assertEquals(rows[0], `{"ip_src":"::ffff:127.0.0.1"}`);
  assertEquals(rows[4], `{"ip_src":"::1"}`);
});

Deno.test("compileRowConverter() keeps only schema columns and leaves missing fields out", async () => {
  const [record] = await samples();
  assertStrictEquals(
    line("bytes:UInt64,packets:UInt64,as_path:String,tcp_flags:UInt8", record!),
    `{"bytes":402,"packets":6}`,
  );
});

Deno.test("compileRowConverter() reads a 2026-11-21 23:25:00 record in Europe/Berlin as 22:25 UTC", async () => {
  const [record] = await samples();
  const expected = Date.UTC(2026, 10, 21, 22, 25) / 1000;
  assertStrictEquals(
    line("stamp_inserted:DateTime,day:Date", { ...record, day: record!.stamp_inserted }, {
      zone: "Europe/Berlin",
    }),
    `{"stamp_inserted":${expected},"day":"2026-11-21"}`,
  );
  assertStrictEquals(one("DateTime", "2026-11-21 23:25:00"), `{"v":${expected + 3600}}`);
});

Deno.test("compileRowConverter() gives the local date of an instant in the configured zone", () => {
  assertStrictEquals(
    one("Date", "2026-11-21T23:30:00Z", { zone: "Europe/Berlin" }),
    `{"v":"2026-11-22"}`,
  );
  assertStrictEquals(one("Date", "2026-11-21T23:30:00Z"), `{"v":"2026-11-21"}`);
  assertStrictEquals(one("Date", "2026-02-28"), `{"v":"2026-02-28"}`);
  assertStrictEquals(
    one("Date", "2026-02-30"),
    `rejected: "2026-02-30" is not a date for Date column "v"`,
  );
  // Before 1970 with RECORD_TIME_MIN moved back: Date32 holds it, Date does not.
  const old = { minYear: 1900 };
  assertStrictEquals(one("Date32", "1950-05-01 00:00:00", old), `{"v":"1950-05-01"}`);
  assertStrictEquals(
    one("Date", "1950-05-01 00:00:00", old),
    `rejected: "1950-05-01 00:00:00" is out of range for Date column "v"`,
  );
});

Deno.test("compileRowConverter() writes DateTime as epoch seconds from every pmacct timestamp form", () => {
  assertStrictEquals(one("DateTime", "2026-11-21 23:25:00.123456"), `{"v":1795303500}`);
  assertStrictEquals(one("DateTime", "1795303500"), `{"v":1795303500}`);
  assertStrictEquals(one("DateTime", 1795303500.9), `{"v":1795303500}`);
  assertStrictEquals(one("DateTime", "2026-11-21T23:25:00+01:00"), `{"v":1795299900}`);
  assertStrictEquals(one("DateTime('Asia/Tokyo')", "2026-11-21 23:25:00"), `{"v":1795303500}`);
  assertStrictEquals(
    one("DateTime", "yesterday"),
    `rejected: "yesterday" is not a timestamp for DateTime column "v"`,
  );
  assertStrictEquals(
    one("DateTime", true),
    `rejected: true is not a timestamp for DateTime column "v"`,
  );
});

Deno.test("compileRowConverter() writes DateTime64 as an unquoted epoch number cut to the column's precision", () => {
  // Unquoted: ClickHouse reads quoted text by date_time_input_format, and
  // best_effort takes "0.001" or "20261121" for dates.
  assertStrictEquals(one("DateTime64(3)", "2026-11-21 23:25:00.123456"), `{"v":1795303500.123}`);
  assertStrictEquals(
    one("DateTime64(6, 'UTC')", "2026-11-21 23:25:00.000001"),
    `{"v":1795303500.000001}`,
  );
  assertStrictEquals(one("DateTime64(0)", "2026-11-21 23:25:00.9"), `{"v":1795303500}`);
  // Nine digits stay exact: the text is written as it is, not through a float.
  assertStrictEquals(
    one("DateTime64(9)", "2026-11-21 23:25:00.123456"),
    `{"v":1795303500.123456000}`,
  );
  assertStrictEquals(one("DateTime64(3)", "1970-01-01 00:00:00.001"), `{"v":0.001}`);
  assertStrictEquals(one("Array(DateTime64(1))", [0, "1795303500.55"]), `{"v":[0.0,1795303500.5]}`);
});

Deno.test("compileRowConverter() writes a DateTime64 before 1970 with the sign on the whole number", () => {
  // RECORD_TIME_MIN moved back to 1800, so that the column's own range shows.
  const old = { minYear: 1800 };
  // 1969-12-31 23:59:58.5 is 1.5 s before the epoch: -1.5, not -2 + .5.
  assertStrictEquals(one("DateTime64(3)", "1969-12-31 23:59:58.5", old), `{"v":-1.500}`);
  assertStrictEquals(one("DateTime64(6)", "1969-12-31 23:59:59.999999", old), `{"v":-0.000001}`);
  assertStrictEquals(one("DateTime64(0)", "1969-12-31 23:59:58.5", old), `{"v":-2}`);
  assertStrictEquals(one("DateTime64(2)", "1900-01-01 00:00:00", old), `{"v":-2208988800.00}`);
  assertStrictEquals(
    one("DateTime64(1)", "1899-12-31 23:59:59", old),
    `rejected: "1899-12-31 23:59:59" is out of range for DateTime64(1) column "v"`,
  );
});

Deno.test("compileRowConverter() reads integers from numbers and numeric strings with a range check", () => {
  // pmacct writes tcp_flags as a string.
  assertStrictEquals(one("UInt8", "24"), `{"v":24}`);
  assertStrictEquals(one("UInt8", 255), `{"v":255}`);
  assertStrictEquals(one("Int8", "-128"), `{"v":-128}`);
  // A boolean is not an integer (ClickHouse 26.9 would store true as 1).
  assertStrictEquals(one("UInt8", true), `rejected: true is not an integer for UInt8 column "v"`);
  assertStrictEquals(
    one("UInt64", false),
    `rejected: false is not an integer for UInt64 column "v"`,
  );
  // ClickHouse 18.16 silently wraps 256 into a UInt8 0, so sluice refuses it.
  assertStrictEquals(one("UInt8", 256), `rejected: 256 is out of range for UInt8 column "v"`);
  assertStrictEquals(one("UInt32", -1), `rejected: -1 is out of range for UInt32 column "v"`);
  assertStrictEquals(one("UInt16", 1.5), `rejected: 1.5 is not an integer for UInt16 column "v"`);
  assertStrictEquals(
    one("Int32", "12abc"),
    `rejected: "12abc" is not an integer for Int32 column "v"`,
  );
  assertStrictEquals(
    one("Int32", { a: 1 }),
    `rejected: {"a":1} is not an integer for Int32 column "v"`,
  );
});

Deno.test("compileRowConverter() passes 64-bit and wider integers beyond 2^53 as exact digit strings", () => {
  assertStrictEquals(one("UInt64", "18446744073709551615"), `{"v":"18446744073709551615"}`);
  assertStrictEquals(
    one("UInt64", "18446744073709551616"),
    `rejected: "18446744073709551616" is out of range for UInt64 column "v"`,
  );
  assertStrictEquals(one("Int64", "-9223372036854775808"), `{"v":"-9223372036854775808"}`);
  assertStrictEquals(one("Int64", "+42"), `{"v":42}`);
  assertStrictEquals(one("UInt64", 9007199254740993n), `{"v":"9007199254740993"}`);
  assertStrictEquals(one("UInt64", 2 ** 60), `{"v":"1152921504606846976"}`);
  assertStrictEquals(one("UInt64", "-5"), `rejected: "-5" is out of range for UInt64 column "v"`);
  assertStrictEquals(
    one("Int128", "-170141183460469231731687303715884105728"),
    `{"v":"-170141183460469231731687303715884105728"}`,
  );
  assertStrictEquals(
    one("UInt256", "2".padEnd(78, "0")),
    `rejected: "2${"0".repeat(77)}" is out of range for UInt256 column "v"`,
  );
});

Deno.test("compileRowConverter() reads floats from numbers and numeric strings and refuses NaN and Infinity", () => {
  assertStrictEquals(one("Float64", "1.5e3"), `{"v":1500}`);
  assertStrictEquals(one("Float32", 0.25), `{"v":0.25}`);
  assertStrictEquals(
    one("Float64", NaN),
    `rejected: NaN is not a finite number for Float64 column "v"`,
  );
  assertStrictEquals(
    one("Float64", "inf"),
    `rejected: "inf" is not a number for Float64 column "v"`,
  );
  assertStrictEquals(
    one("Float64", "NaN"),
    `rejected: "NaN" is not a number for Float64 column "v"`,
  );
  assertStrictEquals(
    one("Float32", 1e39),
    `rejected: 1e+39 is out of range for Float32 column "v"`,
  );
});

Deno.test("compileRowConverter() writes Decimal digits exactly, unquoted, padded to the scale", () => {
  assertStrictEquals(one("Decimal(20, 4)", "1234567890123456.7891"), `{"v":1234567890123456.7891}`);
  assertStrictEquals(one("Decimal(10, 2)", "12.3"), `{"v":12.30}`);
  assertStrictEquals(one("Decimal(10, 2)", "12.300"), `{"v":12.30}`);
  assertStrictEquals(one("Decimal(10, 2)", 0.1), `{"v":0.10}`);
  assertStrictEquals(one("Decimal(10, 2)", "-0.00"), `{"v":0.00}`);
  assertStrictEquals(one("Decimal(10, 2)", "-007.5"), `{"v":-7.50}`);
  assertStrictEquals(one("Decimal32(0)", "1e3"), `{"v":1000}`);
  assertStrictEquals(
    one("Decimal(10, 2)", "12.345"),
    `rejected: "12.345" has more than 2 decimal places for Decimal(10, 2) column "v"`,
  );
  assertStrictEquals(
    one("Decimal(5, 2)", "1234.5"),
    `rejected: "1234.5" is out of range for Decimal(5, 2) column "v"`,
  );
  assertStrictEquals(
    one("Decimal(5, 2)", "1.2.3"),
    `rejected: "1.2.3" is not a decimal number for Decimal(5, 2) column "v"`,
  );
  assertStrictEquals(
    one("Decimal(5, 2)", "."),
    `rejected: "." is not a decimal number for Decimal(5, 2) column "v"`,
  );
});

Deno.test("compileRowConverter() reads Bool, UUID, Enum and FixedString values", () => {
  assertStrictEquals(one("Bool", "TRUE"), `{"v":true}`);
  assertStrictEquals(one("Boolean", 0), `{"v":false}`);
  assertStrictEquals(
    one("Bool", "maybe"),
    `rejected: "maybe" is not a boolean for Bool column "v"`,
  );
  assertStrictEquals(
    one("UUID", "61F0C404-5CB3-11E7-907B-A6006AD3DBA0"),
    `{"v":"61f0c404-5cb3-11e7-907b-a6006ad3dba0"}`,
  );
  assertStrictEquals(
    one("UUID", "61f0c4045cb311e7907ba6006ad3dba0"),
    `rejected: "61f0c4045cb311e7907ba6006ad3dba0" is not a UUID for UUID column "v"`,
  );
  const e = "Enum8('tcp' = 6, 'udp' = 17)";
  assertStrictEquals(one(e, "udp"), `{"v":"udp"}`);
  // 18.16 reads an Enum only by name, so a number becomes its name.
  assertStrictEquals(one(e, 6), `{"v":"tcp"}`);
  assertStrictEquals(one(e, "17"), `{"v":"udp"}`);
  assertStrictEquals(
    one(e, "icmp"),
    `rejected: "icmp" is not one of the values of ${e} for ${e} column "v"`,
  );
  assertStrictEquals(one("FixedString(2)", "ab"), `{"v":"ab"}`);
  // "äb" is 3 bytes in UTF-8.
  assertStrictEquals(
    one("FixedString(2)", "äb"),
    `rejected: "äb" is longer than 2 bytes for FixedString(2) column "v"`,
  );
});

Deno.test("compileRowConverter() turns numbers, booleans and objects into text for String columns", () => {
  assertStrictEquals(
    line("a:String,b:String,c:String,d:String,e:String", {
      a: 1.5,
      b: false,
      c: { x: [1] },
      d: "",
      e: [1, "x"],
    }),
    `{"a":"1.5","b":"false","c":"{\\"x\\":[1]}","d":"","e":"[1,\\"x\\"]"}`,
  );
});

Deno.test("compileRowConverter() validates IP addresses and leaves empty ones out", () => {
  assertStrictEquals(one("IPv4", "192.0.2.1"), `{"v":"192.0.2.1"}`);
  assertStrictEquals(one("IPv4", "::ffff:192.0.2.1"), `{"v":"192.0.2.1"}`);
  assertStrictEquals(one("IPv4", 3221225985), `{"v":"192.0.2.1"}`);
  assertStrictEquals(one("IPv4", ""), `{}`);
  assertStrictEquals(
    one("IPv4", "192.0.2.256"),
    `rejected: "192.0.2.256" is not an IPv4 address for IPv4 column "v"`,
  );
  assertStrictEquals(
    one("IPv4", "2001:DB8::1"),
    `rejected: IPv6 address "2001:DB8::1" in IPv4 column "v"`,
  );
  assertStrictEquals(one("IPv6", "2001:DB8::1"), `{"v":"2001:db8::1"}`);
  assertStrictEquals(one("IPv6", "192.0.2.1"), `{"v":"::ffff:192.0.2.1"}`);
  assertStrictEquals(one("IPv6", ""), `{}`);
  assertStrictEquals(
    one("IPv6", "1:2:3"),
    `rejected: "1:2:3" is not an IP address for IPv6 column "v"`,
  );
  assertStrictEquals(one("Nullable(IPv4)", ""), `{}`);
});

Deno.test("isIPv4() and isIPv6() accept the RFC text forms and refuse the rest", () => {
  for (
    const ok of [
      "::",
      "::1",
      "1::",
      "fe80::1:2",
      "1:2:3:4:5:6:7:8",
      "::ffff:1.2.3.4",
      "64:ff9b::192.0.2.33",
    ]
  ) {
    assert(isIPv6(ok), ok);
  }
  for (
    const bad of [
      "",
      ":",
      ":::",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "fe80::1%eth0",
      "::1.2.3",
      "g::",
    ]
  ) {
    assert(!isIPv6(bad), bad);
  }
  assert(isIPv4("0.0.0.0") && isIPv4("255.255.255.255"));
  assert(!isIPv4("01.2.3.4") && !isIPv4("1.2.3") && !isIPv4("1.2.3.4 "));
});

Deno.test("compileRowConverter() allows null only in Nullable columns", () => {
  assertStrictEquals(one("Nullable(String)", null), `{"v":null}`);
  assertStrictEquals(one("LowCardinality(Nullable(String))", null), `{"v":null}`);
  assertStrictEquals(one("String", null), `rejected: null in non-Nullable String column "v"`);
  assertStrictEquals(
    one("LowCardinality(String)", null),
    `rejected: null in non-Nullable LowCardinality(String) column "v"`,
  );
  assertStrictEquals(one("Nullable(UInt8)", "7"), `{"v":7}`);
});

Deno.test("compileRowConverter() converts array elements and refuses non-arrays", () => {
  assertStrictEquals(one("Array(UInt16)", [1, "2"]), `{"v":[1,2]}`);
  assertStrictEquals(one("Array(Nullable(UInt8))", [1, null]), `{"v":[1,null]}`);
  assertStrictEquals(one("Array(IPv4)", ["1.2.3.4", ""]), `{"v":["1.2.3.4","0.0.0.0"]}`);
  assertStrictEquals(one("Array(Array(String))", [["a"], [1]]), `{"v":[["a"],["1"]]}`);
  assertStrictEquals(
    one("Array(UInt8)", "1,2"),
    `rejected: "1,2" is not an array for Array(UInt8) column "v"`,
  );
  assertStrictEquals(
    one("Array(UInt8)", [1, 300]),
    `rejected: 300 is out of range for element of Array(UInt8) column "v"`,
  );
  assertStrictEquals(
    one("Array(UInt8)", [null]),
    `rejected: null in non-Nullable element of Array(UInt8) column "v"`,
  );
});

Deno.test("compileRowConverter() reads a column named like an Object.prototype member only from the record", () => {
  assertStrictEquals(line("constructor:String,__proto__:String", {}), `{}`);
  assertStrictEquals(
    line("constructor:String,__proto__:String", JSON.parse(`{"constructor":"a","__proto__":"b"}`)),
    `{"constructor":"a","__proto__":"b"}`,
  );
});

Deno.test("compileRowConverter() counts the bytes of the UTF-8 JSON line plus its newline", () => {
  const result = converter("s:String")({ s: "ä€😀" });
  assert(result.ok);
  assertStrictEquals(result.row, `{"s":"ä€😀"}`);
  assertStrictEquals(result.bytes, new TextEncoder().encode(result.row).length + 1);
  assertStrictEquals(utf8Length("ä€😀x"), 2 + 3 + 4 + 1);
});

Deno.test("compileRowConverter() with a non-default TIMESTAMP_TEMPLATE reads its own format, then falls back to pmacct forms", () => {
  const template = "%d/%m/%Y %H.%M.%S";
  assertStrictEquals(one("DateTime", "21/11/2026 23.25.00", { template }), `{"v":1795303500}`);
  assertStrictEquals(
    one("DateTime", "21/11/2026 23.25.00", { template, zone: "Europe/Berlin" }),
    `{"v":1795299900}`,
  );
  assertStrictEquals(one("DateTime", "2026-11-21 23:25:00", { template }), `{"v":1795303500}`);
  const withZone = "%Y%m%dT%H%M%S.%f%z";
  assertStrictEquals(
    one("DateTime64(6)", "20261121T232500.5+0100", { template: withZone }),
    `{"v":1795299900.500000}`,
  );
});

Deno.test("compileTimestampTemplate() supports %Y %m %d %H %M %S %f %z %% and literals only", () => {
  assertStrictEquals(
    compileTimestampTemplate("%Y-%m-%d %H:%M:%S")("2026-1-2 3:04:05"),
    "2026-01-02 03:04:05",
  );
  assertStrictEquals(compileTimestampTemplate("100%% %Y")("100% 2026"), "2026-01-01 00:00:00");
  assertStrictEquals(compileTimestampTemplate("%Y")("26"), undefined);
  assertThrows(() => compileTimestampTemplate("%b %d"), SyntaxError);
  assertThrows(() => compileTimestampTemplate("%Y %Y"), SyntaxError);
});

Deno.test("ClickHouseSink.encode() gives exactly the JSONEachRow lines sent", async () => {
  const reader = new VarReader(
    {
      CLICKHOUSE_HOST: "h",
      CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64,amount:Decimal(9,3)",
    },
    CLICKHOUSE.specs,
  );
  const { config } = parseClickHouseConfig(reader);
  const sink = new ClickHouseSink(config, {
    time: new TimeReader(),
    log: new Logger({ write: () => {} }),
  });
  const origin = { topic: "t", partition: 0, offset: "0", index: 0 };
  const prepared = (await samples()).slice(0, 2).map((r, i) => {
    const result = sink.prepare({ ...r, amount: i + 0.5 }, origin);
    assert(result.ok);
    return { row: result.row, bytes: result.bytes, origin };
  });
  const lines = sink.encode(prepared);
  assertEquals(lines, [
    `{"ip_src":"127.0.0.1","bytes":402,"amount":0.500}`,
    `{"ip_src":"127.0.0.1","bytes":342,"amount":1.500}`,
  ]);
  assertEquals(lines.map((l) => utf8Length(l) + 1), prepared.map((p) => p.bytes));
});

/** The record pmacct JSON decodes to (numbers exact, see lib/json.ts). */
function decoded(text: string): InputRecord {
  const result = decodePmacct(text);
  assertEquals(result.errors, []);
  return result.records[0]!.record;
}

Deno.test("compileRowConverter() writes a decoded UInt64 maximum and integers beyond 2^53 exactly", () => {
  const record = decoded(
    '{"bytes": 18446744073709551615, "packets": 9007199254740993, "flows": -9223372036854775808, ' +
      '"big": 170141183460469231731687303715884105727}',
  );
  assertStrictEquals(
    line("bytes:UInt64,packets:Int64,flows:Int64,big:Int128", record),
    '{"bytes":"18446744073709551615","packets":"9007199254740993",' +
      '"flows":"-9223372036854775808","big":"170141183460469231731687303715884105727"}',
  );
  // A refusal quotes the value as it was written, not a rounded one.
  assertStrictEquals(
    line("bytes:UInt64", decoded('{"bytes": 18446744073709551616}')),
    'rejected: 18446744073709551616 is out of range for UInt64 column "bytes"',
  );
  assertStrictEquals(
    line("bytes:UInt32", decoded('{"bytes": 9007199254740993}')),
    'rejected: 9007199254740993 is out of range for UInt32 column "bytes"',
  );
  assertStrictEquals(
    line("bytes:Int64", decoded('{"bytes": 1.5e400}')),
    'rejected: 1.5e400 is out of range for Int64 column "bytes"',
  );
});

Deno.test("compileRowConverter() refuses Decimal values with more places or digits than the type, never rounding", () => {
  assertStrictEquals(
    one("Decimal(10, 2)", 12.345),
    'rejected: 12.345 has more than 2 decimal places for Decimal(10, 2) column "v"',
  );
  assertStrictEquals(
    one("Decimal(10, 2)", 1e-7),
    'rejected: 1e-7 has more than 2 decimal places for Decimal(10, 2) column "v"',
  );
  // A number a double holds exactly is quoted in its shortest form: 1E-7 as 1e-7.
  assertStrictEquals(
    line("v:Decimal(10, 2)", decoded('{"v": 1E-7}')),
    'rejected: 1e-7 has more than 2 decimal places for Decimal(10, 2) column "v"',
  );
  assertStrictEquals(
    one("Decimal(10, 2)", 123456789.1),
    'rejected: 123456789.1 is out of range for Decimal(10, 2) column "v"',
  );
  assertStrictEquals(one("Decimal(10, 2)", 12345678.9), '{"v":12345678.90}');
  assertStrictEquals(one("Decimal(10, 2)", 1.5e3), '{"v":1500.00}');
  assertStrictEquals(
    one("Decimal(10, 2)", true),
    'rejected: true is not a decimal number for Decimal(10, 2) column "v"',
  );
  // Digits a double cannot hold are kept when the JSON had them.
  assertStrictEquals(
    line("v:Decimal(38, 20)", decoded('{"v": 0.10000000000000000001}')),
    '{"v":0.10000000000000000001}',
  );
  assertStrictEquals(
    line("v:Decimal(38, 0)", decoded('{"v": 18446744073709551615}')),
    '{"v":18446744073709551615}',
  );
});

Deno.test("compileRowConverter() refuses floats a double cannot stand for, quoting them", () => {
  assertStrictEquals(
    line("v:Float64", decoded('{"v": 1e400}')),
    'rejected: 1e400 is beyond the range of a 64-bit float (about 1.8e308) for Float64 column "v"',
  );
  assertStrictEquals(
    line("v:Float64", decoded('{"v": 18446744073709551615}')),
    "rejected: 18446744073709551615 is beyond 2^53, where a 64-bit float would store " +
      '18446744073709551616 instead for Float64 column "v"',
  );
  assertStrictEquals(line("v:Float64", decoded('{"v": 1e20}')), '{"v":100000000000000000000}');
  // A float literal of any magnitude is a float, rounded as every float is.
  assertStrictEquals(line("v:Float64", decoded('{"v": 2.5E+300}')), '{"v":2.5e+300}');
  assertStrictEquals(line("v:Float64", decoded('{"v": 1.5e308}')), '{"v":1.5e+308}');
  assertStrictEquals(one("Float64", "2.5E+300"), '{"v":2.5e+300}');
  assertStrictEquals(
    line("v:Float64", decoded('{"v": 9007199254740993.0}')),
    '{"v":9007199254740992}',
  );
  assertStrictEquals(
    line("v:Float32", decoded('{"v": 2.5E+300}')),
    'rejected: 2.5E+300 is out of range for Float32 column "v"',
  );
  assertStrictEquals(
    one("Float64", false),
    'rejected: false is not a number for Float64 column "v"',
  );
});

Deno.test("compileRowConverter() sets aside records whose times are outside the record-time window", () => {
  assertStrictEquals(
    one("DateTime", "2099-01-01 00:00:00"),
    'rejected: "2099-01-01 00:00:00" is more than RECORD_TIME_MAX_FUTURE (86400 s) ahead of the ' +
      `clock (${
        new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(".000", "")
      }); ` +
      'check PMACCT_TIMEZONE and the collector\'s clock, for DateTime column "v"',
  );
  assertStrictEquals(
    one("DateTime64(3)", "0050-06-01 12:00:00"),
    'rejected: "0050-06-01 12:00:00" is before RECORD_TIME_MIN (1970-01-01T00:00:00Z), ' +
      'for DateTime64(3) column "v"',
  );
  assertStrictEquals(
    one("Date32", "1960-01-01"),
    'rejected: "1960-01-01" is before RECORD_TIME_MIN (1970-01-01T00:00:00Z), for Date32 column "v"',
  );
  assertStrictEquals(
    one("DateTime", "2026-11-21T23:25:00+99:00"),
    'rejected: "2026-11-21T23:25:00+99:00" is not a timestamp for DateTime column "v"',
  );
  assertStrictEquals(
    one("DateTime64(9)", "2026-11-21 23:25:00.123456789"),
    '{"v":1795303500.123456789}',
  );
});
