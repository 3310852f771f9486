/**
 * The VictoriaMetrics sink's requests and error handling, against an
 * in-process fake server (`Deno.serve({ port: 0 })`): the URL, the gzip
 * body, the credentials, each answer's classification, timeouts, TLS
 * verification. What the real server does with the lines is tested in
 * tests/integration/victoriametrics_test.ts.
 *
 * @module
 */

import { makeTestCertificates } from "../../_tls.ts";
import {
  closedPort,
  type FakeHandler,
  fakeHttpServer,
  type FakeServer,
  gunzip,
} from "../../_fake_http.ts";
import { Logger } from "../../../lib/log.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { SinkWriteError } from "../../../lib/sink.ts";
import {
  parseVictoriaMetricsConfig,
  VICTORIAMETRICS,
} from "../../../sinks/victoriametrics/config.ts";
import {
  type VictoriaMetricsRow,
  VictoriaMetricsSink,
} from "../../../sinks/victoriametrics/mod.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

/** 2026-11-22 00:00:00 UTC: "now" for the timestamp window. */
const NOW = Date.UTC(2026, 10, 22, 0, 0, 0);

const RECORD = {
  event_type: "purge",
  ip_src: "10.0.0.1",
  ip_dst: "192.0.2.1",
  ip_proto: "tcp",
  stamp_inserted: "2026-11-21 23:25:00",
  stamp_updated: "2026-11-21 23:27:47",
  packets: 6,
  bytes: 402,
};

function sinkFor(env: Record<string, string>) {
  const reader = new VarReader(
    { VM_JOB: "pmacct", VM_INSTANCE: "nfacctd-1", ...env },
    VICTORIAMETRICS.specs,
  );
  const { config } = parseVictoriaMetricsConfig(reader);
  assertEquals(reader.problems, []);
  const logs: Array<Record<string, unknown>> = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const sink = new VictoriaMetricsSink(config, {
    time: new TimeReader("UTC"),
    log,
    clock: () => NOW,
  });
  return { sink, logs };
}

function origin(offset: number): RecordOrigin {
  return { topic: "flows", partition: 0, offset: String(offset), index: 0 };
}

function rows(
  sink: VictoriaMetricsSink,
  records: Record<string, unknown>[],
): PreparedRow<VictoriaMetricsRow>[] {
  return records.map((record, i) => {
    const result = sink.prepare(record, origin(i));
    if (!result.ok) throw new Error(`Cannot prepare record ${i}: ${result.rejection.error}`);
    return { row: result.row, bytes: result.bytes, origin: origin(i) };
  });
}

/** Runs `body` with a fake server and a sink pointed at it, then closes both. */
async function withFake(
  answer: FakeHandler,
  env: (url: string) => Record<string, string>,
  body: (
    t: { server: FakeServer; sink: VictoriaMetricsSink; logs: Array<Record<string, unknown>> },
  ) => Promise<void>,
): Promise<void> {
  const server = fakeHttpServer(answer);
  const { sink, logs } = sinkFor(env(server.url));
  try {
    await body({ server, sink, logs });
  } finally {
    await sink.close();
    await server.close();
  }
}

/** What `fn` rejects with; fails when it resolves. */
async function thrown(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    assert(error instanceof Error, "an Error");
    return error;
  }
  throw new Error("Expected a rejection, got a result");
}

const noContent = () => new Response(null, { status: 204 });

Deno.test("VictoriaMetricsSink.write() posts exactly the encode() lines, gzipped, to VM_URL and VM_IMPORT_PATH joined with one slash", async () => {
  await withFake(
    noContent,
    (url) => ({ VM_URL: `${url}/prefix/`, VM_IMPORT_PATH: "api/v1/import" }),
    async ({ server, sink }) => {
      const batch = rows(sink, [RECORD, { ...RECORD, ip_src: "10.0.0.2", bytes: 99 }]);
      assertEquals(await sink.write(batch), { rejected: [], retry: [] });
      assertStrictEquals(server.seen.length, 1);
      const [request] = server.seen;
      assertStrictEquals(request!.method, "POST");
      assertStrictEquals(request!.path, "/prefix/api/v1/import");
      assertStrictEquals(request!.headers.get("content-encoding"), "gzip");
      assertStrictEquals(request!.headers.get("authorization"), null);
      const lines = sink.encode(batch);
      assertStrictEquals(lines.length, 4);
      assertStrictEquals(await gunzip(request!.body), lines.join("\n") + "\n");
      assertStrictEquals(
        lines.reduce((n, l) => n + new TextEncoder().encode(l).length + 1, 0),
        batch.reduce((n, r) => n + r.bytes, 0),
        "the rows' bytes are the body's size",
      );
    },
  );
});

Deno.test("VictoriaMetricsSink.write() sends a plain body with VM_COMPRESSION=NO, and a query given in VM_IMPORT_PATH", async () => {
  await withFake(
    noContent,
    (url) => ({
      VM_URL: url,
      VM_COMPRESSION: "NO",
      VM_IMPORT_PATH: "/api/v1/import?extra_label=dc=fra",
    }),
    async ({ server, sink }) => {
      const batch = rows(sink, [RECORD]);
      await sink.write(batch);
      const [request] = server.seen;
      assertStrictEquals(request!.path, "/api/v1/import");
      assertStrictEquals(request!.search, "?extra_label=dc=fra");
      assertStrictEquals(request!.headers.get("content-encoding"), null);
      assertStrictEquals(
        new TextDecoder().decode(request!.body),
        sink.encode(batch).join("\n") + "\n",
      );
    },
  );
});

Deno.test("VictoriaMetricsSink.write() authenticates with basic credentials, from VM_USERNAME/VM_PASSWORD or VM_URL, or a bearer token", async () => {
  const cases: Array<[(url: string) => Record<string, string>, string]> = [
    [
      (url) => ({ VM_URL: url, VM_USERNAME: "writer", VM_PASSWORD: "sécret" }),
      `Basic ${btoa("writer:s\xc3\xa9cret")}`,
    ],
    [
      (url) => ({ VM_URL: url.replace("://", "://writer:p%40ss@") }),
      `Basic ${btoa("writer:p@ss")}`,
    ],
    [(url) => ({ VM_URL: url, VM_BEARER_TOKEN: "t0ken" }), "Bearer t0ken"],
  ];
  for (const [env, header] of cases) {
    await withFake(noContent, env, async ({ server, sink }) => {
      await sink.write(rows(sink, [RECORD]));
      await sink.healthcheck();
      assertEquals(server.seen.map((s) => s.headers.get("authorization")), [header, header]);
    });
  }
});

Deno.test("VictoriaMetricsSink.write() splits on 413 and on a 400 for a bad line, and retries on 503 and 429 with Retry-After", async () => {
  const cases: Array<[Response, string, string, number | undefined]> = [
    [new Response("too large", { status: 413 }), "split", "http_413", undefined],
    [
      new Response("cannot read gzipped vmimport data: unexpected EOF", { status: 400 }),
      "split",
      "http_400",
      undefined,
    ],
    [
      new Response("busy", { status: 503, headers: { "Retry-After": "3" } }),
      "retry",
      "http_503",
      3000,
    ],
    [
      new Response("slow down", { status: 429, headers: { "Retry-After": "1" } }),
      "retry",
      "http_429",
      1000,
    ],
    [new Response("", { status: 502 }), "retry", "http_502", undefined],
  ];
  for (const [response, action, errorType, retryAfterMs] of cases) {
    await withFake(() => response, (url) => ({ VM_URL: url }), async ({ sink }) => {
      const error = await thrown(() => sink.write(rows(sink, [RECORD])));
      assert(error instanceof SinkWriteError);
      assertEquals(
        [error.action, error.errorType, error.status, error.retryAfterMs],
        [action, errorType, response.status, retryAfterMs],
      );
      assertMatch(
        error.message,
        /^Cannot import 1 records \(2 lines\) into VictoriaMetrics at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/import: HTTP \d+/,
      );
    });
  }
});

Deno.test("VictoriaMetricsSink.write() retries 401 and 403 and logs an error naming the variables to fix", async () => {
  await withFake(
    () => new Response("Unauthorized", { status: 401 }),
    (url) => ({ VM_URL: url, VM_USERNAME: "u", VM_PASSWORD: "wrong" }),
    async ({ sink, logs }) => {
      const error = await thrown(() => sink.write(rows(sink, [RECORD])));
      assert(error instanceof SinkWriteError);
      assertStrictEquals(error.action, "retry");
      assertMatch(
        error.message,
        /HTTP 401: Unauthorized; the server refused the credentials; check VM_USERNAME\/VM_PASSWORD or VM_BEARER_TOKEN$/,
      );
      assert(!error.message.includes("wrong"));
      const logged = logs.find((l) => l["msg"] === "VictoriaMetrics refuses imports");
      assertStrictEquals(logged?.["level"], "error");
      assertStrictEquals(logged?.["status"], 401);
    },
  );
});

Deno.test("VictoriaMetricsSink.write() retries a 400 for an unsupported path instead of splitting", async () => {
  await withFake(
    (seen) => new Response(`unsupported path requested: "${seen.path}"`, { status: 400 }),
    (url) => ({ VM_URL: url, VM_IMPORT_PATH: "/api/v1/imprt" }),
    async ({ sink }) => {
      const error = await thrown(() => sink.write(rows(sink, [RECORD])));
      assert(error instanceof SinkWriteError);
      assertEquals([error.action, error.status], ["retry", 400]);
      assertMatch(error.message, /check VM_URL and VM_IMPORT_PATH$/);
    },
  );
});

Deno.test("VictoriaMetricsSink.write() does not follow a redirect: the POST would lose its body", async () => {
  await withFake(
    (_seen, n) =>
      n === 1
        ? new Response(null, { status: 301, headers: { Location: "/elsewhere" } })
        : noContent(),
    (url) => ({ VM_URL: url }),
    async ({ server, sink }) => {
      const error = await thrown(() => sink.write(rows(sink, [RECORD])));
      assert(error instanceof SinkWriteError);
      assertEquals([error.action, error.errorType], ["retry", "http_301"]);
      assertMatch(
        error.message,
        /\(Location: \/elsewhere\); the server redirects; point VM_URL at the final address$/,
      );
      assertStrictEquals(server.seen.length, 1);
    },
  );
});

Deno.test("VictoriaMetricsSink.write() gives up on a request after VM_REQUEST_TIMEOUT and retries", async () => {
  const release = Promise.withResolvers<void>();
  await withFake(
    async () => {
      await release.promise;
      return noContent();
    },
    (url) => ({ VM_URL: url, VM_REQUEST_TIMEOUT: "0.2" }),
    async ({ sink }) => {
      const started = Date.now();
      const error = await thrown(() => sink.write(rows(sink, [RECORD])));
      release.resolve();
      assert(error instanceof SinkWriteError);
      assertEquals([error.action, error.errorType], ["retry", "timeout"]);
      assert(Date.now() - started < 5000, "the timeout cut the request short");
    },
  );
});

Deno.test("VictoriaMetricsSink.write() retries when nothing listens, naming the address", async () => {
  const { sink } = sinkFor({ VM_URL: `http://127.0.0.1:${closedPort()}` });
  try {
    const error = await thrown(() => sink.write(rows(sink, [RECORD])));
    assert(error instanceof SinkWriteError);
    assertEquals([error.action, error.errorType], ["retry", "network"]);
    assertMatch(error.message, /Connection refused/);
  } finally {
    await sink.close();
  }
});

Deno.test("VictoriaMetricsSink.write() logs the metric fields a written record left out", async () => {
  await withFake(noContent, (url) => ({ VM_URL: url }), async ({ sink, logs }) => {
    const batch = rows(sink, [{ ...RECORD, packets: "n/a" }]);
    assertStrictEquals(batch[0]!.row.lines.length, 1);
    assertEquals(batch[0]!.row.setAside, ['packets: "n/a" is not a number']);
    assertEquals(logs.filter((l) => l["msg"] === "Metric fields set aside"), []);
    await sink.write(batch);
    const logged = logs.find((l) => l["msg"] === "Metric fields set aside");
    assertStrictEquals(logged?.["error"], 'packets: "n/a" is not a number');
    assertStrictEquals(logged?.["offset"], "0");
  });
});

Deno.test("VictoriaMetricsSink.connect() probes VM_IMPORT_PATH and the credentials with an empty import", async () => {
  await withFake(noContent, (url) => ({ VM_URL: url }), async ({ server, sink, logs }) => {
    await sink.connect();
    assertEquals(
      server.seen.map((s) => [s.method, s.path, s.body.length, s.headers.get("content-encoding")]),
      [
        ["POST", "/api/v1/import", 0, null],
      ],
    );
    assert(logs.some((l) => l["msg"] === "Connected to VictoriaMetrics"));
  });
});

Deno.test("VictoriaMetricsSink.connect() fails for good on refused credentials or an unknown path, and waits for a server that is down", async () => {
  const fatal: Array<[Response, RegExp]> = [
    [
      new Response("Unauthorized", { status: 401 }),
      /HTTP 401: Unauthorized; the server refused the credentials/,
    ],
    [
      new Response('unsupported path requested: "/api/v1/imprt"', { status: 400 }),
      /HTTP 400: unsupported path requested: "\/api\/v1\/imprt"; the server does not serve this path/,
    ],
    [
      new Response("Not Found", { status: 404 }),
      /HTTP 404: Not Found; the server does not serve this path/,
    ],
  ];
  for (const [response, message] of fatal) {
    await withFake(() => response, (url) => ({ VM_URL: url }), async ({ sink }) => {
      const error = await thrown(() => sink.connect());
      assert(error instanceof SinkWriteError && error.action === "fatal", "not waited for");
      assertMatch(
        error.message,
        /^Cannot connect to VictoriaMetrics at http:\/\/127\.0\.0\.1:\d+\/api\/v1\/import: /,
      );
      assertMatch(error.message, message);
    });
  }
  await withFake(
    () => new Response("starting", { status: 503 }),
    (url) => ({ VM_URL: url }),
    async ({ sink }) => {
      const error = await thrown(() => sink.connect());
      assert(error instanceof SinkWriteError);
      assertEquals([error.action, error.errorType], ["retry", "http_503"]);
    },
  );
  const { sink } = sinkFor({ VM_URL: `http://127.0.0.1:${closedPort()}` });
  try {
    const error = await thrown(() => sink.connect());
    assert(error instanceof SinkWriteError);
    assertEquals([error.action, error.errorType], ["retry", "network"]);
  } finally {
    await sink.close();
  }
});

Deno.test("VictoriaMetricsSink.healthcheck() asks GET /health", async () => {
  let status = 200;
  await withFake(
    () => new Response("OK", { status }),
    (url) => ({ VM_URL: `${url}/vm` }),
    async ({ server, sink }) => {
      assertStrictEquals(await sink.healthcheck(), true);
      status = 503;
      assertStrictEquals(await sink.healthcheck(), false);
      assertEquals(server.seen.map((s) => [s.method, s.path]), [["GET", "/vm/health"], [
        "GET",
        "/vm/health",
      ]]);
    },
  );
  const { sink } = sinkFor({ VM_URL: `http://127.0.0.1:${closedPort()}` });
  assertStrictEquals(await sink.healthcheck(), false);
  await sink.close();
});

// --- TLS ---------------------------------------------------------------------------

Deno.test("VictoriaMetricsSink over TLS: the certificate is verified against VM_CA_FILE, and not at all with VM_SSL_VERIFY=NO", async () => {
  const certs = await makeTestCertificates();
  const dir = certs.dir;
  let status = 204;
  const server = fakeHttpServer(
    (seen) =>
      seen.path === "/health"
        ? new Response("OK")
        : new Response(status === 204 ? null : "too large", { status }),
    certs,
  );
  try {
    // Verified against the system CAs only: a certificate failure is fatal at start.
    const strict = sinkFor({ VM_URL: server.url });
    const error = await thrown(() => strict.sink.connect());
    assert(
      error instanceof SinkWriteError && error.action === "fatal",
      "a certificate that does not verify is not waited for",
    );
    assertMatch(
      error.message,
      /certificate.*; the TLS connection failed; check VM_CA_FILE or VM_SSL_VERIFY$/,
    );
    const failed = await thrown(() => strict.sink.write(rows(strict.sink, [RECORD])));
    assert(failed instanceof SinkWriteError);
    assertEquals([failed.action, failed.errorType], ["retry", "tls"]);
    await strict.sink.close();
    assertStrictEquals(server.seen.length, 0);

    for (
      const env of [{ VM_CA_FILE: certs.ca }, { VM_SSL_VERIFY: "False" }] as Record<
        string,
        string
      >[]
    ) {
      const { sink } = sinkFor({ VM_URL: server.url, ...env });
      try {
        status = 204;
        await sink.connect();
        const batch = rows(sink, [RECORD]);
        await sink.write(batch);
        const request = server.seen.at(-1)!;
        assertStrictEquals(request.headers.get("content-encoding"), "gzip");
        assertStrictEquals(await gunzip(request.body), sink.encode(batch).join("\n") + "\n");
        assertStrictEquals(await sink.healthcheck(), true);
        status = 413;
        const tooLarge = await thrown(() => sink.write(batch));
        assert(tooLarge instanceof SinkWriteError);
        assertEquals([tooLarge.action, tooLarge.status], ["split", 413]);
      } finally {
        await sink.close();
      }
    }
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("VictoriaMetricsSink over TLS: VM_SSL_VERIFY=NO still times out and reports refused connections", async () => {
  const certs = await makeTestCertificates();
  const dir = certs.dir;
  const release = Promise.withResolvers<void>();
  const server = fakeHttpServer(async () => {
    await release.promise;
    return noContent();
  }, certs);
  try {
    const { sink } = sinkFor({
      VM_URL: server.url,
      VM_SSL_VERIFY: "NO",
      VM_REQUEST_TIMEOUT: "0.2",
    });
    const error = await thrown(() => sink.write(rows(sink, [RECORD])));
    release.resolve();
    assert(error instanceof SinkWriteError);
    assertEquals([error.action, error.errorType], ["retry", "timeout"]);
    await sink.close();
    const down = sinkFor({ VM_URL: `https://127.0.0.1:${closedPort()}`, VM_SSL_VERIFY: "NO" });
    const refused = await thrown(() => down.sink.write(rows(down.sink, [RECORD])));
    assert(refused instanceof SinkWriteError);
    assertEquals([refused.action, refused.errorType], ["retry", "network"]);
    await down.sink.close();
  } finally {
    release.resolve();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("VictoriaMetricsSink.check() sends the empty import of connect() and says what it found", async () => {
  await withFake(
    noContent,
    (url) => ({ VM_URL: url, VM_BEARER_TOKEN: "tok" }),
    async ({ server, sink }) => {
      assertEquals(await sink.check(), `${server.url}/api/v1/import accepts an empty import`);
      assertEquals(server.seen.map((s) => [s.method, s.path, s.body.length]), [
        ["POST", "/api/v1/import", 0],
      ]);
      assertEquals(server.seen[0]?.headers.get("authorization"), "Bearer tok");
    },
  );
  await withFake(
    () => new Response("Unauthorized", { status: 401 }),
    (url) => ({ VM_URL: url }),
    async ({ sink }) => {
      const error = await thrown(() => sink.check());
      assert(error instanceof SinkWriteError && error.action === "fatal");
      assertMatch(error.message, /HTTP 401: Unauthorized; the server refused the credentials/);
    },
  );
});
