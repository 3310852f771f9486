/**
 * The InfluxDB sink against an in-process fake server (`Deno.serve({ port: 0 })`)
 * that answers with bodies recorded from InfluxDB 1.6.7: the exact requests
 * for API 1 and 2, gzip, the classification of every answer, the database
 * created at start and again after it was dropped, TLS, and the three record
 * kinds it converts (points, raw lines, pmacct flows). What the real server
 * stores is tested in tests/integration/.
 *
 * @module
 */

import { makeTestCertificates } from "../../_tls.ts";
import { Logger } from "../../../lib/log.ts";
import type { RecordKind } from "../../../lib/record.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import {
  classifyInfluxDBResponse,
  databaseNames,
  queryError,
  serverMessage,
} from "../../../sinks/influxdb/client.ts";
import { INFLUXDB_VARIABLES, parseInfluxDBConfig } from "../../../sinks/influxdb/config.ts";
import { InfluxDBSink } from "../../../sinks/influxdb/mod.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { SinkWriteError } from "../../../lib/sink.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

/** What InfluxDB 1.6.7 answered, status and body, as recorded with curl. */
const RECORDED = {
  typeConflict: [
    400,
    '{"error":"partial write: field type conflict: input field \\"v\\" on measurement \\"m\\" is type string, already exists as type float dropped=1"}',
  ],
  typeConflictInBody: [400, '{"error":"field type conflict"}'],
  timeField: [
    400,
    '{"error":"partial write: invalid field name: input field \\"time\\" on measurement \\"m\\" is invalid dropped=1"}',
  ],
  beyondRetention: [400, '{"error":"partial write: points beyond retention policy dropped=1"}'],
  maxValuesPerTag: [
    400,
    '{"error":"partial write: max-values-per-tag limit exceeded (3/3): measurement=\\"card\\" tag=\\"ip\\" value=\\"4\\" dropped=1"}',
  ],
  maxSeries: [
    400,
    '{"error":"partial write: max-series-per-database limit exceeded: (6) dropped=5"}',
  ],
  unparsable: [400, '{"error":"unable to parse \'garbage\': missing fields"}'],
  partialUnparsable: [
    400,
    '{"error":"partial write: unable to parse \'garbage\': missing fields dropped=0"}',
  ],
  badGzip: [400, '{"error":"unexpected EOF"}'],
  tooLarge: [413, '{"error":"Request Entity Too Large"}'],
  databaseNotFound: [404, '{"error":"database not found: \\"nodb\\""}'],
  noCredentials: [401, '{"error":"unable to parse authentication credentials"}'],
  wrongPassword: [401, '{"error":"authorization failed"}'],
  mayNotWrite: [
    403,
    '{"error":"\\"writer\\" user is not authorized to write to database \\"y\\""}',
  ],
  policyNotFound: [500, '{"error":"retention policy not found: autogen"}'],
  noApiV2: [404, "404 page not found\n"],
  createOk: [200, '{"results":[{"statement_id":0}]}'],
  createInvalidName: [200, '{"results":[{"statement_id":0,"error":"invalid name"}]}'],
  createNotAdmin: [
    403,
    '{"error":"error authorizing query: writer not authorized to execute statement \'CREATE DATABASE x\', requires admin privilege"}',
  ],
  showDatabasesWriter: [
    200,
    '{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["x"]]}]}]}',
  ],
  showDatabasesNone: [
    200,
    '{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"]}]}]}',
  ],
} as const satisfies Record<string, readonly [number, string]>;

/** What InfluxDB 2.7.12 answered to /api/v2/write, as recorded with curl. */
const RECORDED_V2 = {
  partial: [
    422,
    '{"code":"unprocessable entity","message":"failure writing points to database: partial write: field type conflict: input field \\"v\\" on measurement \\"m\\" is type string, already exists as type float dropped=1"}',
  ],
  unparsable: [400, '{"code":"invalid","message":"unable to parse \'garbage\': missing fields"}'],
  reservedTag: [
    400,
    '{"code":"invalid","message":"unable to parse \'m,_field=x v=1 1700000004\': cannot use reserved tag key \\"_field\\""}',
  ],
  noOrg: [400, '{"code":"invalid","message":"Please provide either orgID or org"}'],
  unauthorized: [401, '{"code":"unauthorized","message":"unauthorized access"}'],
  bucketNotFound: [404, '{"code":"not found","message":"bucket \\"nob\\" not found"}'],
  orgNotFound: [404, '{"code":"not found","message":"organization name \\"noorg\\" not found"}'],
} as const satisfies Record<string, readonly [number, string]>;

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

/** A request as the fake server saw it, its body decompressed. */
interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Headers;
  body: string;
}

/** Starts a fake InfluxDB answering `respond` for the n-th request (from 1). */
function fakeInfluxDB(
  respond: (seen: Seen, n: number) => Response | Promise<Response>,
  tls?: { cert: string; key: string },
) {
  const seen: Seen[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, ...tls },
    async (request) => {
      const url = new URL(request.url);
      let stream = request.body;
      if (stream !== null && request.headers.get("content-encoding") === "gzip") {
        stream = stream.pipeThrough(new DecompressionStream("gzip"));
      }
      const entry = {
        method: request.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: request.headers,
        body: stream === null ? "" : await new Response(stream).text(),
      };
      seen.push(entry);
      return await respond(entry, seen.length);
    },
  );
  const url = `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`;
  return { url, seen, close: () => server.shutdown() };
}

function makeSink(
  env: Record<string, string>,
  input: RecordKind = "points",
  zone = "UTC",
): { sink: InfluxDBSink; logs: Array<Record<string, unknown>> } {
  const reader = new VarReader(env, INFLUXDB_VARIABLES);
  const { config } = parseInfluxDBConfig(reader);
  assertEquals(reader.problems, []);
  const logs: Array<Record<string, unknown>> = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  return { sink: new InfluxDBSink(config, { time: new TimeReader(zone), log, input }), logs };
}

/** Runs `body` with a fake server and a sink pointed at it, then closes both. */
async function withInfluxDB(
  respond: (seen: Seen, n: number) => Response | Promise<Response>,
  env: Record<string, string>,
  body: (t: {
    seen: Seen[];
    sink: InfluxDBSink;
    logs: Array<Record<string, unknown>>;
    url: string;
  }) => Promise<void>,
  input: RecordKind = "points",
): Promise<void> {
  const server = fakeInfluxDB(respond);
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

function rejection(sink: InfluxDBSink, record: Record<string, unknown>): string {
  const result = sink.prepare(record, ORIGIN);
  if (result.ok) throw new Error(`Expected a rejection, got ${result.row}`);
  assertStrictEquals(result.rejection.reason, "convert");
  return result.rejection.error;
}

/** What a promise rejects with; fails when it resolves. */
function failureOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => Promise.reject(new Error("Expected a rejection, got a result")),
    (error: unknown) => error instanceof Error ? error : new Error(String(error)),
  );
}

async function writeError(
  sink: InfluxDBSink,
  batch: PreparedRow<string>[],
): Promise<SinkWriteError> {
  const error = await failureOf(sink.write(batch));
  assert(error instanceof SinkWriteError, `a SinkWriteError, got ${error.message}`);
  return error;
}

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("write() posts the lines to /write with db, precision, basic auth and gzip (API 1)", async () => {
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
      request!.body,
      "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292\n" +
        "load,host=web\\ 1 shortterm=0.05",
    );
    assertStrictEquals(request!.body, sink.encode(batch).join("\n"));
    assertStrictEquals(
      batch.reduce((n, r) => n + r.bytes, 0),
      new TextEncoder().encode(request!.body).length + 1,
      "each row counts its line and its newline",
    );
  });
});

Deno.test("write() sends rp, the 1.x precision spelling, the user's credentials, and no gzip when off", async () => {
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
        request!.body,
        "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292412000",
      );
    },
  );
});

Deno.test("write() posts to /api/v2/write with org, bucket, precision and the token (API 2)", async () => {
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
        request.body,
        "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292412000000",
      );
    },
  );
});

Deno.test("classifyInfluxDBResponse() splits on refused points and retries the rest (recorded from 1.6.7 and 2.7.12)", () => {
  const cases: Array<[readonly [number, string], string, string]> = [
    [[204, ""], "ok", ""],
    [RECORDED.typeConflict, "split", "http_400"],
    [RECORDED.typeConflictInBody, "split", "http_400"],
    [RECORDED.timeField, "split", "http_400"],
    [RECORDED.beyondRetention, "split", "http_400"],
    [RECORDED.maxValuesPerTag, "split", "http_400"],
    [RECORDED.maxSeries, "split", "http_400"],
    [RECORDED.unparsable, "split", "http_400"],
    [RECORDED.partialUnparsable, "split", "http_400"],
    [RECORDED.badGzip, "split", "http_400"],
    [RECORDED.tooLarge, "split", "http_413"],
    [RECORDED.databaseNotFound, "retry", "http_404"],
    [RECORDED.noCredentials, "retry", "http_401"],
    [RECORDED.wrongPassword, "retry", "http_401"],
    [RECORDED.mayNotWrite, "retry", "http_403"],
    [RECORDED.policyNotFound, "retry", "http_500"],
    [RECORDED.noApiV2, "retry", "http_404"],
    [RECORDED_V2.partial, "split", "http_422"],
    [RECORDED_V2.unparsable, "split", "http_400"],
    [RECORDED_V2.reservedTag, "split", "http_400"],
    [RECORDED_V2.noOrg, "retry", "http_400"],
    [RECORDED_V2.unauthorized, "retry", "http_401"],
    [RECORDED_V2.bucketNotFound, "retry", "http_404"],
    [RECORDED_V2.orgNotFound, "retry", "http_404"],
    [[429, ""], "retry", "http_429"],
    [[503, ""], "retry", "http_503"],
    [[307, ""], "retry", "http_307"],
  ];
  for (const [[status, body], action, errorType] of cases) {
    const outcome = classifyInfluxDBResponse(status, body);
    assertEquals([outcome.action, outcome.errorType], [action, errorType], body);
  }
  assertStrictEquals(classifyInfluxDBResponse(...RECORDED.databaseNotFound).databaseNotFound, true);
  assertStrictEquals(
    classifyInfluxDBResponse(...RECORDED_V2.bucketNotFound).databaseNotFound,
    undefined,
  );
  assertMatch(
    classifyInfluxDBResponse(...RECORDED.policyNotFound).hint!,
    /INFLUXDB_RETENTION_POLICY/,
  );
  assertMatch(classifyInfluxDBResponse(...RECORDED.noApiV2).hint!, /INFLUXDB_API_VERSION/);
  assertMatch(classifyInfluxDBResponse(...RECORDED_V2.bucketNotFound).hint!, /create it/);
  assertMatch(classifyInfluxDBResponse(...RECORDED.wrongPassword).hint!, /INFLUXDB_PASSWORD/);
  assertStrictEquals(classifyInfluxDBResponse(...RECORDED_V2.noOrg).hint, "set INFLUXDB_ORG");
  assertStrictEquals(
    classifyInfluxDBResponse(...RECORDED_V2.orgNotFound).hint,
    "check INFLUXDB_ORG",
  );
});

Deno.test("classifyInfluxDBResponse() passes on Retry-After, in seconds or as a date", () => {
  const now = Date.UTC(2026, 10, 22, 0, 0, 0);
  const wait = (status: number, header: string | null) =>
    classifyInfluxDBResponse(status, "", header, now).retryAfterMs;
  assertEquals(
    [wait(429, "7"), wait(503, "Sun, 22 Nov 2026 00:00:30 GMT"), wait(503, null)],
    [7000, 30_000, undefined],
  );
});

Deno.test("serverMessage(), queryError() and databaseNames() read 1.x and 2.x answers", () => {
  assertStrictEquals(
    serverMessage(RECORDED.databaseNotFound[1]),
    'database not found: "nodb"',
  );
  assertStrictEquals(serverMessage(RECORDED_V2.unauthorized[1]), "unauthorized access");
  assertStrictEquals(serverMessage(RECORDED.noApiV2[1]), "404 page not found");
  assertStrictEquals(serverMessage(""), "");
  assertStrictEquals(serverMessage("x".repeat(600)), `${"x".repeat(500)}...`);
  assertStrictEquals(queryError(RECORDED.createOk[1]), undefined);
  assertStrictEquals(queryError(RECORDED.createInvalidName[1]), "invalid name");
  assertMatch(queryError(RECORDED.createNotAdmin[1])!, /requires admin privilege/);
  assertEquals(databaseNames(RECORDED.showDatabasesWriter[1]), ["x"]);
  assertEquals(databaseNames(RECORDED.showDatabasesNone[1]), []);
  assertEquals(databaseNames("not json"), []);
});

Deno.test("write() throws split or retry with the server's message, status and Retry-After", async () => {
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

Deno.test("write() logs an error an operator must act on, rate-limited", async () => {
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

Deno.test("write() retries on a network failure and a timeout", async () => {
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

Deno.test("connect() pings, logs the version and creates the database with a quoted name", async () => {
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
        Object.fromEntries(new URLSearchParams(seen[1]!.body)),
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

Deno.test("connect() creates nothing with INFLUXDB_CREATE_DATABASE=NO or API 2", async () => {
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

Deno.test("connect() lets a user without admin rights through when the database exists", async () => {
  const respond = (seen: Seen) => {
    if (seen.path === "/ping") return noContent();
    const q = new URLSearchParams(seen.body).get("q");
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
        seen.slice(1).map((s) => new URLSearchParams(s.body).get("q")),
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
      assert(!(error instanceof SinkWriteError), "fatal: waiting cannot help");
      assertStrictEquals(
        error.message,
        `Cannot start: InfluxDB at ${url}/query refuses to create database "nope": HTTP 403: ` +
          "error authorizing query: writer not authorized to execute statement 'CREATE DATABASE x', " +
          "requires admin privilege; the database does not exist or the user has no rights on it: " +
          "create it as an admin and grant the user WRITE on it",
      );
    },
  );
});

Deno.test("connect() fails for good on refused credentials and names, and waits for a server that fails", async () => {
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
        assert(!(error instanceof SinkWriteError), error.message);
        assertStrictEquals(
          error.message,
          `Cannot start: InfluxDB at ${url}/query refuses to create database "metrics": ${detail}`,
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

Deno.test("connect() waits for an unreachable or failing server, and refuses API 2 without what the server needs", async () => {
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
      assert(!(error instanceof SinkWriteError));
      assertStrictEquals(
        error.message,
        `Cannot start: InfluxDB 1.6.7~rc0 at ${url} has no API version 2 (/api/v2/write came with 1.8); ` +
          "set INFLUXDB_API_VERSION=1 with INFLUXDB_DBNAME",
      );
    },
  );

  const v2 = { INFLUXDB_TOKEN: "t", INFLUXDB_BUCKET: "b" };
  await withInfluxDB(noContentV2, v2, async ({ sink, url }) => {
    const error = await failureOf(sink.connect());
    assert(!(error instanceof SinkWriteError));
    assertStrictEquals(
      error.message,
      `Cannot start: InfluxDB v2.7.12 at ${url} needs an organisation; set INFLUXDB_ORG ` +
        "(only InfluxDB 3 does without)",
    );
  });
  const v3 = () => new Response(null, { status: 204, headers: { "X-Influxdb-Version": "3.0.2" } });
  await withInfluxDB(v3, v2, async ({ sink }) => {
    await sink.connect();
  });

  await withInfluxDB(() => answer(RECORDED.noApiV2), {}, async ({ sink }) => {
    const error = await failureOf(sink.connect());
    assert(!(error instanceof SinkWriteError));
    assertMatch(
      error.message,
      /^Cannot start: InfluxDB at .*\/ping answers the ping with HTTP 404: 404 page not found; the server does not serve this path/,
    );
  });
});

Deno.test("a write that finds the database dropped creates it again before the next write", async () => {
  let dropped = true;
  const respond = (seen: Seen) => {
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
    assertStrictEquals(new URLSearchParams(seen[1]!.body).get("q"), 'CREATE DATABASE "nodb"');
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

Deno.test("a failed re-creation fails the write with retry and is tried again next time", async () => {
  let n = 0;
  const respond = (seen: Seen) => {
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

Deno.test("over TLS the certificate is verified with INFLUXDB_CA_FILE, or not at all with a warning", async () => {
  const certs = await makeTestCertificates();
  const server = fakeInfluxDB(
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
    assert(!(error instanceof SinkWriteError), "a certificate that does not verify will not heal");
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

Deno.test("prepare() encodes points and passes raw lines unchanged", () => {
  const points = makeSink({}, "points").sink;
  const prepared = points.prepare(POINTS[0]!, ORIGIN);
  assertEquals(prepared, {
    ok: true,
    row: "cpu_value,host=web\\ 1,type_instance=idle value=97.5 1436372292",
    bytes: 63,
  });
  assertMatch(
    rejection(points, { measurement: "m", tags: {}, fields: { v: NaN } }),
    /field "v" is NaN/,
  );
  assertMatch(rejection(points, { line: "m v=1" }), /a point needs a measurement name/);

  const lines = makeSink({}, "lines").sink;
  const line = "weather,location=us-midwest temperature=82 1465839830100400200";
  assertEquals(lines.prepare({ line }, ORIGIN), { ok: true, row: line, bytes: line.length + 1 });
  assertEquals(lines.prepare({ line: "€ v=1" }, ORIGIN), { ok: true, row: "€ v=1", bytes: 8 });
  assertMatch(rejection(lines, { line: "" }), /a line must not be empty/);
  assertMatch(rejection(lines, { line: "a v=1\nb v=2" }), /a line must not contain a newline/);
});

/** A pmacct record (tests/testdata/samples/pmacctd-print-json.jsonl) with some extra keys. */
const FLOW = {
  event_type: "purge",
  writer_id: "default_kafka/1",
  peer_ip_src: "",
  ip_src: "10.0.0.1",
  ip_dst: "192.0.2.1",
  port_src: 54818,
  port_dst: 8123,
  ip_proto: "tcp",
  tos: 0,
  tag: null,
  timestamp_start: "2026-11-21 23:25:00.123456",
  stamp_inserted: "2026-11-21 23:25:00",
  stamp_updated: "2026-11-21 23:27:47",
  packets: 6,
  bytes: 402,
};

Deno.test("prepare() turns a flow record into a point: counters as integers, other keys as tags, at stamp_updated", () => {
  const { sink } = makeSink({}, "flows");
  // The per-purge fields, the counters, the time field, null and empty values are not tags.
  const row = "pmacct,ip_dst=192.0.2.1,ip_proto=tcp,ip_src=10.0.0.1,port_dst=8123," +
    "port_src=54818,tos=0 bytes=402i,packets=6i 1795303667";
  assertEquals(sink.prepare(FLOW, ORIGIN), { ok: true, row, bytes: row.length + 1 });
});

Deno.test("prepare() converts flows with the configured measurement, fields, tags, time field, zone and precision", () => {
  const { sink } = makeSink(
    {
      INFLUXDB_MEASUREMENT: "flows v4",
      INFLUXDB_FIELDS: "bytes,flows,rate,up",
      INFLUXDB_TAGS: "ip_*,port_dst,missing",
      INFLUXDB_AVOID_TAGS: "ip_proto",
      INFLUXDB_TIMESTAMP_FIELD: "timestamp_start",
      INFLUXDB_TIME_PRECISION: "ms",
    },
    "flows",
    "Europe/Berlin",
  );
  const result = sink.prepare({ ...FLOW, rate: 0.5, up: true, flows: 2 ** 53 + 2 }, ORIGIN);
  assert(result.ok);
  // 23:25:00.123456 in Berlin (UTC+1) is 22:25:00.123 UTC.
  assertStrictEquals(
    result.row,
    "flows\\ v4,ip_dst=192.0.2.1,ip_src=10.0.0.1,port_dst=8123 " +
      "bytes=402i,flows=9007199254740994i,rate=0.5,up=true 1795299900123",
  );
});

Deno.test("prepare() sets aside flow records without counters or a readable time", () => {
  const { sink } = makeSink({}, "flows");
  const { bytes: _b, packets: _p, ...noCounters } = FLOW;
  const cases: Array<[Record<string, unknown>, string]> = [
    [
      noCounters,
      "Cannot write to InfluxDB: the record has none of the fields bytes, packets, flows (INFLUXDB_FIELDS)",
    ],
    [
      { ...FLOW, bytes: null, packets: null },
      "Cannot write to InfluxDB: the record has none of the fields bytes, packets, flows (INFLUXDB_FIELDS)",
    ],
    [
      (({ stamp_updated: _, ...rest }) => rest)(FLOW),
      'Cannot write to InfluxDB: the record has no field "stamp_updated" (INFLUXDB_TIMESTAMP_FIELD)',
    ],
    [
      { ...FLOW, stamp_updated: "yesterday" },
      'Cannot write to InfluxDB: field "stamp_updated" is not a time: Cannot read timestamp: "yesterday" is not a pmacct time',
    ],
    [
      { ...FLOW, bytes: { v: 1 } },
      'Cannot write to InfluxDB: field "bytes" (INFLUXDB_FIELDS) is {"v":1}, not a number, string or boolean',
    ],
    [
      { ...FLOW, bytes: 1e19 },
      'Cannot write to InfluxDB: field "bytes" is 10000000000000000000, outside the 64-bit integers InfluxDB stores, got "10000000000000000000"',
    ],
    [
      { ...FLOW, ip_src: "bad\\" },
      'Cannot write to InfluxDB: a tag value must not have a backslash at its end or before , = or space (InfluxDB would store it changed or refuse the line) (tag "ip_src"), got "bad\\\\"',
    ],
  ];
  for (const [record, message] of cases) assertStrictEquals(rejection(sink, record), message);
  const { packets: _, ...bytesOnly } = FLOW;
  const kept = sink.prepare(bytesOnly, ORIGIN);
  assert(kept.ok && kept.row.includes(" bytes=402i "), "a missing counter is left out");
});
