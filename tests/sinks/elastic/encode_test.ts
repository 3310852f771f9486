/**
 * The Elasticsearch sink's encoding: documents, ids, index names and the
 * NDJSON lines of the bulk body.
 *
 * @module
 */

import { decodePmacct } from "../../../lib/decode/pmacct.ts";
import { utf8Length } from "../../../lib/text.ts";
import { TimeReader, type TimeReaderOptions } from "../../../lib/time.ts";
import {
  compileDocumentBuilder,
  documentId,
  type ElasticRow,
  encodeBulk,
  indexName,
  isoTimestamp,
} from "../../../sinks/elastic/encode.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { assert, assertEquals, assertStrictEquals } from "../../_assert.ts";

function origin(offset: number, index = 0, topic = "pmacct.acct", partition = 2): RecordOrigin {
  return { topic, partition, offset: String(offset), index };
}

function builder(zone = "UTC", fields = ["stamp_updated"], options: TimeReaderOptions = {}) {
  return compileDocumentBuilder({
    indexPrefix: "sflow",
    timestampFields: fields,
    time: new TimeReader(zone, options),
  });
}

function row(
  record: Record<string, unknown>,
  o = origin(0),
  zone = "UTC",
): PreparedRow<ElasticRow> {
  const result = builder(zone)(record, o);
  if (!result.ok) throw new Error(result.rejection.error);
  return { row: result.row, bytes: result.bytes, origin: o };
}

Deno.test("compileDocumentBuilder() files a record in the index of its UTC day: 2026-11-21 23:30 Europe/Berlin is sflow-2026-11-21", () => {
  const build = builder("Europe/Berlin");
  const result = build({ stamp_updated: "2026-11-21 23:30:00", bytes: 1 }, origin(7));
  assert(result.ok);
  assertStrictEquals(result.row.index, "sflow-2026-11-21");
  assertEquals(JSON.parse(result.row.source)["@timestamp"], "2026-11-21T22:30:00.000Z");
  // The same wall time read as UTC is already the next day in Berlin, but not in UTC.
  const utc = builder("UTC")({ stamp_updated: "2026-11-22 00:30:00" }, origin(7));
  assert(utc.ok);
  assertStrictEquals(utc.row.index, "sflow-2026-11-22");
  const berlin = builder("Europe/Berlin")({ stamp_updated: "2026-11-22 00:30:00" }, origin(7));
  assert(berlin.ok);
  assertStrictEquals(berlin.row.index, "sflow-2026-11-21");
});

Deno.test("compileDocumentBuilder() sets @timestamp with milliseconds and the index day from every pmacct time form", () => {
  const cases: Array<[unknown, string]> = [
    ["2026-11-21 23:30:00.123456", "2026-11-21T22:30:00.123Z"],
    ["1795298894", "2026-11-21T22:08:14.000Z"],
    ["1795298894.5", "2026-11-21T22:08:14.500Z"],
    [1795298894, "2026-11-21T22:08:14.000Z"],
    ["2026-11-22T01:00:00+02:00", "2026-11-21T23:00:00.000Z"],
    ["2026-11-21T23:00:00Z", "2026-11-21T23:00:00.000Z"],
  ];
  for (const [value, iso] of cases) {
    const result = builder("Europe/Berlin")({ stamp_updated: value }, origin(1));
    assert(result.ok, String(value));
    assertStrictEquals(JSON.parse(result.row.source)["@timestamp"], iso, String(value));
    assertStrictEquals(result.row.index, `sflow-${iso.slice(0, 10)}`, String(value));
  }
  assertStrictEquals(isoTimestamp({ seconds: 0, micros: 999_999 }), "1970-01-01T00:00:00.999Z");
  assertStrictEquals(indexName("x", { seconds: 86_399, micros: 0 }), "x-1970-01-01");
});

Deno.test("compileDocumentBuilder() rejects a record without a readable time as convert, naming the field", () => {
  const build = builder();
  const missing = build({ bytes: 1 }, origin(1));
  assertEquals(missing, {
    ok: false,
    rejection: {
      reason: "convert",
      error: 'Cannot index record: it has no time field "stamp_updated" (ELASTIC_TIMESTAMP_FIELD)',
    },
  });
  const bad = build({ stamp_updated: "yesterday" }, origin(1));
  assertEquals(bad, {
    ok: false,
    rejection: {
      reason: "convert",
      error:
        'Cannot index record: field "stamp_updated": Cannot read timestamp: "yesterday" is not a pmacct time',
    },
  });
  const far = build({ stamp_updated: "999999999999" }, origin(1));
  assert(!far.ok && /is more than RECORD_TIME_MAX_FUTURE/.test(far.rejection.error));
  // Without a window, an index name still needs a four-digit year.
  const open = builder("UTC", ["stamp_updated"], { window: false });
  const farOpen = open({ stamp_updated: "999999999999" }, origin(1));
  assertEquals(farOpen, {
    ok: false,
    rejection: {
      reason: "convert",
      error: 'Cannot index record: field "stamp_updated" is not within the years 0000 to 9999, ' +
        'got "999999999999"',
    },
  });
});

Deno.test("compileDocumentBuilder() tries the ELASTIC_TIMESTAMP_FIELD fields in order and reads the first present", () => {
  const build = builder("UTC", ["timestamp_end", "stamp_updated"]);
  const end = build(
    { timestamp_end: "2026-01-02 03:04:05", stamp_updated: "2026-05-05 00:00:00" },
    origin(1),
  );
  assert(end.ok);
  assertStrictEquals(end.row.index, "sflow-2026-01-02");
  const fallback = build({ timestamp_end: "", stamp_updated: "2026-05-05 00:00:00" }, origin(1));
  assert(fallback.ok);
  assertStrictEquals(fallback.row.index, "sflow-2026-05-05");
  const none = build({}, origin(1));
  assert(!none.ok);
  assertStrictEquals(
    none.rejection.error,
    'Cannot index record: it has no time field "timestamp_end", "stamp_updated" (ELASTIC_TIMESTAMP_FIELD)',
  );
});

Deno.test("documentId() is <topic>-<partition>-<offset>-<index>, the same on every call", () => {
  assertStrictEquals(documentId(origin(12345, 3)), "pmacct.acct-2-12345-3");
  assertStrictEquals(documentId(origin(12345, 3)), documentId(origin(12345, 3)));
  assert(documentId(origin(1, 0, "a-1", 2)) !== documentId(origin(2, 0, "a", 1)));
  const record = { stamp_updated: "2026-11-21 10:00:00", bytes: 5 };
  assertEquals(row(record, origin(9, 1)), row(record, origin(9, 1)));
  assertStrictEquals(row(record, origin(9, 1)).row.id, "pmacct.acct-2-9-1");
  assert(row(record, origin(9, 1)).row.id !== row(record, origin(9, 2)).row.id);
  const longest = documentId(origin(Number.MAX_SAFE_INTEGER, 99999, "t".repeat(249), 2 ** 31 - 1));
  assert(utf8Length(longest) <= 512, "far below the 512-byte limit of _id");
});

Deno.test("encodeBulk() returns the action line and the document line of each row, in order", () => {
  const rows = [
    row({ stamp_updated: "2026-11-21 23:30:00", ip_src: "10.0.0.1", bytes: 100 }, origin(5)),
    row(
      { stamp_updated: "2026-11-22 00:00:01", "@timestamp": "old", label: "ünïcode ✓ 😀" },
      origin(6, 1),
    ),
  ];
  const lines = encodeBulk(rows);
  assertEquals(lines, [
    '{"index":{"_index":"sflow-2026-11-21","_id":"pmacct.acct-2-5-0"}}',
    '{"stamp_updated":"2026-11-21 23:30:00","ip_src":"10.0.0.1","bytes":100,"@timestamp":"2026-11-21T23:30:00.000Z"}',
    '{"index":{"_index":"sflow-2026-11-22","_id":"pmacct.acct-2-6-1"}}',
    '{"stamp_updated":"2026-11-22 00:00:01","@timestamp":"2026-11-22T00:00:01.000Z","label":"ünïcode ✓ 😀"}',
  ]);
  // Each row's byte count is exactly its share of the body.
  const body = lines.join("\n") + "\n";
  assertStrictEquals(
    rows.reduce((a, r) => a + r.bytes, 0),
    new TextEncoder().encode(body).length,
  );
  assertEquals(encodeBulk([]), []);
});

Deno.test("compileDocumentBuilder() writes every number with the digits it came with", () => {
  const text = '{"stamp_updated": "2026-11-21 23:30:00", "bytes": 18446744073709551615, ' +
    '"packets": 9007199254740993, "huge": 1e400, "tiny": 1e-400, "ratio": 0.5}';
  const result = builder()(decodePmacct(text).records[0]!.record, origin(1));
  assert(result.ok);
  assertStrictEquals(
    result.row.source,
    '{"stamp_updated":"2026-11-21 23:30:00","bytes":18446744073709551615,' +
      '"packets":9007199254740993,"huge":1e400,"tiny":1e-400,"ratio":0.5,' +
      '"@timestamp":"2026-11-21T23:30:00.000Z"}',
  );
});

Deno.test("compileDocumentBuilder() files no record outside the record-time window: no sflow-1900 or sflow-9999 index", () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  const build = builder("UTC", ["stamp_updated"], { clock: () => now });
  const cases: Array<[string, string]> = [
    ["0050-06-01 12:00:00", "is before RECORD_TIME_MIN (1970-01-01T00:00:00Z)"],
    ["1900-01-01 00:00:00", "is before RECORD_TIME_MIN (1970-01-01T00:00:00Z)"],
    [
      "9999-12-31 23:59:59",
      "is more than RECORD_TIME_MAX_FUTURE (86400 s) ahead of the clock (2026-12-06T12:00:00Z); " +
      "check PMACCT_TIMEZONE and the collector's clock",
    ],
  ];
  for (const [time, why] of cases) {
    assertEquals(build({ stamp_updated: time }, origin(1)), {
      ok: false,
      rejection: {
        reason: "convert",
        error: `Cannot index record: field "stamp_updated" ${JSON.stringify(time)} ${why}`,
      },
    });
  }
  // Years 0000-0099 are those years, not 1900-1999, where a window lets them in.
  const open = builder("UTC", ["stamp_updated"], { window: false });
  const ancient = open({ stamp_updated: "0050-06-01 12:00:00" }, origin(1));
  assert(ancient.ok);
  assertStrictEquals(ancient.row.index, "sflow-0050-06-01");
  assertStrictEquals(JSON.parse(ancient.row.source)["@timestamp"], "0050-06-01T12:00:00.000Z");
  // An offset no zone has is refused, not a shift by days.
  const shifted = build({ stamp_updated: "2026-11-21T23:30:00+99:00" }, origin(1));
  assert(!shifted.ok && /has an offset no time zone has/.test(shifted.rejection.error));
});
