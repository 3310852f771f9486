/**
 * The InfluxDB sink against the shared in-process fake server
 * (tests/_fake_http.ts) answering with bodies recorded from InfluxDB 1.6.7
 * and 2.7.12: the exact requests for API 1 and 2, gzip, what each answer
 * leads to, the database created at start and again after it was dropped,
 * and TLS. What the real server stores is tested in tests/integration/.
 *
 * @module
 */

import { makeTestCertificates } from "../../_tls.ts";
import {
  closedPort,
  type FakeHandler,
  fakeHttpServer,
  type FakeServer,
  type SeenRequest,
} from "../../_fake_http.ts";
import { Logger } from "../../../lib/log.ts";
import type { RecordKind } from "../../../lib/record.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import { INFLUXDB, parseInfluxDBConfig } from "../../../sinks/influxdb/config.ts";
import { InfluxDBSink } from "../../../sinks/influxdb/mod.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { SinkWriteError } from "../../../lib/sink.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";
import { RECORDED, RECORDED_V2 } from "./_recorded.ts";

const VERSION_HEADERS = { "X-Influxdb-Version": "1.6.7~rc0", "X-Influxdb-Build": "OSS" };

function answer([status, body]: readonly [number, string], headers: HeadersInit = {}): Response {
  return new Response(status === 204 ? null : body, {
    status,
    headers: { "Content-Type": "application/json", ...VERSION_HEADERS, ...headers },
  });
}

const noContent = () => new Response(null, { status: 204, headers: VERSION_HEADERS });
/** InfluxDB 2's answer to a ping or a write. */
const noContentV2 = () =>
  new Response(null, { status: 204, headers: { "X-Influxdb-Version": "v2.7.12" } });

function makeSink(
  env: Record<string, string>,
  input: RecordKind = "points",
  zone = "UTC",
): { sink: InfluxDBSink; logs: Array<Record<string, unknown>> } {
  const reader = new VarReader(env, INFLUXDB.specs);
  const { config } = parseInfluxDBConfig(reader);
  assertEquals(reader.problems, []);
  const logs: Array<Record<string, unknown>> = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  return { sink: new InfluxDBSink(config, { time: new TimeReader(zone), log, input }), logs };
}

/** Runs `body` with a fake server and a sink pointed at it, then closes both. */
async function withInfluxDB(
  respond: FakeHandler,
  env: Record<string, string>,
  body: (t: {
    seen: SeenRequest[];
    sink: InfluxDBSink;
    logs: Array<Record<string, unknown>>;
    url: string;
  }) => Promise<void>,
  input: RecordKind = "points",
): Promise<void> {
  const server: FakeServer = fakeHttpServer(respond);
  const { sink, logs } = makeSink({ INFLUXDB_URL: server.url, ...env }, input);
  try {
    await body({ seen: server.seen, sink, logs, url: server.url });
  } finally {
    await sink.close();
    await server.close();
  }
}

const ORIGIN: RecordOrigin = { topic: "metrics", partition: 0, offset: "7", index: 0 };

const POINTS = [
  {
    measurement: "cpu_value",
    tags: { host: "web 1", type_instance: "idle" },
    fields: { value: 97.5 },
    time: 1_436_372_292_412_000_000n,
  },
  { measurement: "load", tags: { host: "web 1" }, fields: { shortterm: 0.05 } },
];

function rows(
  sink: InfluxDBSink,
  records: readonly Record<string, unknown>[],
): PreparedRow<string>[] {
  return records.map((record) => {
    const result = sink.prepare(record, ORIGIN);
    if (!result.ok) throw new Error(`Cannot prepare: ${result.rejection.error}`);
    return { row: result.row, bytes: result.bytes, origin: ORIGIN };
  });
}

/** What a promise rejects with; fails when it resolves. */
function failureOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => Promise.reject(new Error("Expected a rejection, got a result")),
    (error: unknown) => error instanceof Error ? error : new Error(String(error)),
  );
}

/** Whether `connect()` gave up for good (the connect rule: waiting cannot help). */
function isFatal(error: Error): boolean {
  return error instanceof SinkWriteError && error.action === "fatal";
}

async function writeError(
  sink: InfluxDBSink,
  batch: PreparedRow<string>[],
): Promise<SinkWriteError> {
  const error = await failureOf(sink.write(batch));
  assert(error instanceof SinkWriteError, `a SinkWriteError, got ${error.message}`);
  return error;
}

Deno.test("InfluxDBSink.write() posts the lines to /write with db, precision, basic auth and gzip (API 1)", async () => {
  await withInfluxDB(noContent, {}, async ({ seen, sink }) => {
    const batch = rows(sink, POINTS);
    assertEquals(await sink.write(batch), { rejected: [], retry: [] });
    assertStrictEquals(seen.length, 1);
    const [request] = seen;
    assertStrictEquals(request!.method, "POST");
    assertStrictEquals(request!.path, "/write");
    assertEquals(request!.query, { db: "metrics", precision: "s" });
    assertStrictEquals(request!.headers.get("authorization"), `Basic ${btoa("root:root")}`);
    assertStrictEquals(request!.headers.get("content-encoding"), "gzip");
    assertStrictEquals(request!.headers.get("content-type"), "text/plain; charset=utf-8");
    assertStrictEquals(
      request!.text,
      "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292\n" +
        "load,host=web\\ 1 shortterm=0.05",
    );
    assertStrictEquals(request!.text, sink.encode(batch).join("\n"));
    assertStrictEquals(
      batch.reduce((n, r) => n + r.bytes, 0),
      new TextEncoder().encode(request!.text).length + 1,
      "each row counts its line and its newline",
    );
  });
});

Deno.test("InfluxDBSink.write() sends rp, the 1.x precision spelling, the user's credentials, and no gzip when off", async () => {
  await withInfluxDB(
    noContent,
    {
      INFLUXDB_DBNAME: "col lectd",
      INFLUXDB_RETENTION_POLICY: "two_weeks",
      INFLUXDB_TIME_PRECISION: "us",
      INFLUXDB_USER: "writer",
      INFLUXDB_PASSWORD: "sécret",
      INFLUXDB_GZIP: "NO",
    },
    async ({ seen, sink }) => {
      await sink.write(rows(sink, POINTS.slice(0, 1)));
      const [request] = seen;
      assertEquals(request!.query, { db: "col lectd", rp: "two_weeks", precision: "u" });
      assertStrictEquals(request!.headers.get("content-encoding"), null);
      assertStrictEquals(
        request!.headers.get("authorization"),
        `Basic ${btoa("writer:s\xc3\xa9cret")}`,
      );
      assertStrictEquals(
        request!.text,
        "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292412000",
      );
    },
  );
});

Deno.test("InfluxDBSink.write() posts to /api/v2/write with org, bucket, precision and the token (API 2)", async () => {
  await withInfluxDB(
    noContentV2,
    {
      INFLUXDB_ORG: "acme",
      INFLUXDB_BUCKET: "metrics/autogen",
      INFLUXDB_TOKEN: "t0ken==",
      INFLUXDB_TIME_PRECISION: "ns",
    },
    async ({ seen, sink }) => {
      await sink.connect();
      await sink.write(rows(sink, POINTS.slice(0, 1)));
      assertEquals(seen.map((s) => `${s.method} ${s.path}`), ["GET /ping", "POST /api/v2/write"]);
      const request = seen[1]!;
      assertEquals(request.query, { org: "acme", bucket: "metrics/autogen", precision: "ns" });
      assertStrictEquals(request.headers.get("authorization"), "Token t0ken==");
      assertStrictEquals(
        request.text,
        "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292412000000",
      );
    },
  );
});

Deno.test("InfluxDBSink.write() throws split or retry with the server's message, status and Retry-After", async () => {
  const cases: Array<[Response, string, string, number | undefined, RegExp]> = [
    [
      answer(RECORDED.typeConflict),
      "split",
      "http_400",
      undefined,
      /HTTP 400: partial write: field type conflict: input field "v"/,
    ],
    [
      answer(RECORDED.tooLarge),
      "split",
      "http_413",
      undefined,
      /HTTP 413: Request Entity Too Large$/,
    ],
    [
      answer(RECORDED_V2.partial),
      "split",
      "http_422",
      undefined,
      /HTTP 422: failure writing points/,
    ],
    [
      answer(RECORDED.wrongPassword),
      "retry",
      "http_401",
      undefined,
      /HTTP 401: authorization failed; the server refused the credentials/,
    ],
    [
      answer(RECORDED.mayNotWrite),
      "retry",
      "http_403",
      undefined,
      /HTTP 403: "writer" user is not authorized to write to database "y"; the user or token may not write there/,
    ],
    [
      answer(RECORDED.policyNotFound),
      "retry",
      "http_500",
      undefined,
      /HTTP 500: retention policy not found: autogen; check INFLUXDB_RETENTION_POLICY/,
    ],
    [
      answer([429, '{"code":"too many requests"}'], { "Retry-After": "3" }),
      "retry",
      "http_429",
      3000,
      /HTTP 429/,
    ],
    [answer([503, "busy"], { "Retry-After": "5" }), "retry", "http_503", 5000, /HTTP 503: busy$/],
  ];
  for (const [response, action, errorType, retryAfterMs, message] of cases) {
    await withInfluxDB(() => response.clone(), {}, async ({ sink, url }) => {
      const error = await writeError(sink, rows(sink, POINTS.slice(0, 1)));
      assertEquals(
        [error.action, error.errorType, error.status, error.retryAfterMs],
        [action, errorType, response.status, retryAfterMs],
      );
      assertStrictEquals(
        error.message.startsWith(
          `Cannot write 1 line to InfluxDB at ${url}/write?db=metrics&precision=s: `,
        ),
        true,
        error.message,
      );
      assertMatch(error.message, message);
    });
  }
});

Deno.test("InfluxDBSink.write() logs an error an operator must act on, rate-limited", async () => {
  await withInfluxDB(() => answer(RECORDED.wrongPassword), {}, async ({ sink, logs }) => {
    const batch = rows(sink, POINTS.slice(0, 1));
    for (let i = 0; i < 8; i++) await writeError(sink, batch);
    const errors = logs.filter((l) => l.msg === "InfluxDB refuses writes");
    assertStrictEquals(errors.length, 5);
    assertStrictEquals(errors[0]!.status, 401);
  });
  await withInfluxDB(() => answer(RECORDED.typeConflict), {}, async ({ sink, logs }) => {
    await writeError(sink, rows(sink, POINTS.slice(0, 1)));
    assertEquals(logs, [], "a refused point is the pipeline's to set aside, not an operator's");
  });
});

Deno.test("InfluxDBSink.write() retries on a network failure and a timeout", async () => {
  const { sink } = makeSink({ INFLUXDB_URL: `http://127.0.0.1:${closedPort()}` });
  const refused = await writeError(sink, rows(sink, POINTS.slice(0, 1)));
  assertEquals([refused.action, refused.errorType], ["retry", "network"]);
  assertMatch(
    refused.message,
    /^Cannot write 1 line to InfluxDB at http:\/\/127\.0\.0\.1:\d+\/write/,
  );
  await sink.close();

  const slow = async () => {
    await new Promise((resolve) => setTimeout(resolve, 400));
    return noContent();
  };
  await withInfluxDB(slow, { INFLUXDB_TIMEOUT: "0.1" }, async ({ sink }) => {
    const error = await writeError(sink, rows(sink, POINTS.slice(0, 1)));
    assertEquals([error.action, error.errorType], ["retry", "timeout"]);
    assertMatch(error.message, /INFLUXDB_TIMEOUT sets the limit$/);
  });
});

Deno.test("InfluxDBSink.connect() pings, logs the version and creates the database with a quoted name", async () => {
  await withInfluxDB(
    (seen) => seen.path === "/ping" ? noContent() : answer(RECORDED.createOk),
    { INFLUXDB_DBNAME: 'we"ird db' },
    async ({ seen, sink, logs }) => {
      await sink.connect();
      assertEquals(seen.map((s) => `${s.method} ${s.path}`), ["GET /ping", "POST /query"]);
      assertStrictEquals(seen[0]!.headers.get("authorization"), `Basic ${btoa("root:root")}`);
      assertStrictEquals(seen[1]!.headers.get("content-type"), "application/x-www-form-urlencoded");
      // 1.6.7 created `we"ird db` from this statement.
      assertEquals(
        Object.fromEntries(new URLSearchParams(seen[1]!.text)),
        { q: 'CREATE DATABASE "we\\"ird db"' },
      );
      const connected = logs.find((l) => l.msg === "Connected to InfluxDB");
      assertStrictEquals(connected?.version, "1.6.7~rc0");
      assertStrictEquals(connected?.database, 'we"ird db');
      assert(logs.some((l) => l.msg === "InfluxDB database is ready"));
      assertStrictEquals(await sink.healthcheck(), true);
    },
  );
});

Deno.test("InfluxDBSink.connect() creates nothing with INFLUXDB_CREATE_DATABASE=NO or API 2", async () => {
  for (
    const env of [
      { INFLUXDB_CREATE_DATABASE: "NO" },
      { INFLUXDB_TOKEN: "t", INFLUXDB_ORG: "o", INFLUXDB_BUCKET: "b" },
    ] as Record<string, string>[]
  ) {
    const respond = env.INFLUXDB_TOKEN ? noContentV2 : noContent;
    await withInfluxDB(respond, env, async ({ seen, sink }) => {
      await sink.connect();
      assertEquals(seen.map((s) => s.path), ["/ping"]);
    });
  }
});

Deno.test("InfluxDBSink.connect() lets a user without admin rights through when the database exists", async () => {
  const respond = (seen: SeenRequest) => {
    if (seen.path === "/ping") return noContent();
    const q = new URLSearchParams(seen.text).get("q");
    return q === "SHOW DATABASES"
      ? answer(RECORDED.showDatabasesWriter)
      : answer(RECORDED.createNotAdmin);
  };
  await withInfluxDB(
    respond,
    { INFLUXDB_DBNAME: "x", INFLUXDB_USER: "writer" },
    async ({ seen, sink, logs }) => {
      await sink.connect();
      assertEquals(
        seen.slice(1).map((s) => new URLSearchParams(s.text).get("q")),
        ['CREATE DATABASE "x"', "SHOW DATABASES"],
      );
      const warning = logs.find((l) => l.level === "warn");
      assertStrictEquals(
        warning?.msg,
        "InfluxDB user may not create databases; the database exists, writing to it",
      );
      assertStrictEquals(warning?.user, "writer");
    },
  );
  await withInfluxDB(
    respond,
    { INFLUXDB_DBNAME: "nope", INFLUXDB_USER: "writer" },
    async ({ sink, url }) => {
      const error = await failureOf(sink.connect());
      assert(isFatal(error), "fatal: waiting cannot help");
      assertStrictEquals(
        error.message,
        `InfluxDB at ${url}/query refuses to create database "nope": HTTP 403: ` +
          "error authorizing query: writer not authorized to execute statement 'CREATE DATABASE x', " +
          "requires admin privilege; the database does not exist or the user has no rights on it: " +
          "create it as an admin and grant the user WRITE on it",
      );
    },
  );
});

Deno.test("InfluxDBSink.connect() fails for good on refused credentials and names, and waits for a server that fails", async () => {
  const fatal: Array<[readonly [number, string], string]> = [
    [
      RECORDED.wrongPassword,
      "HTTP 401: authorization failed; check INFLUXDB_USER and INFLUXDB_PASSWORD",
    ],
    [RECORDED.createInvalidName, "invalid name; check INFLUXDB_DBNAME"],
  ];
  for (const [recorded, detail] of fatal) {
    await withInfluxDB(
      (seen) => seen.path === "/ping" ? noContent() : answer(recorded),
      {},
      async ({ sink, url }) => {
        const error = await failureOf(sink.connect());
        assert(isFatal(error), error.message);
        assertStrictEquals(
          error.message,
          `InfluxDB at ${url}/query refuses to create database "metrics": ${detail}`,
        );
      },
    );
  }
  await withInfluxDB(
    (seen) => seen.path === "/ping" ? noContent() : answer([503, "starting"]),
    {},
    async ({ sink, url }) => {
      const error = await failureOf(sink.connect());
      assert(error instanceof SinkWriteError);
      assertEquals([error.action, error.errorType], ["retry", "http_503"]);
      assertStrictEquals(
        error.message,
        `Cannot create InfluxDB database "metrics" at ${url}/query: HTTP 503: starting`,
      );
    },
  );
});

Deno.test("InfluxDBSink.connect() waits for an unreachable or failing server, and refuses API 2 without what the server needs", async () => {
  const { sink } = makeSink({ INFLUXDB_URL: `http://127.0.0.1:${closedPort()}` });
  const down = await failureOf(sink.connect());
  assert(down instanceof SinkWriteError);
  assertEquals([down.action, down.errorType], ["retry", "network"]);
  assertMatch(down.message, /^Cannot connect to InfluxDB at http:\/\/127\.0\.0\.1:\d+\/ping: /);
  assertStrictEquals(await sink.healthcheck(), false);
  await sink.close();

  await withInfluxDB(() => answer([503, ""]), {}, async ({ sink }) => {
    const error = await failureOf(sink.connect());
    assert(error instanceof SinkWriteError);
    assertEquals([error.action, error.errorType], ["retry", "http_503"]);
    assertStrictEquals(await sink.healthcheck(), false);
  });

  await withInfluxDB(
    noContent,
    { INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b" },
    async ({ sink, url }) => {
      const error = await failureOf(sink.connect());
      assert(isFatal(error));
      assertStrictEquals(
        error.message,
        `InfluxDB 1.6.7~rc0 at ${url} has no API version 2 (/api/v2/write came with 1.8); ` +
          "set INFLUXDB_API_VERSION=1 with INFLUXDB_DBNAME",
      );
    },
  );

  const v2 = { INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b" };
  await withInfluxDB(noContentV2, v2, async ({ sink, url }) => {
    const error = await failureOf(sink.connect());
    assert(isFatal(error));
    assertStrictEquals(
      error.message,
      `InfluxDB v2.7.12 at ${url} needs an organisation; set INFLUXDB_ORG ` +
        "(only InfluxDB 3 does without)",
    );
  });
  const v3 = () => new Response(null, { status: 204, headers: { "X-Influxdb-Version": "3.0.2" } });
  await withInfluxDB(v3, v2, async ({ sink }) => {
    await sink.connect();
  });

  await withInfluxDB(() => answer(RECORDED.noApiV2), {}, async ({ sink }) => {
    const error = await failureOf(sink.connect());
    assert(isFatal(error));
    assertMatch(
      error.message,
      /^InfluxDB at .*\/ping answers the ping with HTTP 404: 404 page not found; the server does not serve this path/,
    );
  });
});

Deno.test("InfluxDBSink.write() that finds the database dropped creates it again before the next write", async () => {
  let dropped = true;
  const respond = (seen: SeenRequest) => {
    if (seen.path === "/query") {
      dropped = false;
      return answer(RECORDED.createOk);
    }
    return dropped ? answer(RECORDED.databaseNotFound) : noContent();
  };
  await withInfluxDB(respond, { INFLUXDB_DBNAME: "nodb" }, async ({ seen, sink, logs }) => {
    const batch = rows(sink, POINTS);
    const error = await writeError(sink, batch);
    assertEquals([error.action, error.errorType, error.status], ["retry", "http_404", 404]);
    assertMatch(
      error.message,
      /HTTP 404: database not found: "nodb"; the database does not exist; it is created again before the next write$/,
    );
    assert(logs.some((l) => l.msg === "InfluxDB refuses writes"));
    assertEquals(await sink.write(batch), { rejected: [], retry: [] });
    assertEquals(seen.map((s) => s.path), ["/write", "/query", "/write"]);
    assertStrictEquals(new URLSearchParams(seen[1]!.text).get("q"), 'CREATE DATABASE "nodb"');
    await sink.write(batch);
    assertEquals(seen.map((s) => s.path), ["/write", "/query", "/write", "/write"], "created once");
  });

  await withInfluxDB(
    () => answer(RECORDED.databaseNotFound),
    { INFLUXDB_CREATE_DATABASE: "NO" },
    async ({ seen, sink }) => {
      const batch = rows(sink, POINTS);
      const error = await writeError(sink, batch);
      assertMatch(error.message, /create it, or set INFLUXDB_CREATE_DATABASE=YES$/);
      await writeError(sink, batch);
      assertEquals(seen.map((s) => s.path), ["/write", "/write"]);
    },
  );
});

Deno.test("InfluxDBSink.write() fails with retry when the re-creation fails, and tries it again next time", async () => {
  let n = 0;
  const respond = (seen: SeenRequest) => {
    if (seen.path === "/query") {
      return ++n === 1 ? answer([503, "busy"]) : answer(RECORDED.createOk);
    }
    return n === 0 ? answer(RECORDED.databaseNotFound) : noContent();
  };
  await withInfluxDB(respond, {}, async ({ seen, sink }) => {
    const batch = rows(sink, POINTS);
    await writeError(sink, batch);
    const failed = await writeError(sink, batch);
    assertEquals([failed.action, failed.errorType], ["retry", "http_503"]);
    assertMatch(
      failed.message,
      /^Cannot create InfluxDB database "metrics" at .*: HTTP 503: busy$/,
    );
    assertEquals(await sink.write(batch), { rejected: [], retry: [] });
    assertEquals(seen.map((s) => s.path), ["/write", "/query", "/query", "/write"]);
  });
});

Deno.test("InfluxDBSink over TLS: the certificate is verified with INFLUXDB_CA_FILE, or not at all with a warning", async () => {
  const certs = await makeTestCertificates();
  const server = fakeHttpServer(
    (seen) => seen.path === "/ping" ? noContent() : answer(RECORDED.createOk),
    certs,
  );
  try {
    const insecure = makeSink({ INFLUXDB_URL: server.url });
    await insecure.sink.connect();
    await insecure.sink.close();
    const warning = insecure.logs.find((l) => l.level === "warn");
    assertStrictEquals(warning?.msg, "InfluxDB's TLS certificate is not verified");

    const verified = makeSink({
      INFLUXDB_URL: server.url,
      INFLUXDB_VERIFY_SSL: "YES",
      INFLUXDB_CA_FILE: certs.ca,
    });
    await verified.sink.connect();
    await verified.sink.write(rows(verified.sink, POINTS));
    await verified.sink.close();
    assert(!verified.logs.some((l) => l.level === "warn"));

    const strict = makeSink({ INFLUXDB_URL: server.url, INFLUXDB_VERIFY_SSL: "YES" });
    const error = await failureOf(strict.sink.connect());
    await strict.sink.close();
    assert(isFatal(error), "a certificate that does not verify will not heal");
    assertMatch(error.message, /check INFLUXDB_CA_FILE and INFLUXDB_VERIFY_SSL$/);
    assertEquals(
      server.seen.map((s) => s.path),
      ["/ping", "/query", "/ping", "/query", "/write"],
    );
  } finally {
    await server.close();
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("InfluxDBSink.check() pings and sends an empty write with the credentials, creating nothing", async () => {
  await withInfluxDB(noContent, {}, async ({ seen, sink, url }) => {
    assertStrictEquals(
      await sink.check(),
      `InfluxDB 1.6.7~rc0 at ${url}: database "metrics" takes writes with these credentials`,
    );
    assertEquals(seen.map((s) => `${s.method} ${s.path}`), ["GET /ping", "POST /write"]);
    assertStrictEquals(seen[1]!.text, "");
    assertStrictEquals(seen[1]!.headers.get("authorization"), `Basic ${btoa("root:root")}`);
  });
  // 1.6.7 answers an empty write with 404 when the database does not exist.
  const missing = (s: SeenRequest) =>
    s.path === "/ping"
      ? noContent()
      : answer([404, '{"error":"database not found: \\"metrics\\""}']);
  await withInfluxDB(missing, {}, async ({ seen, sink }) => {
    assertMatch(await sink.check(), /database "metrics" does not exist and will be created$/);
    assertEquals(seen.map((s) => s.path), ["/ping", "/write"], "nothing is created");
  });
  await withInfluxDB(missing, { INFLUXDB_CREATE_DATABASE: "NO" }, async ({ sink }) => {
    const error = await failureOf(sink.check());
    assert(isFatal(error), error.message);
    assertMatch(error.message, /refuses an empty write to database "metrics": HTTP 404/);
  });
  const wrong = (s: SeenRequest) =>
    s.path === "/ping" ? noContent() : answer(RECORDED.wrongPassword);
  await withInfluxDB(wrong, { INFLUXDB_PASSWORD: "wrong" }, async ({ sink }) => {
    const error = await failureOf(sink.check());
    assert(isFatal(error), error.message);
    assertMatch(error.message, /HTTP 401: authorization failed/);
    assert(!error.message.includes("wrong"));
  });
});

Deno.test("InfluxDBSink.check() with API 2 needs the token and the bucket", async () => {
  const env = { INFLUXDB_TOKEN: "t", INFLUXDB_ORG: "o", INFLUXDB_BUCKET: "b" };
  await withInfluxDB(noContentV2, env, async ({ seen, sink, url }) => {
    assertStrictEquals(
      await sink.check(),
      `InfluxDB v2.7.12 at ${url}: bucket "b" takes writes with these credentials`,
    );
    assertStrictEquals(seen[1]!.path, "/api/v2/write");
    assertStrictEquals(seen[1]!.headers.get("authorization"), "Token t");
  });
  for (const recorded of [RECORDED_V2.unauthorized, RECORDED_V2.bucketNotFound]) {
    const respond = (s: SeenRequest) =>
      s.path === "/ping" ? noContentV2() : new Response(recorded[1], {
        status: recorded[0],
        headers: { "X-Influxdb-Version": "v2.7.12" },
      });
    await withInfluxDB(respond, env, async ({ sink }) => {
      const error = await failureOf(sink.check());
      assert(isFatal(error), error.message);
      assertMatch(error.message, new RegExp(`HTTP ${recorded[0]}`));
    });
  }
  const { sink } = makeSink({ INFLUXDB_URL: `http://127.0.0.1:${closedPort()}`, ...env });
  const down = await failureOf(sink.check());
  assert(down instanceof SinkWriteError && down.action === "retry", down.message);
  await sink.close();
});
