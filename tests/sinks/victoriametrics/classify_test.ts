/**
 * Classification of VictoriaMetrics answers and of failures without an
 * answer, on errors shaped exactly as Deno 2.9's `fetch` and `node:https`
 * report them (recorded: see the module doc of sinks/victoriametrics/classify.ts).
 *
 * @module
 */

import {
  classifyVictoriaMetricsError,
  classifyVictoriaMetricsResponse,
} from "../../../sinks/victoriametrics/classify.ts";
import { failure } from "../../_verdict.ts";
import { assertEquals, assertStrictEquals } from "../../_assert.ts";

Deno.test("classifyVictoriaMetricsResponse() writes on 2xx, splits on 400 and 413, retries the rest", () => {
  const cases: Array<[number, string, string]> = [
    [200, "ok", ""],
    [204, "ok", ""],
    [400, "split", "http_400"],
    [413, "split", "http_413"],
    [401, "retry", "http_401"],
    [403, "retry", "http_403"],
    [404, "retry", "http_404"],
    [405, "retry", "http_405"],
    [408, "retry", "http_408"],
    [429, "retry", "http_429"],
    [500, "retry", "http_500"],
    [502, "retry", "http_502"],
    [503, "retry", "http_503"],
    [504, "retry", "http_504"],
    [301, "retry", "http_301"],
    [307, "retry", "http_307"],
  ];
  for (const [status, action, errorType] of cases) {
    const outcome = classifyVictoriaMetricsResponse(status);
    assertEquals(
      [outcome.action, failure(outcome).errorType ?? ""],
      [action, errorType],
      String(status),
    );
  }
});

Deno.test("classifyVictoriaMetricsResponse() retries a 400 for a path the server does not serve", () => {
  // The text of VictoriaMetrics 1.79.5 for POST /api/v1/imprt.
  const body =
    'remoteAddr: "127.0.0.1:52450"; requestURI: /api/v1/imprt; unsupported path requested: "/api/v1/imprt"\n';
  assertEquals(classifyVictoriaMetricsResponse(400, body), {
    action: "retry",
    errorType: "http_400",
    status: 400,
    hint: "the server does not serve this path; check VM_URL and VM_IMPORT_PATH",
  });
  // The text for a body that is not gzip: the request's fault.
  const gzipBody =
    'remoteAddr: "127.0.0.1:60592"; requestURI: /api/v1/import; cannot read gzipped vmimport data: unexpected EOF\n';
  assertStrictEquals(classifyVictoriaMetricsResponse(400, gzipBody).action, "split");
});

Deno.test("classifyVictoriaMetricsResponse() names the fix for 401 and 403", () => {
  for (const status of [401, 403]) {
    assertStrictEquals(
      failure(classifyVictoriaMetricsResponse(status)).hint,
      "the server refused the credentials; check VM_USERNAME/VM_PASSWORD or VM_BEARER_TOKEN",
    );
  }
});

Deno.test("classifyVictoriaMetricsResponse() carries Retry-After of 429 and 503", () => {
  const now = Date.UTC(2026, 10, 22, 0, 0, 0);
  assertStrictEquals(
    failure(classifyVictoriaMetricsResponse(429, "", "7", now)).retryAfterMs,
    7000,
  );
  assertStrictEquals(
    failure(classifyVictoriaMetricsResponse(503, "", "Sun, 22 Nov 2026 00:00:30 GMT", now))
      .retryAfterMs,
    30_000,
  );
  assertStrictEquals(
    failure(classifyVictoriaMetricsResponse(503, "", null, now)).retryAfterMs,
    undefined,
  );
});

Deno.test("classifyVictoriaMetricsError() retries every failure without an answer, naming VM_CA_FILE for TLS", () => {
  const fetchFailed = (cause: string) => new TypeError("fetch failed", { cause: new Error(cause) });
  assertEquals(
    classifyVictoriaMetricsError(fetchFailed("invalid peer certificate: UnknownIssuer")),
    {
      action: "retry",
      errorType: "tls",
      hint: "the TLS connection failed; check VM_CA_FILE or VM_SSL_VERIFY",
    },
  );
  assertEquals(classifyVictoriaMetricsError(new Error("something else")), {
    action: "retry",
    errorType: "unknown",
  });
});
