/**
 * Records to InfluxDB rows: points encoded, raw lines checked, pmacct flow
 * records converted to points (counters as fields, other keys as tags, the
 * purge time), each configured by the sink's variables. The line protocol
 * itself is tested in line_protocol_test.ts.
 *
 * @module
 */

import { decodePmacct } from "../../../lib/decode/pmacct.ts";
import type { InputRecord, PrepareResult, RecordKind } from "../../../lib/record.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import { INFLUXDB, parseInfluxDBConfig } from "../../../sinks/influxdb/config.ts";
import {
  compileRecordEncoder,
  encodeLines,
  overwrittenLines,
} from "../../../sinks/influxdb/encode.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

/** The encoder of a sink configured by `env`, for records of `input`, pmacct times in `zone`. */
function encoderFor(
  env: Record<string, string>,
  input: RecordKind,
  zone = "UTC",
): (record: InputRecord) => PrepareResult<string> {
  const reader = new VarReader(env, INFLUXDB.specs);
  const { config } = parseInfluxDBConfig(reader);
  assertEquals(reader.problems, []);
  return compileRecordEncoder({ ...config, input, time: new TimeReader(zone) });
}

/** Why a record is set aside (a `convert` rejection); fails when it is not. */
function rejection(
  encode: (record: InputRecord) => PrepareResult<string>,
  record: InputRecord,
): string {
  const result = encode(record);
  if (result.ok) throw new Error(`Expected a rejection, got ${result.row}`);
  assertStrictEquals(result.rejection.reason, "convert");
  return result.rejection.error;
}

const POINT = {
  measurement: "cpu_value",
  tags: { host: "web 1", type_instance: "idle" },
  fields: { value: 97.5 },
  time: 1_436_372_292_412_000_000n,
};

Deno.test("compileRecordEncoder() encodes points and passes raw lines unchanged", () => {
  const points = encoderFor({}, "points");
  const prepared = points(POINT);
  assertEquals(prepared, {
    ok: true,
    row: "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292",
    bytes: 63,
  });
  assertMatch(
    rejection(points, { measurement: "m", tags: {}, fields: { v: NaN } }),
    /field "v" is NaN/,
  );
  assertMatch(rejection(points, { line: "m v=1" }), /a point needs a measurement name/);

  const lines = encoderFor({}, "lines");
  const line = "weather,location=us-midwest temperature=82 1465839830";
  assertEquals(lines({ line }), { ok: true, row: line, bytes: line.length + 1 });
  assertEquals(lines({ line: "€ v=1" }), { ok: true, row: "€ v=1", bytes: 8 });
  assertMatch(rejection(lines, { line: "" }), /a line must not be empty/);
  assertMatch(rejection(lines, { line: "a v=1\nb v=2" }), /a line must not contain a newline/);
});

/** A pmacct record (tests/testdata/samples/pmacctd-print-json.jsonl) with some extra keys. */
const FLOW = {
  event_type: "purge",
  writer_id: "default_kafka/1",
  peer_ip_src: "",
  ip_src: "10.0.0.1",
  ip_dst: "192.0.2.1",
  port_src: 54818,
  port_dst: 8123,
  ip_proto: "tcp",
  tos: 0,
  tag: null,
  timestamp_start: "2026-11-21 23:25:00.123456",
  stamp_inserted: "2026-11-21 23:25:00",
  stamp_updated: "2026-11-21 23:27:47",
  packets: 6,
  bytes: 402,
};

Deno.test("compileRecordEncoder() turns a flow record into a point: counters as integers, other keys as tags, at stamp_updated", () => {
  const encode = encoderFor({}, "flows");
  // The per-purge fields, the counters, the time field, null and empty values are not tags.
  const row = "pmacct,ip_dst=192.0.2.1,ip_proto=tcp,ip_src=10.0.0.1,port_dst=8123," +
    "port_src=54818,tos=0 bytes=402i,packets=6i 1795303667";
  assertEquals(encode(FLOW), { ok: true, row, bytes: row.length + 1 });
});

Deno.test("compileRecordEncoder() converts flows with the configured measurement, fields, tags, time field, zone and precision", () => {
  const encode = encoderFor(
    {
      INFLUXDB_MEASUREMENT: "flows v4",
      INFLUXDB_FIELDS: "bytes,flows,rate,up",
      INFLUXDB_TAGS: "ip_*,port_dst,missing",
      INFLUXDB_AVOID_TAGS: "ip_proto",
      INFLUXDB_TIMESTAMP_FIELD: "timestamp_start",
      INFLUXDB_TIME_PRECISION: "ms",
      INFLUXDB_FIELD_TYPES: "rate:float,up:boolean",
    },
    "flows",
    "Europe/Berlin",
  );
  const result = encode({ ...FLOW, rate: 0.5, up: true, flows: 2 ** 53 + 2 });
  assert(result.ok);
  // 23:25:00.123456 in Berlin (UTC+1) is 22:25:00.123 UTC.
  assertStrictEquals(
    result.row,
    "flows\\ v4,ip_dst=192.0.2.1,ip_src=10.0.0.1,port_dst=8123 " +
      "bytes=402i,flows=9007199254740994i,rate=0.5,up=true 1795299900123",
  );
});

Deno.test("compileRecordEncoder() sets aside flow records without counters or a readable time", () => {
  const encode = encoderFor({}, "flows");
  const { bytes: _b, packets: _p, ...noCounters } = FLOW;
  const cases: Array<[Record<string, unknown>, string]> = [
    [
      noCounters,
      "Cannot write to InfluxDB: the record has none of the fields bytes, packets, flows (INFLUXDB_FIELDS)",
    ],
    [
      { ...FLOW, bytes: null, packets: null },
      "Cannot write to InfluxDB: the record has none of the fields bytes, packets, flows (INFLUXDB_FIELDS)",
    ],
    [
      (({ stamp_updated: _, ...rest }) => rest)(FLOW),
      'Cannot write to InfluxDB: the record has no field "stamp_updated" (INFLUXDB_TIMESTAMP_FIELD)',
    ],
    [
      { ...FLOW, stamp_updated: "yesterday" },
      'Cannot write to InfluxDB: field "stamp_updated" is not a time: Cannot read timestamp: "yesterday" is not a pmacct time',
    ],
    [
      { ...FLOW, bytes: { v: 1 } },
      'Cannot write to InfluxDB: field "bytes" is {"v":1}, not an integer; "bytes" is an integer field (INFLUXDB_FIELD_TYPES)',
    ],
    [
      { ...FLOW, bytes: 1e19 },
      'Cannot write to InfluxDB: field "bytes" is 10000000000000000000, outside the signed 64-bit integers; "bytes" is an integer field (INFLUXDB_FIELD_TYPES)',
    ],
    [
      { ...FLOW, ip_src: "bad\\" },
      'Cannot write to InfluxDB: a tag value must not have a backslash at its end or before , = or space (InfluxDB would store it changed or refuse the line) (tag "ip_src"), got "bad\\\\"',
    ],
  ];
  for (const [record, message] of cases) assertStrictEquals(rejection(encode, record), message);
  const { packets: _, ...bytesOnly } = FLOW;
  const kept = encode(bytesOnly);
  assert(kept.ok && kept.row.includes(" bytes=402i "), "a missing counter is left out");
});

Deno.test("encodeLines() gives each row's line, in order", () => {
  const origin = { topic: "metrics", partition: 0, offset: "7", index: 0 };
  assertEquals(
    encodeLines([
      { row: "a v=1", bytes: 6, origin },
      { row: "b v=2", bytes: 6, origin },
    ]),
    ["a v=1", "b v=2"],
  );
  assertEquals(encodeLines([]), []);
});

Deno.test("overwrittenLines() counts the lines InfluxDB stores over another of the same series, field and time", () => {
  assertEquals(
    overwrittenLines([
      "flows,peer=10.0.0.1 bytes=1i,packets=1i 1700000000",
      "flows,peer=10.0.0.1 bytes=2i,packets=1i 1700000000", // overwrites the first
      "flows,peer=10.0.0.1 bytes=3i 1700000001", // another time
      "flows,peer=10.0.0.2 bytes=3i 1700000000", // another series
      "flows,peer=10.0.0.1 flows=1i 1700000000", // another field: merged, nothing lost
      'flows,peer=10.0.0.1 note="a b,c=d" 1700000000', // a quoted value with space, comma, =
      'flows,peer=10.0.0.1 note="x" 1700000000', // overwrites the note
      "flows,peer=10.0.0.1\\ x bytes=1i 1700000000", // an escaped space in a tag value
      "flows,peer=10.0.0.1 bytes=9i", // no time: the server's, not counted
      "flows,peer=10.0.0.1 bytes=9i",
    ]),
    2,
  );
  assertEquals(overwrittenLines([]), 0);
});

/** The record pmacct JSON decodes to (numbers exact, see lib/json.ts). */
function decoded(text: string): InputRecord {
  return decodePmacct(text).records[0]!.record;
}

Deno.test("compileRecordEncoder() keeps each flow field's type whatever the JSON holds, exact or refused", () => {
  const encode = encoderFor({ INFLUXDB_FIELDS: "bytes,packets,flows" }, "flows");
  const at = '"stamp_updated": "2026-11-21 23:27:47"';
  // Integer text is the integer; integers beyond 2^53 keep every digit.
  const ok = encode(decoded(`{${at}, "bytes": 9223372036854775807, "packets": "123", "flows": 1}`));
  assert(ok.ok);
  assertStrictEquals(ok.row, "pmacct bytes=9223372036854775807i,packets=123i,flows=1i 1795303667");
  const cases: Array<[string, string]> = [
    [`"bytes": 1.5`, 'field "bytes" is 1.5, not an integer'],
    [`"bytes": true`, 'field "bytes" is true, not an integer'],
    [`"bytes": "abc"`, 'field "bytes" is "abc", not an integer'],
    [
      `"bytes": 18446744073709551615`,
      'field "bytes" is 18446744073709551615, outside the signed 64-bit integers',
    ],
  ];
  for (const [field, why] of cases) {
    assertStrictEquals(
      rejection(encode, decoded(`{${at}, ${field}}`)),
      `Cannot write to InfluxDB: ${why}; "bytes" is an integer field (INFLUXDB_FIELD_TYPES)`,
    );
  }

  const typed = encoderFor({
    INFLUXDB_FIELDS: "bytes,rate,name,up",
    INFLUXDB_FIELD_TYPES: "bytes:unsigned, rate:float, name:string, up:boolean",
  }, "flows");
  const row = typed(
    decoded(`{${at}, "bytes": 18446744073709551615, "rate": 2, "name": 7, "up": false}`),
  );
  assert(row.ok);
  assertStrictEquals(
    row.row,
    'pmacct bytes=18446744073709551615u,rate=2,name="7",up=false 1795303667',
  );
  const refused: Array<[string, string]> = [
    [
      `"bytes": -1`,
      'field "bytes" is -1, outside the unsigned 64-bit integers ' +
      '(0 to 18446744073709551615); "bytes" is an unsigned field (INFLUXDB_FIELD_TYPES)',
    ],
    [
      `"rate": 1e400`,
      'field "rate" is 1e400, which is beyond the range of a 64-bit float ' +
      '(about 1.8e308); "rate" is a float field (INFLUXDB_FIELD_TYPES)',
    ],
    [
      `"rate": "fast"`,
      'field "rate" is "fast", not a number; "rate" is a float field ' +
      "(INFLUXDB_FIELD_TYPES)",
    ],
    [
      `"up": 1`,
      'field "up" is 1, not true or false; "up" is a boolean field (INFLUXDB_FIELD_TYPES)',
    ],
  ];
  for (const [field, why] of refused) {
    assertStrictEquals(
      rejection(typed, decoded(`{${at}, ${field}}`)),
      `Cannot write to InfluxDB: ${why}`,
    );
  }
  // A float literal of any magnitude is a float; an integer literal a double would change is not.
  const float = (value: string) => typed(decoded(`{${at}, "rate": ${value}}`));
  assertEquals(float("2.5E+300"), {
    ok: true,
    row: "pmacct rate=2.5e+300 1795303667",
    bytes: 32,
  });
  assertStrictEquals(
    rejection(typed, decoded(`{${at}, "rate": 18446744073709551615}`)),
    'Cannot write to InfluxDB: field "rate" is 18446744073709551615, which is beyond 2^53, where a ' +
      '64-bit float would store 18446744073709551616 instead; "rate" is a float field ' +
      "(INFLUXDB_FIELD_TYPES)",
  );
});

Deno.test("compileRecordEncoder() refuses a newline in a tag value instead of writing \\n", () => {
  const encode = encoderFor({}, "flows");
  assertStrictEquals(
    rejection(encode, { ...FLOW, label: "a\nb" }),
    "Cannot write to InfluxDB: a tag value must not contain control characters such as a newline " +
      'or a tab (line protocol cannot carry them) (tag "label"), got "a\\nb"',
  );
});

Deno.test("compileRecordEncoder() sets aside flows, points and lines outside the record-time window", () => {
  const flows = encoderFor({}, "flows");
  assertMatch(
    rejection(flows, { ...FLOW, stamp_updated: "0050-06-01 12:00:00" }),
    /^Cannot write to InfluxDB: field "stamp_updated" "0050-06-01 12:00:00" is before RECORD_TIME_MIN/,
  );
  const points = encoderFor({}, "points");
  assertStrictEquals(
    rejection(points, { ...POINT, time: -1_000_000_000n }),
    "Cannot write to InfluxDB: the point's time -1000000000 ns is before RECORD_TIME_MIN " +
      "(1970-01-01T00:00:00Z)",
  );
  const lines = encoderFor({ INFLUXDB_TIME_PRECISION: "ms" }, "lines");
  assertMatch(
    rejection(lines, { line: "m v=1 99999999999999" }),
    /^Cannot write to InfluxDB: the line's timestamp 99999999999999 \(ms\) is more than RECORD_TIME_MAX_FUTURE/,
  );
  assert(lines({ line: "m v=1 1795303667000" }).ok);
  assert(lines({ line: "m v=1" }).ok, "a line without a time gets the server's");
  assert(lines({ line: "m v=99999999999999999" }).ok, "a field is not a timestamp");
});
