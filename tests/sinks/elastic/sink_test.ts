/**
 * The Elasticsearch sink's requests and its handling of failures, against
 * in-process fake servers (tests/_fake_http.ts). What the real server does
 * with the documents is tested in tests/integration/elastic_test.ts.
 *
 * @module
 */

import { makeTestCertificates } from "../../_tls.ts";
import {
  closedPort,
  fakeHttpServer,
  type FakeServer,
  jsonResponse as json,
  type SeenRequest,
} from "../../_fake_http.ts";
import { Logger } from "../../../lib/log.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import { ELASTIC, parseElasticConfig } from "../../../sinks/elastic/config.ts";
import { BULK_PATH, type ElasticRow, ElasticSink } from "../../../sinks/elastic/mod.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { SinkWriteError } from "../../../lib/sink.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStrictEquals,
} from "../../_assert.ts";

const OPENSEARCH_ROOT = {
  name: "sluice-1",
  cluster_name: "sluice-test",
  version: { distribution: "opensearch", number: "2.19.6", lucene_version: "9.12.3" },
  tagline: "The OpenSearch Project: https://opensearch.org/",
};

/** Answers `GET /` like OpenSearch, a bulk with one 201 item per document, anything else 200. */
function okHandler(request: SeenRequest): Response {
  if (request.method === "GET" && request.path === "/") return json(OPENSEARCH_ROOT);
  if (request.path.startsWith("/_bulk")) return json(bulkAnswer(request, () => 201));
  return json({ acknowledged: true });
}

/** A bulk answer for the documents of a request, each with the status `status(i)` gives. */
function bulkAnswer(
  request: SeenRequest,
  status: (i: number) => number,
  error: (i: number) => unknown = () => ({ type: "mapper_parsing_exception", reason: "bad" }),
) {
  const actions = request.text.split("\n").filter((_, i) => i % 2 === 0 && _ !== "");
  const items = actions.map((line, i) => {
    const { index } = JSON.parse(line);
    const s = status(i);
    return {
      index: {
        _index: index._index,
        _id: index._id,
        status: s,
        ...(s >= 300 ? { error: error(i) } : {}),
      },
    };
  });
  return { errors: items.some((it) => it.index.status >= 300), items };
}

/** A node that refuses connections. */
function refusedUrl(): string {
  return `http://127.0.0.1:${closedPort()}`;
}

/** A fake node answering like OpenSearch (see {@link okHandler}) unless told otherwise. */
function fakeNode(
  handler: (request: SeenRequest) => Response | Promise<Response> = okHandler,
  tls?: { cert: string; key: string },
): FakeServer {
  return fakeHttpServer(handler, tls);
}

interface Harness {
  sink: ElasticSink;
  logs: Array<Record<string, unknown>>;
  now: { ms: number };
}

function harness(env: Record<string, string>): Harness {
  const reader = new VarReader(env, ELASTIC.specs);
  const { config } = parseElasticConfig(reader);
  assertEquals(reader.problems, []);
  const logs: Array<Record<string, unknown>> = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const now = { ms: 1_000_000 };
  const sink = new ElasticSink(config, {
    time: new TimeReader("UTC"),
    log,
    clock: () => now.ms,
    nodeCooldownMs: 30_000,
  });
  return { sink, logs, now };
}

/** Runs `body`, then closes the fake nodes. */
async function withNodes(
  nodes: FakeServer[],
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } finally {
    for (const node of nodes) await node.close();
  }
}

function origin(offset: number): RecordOrigin {
  return { topic: "flows", partition: 0, offset: String(offset), index: 0 };
}

function rows(sink: ElasticSink, n: number, day = "2026-11-21"): PreparedRow<ElasticRow>[] {
  return Array.from({ length: n }, (_, i) => {
    const result = sink.prepare(
      { stamp_updated: `${day} 12:00:00`, bytes: i, packets: 1 },
      origin(i),
    );
    if (!result.ok) throw new Error(result.rejection.error);
    return { row: result.row, bytes: result.bytes, origin: origin(i) };
  });
}

function bulkRequests(node: FakeServer): SeenRequest[] {
  return node.seen.filter((s) => s.path.startsWith("/_bulk"));
}

async function writeError(promise: Promise<unknown>): Promise<SinkWriteError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SinkWriteError) return error;
    throw error;
  }
  throw new Error("write() succeeded; a SinkWriteError was expected");
}

Deno.test("ElasticSink.write() posts one bulk request: the NDJSON lines of encode(), content type, filter_path", async () => {
  const node = fakeNode();
  await withNodes([node], async () => {
    const { sink } = harness({ ELASTIC_HOSTS: node.url, ELASTIC_TEMPLATE_MODE: "none" });
    const batch = rows(sink, 3);
    assertEquals(await sink.write(batch), { rejected: [], retry: [] });
    const [bulk] = bulkRequests(node);
    assert(bulk);
    assertStrictEquals(bulk.method, "POST");
    assertStrictEquals(bulk.path + bulk.search, BULK_PATH);
    assertStrictEquals(
      bulk.path + bulk.search,
      "/_bulk?filter_path=errors,items.*._index,items.*._id,items.*.status,items.*.error",
    );
    assertStrictEquals(bulk.headers.get("content-type"), "application/x-ndjson");
    assertStrictEquals(bulk.headers.get("authorization"), null);
    assertStrictEquals(bulk.text, sink.encode(batch).join("\n") + "\n");
    assertStrictEquals(
      bulk.text.split("\n")[0],
      '{"index":{"_index":"sflow-2026-11-21","_id":"flows-0-0-0"}}',
    );
    assertStrictEquals(
      bulk.body.length,
      batch.reduce((a, r) => a + r.bytes, 0),
    );
    assertEquals(await sink.write([]), { rejected: [], retry: [] });
    assertStrictEquals(bulkRequests(node).length, 1, "an empty batch sends nothing");
    await sink.close();
  });
});

Deno.test("ElasticSink.write() sends basic credentials or the API key", async () => {
  const node = fakeNode();
  await withNodes([node], async () => {
    const basic = harness({
      ELASTIC_HOSTS: node.url,
      ELASTIC_TEMPLATE_MODE: "none",
      ELASTIC_USERNAME: "sluice",
      ELASTIC_PASSWORD: "pässword",
    });
    await basic.sink.write(rows(basic.sink, 1));
    assertStrictEquals(
      node.seen.at(-1)?.headers.get("authorization"),
      `Basic ${btoa("sluice:p\u00c3\u00a4ssword")}`,
    );
    const encoded = harness({
      ELASTIC_HOSTS: node.url,
      ELASTIC_TEMPLATE_MODE: "none",
      ELASTIC_API_KEY: "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
    });
    await encoded.sink.write(rows(encoded.sink, 1));
    assertStrictEquals(
      node.seen.at(-1)?.headers.get("authorization"),
      "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
    );
    const pair = harness({
      ELASTIC_HOSTS: node.url,
      ELASTIC_TEMPLATE_MODE: "none",
      ELASTIC_API_KEY: "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw",
    });
    await pair.sink.write(rows(pair.sink, 1));
    assertStrictEquals(
      node.seen.at(-1)?.headers.get("authorization"),
      "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
    );
    for (const h of [basic, encoded, pair]) {
      await h.sink.close();
      assert(!JSON.stringify(h.logs).includes("ui2lp2ax"), "the key is never logged");
    }
  });
});

Deno.test("ElasticSink.write() reads every item: refused ones rejected with the reason, 429/5xx ones retried", async () => {
  const statuses = [201, 400, 429, 200, 503, 201];
  const node = fakeNode((request) =>
    json(bulkAnswer(request, (i) => statuses[i]!, (i) =>
      statuses[i] === 400
        ? {
          type: "mapper_parsing_exception",
          reason:
            "failed to parse field [bytes] of type [long] in document with id 'flows-0-1-0'. Preview of field's value: 'lots'",
          caused_by: { type: "illegal_argument_exception", reason: 'For input string: "lots"' },
        }
        : statuses[i] === 429
        ? {
          type: "es_rejected_execution_exception",
          reason: "rejected execution of coordinating operation",
        }
        : { type: "unavailable_shards_exception", reason: "primary shard is not active" }))
  );
  await withNodes([node], async () => {
    const { sink, logs } = harness({ ELASTIC_HOSTS: node.url, ELASTIC_TEMPLATE_MODE: "none" });
    const result = await sink.write(rows(sink, 6));
    assertEquals(result, {
      rejected: [{
        index: 1,
        rejection: {
          reason: "server",
          error:
            "mapper_parsing_exception: failed to parse field [bytes] of type [long] in document with id 'flows-0-1-0'. " +
            "Preview of field's value: 'lots' (caused by illegal_argument_exception: For input string: \"lots\")",
        },
      }],
      retry: [2, 4],
    });
    const warned = logs.find((l) => l.msg === "Elasticsearch asked to resend documents");
    assertEquals(warned?.documents, 2);
    assertEquals(warned?.error_type, "es_rejected_execution_exception");
    await sink.close();
  });
});

Deno.test("ElasticSink.write() classifies whole answers: 413 splits; 400, 429, 5xx and 401 retry", async () => {
  let status = 413;
  let body = "";
  const node = fakeNode((request) =>
    request.path.startsWith("/_bulk") ? new Response(body, { status }) : okHandler(request)
  );
  await withNodes([node], async () => {
    const { sink, logs } = harness({ ELASTIC_HOSTS: node.url, ELASTIC_TEMPLATE_MODE: "none" });
    const batch = rows(sink, 2);
    const expect = async (
      s: number,
      b: string,
      action: string,
      errorType: string,
      message: RegExp,
    ) => {
      status = s;
      body = b;
      const error = await writeError(sink.write(batch));
      assertStrictEquals(error.action, action, `HTTP ${s}`);
      assertStrictEquals(error.errorType, errorType);
      assertStrictEquals(error.status, s);
      assertMatch(error.message, message);
    };
    await expect(
      413,
      "",
      "split",
      "http_413",
      /^Cannot write 2 documents to Elasticsearch at http:\/\/127\.0\.0\.1:\d+: HTTP 413$/,
    );
    await expect(
      400,
      '{"error":{"root_cause":[],"type":"action_request_validation_exception","reason":"Validation Failed: 1: no requests added;"},"status":400}',
      "retry",
      "http_400",
      /HTTP 400: action_request_validation_exception: Validation Failed: 1: no requests added;$/,
    );
    await expect(
      429,
      '{"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}',
      "retry",
      "http_429",
      /HTTP 429: es_rejected_execution_exception: rejected execution$/,
    );
    await expect(
      503,
      "<html>Service Unavailable</html>",
      "retry",
      "http_503",
      /HTTP 503: <html>Service Unavailable<\/html>$/,
    );
    await expect(
      401,
      '{"error":{"type":"security_exception","reason":"missing authentication credentials for REST request [/_bulk]"},"status":401}',
      "retry",
      "http_401",
      /HTTP 401: security_exception: missing authentication credentials .*; check ELASTIC_USERNAME\/ELASTIC_PASSWORD or ELASTIC_API_KEY/,
    );
    const authLog = logs.find((l) => l.msg === "Elasticsearch refused the request, retrying");
    assertEquals(authLog?.level, "error");
    assertEquals(authLog?.status, 401);
    await expect(
      200,
      '{"errors":false,"items":[]}',
      "retry",
      "bad_response",
      /does not hold one item per document/,
    );
    await sink.close();
  });
});

Deno.test("ElasticSink.write() fails over from a refused node to the next, and skips it for a while", async () => {
  const good = fakeNode();
  const down = refusedUrl();
  await withNodes([good], async () => {
    const { sink, logs, now } = harness({
      ELASTIC_HOSTS: `${down},${good.url}`,
      ELASTIC_TEMPLATE_MODE: "none",
    });
    for (let i = 0; i < 4; i++) {
      assertEquals(await sink.write(rows(sink, 2)), { rejected: [], retry: [] });
    }
    assertStrictEquals(bulkRequests(good).length, 4, "every bulk landed on the healthy node");
    const failed = logs.filter((l) => l.msg === "Elasticsearch node failed, trying another");
    assertStrictEquals(failed.length, 1, "the refused node was tried once, then skipped");
    assertStrictEquals(failed[0]?.host, down);
    assertStrictEquals(failed[0]?.skipped_for_seconds, 30);
    now.ms += 31_000;
    await sink.write(rows(sink, 1));
    await sink.write(rows(sink, 1));
    assertStrictEquals(
      logs.filter((l) => l.msg === "Elasticsearch node failed, trying another").length,
      2,
      "after the cooldown it is tried again",
    );
    await sink.close();
  });
});

Deno.test("ElasticSink.write() fails over on 5xx, rotates over healthy nodes, and notices a node coming back", async () => {
  let aDown = true;
  const a = fakeNode((r) => (aDown ? new Response("busy", { status: 503 }) : okHandler(r)));
  const b = fakeNode();
  await withNodes([a, b], async () => {
    const { sink, logs, now } = harness({
      ELASTIC_HOSTS: `${a.url},${b.url}`,
      ELASTIC_TEMPLATE_MODE: "none",
    });
    await sink.write(rows(sink, 1));
    await sink.write(rows(sink, 1));
    await sink.write(rows(sink, 1));
    assertStrictEquals(bulkRequests(a).length, 1, "the 503 node is skipped after its failure");
    assertStrictEquals(bulkRequests(b).length, 3);
    aDown = false;
    now.ms += 31_000;
    for (let i = 0; i < 4; i++) await sink.write(rows(sink, 1));
    assertStrictEquals(bulkRequests(a).length, 3, "healthy again: requests alternate");
    assertStrictEquals(bulkRequests(b).length, 5);
    assert(logs.some((l) => l.msg === "Elasticsearch node answers again" && l.host === a.url));
    await sink.close();
  });
});

Deno.test("ElasticSink.write() with every node down is a retry: network for refusals, 5xx as answered, timeout", async () => {
  const { sink } = harness({
    ELASTIC_HOSTS: `${refusedUrl()},${refusedUrl()}`,
    ELASTIC_TEMPLATE_MODE: "none",
  });
  const refused = await writeError(sink.write(rows(sink, 1)));
  assertStrictEquals(refused.action, "retry");
  assertStrictEquals(refused.errorType, "network");
  assertMatch(
    refused.message,
    /^Cannot reach Elasticsearch at http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+: /,
  );
  await sink.close();

  const busy = fakeNode(() => new Response("", { status: 502 }));
  const slow = fakeNode(async () => {
    await new Promise((r) => setTimeout(r, 1000));
    return json({});
  });
  await withNodes([busy, slow], async () => {
    const five = harness({ ELASTIC_HOSTS: busy.url, ELASTIC_TEMPLATE_MODE: "none" });
    const error = await writeError(five.sink.write(rows(five.sink, 1)));
    assertEquals([error.action, error.errorType], ["retry", "http_502"]);
    await five.sink.close();
    const timed = harness({
      ELASTIC_HOSTS: slow.url,
      ELASTIC_TEMPLATE_MODE: "none",
      ELASTIC_REQUEST_TIMEOUT: "0.2",
    });
    const timeout = await writeError(timed.sink.write(rows(timed.sink, 1)));
    assertEquals([timeout.action, timeout.errorType], ["retry", "timeout"]);
    await timed.sink.close();
  });
});

Deno.test("ElasticSink.connect() reads and logs the flavour and version, and leaves indexes alone in create_index mode", async () => {
  const node = fakeNode();
  await withNodes([node], async () => {
    const { sink, logs } = harness({ ELASTIC_HOSTS: node.url });
    await sink.connect();
    assertEquals(sink.server, { flavour: "opensearch", version: "2.19.6", major: 2, minor: 19 });
    const connected = logs.find((l) => l.msg === "Connected to Elasticsearch");
    assertEquals(connected?.flavour, "opensearch");
    assertEquals(connected?.version, "2.19.6");
    assertEquals(connected?.template_mode, "create_index");
    assertEquals(node.seen.map((s) => `${s.method} ${s.path}`), ["GET /"]);
    assert(await sink.healthcheck());
    await sink.close();
  });
});

Deno.test("ElasticSink.connect() installs a composable index template, or a legacy one before Elasticsearch 7.8", async () => {
  let root: unknown = OPENSEARCH_ROOT;
  const node = fakeNode((r) => (r.method === "GET" && r.path === "/" ? json(root) : okHandler(r)));
  await withNodes([node], async () => {
    const { sink, logs } = harness({
      ELASTIC_HOSTS: node.url,
      ELASTIC_TEMPLATE_MODE: "index_template",
      ELASTIC_INDEX_PREFIX: "flows",
    });
    await sink.connect();
    const put = node.seen.at(-1)!;
    assertStrictEquals(`${put.method} ${put.path}`, "PUT /_index_template/flows");
    assertStrictEquals(put.headers.get("content-type"), "application/json");
    const body = JSON.parse(put.text);
    assertEquals(body.index_patterns, ["flows-*"]);
    assertEquals(body.template.settings, { number_of_shards: 1, number_of_replicas: 0 });
    assertEquals(body.template.mappings.properties.bytes, { type: "long" });
    assertEquals(body._meta.managed_by, "sluice");
    assert(
      logs.some((l) =>
        l.msg === "Installed Elasticsearch index template" && l.api === "_index_template"
      ),
    );

    root = {
      version: { number: "7.5.2", build_flavor: "default" },
      tagline: "You Know, for Search",
    };
    await sink.connect();
    const legacy = node.seen.at(-1)!;
    assertStrictEquals(`${legacy.method} ${legacy.path}`, "PUT /_template/flows");
    const legacyBody = JSON.parse(legacy.text);
    assertEquals(Object.keys(legacyBody).sort(), ["index_patterns", "mappings", "settings"]);
    assertEquals(sink.server?.flavour, "elasticsearch");
    await sink.close();
  });
});

Deno.test("ElasticSink.connect() stops for what only an operator can fix and waits for what passes", async () => {
  let answer: () => Response = () => json(OPENSEARCH_ROOT);
  const node = fakeNode((r) => (r.method === "GET" && r.path === "/" ? answer() : okHandler(r)));
  await withNodes([node], async () => {
    const { sink, logs } = harness({
      ELASTIC_HOSTS: node.url,
      ELASTIC_TEMPLATE_MODE: "index_template",
    });
    answer = () =>
      json({
        error: { type: "security_exception", reason: "unable to authenticate user [sluice]" },
        status: 401,
      }, 401);
    await assertRejects(sink.connect(), (error: Error) => {
      assert(
        error instanceof SinkWriteError && error.action === "fatal",
        "a refused login is not waited for",
      );
      assertMatch(
        error.message,
        /HTTP 401: security_exception: unable to authenticate user \[sluice\]; check ELASTIC_USERNAME/,
      );
      return true;
    });
    answer = () => new Response("", { status: 503 });
    const waiting = await writeError(sink.connect());
    assertEquals([waiting.action, waiting.errorType], ["retry", "http_503"]);
    answer = () => json({ version: { number: "6.8.23" } });
    await assertRejects(
      sink.connect(),
      /needs Elasticsearch 7 or later \(or OpenSearch\), the server is 6\.8\.23/,
    );
    // A user without the monitor privilege: version unknown, carry on.
    answer = () =>
      json({
        error: {
          type: "security_exception",
          reason: "action [cluster:monitor/main] is unauthorized",
        },
        status: 403,
      }, 403);
    await sink.connect();
    assert(
      logs.some((l) =>
        l.msg === "Cannot read the Elasticsearch version; assuming a current server"
      ),
    );
    assertEquals(sink.server?.flavour, "unknown");
    assertStrictEquals(node.seen.at(-1)?.path, "/_index_template/sflow");
    await sink.close();
  });
  const templateRefused = fakeNode((r) =>
    r.method === "PUT"
      ? json({
        error: {
          type: "security_exception",
          reason: "action [indices:admin/index_template/put] is unauthorized",
        },
        status: 403,
      }, 403)
      : okHandler(r)
  );
  await withNodes([templateRefused], async () => {
    const { sink } = harness({
      ELASTIC_HOSTS: templateRefused.url,
      ELASTIC_TEMPLATE_MODE: "index_template",
    });
    await assertRejects(sink.connect(), (error: Error) => {
      assert(error instanceof SinkWriteError && error.action === "fatal");
      assertMatch(
        error.message,
        /^Cannot install the index template \(PUT \/_index_template\/sflow\) on Elasticsearch at .*HTTP 403: .*manage_index_templates privilege, or set ELASTIC_TEMPLATE_MODE=create_index$/,
      );
      return true;
    });
    await sink.close();
  });
  const { sink } = harness({ ELASTIC_HOSTS: refusedUrl() });
  const unreachable = await writeError(sink.connect());
  assertEquals([unreachable.action, unreachable.errorType], ["retry", "network"]);
  assertStrictEquals(await sink.healthcheck(), false);
  await sink.close();
});

Deno.test("ElasticSink.write() in create_index mode creates each daily index once, with the template, before writing to it", async () => {
  const existing = new Set<string>(["sflow-2026-11-20"]);
  const node = fakeNode((r) => {
    const index = r.path.slice(1);
    if (r.method === "HEAD") return new Response(null, { status: existing.has(index) ? 200 : 404 });
    if (r.method === "PUT") {
      if (existing.has(index)) {
        return json({
          error: {
            type: "resource_already_exists_exception",
            reason: `index [${index}/x] already exists`,
          },
          status: 400,
        }, 400);
      }
      existing.add(index);
      return json({ acknowledged: true, shards_acknowledged: true, index });
    }
    return okHandler(r);
  });
  await withNodes([node], async () => {
    const { sink, logs } = harness({ ELASTIC_HOSTS: node.url });
    await sink.write([
      ...rows(sink, 2, "2026-11-20"),
      ...rows(sink, 2, "2026-11-21"),
      ...rows(sink, 1, "2026-11-22"),
    ]);
    assertEquals(node.seen.map((s) => `${s.method} ${s.path}`), [
      "HEAD /sflow-2026-11-20",
      "HEAD /sflow-2026-11-21",
      "PUT /sflow-2026-11-21",
      "HEAD /sflow-2026-11-22",
      "PUT /sflow-2026-11-22",
      "POST /_bulk",
    ]);
    const put = node.seen[2]!;
    assertEquals(JSON.parse(put.text).settings, { number_of_shards: 1, number_of_replicas: 0 });
    assertEquals(Object.keys(JSON.parse(put.text).mappings.properties).sort(), [
      "@timestamp",
      "bytes",
      "flows",
      "packets",
      "stamp_inserted",
      "stamp_updated",
    ]);
    assertEquals(logs.filter((l) => l.msg === "Created Elasticsearch index").map((l) => l.index), [
      "sflow-2026-11-21",
      "sflow-2026-11-22",
    ]);
    node.seen.length = 0;
    await sink.write(rows(sink, 3, "2026-11-21"));
    assertEquals(node.seen.map((s) => s.method), ["POST"], "known indexes are not checked again");

    // Someone else created it between our HEAD and PUT: fine.
    node.handler = (r) => {
      if (r.method === "HEAD") return new Response(null, { status: 404 });
      if (r.method === "PUT") {
        return json({
          error: { type: "resource_already_exists_exception", reason: "already exists" },
          status: 400,
        }, 400);
      }
      return okHandler(r);
    };
    assertEquals(await sink.write(rows(sink, 1, "2026-11-23")), { rejected: [], retry: [] });

    // An index deleted behind our back (auto-creation off): retried, and checked again next time.
    node.handler = (r) =>
      r.path.startsWith("/_bulk")
        ? json(
          bulkAnswer(
            r,
            () => 404,
            () => ({
              type: "index_not_found_exception",
              reason: "no such index [sflow-2026-11-21]",
            }),
          ),
        )
        : okHandler(r);
    const result = await sink.write(rows(sink, 1, "2026-11-21"));
    assertEquals(result.retry, [0]);
    node.seen.length = 0;
    node.handler = (
      r,
    ) => (r.method === "HEAD" ? new Response(null, { status: 200 }) : okHandler(r));
    await sink.write(rows(sink, 1, "2026-11-21"));
    assertEquals(node.seen.map((s) => s.method), ["HEAD", "POST"]);

    // Index creation refused: retried (the documents are not at fault), never split.
    node.handler = (r) =>
      r.method === "HEAD" ? new Response(null, { status: 404 }) : r.method === "PUT"
        ? json({
          error: { type: "mapper_parsing_exception", reason: "Failed to parse mapping" },
          status: 400,
        }, 400)
        : okHandler(r);
    const refused = await writeError(sink.write(rows(sink, 1, "2026-11-24")));
    assertEquals([refused.action, refused.errorType], ["retry", "http_400"]);
    assertMatch(
      refused.message,
      /^Cannot create Elasticsearch index sflow-2026-11-24 at .*: HTTP 400: mapper_parsing_exception: Failed to parse mapping$/,
    );
    await sink.close();
  });
});

Deno.test("ElasticSink.connect() with TLS: a CA file verifies the node, an unknown CA stops it, ELASTIC_VERIFY_SSL=NO accepts it", async () => {
  const certs = await makeTestCertificates();
  const node = fakeNode(okHandler, { cert: certs.cert, key: certs.key });
  const port = new URL(node.url).port;
  try {
    await withNodes([node], async () => {
      const verified = harness({
        ELASTIC_HOSTS: `127.0.0.1:${port}`,
        ELASTIC_USE_SSL: "YES",
        ELASTIC_CA_FILE: certs.ca,
      });
      await verified.sink.connect();
      assertEquals(await verified.sink.write(rows(verified.sink, 2)), { rejected: [], retry: [] });
      await verified.sink.close();

      const unknown = harness({ ELASTIC_HOSTS: node.url });
      await assertRejects(unknown.sink.connect(), (error: Error) => {
        assert(
          error instanceof SinkWriteError && error.action === "fatal",
          "a certificate that does not verify is not waited for",
        );
        assertMatch(
          error.message,
          /certificate.*; set ELASTIC_CA_FILE, or ELASTIC_VERIFY_SSL=NO$/i,
        );
        return true;
      });
      await unknown.sink.close();

      const insecure = harness({ ELASTIC_HOSTS: node.url, ELASTIC_VERIFY_SSL: "NO" });
      await insecure.sink.connect();
      assertEquals(await insecure.sink.write(rows(insecure.sink, 3)), { rejected: [], retry: [] });
      const bulk = bulkRequests(node).at(-1)!;
      assertStrictEquals(bulk.text, insecure.sink.encode(rows(insecure.sink, 3)).join("\n") + "\n");
      assertStrictEquals(bulk.headers.get("content-type"), "application/x-ndjson");
      await insecure.sink.close();
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("ElasticSink.check() sends the credentials with GET / and installs nothing", async () => {
  let answer: () => Response = () => json(OPENSEARCH_ROOT);
  const node = fakeNode((r) => (r.method === "GET" && r.path === "/" ? answer() : okHandler(r)));
  await withNodes([node], async () => {
    const { sink } = harness({
      ELASTIC_HOSTS: node.url,
      ELASTIC_TEMPLATE_MODE: "index_template",
      ELASTIC_USERNAME: "sluice",
      ELASTIC_PASSWORD: "pw",
    });
    assertStrictEquals(
      await sink.check(),
      `opensearch 2.19.6 at ${node.url} (as user sluice), template mode index_template`,
    );
    assertEquals(node.seen.map((s) => `${s.method} ${s.path}`), ["GET /"]);
    assertStrictEquals(node.seen[0]?.headers.get("authorization"), `Basic ${btoa("sluice:pw")}`);
    answer = () =>
      json({
        error: { type: "security_exception", reason: "unable to authenticate user [sluice]" },
        status: 401,
      }, 401);
    const refused = await writeError(sink.check());
    assertEquals([refused.action, refused.errorType], ["fatal", "http_401"]);
    assertMatch(refused.message, /HTTP 401: security_exception: unable to authenticate user/);
    answer = () => json({ version: { number: "6.8.23" } });
    await assertRejects(sink.check(), /needs Elasticsearch 7 or later/);
    answer = () => json({ error: { type: "security_exception" }, status: 403 }, 403);
    assertMatch(await sink.check(), /the user may not read the version \(403\)$/);
    assertEquals(node.seen.filter((s) => s.method !== "GET"), [], "nothing is installed");
    await sink.close();
  });
  const { sink } = harness({ ELASTIC_HOSTS: refusedUrl() });
  const unreachable = await writeError(sink.check());
  assertEquals([unreachable.action, unreachable.errorType], ["retry", "network"]);
  await sink.close();
});
