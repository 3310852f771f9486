/**
 * The requests `client.ts` builds: the options of `@clickhouse/client` for a
 * configuration and the deduplication token of a batch.
 *
 * @module
 */

import { Logger } from "../../../lib/log.ts";
import { VarReader } from "../../../lib/variables.ts";
import { clientOptions } from "../../../sinks/clickhouse/client.ts";
import {
  CLICKHOUSE,
  type ClickHouseConfig,
  parseClickHouseConfig,
} from "../../../sinks/clickhouse/config.ts";
import { assert, assertEquals, assertStrictEquals } from "../../_assert.ts";

function config(env: Record<string, string>): ClickHouseConfig {
  const reader = new VarReader({ CLICKHOUSE_DATA_SCHEMA: "a:String", ...env }, CLICKHOUSE.specs);
  const { config } = parseClickHouseConfig(reader);
  assertEquals(reader.problems, []);
  return config;
}

Deno.test("clientOptions() sets credentials, timeout, gzip and TLS as configured", () => {
  const log = new Logger({ write: () => {} });
  const plain = clientOptions(
    config({
      CLICKHOUSE_HOST: "ch.example",
      CLICKHOUSE_PASSWORD: "s3",
      CLICKHOUSE_REQUEST_TIMEOUT: "2.5",
    }),
    log,
  );
  assertStrictEquals(plain.url, "http://ch.example:8123");
  assertStrictEquals(plain.username, "default");
  assertStrictEquals(plain.password, "s3");
  assertStrictEquals(plain.request_timeout, 2500);
  assertStrictEquals(plain.database, undefined);
  assertEquals(plain.compression, { request: { codec: "gzip", level: 1 }, response: false });
  assertStrictEquals(plain.tls, undefined);
  assertStrictEquals(plain.http_agent, undefined);
  const ca = new TextEncoder().encode("-----BEGIN CERTIFICATE-----\n");
  const verified = clientOptions(
    config({ CLICKHOUSE_HOST: "https://ch.example", CLICKHOUSE_COMPRESSION: "NO" }),
    log,
    ca,
  );
  assertStrictEquals(verified.url, "https://ch.example:8443");
  assertEquals(verified.compression, { request: false, response: false });
  assert(verified.tls !== undefined && "ca_cert" in verified.tls);
  const unverified = clientOptions(
    config({
      CLICKHOUSE_HOST: "ch.example",
      CLICKHOUSE_SECURE: "YES",
      CLICKHOUSE_TLS_VERIFY: "NO",
    }),
    log,
  );
  const agent = unverified.http_agent as unknown as
    | { options: { rejectUnauthorized: boolean } }
    | undefined;
  assertStrictEquals(agent?.options.rejectUnauthorized, false);
});
