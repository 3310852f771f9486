/**
 * Classification of the Elasticsearch sink's answers: whole answers, the
 * items of a bulk answer, failures without an answer (shaped as Deno's
 * `fetch` and `node:https` report them) and what `GET /` tells.
 *
 * @module
 */

import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import {
  answerSummary,
  bulkItemError,
  classifyBulkItem,
  classifyElasticError,
  classifyElasticResponse,
  classifySetupResponse,
  errorSummary,
  readBulkItems,
  readServerInfo,
  serverProblem,
  UNKNOWN_SERVER,
} from "../../../sinks/elastic/classify.ts";
import type { ElasticRow } from "../../../sinks/elastic/encode.ts";
import { assert, assertEquals, assertStrictEquals } from "../../_assert.ts";

/** The rows of a bulk request to one index, as far as reading its answer needs them. */
function rowsFor(index: string, n: number): PreparedRow<ElasticRow>[] {
  return Array.from({ length: n }, (_, i) => {
    const origin: RecordOrigin = { topic: "t", partition: 0, offset: String(i), index: 0 };
    return { row: { index, id: `t-0-${i}-0`, action: "", source: "" }, bytes: 0, origin };
  });
}

Deno.test("classifyElasticResponse() reads items on 2xx, splits on 413, retries the rest (400 included)", () => {
  const cases: Array<[number, string]> = [
    [200, "ok"],
    [201, "ok"],
    [413, "split http_413"],
    [400, "retry http_400"],
    [429, "retry http_429"],
    [401, "retry hint http_401"],
    [403, "retry hint http_403"],
    [404, "retry http_404"],
    [500, "retry http_500"],
    [502, "retry http_502"],
    [503, "retry http_503"],
    [301, "retry hint http_301"],
  ];
  for (const [status, expected] of cases) {
    const v = classifyElasticResponse(status);
    const text = v.action === "ok"
      ? "ok"
      : `${v.action}${v.hint === undefined ? "" : " hint"} ${v.errorType}`;
    assertStrictEquals(text, expected, String(status));
  }
  assertEquals(classifyElasticResponse(401), {
    action: "retry",
    errorType: "http_401",
    status: 401,
    hint: "check ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY and the user's privileges",
  });
});

Deno.test("classifySetupResponse() always retries, never splits, keeping the credentials hint", () => {
  assertEquals(classifySetupResponse(413), { action: "retry", errorType: "http_413", status: 413 });
  assertEquals(classifySetupResponse(400), { action: "retry", errorType: "http_400", status: 400 });
  assertEquals(classifySetupResponse(503), { action: "retry", errorType: "http_503", status: 503 });
  assertStrictEquals(classifySetupResponse(204).errorType, "http_204");
  assertEquals(classifySetupResponse(403), {
    action: "retry",
    errorType: "http_403",
    status: 403,
    hint: "check ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY and the user's privileges",
  });
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
  assertEquals(classifyBulkItem(ITEMS.created), { action: "ok" });
  assertEquals(classifyBulkItem(ITEMS.updated), { action: "ok" });
});

Deno.test("classifyBulkItem() rejects mapping conflicts for good with the server's reason", () => {
  assertEquals(classifyBulkItem(ITEMS.mappingConflict), {
    action: "reject",
    errorType: "mapper_parsing_exception",
    status: 400,
    rejection: {
      reason: "server",
      error:
        "mapper_parsing_exception: failed to parse field [bytes] of type [long] in document with id 't-0-1-0'. " +
        "Preview of field's value: 'lots' (caused by illegal_argument_exception: For input string: \"lots\")",
    },
  });
  for (const item of [ITEMS.badDate, ITEMS.metadataField, ITEMS.documentParsing]) {
    const outcome = classifyBulkItem(item);
    assert(outcome.action === "reject", JSON.stringify(item));
    assertStrictEquals(outcome.rejection.reason, "server");
  }
  const parsing = classifyBulkItem(ITEMS.documentParsing);
  assert(parsing.action === "reject");
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
    assertStrictEquals(outcome.action, "retry", JSON.stringify(item));
  }
  assertEquals(classifyBulkItem(ITEMS.rejectedExecution), {
    action: "retry",
    errorType: "es_rejected_execution_exception",
    status: 429,
  });
  assertStrictEquals(
    bulkItemError(ITEMS.rejectedExecution),
    "es_rejected_execution_exception: rejected execution of coordinating operation",
  );
  const odd = classifyBulkItem({ index: { _id: "x" } });
  assertEquals(
    odd,
    { action: "retry", errorType: "bad_item" },
    "an item without a status is not taken as written",
  );
  assertStrictEquals(
    bulkItemError({ index: { _id: "x" } }),
    'Cannot read bulk item {"index":{"_id":"x"}}',
  );
  assertStrictEquals(classifyBulkItem({ index: { status: 409 } }).action, "reject");
  assertStrictEquals(bulkItemError({ index: { status: 409 } }), "HTTP 409");
});

Deno.test("readBulkItems() sorts every item into written, rejected and retried", () => {
  const rows = rowsFor("sflow-2026-11-22", 5);
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
  assertStrictEquals(answerSummary("x".repeat(600)).length, 503);
});

Deno.test("classifyElasticError() tells timeouts and certificate errors from other network errors", () => {
  const errorType = (error: unknown) => classifyElasticError(error).errorType;
  assertStrictEquals(
    errorType(
      new DOMException("The operation was aborted due to timeout", "TimeoutError"),
    ),
    "timeout",
  );
  // What Deno's fetch throws for a refused connection and for an unknown CA.
  const fetchFailed = (cause: string) => new TypeError("fetch failed", { cause: new Error(cause) });
  assertStrictEquals(
    errorType(fetchFailed(
      "error sending request for url (http://127.0.0.1:9/): client error (Connect): tcp connect error: Connection refused (os error 111)",
    )),
    "network",
  );
  assertStrictEquals(
    errorType(fetchFailed(
      "error sending request for url (https://127.0.0.1:9200/): client error (Connect): invalid peer certificate: UnknownIssuer",
    )),
    "tls",
  );
  // node:https (ELASTIC_VERIFY_SSL=NO).
  assertStrictEquals(
    errorType(
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9200"), { code: "ECONNREFUSED" }),
    ),
    "network",
  );
  assertStrictEquals(errorType("weird"), "unknown");
  assertStrictEquals(
    classifyElasticError(new Error("invalid peer certificate: UnknownIssuer")).hint,
    "the TLS connection failed; set ELASTIC_CA_FILE, or ELASTIC_VERIFY_SSL=NO",
  );
});

Deno.test("readServerInfo() reads Elasticsearch and OpenSearch answers of GET /", () => {
  assertEquals(
    readServerInfo({
      name: "sluice-1",
      version: { distribution: "opensearch", number: "2.19.6", build_type: "unknown" },
      tagline: "The OpenSearch Project: https://opensearch.org/",
    }),
    { flavour: "opensearch", version: "2.19.6", major: 2, minor: 19 },
  );
  assertEquals(
    readServerInfo({
      version: { number: "8.15.0", build_flavor: "default" },
      tagline: "You Know, for Search",
    }),
    { flavour: "elasticsearch", version: "8.15.0", major: 8, minor: 15 },
  );
  assertEquals(
    readServerInfo({ version: { distribution: "opensearch", number: "7.10.2" } }).flavour,
    "opensearch",
    "OpenSearch in compatibility mode still says so",
  );
  assertEquals(readServerInfo("nonsense"), UNKNOWN_SERVER);
  assertStrictEquals(
    serverProblem(readServerInfo({ version: { number: "6.8.23" } })),
    "sluice needs Elasticsearch 7 or later (or OpenSearch), the server is 6.8.23",
  );
  assertStrictEquals(serverProblem(readServerInfo({ version: { number: "7.0.0" } })), undefined);
  assertStrictEquals(serverProblem(UNKNOWN_SERVER), undefined);
});
