/**
 * The Elasticsearch sink's requests: node rotation, credentials and the
 * index template request. Sending them is tested in sink_test.ts.
 *
 * @module
 */

import { readServerInfo, UNKNOWN_SERVER } from "../../../sinks/elastic/classify.ts";
import { authorizationHeader, HostPool, templateRequest } from "../../../sinks/elastic/client.ts";
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
