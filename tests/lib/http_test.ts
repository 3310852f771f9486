/**
 * The HTTP layer every HTTP sink shares (lib/http.ts): `Retry-After`, the
 * classification of requests that got no answer (errors shaped exactly as
 * Deno 2.9's `fetch` and `node:https` report them), body excerpts, Basic
 * authentication, gzip, and the transports against a fake server: no
 * redirect followed, verification on and off, the client that opens its
 * transport at first use.
 *
 * @module
 */

import {
  basicAuthorization,
  bodyExcerpt,
  classifyTransportError,
  createTransport,
  fetchTransport,
  gzip,
  HttpClient,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
  insecureTransport,
  parseRetryAfter,
} from "../../lib/http.ts";
import { closedPort, fakeHttpServer, gunzip, withFakeHttpServer } from "../_fake_http.ts";
import { makeTestCertificates } from "../_tls.ts";
import { assert, assertEquals, assertRejects, assertStrictEquals } from "../_assert.ts";

Deno.test("parseRetryAfter() reads seconds and HTTP dates, and ignores the rest", () => {
  const now = Date.UTC(2026, 10, 22, 0, 0, 0);
  assertStrictEquals(parseRetryAfter("0", now), 0);
  assertStrictEquals(parseRetryAfter(" 120 ", now), 120_000);
  assertStrictEquals(parseRetryAfter("Sun, 22 Nov 2026 00:01:00 GMT", now), 60_000);
  assertStrictEquals(parseRetryAfter("Sat, 21 Nov 2026 00:00:00 GMT", now), 0);
  assertStrictEquals(parseRetryAfter("-5", now), undefined);
  assertStrictEquals(parseRetryAfter("soon", now), undefined);
  assertStrictEquals(parseRetryAfter(null, now), undefined);
});

Deno.test("classifyTransportError() tells timeouts, TLS and network failures apart, all retried", () => {
  const fetchFailed = (cause: string) => new TypeError("fetch failed", { cause: new Error(cause) });
  const cases: Array<[unknown, string]> = [
    [new DOMException("The operation was aborted due to timeout", "TimeoutError"), "timeout"],
    [
      fetchFailed(
        "error sending request for url (https://127.0.0.1:33763/): client error (Connect): invalid peer certificate: UnknownIssuer",
      ),
      "tls",
    ],
    [
      fetchFailed(
        "error sending request for url (http://127.0.0.1:28999/api/v1/import): client error (Connect): tcp connect error: Connection refused (os error 111)",
      ),
      "network",
    ],
    [
      fetchFailed(
        "error sending request for url (https://nonexistent.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
      ),
      "network",
    ],
    [
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      "network",
    ],
    [
      Object.assign(new Error("unable to verify the first certificate"), {
        code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      }),
      "tls",
    ],
    [
      Object.assign(new Error("Request timed out after 10 ms"), { name: "TimeoutError" }),
      "timeout",
    ],
    [new Error("something else"), "unknown"],
  ];
  for (const [error, errorType] of cases) {
    const outcome = classifyTransportError(error, "check THE_CA_FILE");
    assertEquals([outcome.action, outcome.errorType], ["retry", errorType], String(error));
  }
  assertStrictEquals(
    classifyTransportError(fetchFailed("invalid peer certificate: UnknownIssuer"), "check X").hint,
    "the TLS connection failed; check X",
  );
});

Deno.test("bodyExcerpt() keeps one bounded line of the server's text", () => {
  assertStrictEquals(bodyExcerpt("  a\n b\t c \n"), "a b c");
  const long = bodyExcerpt("x".repeat(2000));
  assertStrictEquals(long.length, 503);
  assertStrictEquals(long.endsWith("..."), true);
});

Deno.test("bodyExcerpt() picks the message out of a JSON error answer, else keeps the text", () => {
  const pick = (json: unknown) => (json as { error?: string }).error;
  assertStrictEquals(bodyExcerpt('{"error":"database not found"}', pick), "database not found");
  assertStrictEquals(bodyExcerpt('{"other":1}', pick), '{"other":1}');
  assertStrictEquals(bodyExcerpt("<html>Bad Gateway</html>", pick), "<html>Bad Gateway</html>");
});

Deno.test("basicAuthorization() encodes user:password as UTF-8 base64 (RFC 7617)", () => {
  assertStrictEquals(
    basicAuthorization("Aladdin", "open sesame"),
    "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
  );
  assertStrictEquals(basicAuthorization("ü", "p:w"), `Basic ${btoa("\u00c3\u00bc:p:w")}`);
});

Deno.test("gzip() makes a stream gunzip reads back", async () => {
  const text = "line\n".repeat(1000);
  const packed = await gzip(new TextEncoder().encode(text));
  assert(packed.length < text.length / 10);
  assertStrictEquals(await gunzip(packed), text);
});

function request(url: string, init: Partial<HttpRequest> = {}): HttpRequest {
  return { method: "GET", url, headers: {}, timeoutMs: 5000, ...init };
}

Deno.test("fetchTransport() sends method, headers and body, and does not follow a redirect", async () => {
  await withFakeHttpServer(
    (seen) =>
      seen.path === "/moved"
        ? new Response(null, { status: 307, headers: { location: "/elsewhere" } })
        : new Response(`got ${seen.method} ${seen.text}`, { status: 201, headers: { x: "y" } }),
    async (server) => {
      const transport = fetchTransport();
      try {
        const answer = await transport.send(
          request(`${server.url}/in`, { method: "PUT", headers: { "x-a": "1" }, body: "hello" }),
        );
        assertEquals([answer.status, answer.body, answer.headers.get("x")], [
          201,
          "got PUT hello",
          "y",
        ]);
        assertStrictEquals(server.seen[0]!.headers.get("x-a"), "1");
        const moved = await transport.send(request(`${server.url}/moved`, { method: "POST" }));
        assertStrictEquals(moved.status, 307);
        assertStrictEquals(server.seen.length, 2, "the redirect was not followed");
      } finally {
        transport.close();
      }
    },
  );
});

Deno.test("fetchTransport() gives up after timeoutMs with a TimeoutError, and fails on a closed port", async () => {
  await withFakeHttpServer(
    () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response("late")), 500)),
    async (server) => {
      const transport = fetchTransport();
      const error = await transport.send(request(server.url, { timeoutMs: 50 })).catch((e) => e);
      assertStrictEquals(classifyTransportError(error, "").errorType, "timeout");
      const refused = await transport.send(request(`http://127.0.0.1:${closedPort()}/`)).catch((
        e,
      ) => e);
      assertStrictEquals(classifyTransportError(refused, "").errorType, "network");
      transport.close();
    },
  );
});

Deno.test("createTransport() verifies against the CA given, and accepts any certificate with verify off", async () => {
  const certs = await makeTestCertificates();
  const server = fakeHttpServer(() => new Response("ok"), { cert: certs.cert, key: certs.key });
  try {
    const unknown = createTransport({ verify: true });
    const refused = await unknown.send(request(server.url)).catch((e) => e);
    assertStrictEquals(classifyTransportError(refused, "").errorType, "tls");
    unknown.close();
    const trusting = createTransport({ verify: true, caPem: await Deno.readTextFile(certs.ca) });
    assertStrictEquals((await trusting.send(request(server.url))).body, "ok");
    trusting.close();
    const any = createTransport({ verify: false });
    const answer = await any.send(request(server.url, { method: "POST", body: "x" }));
    assertEquals([answer.status, answer.body], [200, "ok"]);
    any.close();
  } finally {
    await server.close();
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("insecureTransport() sends plain http with fetch and times out like fetch", async () => {
  await withFakeHttpServer((seen) => new Response(seen.text), async (server) => {
    const transport = insecureTransport();
    try {
      const answer = await transport.send(request(server.url, { method: "POST", body: "plain" }));
      assertStrictEquals(answer.body, "plain");
    } finally {
      transport.close();
    }
  });
});

Deno.test("HttpClient opens its transport at first use, reads the CA file then, and never closes an injected one", async () => {
  let closed = 0;
  const sent: HttpRequest[] = [];
  const injected: HttpTransport = {
    send(r: HttpRequest): Promise<HttpResponse> {
      sent.push(r);
      return Promise.resolve({ status: 204, headers: new Headers(), body: "" });
    },
    close: () => void closed++,
  };
  const client = new HttpClient({
    verify: true,
    caFile: "/nonexistent/ca.pem",
    transport: injected,
  });
  assertStrictEquals((await client.send(request("http://x/"))).status, 204);
  client.close();
  assertStrictEquals(closed, 0);
  assertStrictEquals(sent.length, 1);
  const missingCa = new HttpClient({ verify: true, caFile: "/nonexistent/ca.pem" });
  await assertRejects(() => missingCa.send(request("http://127.0.0.1:1/")), Deno.errors.NotFound);
});
