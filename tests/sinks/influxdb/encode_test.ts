/**
 * Records to InfluxDB rows: points encoded, raw lines checked, pmacct flow
 * records converted to points (counters as fields, other keys as tags, the
 * purge time), each configured by the sink's variables. The line protocol
 * itself is tested in line_protocol_test.ts.
 *
 * @module
 */

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
  const line = "weather,location=us-midwest temperature=82 1465839830100400200";
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
      'Cannot write to InfluxDB: field "bytes" (INFLUXDB_FIELDS) is {"v":1}, not a number, string or boolean',
    ],
    [
      { ...FLOW, bytes: 1e19 },
      'Cannot write to InfluxDB: field "bytes" is 10000000000000000000, outside the 64-bit integers InfluxDB stores, got "10000000000000000000"',
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
