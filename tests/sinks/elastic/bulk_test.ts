/**
 * The pure half of the Elasticsearch sink: documents, ids, index names, the
 * NDJSON body, and the reading of whole answers and items.
 *
 * @module
 */

import { utf8Length } from "../../../lib/text.ts";
import { TimeReader } from "../../../lib/time.ts";
import {
  answerSummary,
  classifyBulkItem,
  classifyResponse,
  compileDocumentBuilder,
  documentId,
  type ElasticRow,
  encodeBulk,
  errorSummary,
  indexName,
  isoTimestamp,
  readBulkItems,
} from "../../../sinks/elastic/bulk.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { assert, assertEquals, assertStrictEquals } from "../../_assert.ts";

function origin(offset: number, index = 0, topic = "pmacct.acct", partition = 2): RecordOrigin {
  return { topic, partition, offset: String(offset), index };
}

function builder(zone = "UTC", fields = ["stamp_updated"]) {
  return compileDocumentBuilder({
    indexPrefix: "sflow",
    timestampFields: fields,
    time: new TimeReader(zone),
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

Deno.test("a record lands in the index of its UTC day: 2026-11-21 23:30 Europe/Berlin is sflow-2026-11-21", () => {
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

Deno.test("every pmacct time form sets @timestamp with milliseconds and the index day", () => {
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

Deno.test("a record without a readable time is rejected as convert, naming the field", () => {
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
  assert(!far.ok && /after the year 9999/.test(far.rejection.error));
});

Deno.test("ELASTIC_TIMESTAMP_FIELD fields are tried in order, the first present is read", () => {
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

Deno.test("classifyResponse() reads items on 2xx, splits on 413, retries the rest (400 included)", () => {
  const table = (status: number) => {
    const c = classifyResponse(status);
    return `${c.action}${c.failover ? " failover" : ""}${c.auth ? " auth" : ""} ${c.errorType}`
      .trim();
  };
  assertStrictEquals(table(200), "items");
  assertStrictEquals(table(413), "split http_413");
  assertStrictEquals(table(400), "retry http_400");
  assertStrictEquals(table(429), "retry http_429");
  assertStrictEquals(table(401), "retry auth http_401");
  assertStrictEquals(table(403), "retry auth http_403");
  assertStrictEquals(table(404), "retry http_404");
  assertStrictEquals(table(500), "retry failover http_500");
  assertStrictEquals(table(502), "retry failover http_502");
  assertStrictEquals(table(503), "retry failover http_503");
});

/**
 * Items as the servers answered them through the sink's `filter_path`,
 * captured from OpenSearch 2.19.6 (the local test server) unless marked;
 * `document_parsing_exception` is what Elasticsearch 8 calls a mapping
 * conflict (shape from its documentation, no 8.x server here).
 */
const ITEMS = {
  created: { index: { _index: "sflow-2026-11-21", _id: "t-0-0-0", status: 201 } },
  updated: { index: { _index: "sflow-2026-11-21", _id: "t-0-0-0", status: 200 } },
  mappingConflict: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-1-0",
      status: 400,
      error: {
        type: "mapper_parsing_exception",
        reason:
          "failed to parse field [bytes] of type [long] in document with id 't-0-1-0'. Preview of field's value: 'lots'",
        caused_by: { type: "illegal_argument_exception", reason: 'For input string: "lots"' },
      },
    },
  },
  badDate: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-2-0",
      status: 400,
      error: {
        type: "mapper_parsing_exception",
        reason:
          "failed to parse field [stamp_updated] of type [date] in document with id 't-0-2-0'. Preview of field's value: '1795298894'",
        caused_by: {
          type: "illegal_argument_exception",
          reason: "failed to parse date field [1795298894] with format [yyyy-MM-dd HH:mm:ss]",
          caused_by: {
            type: "date_time_parse_exception",
            reason: "Text '1795298894' could not be parsed at index 0",
          },
        },
      },
    },
  },
  metadataField: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-3-0",
      status: 400,
      error: {
        type: "mapper_parsing_exception",
        reason:
          "failed to parse field [_id] of type [_id] in document with id 't-0-3-0'. Preview of field's value: 'x'",
        caused_by: {
          type: "mapper_parsing_exception",
          reason:
            "Field [_id] is a metadata field and cannot be added inside a document. Use the index API request parameters.",
        },
      },
    },
  },
  // Elasticsearch 8.x (documentation shape).
  documentParsing: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-4-0",
      status: 400,
      error: {
        type: "document_parsing_exception",
        reason:
          "[1:10] failed to parse field [bytes] of type [long] in document with id 't-0-4-0'. " +
          "Preview of field's value: 'lots'",
        caused_by: { type: "illegal_argument_exception", reason: 'For input string: "lots"' },
      },
    },
  },
  // Elasticsearch thread pool full (documentation shape).
  rejectedExecution: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-5-0",
      status: 429,
      error: {
        type: "es_rejected_execution_exception",
        reason: "rejected execution of coordinating operation",
      },
    },
  },
  // A primary shard not allocated (documentation shape).
  unavailableShards: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-6-0",
      status: 503,
      error: {
        type: "unavailable_shards_exception",
        reason: "[sflow-2026-11-21][0] primary shard is not active",
      },
    },
  },
  // With action.auto_create_index=false.
  indexNotFound: {
    index: {
      _index: "sflow-2026-11-22",
      _id: "t-0-7-0",
      status: 404,
      error: {
        type: "index_not_found_exception",
        reason: "no such index [sflow-2026-11-22]",
        index: "sflow-2026-11-22",
        "resource.id": "sflow-2026-11-22",
        "resource.type": "index_expression",
        index_uuid: "_na_",
      },
    },
  },
  // With index.blocks.write=true (a full disk sets a similar block).
  writeBlock: {
    index: {
      _index: "sflow-2026-11-21",
      _id: "t-0-8-0",
      status: 403,
      error: {
        type: "cluster_block_exception",
        reason: "index [sflow-2026-11-21] blocked by: [FORBIDDEN/8/index write (api)];",
      },
    },
  },
};

Deno.test("classifyBulkItem() acknowledges 2xx items", () => {
  assertEquals(classifyBulkItem(ITEMS.created), { kind: "ok" });
  assertEquals(classifyBulkItem(ITEMS.updated), { kind: "ok" });
});

Deno.test("classifyBulkItem() rejects mapping conflicts for good with the server's reason", () => {
  assertEquals(classifyBulkItem(ITEMS.mappingConflict), {
    kind: "reject",
    status: 400,
    errorType: "mapper_parsing_exception",
    rejection: {
      reason: "server",
      error:
        "mapper_parsing_exception: failed to parse field [bytes] of type [long] in document with id 't-0-1-0'. " +
        "Preview of field's value: 'lots' (caused by illegal_argument_exception: For input string: \"lots\")",
    },
  });
  for (const item of [ITEMS.badDate, ITEMS.metadataField, ITEMS.documentParsing]) {
    const outcome = classifyBulkItem(item);
    assert(outcome.kind === "reject", JSON.stringify(item));
    assertStrictEquals(outcome.rejection.reason, "server");
  }
  const parsing = classifyBulkItem(ITEMS.documentParsing);
  assert(parsing.kind === "reject");
  assertStrictEquals(parsing.errorType, "document_parsing_exception");
});

Deno.test("classifyBulkItem() retries 429, 5xx, 404 (index missing) and 403 (blocked) items", () => {
  for (
    const item of [
      ITEMS.rejectedExecution,
      ITEMS.unavailableShards,
      ITEMS.indexNotFound,
      ITEMS.writeBlock,
    ]
  ) {
    const outcome = classifyBulkItem(item);
    assertStrictEquals(outcome.kind, "retry", JSON.stringify(item));
  }
  assertEquals(classifyBulkItem(ITEMS.rejectedExecution), {
    kind: "retry",
    status: 429,
    errorType: "es_rejected_execution_exception",
    error: "es_rejected_execution_exception: rejected execution of coordinating operation",
  });
  const odd = classifyBulkItem({ index: { _id: "x" } });
  assertStrictEquals(odd.kind, "retry", "an item without a status is not taken as written");
  assertStrictEquals(classifyBulkItem({ index: { status: 409 } }).kind, "reject");
});

Deno.test("readBulkItems() sorts every item into written, rejected and retried", () => {
  const rows = Array.from(
    { length: 5 },
    (_, i) => row({ stamp_updated: "2026-11-22 10:00:00" }, origin(i)),
  );
  const reading = readBulkItems({
    errors: true,
    items: [
      ITEMS.created,
      ITEMS.mappingConflict,
      ITEMS.rejectedExecution,
      ITEMS.indexNotFound,
      ITEMS.updated,
    ],
  }, rows);
  assert(reading);
  assertEquals(reading.result.retry, [2, 3]);
  assertEquals(reading.result.rejected.map((r) => [r.index, r.rejection.reason]), [[1, "server"]]);
  assertEquals(reading.missingIndexes, ["sflow-2026-11-22"]);
  assertEquals(reading.firstRetry?.errorType, "es_rejected_execution_exception");
  assertEquals(readBulkItems({ errors: false, items: [ITEMS.created] }, rows), undefined);
  assertEquals(readBulkItems({ error: "x" }, rows), undefined);
  const clean = readBulkItems({ errors: false, items: rows.map(() => ITEMS.created) }, rows);
  assertEquals(clean?.result, { rejected: [], retry: [] });
});

Deno.test("errorSummary() and answerSummary() make one line of an error", () => {
  assertStrictEquals(errorSummary({ type: "a", reason: "b" }), "a: b");
  assertStrictEquals(
    errorSummary({ type: "a", reason: "b", caused_by: { type: "c", reason: "d" } }),
    "a: b (caused by c: d)",
  );
  assertStrictEquals(errorSummary("plain"), "plain");
  assertStrictEquals(errorSummary(undefined), "");
  assertStrictEquals(
    answerSummary(
      '{"error":{"root_cause":[],"type":"security_exception","reason":"missing authentication credentials"},"status":401}',
    ),
    "security_exception: missing authentication credentials",
  );
  assertStrictEquals(
    answerSummary("<html>\n<h1>502 Bad Gateway</h1></html>"),
    "<html> <h1>502 Bad Gateway</h1></html>",
  );
  assertStrictEquals(answerSummary("x".repeat(400)).length, 303);
});
