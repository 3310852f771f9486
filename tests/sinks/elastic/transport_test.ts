/**
 * Node rotation, credentials, request failures, and what `GET /` tells.
 *
 * @module
 */

import {
  readServerInfo,
  serverProblem,
  templateRequest,
  UNKNOWN_SERVER,
} from "../../../sinks/elastic/server.ts";
import {
  authorizationHeader,
  classifyRequestError,
  HostPool,
} from "../../../sinks/elastic/transport.ts";
import { assertEquals, assertStrictEquals, assertThrows } from "../../_assert.ts";

Deno.test("HostPool rotates over healthy nodes and tries failed ones last until their cooldown passed", () => {
  const now = { ms: 0 };
  const pool = new HostPool(["a", "b", "c"], { cooldownMs: 10_000, clock: () => now.ms });
  assertEquals(pool.order(), ["a", "b", "c"]);
  assertEquals(pool.order(), ["b", "c", "a"]);
  assertEquals(pool.order(), ["c", "a", "b"]);
  assertStrictEquals(pool.markFailed("b"), true);
  now.ms = 1000;
  assertStrictEquals(pool.markFailed("a"), true);
  assertStrictEquals(pool.markFailed("a"), false, "already failed");
  assertEquals(pool.order(), ["c", "b", "a"], "failed ones last, the soonest back first");
  now.ms = 10_000;
  assertEquals(pool.order(), ["b", "c", "a"], "b's cooldown passed");
  assertStrictEquals(pool.markOk("b"), true);
  assertStrictEquals(pool.markOk("b"), false);
  now.ms = 11_000;
  assertEquals(pool.order(), ["c", "a", "b"]);
  assertThrows(() => new HostPool([]), RangeError);
});

Deno.test("authorizationHeader() sends basic credentials or the API key, encoding id:key", () => {
  assertStrictEquals(authorizationHeader({}), undefined);
  assertStrictEquals(
    authorizationHeader({ username: "elastic", password: "changeme" }),
    `Basic ${btoa("elastic:changeme")}`,
  );
  assertStrictEquals(authorizationHeader({ apiKey: "c2VjcmV0" }), "ApiKey c2VjcmV0");
  assertStrictEquals(authorizationHeader({ apiKey: "id:key" }), `ApiKey ${btoa("id:key")}`);
});

Deno.test("classifyRequestError() tells timeouts and certificate errors from other network errors", () => {
  assertStrictEquals(
    classifyRequestError(
      new DOMException("The operation was aborted due to timeout", "TimeoutError"),
    ),
    "timeout",
  );
  // What Deno's fetch throws for a refused connection and for an unknown CA.
  const fetchFailed = (cause: string) => new TypeError("fetch failed", { cause: new Error(cause) });
  assertStrictEquals(
    classifyRequestError(fetchFailed(
      "error sending request for url (http://127.0.0.1:9/): client error (Connect): tcp connect error: Connection refused (os error 111)",
    )),
    "network",
  );
  assertStrictEquals(
    classifyRequestError(fetchFailed(
      "error sending request for url (https://127.0.0.1:9200/): client error (Connect): invalid peer certificate: UnknownIssuer",
    )),
    "tls",
  );
  // node:https (ELASTIC_VERIFY_SSL=NO).
  assertStrictEquals(
    classifyRequestError(
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9200"), { code: "ECONNREFUSED" }),
    ),
    "network",
  );
  assertStrictEquals(classifyRequestError("weird"), "network");
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

Deno.test("templateRequest() uses composable templates from Elasticsearch 7.8 and on OpenSearch", () => {
  const template = {
    source: "t.json",
    mappings: { properties: {} },
    settings: { number_of_shards: 1 },
  };
  const api = (number: string, distribution?: string) =>
    templateRequest(readServerInfo({ version: { number, distribution } }), "sflow", template).path;
  assertStrictEquals(api("7.7.1"), "/_template/sflow");
  assertStrictEquals(api("7.8.0"), "/_index_template/sflow");
  assertStrictEquals(api("8.15.0"), "/_index_template/sflow");
  assertStrictEquals(api("1.3.0", "opensearch"), "/_index_template/sflow");
  assertStrictEquals(templateRequest(UNKNOWN_SERVER, "sflow", template).api, "_index_template");
  assertEquals(templateRequest(UNKNOWN_SERVER, "sflow", template).body, {
    index_patterns: ["sflow-*"],
    template: { settings: { number_of_shards: 1 }, mappings: { properties: {} } },
    _meta: { managed_by: "sluice", source: "t.json" },
  });
});
