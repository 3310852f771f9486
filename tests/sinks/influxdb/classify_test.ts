/**
 * How the InfluxDB sink reads answers, on bodies recorded from InfluxDB
 * 1.6.7 and 2.7.12 (tests/sinks/influxdb/_recorded.ts): writes, InfluxQL
 * statements, failures without an answer, and the server's text.
 *
 * @module
 */

import {
  classifyInfluxDBError,
  classifyInfluxDBQuery,
  classifyInfluxDBResponse,
  databaseNames,
  isDatabaseNotFound,
  queryError,
  queryStatusText,
  serverMessage,
  statusText,
} from "../../../sinks/influxdb/classify.ts";
import { failure } from "../../_verdict.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";
import { RECORDED, RECORDED_V2 } from "./_recorded.ts";

/** The hint for a recorded answer to a write. */
function hint([status, body]: readonly [number, string]): string | undefined {
  return failure(classifyInfluxDBResponse(status, body)).hint;
}

/** An answer as the client returns it. */
function response(
  [status, body]: readonly [number, string],
  headers: Record<string, string> = {},
) {
  return { status, body, headers: new Headers(headers) };
}

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
    assertEquals([outcome.action, failure(outcome).errorType ?? ""], [action, errorType], body);
  }
  assertMatch(
    hint(RECORDED.policyNotFound)!,
    /INFLUXDB_RETENTION_POLICY/,
  );
  assertMatch(hint(RECORDED.noApiV2)!, /INFLUXDB_API_VERSION/);
  assertMatch(hint(RECORDED_V2.bucketNotFound)!, /create it/);
  assertMatch(hint(RECORDED.wrongPassword)!, /INFLUXDB_PASSWORD/);
  assertStrictEquals(hint(RECORDED_V2.noOrg), "set INFLUXDB_ORG");
  assertStrictEquals(hint(RECORDED_V2.orgNotFound), "check INFLUXDB_ORG");
});

Deno.test("classifyInfluxDBResponse() passes on Retry-After, in seconds or as a date", () => {
  const now = Date.UTC(2026, 10, 22, 0, 0, 0);
  const wait = (status: number, header: string | null) =>
    failure(classifyInfluxDBResponse(status, "", header, now)).retryAfterMs;
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

Deno.test("isDatabaseNotFound() tells a dropped 1.x database from a missing bucket", () => {
  assertStrictEquals(isDatabaseNotFound(...RECORDED.databaseNotFound), true);
  assertStrictEquals(isDatabaseNotFound(...RECORDED_V2.bucketNotFound), false);
  assertStrictEquals(isDatabaseNotFound(...RECORDED.noApiV2), false);
});

Deno.test("classifyInfluxDBQuery() accepts a done statement, gives up on a refused one and retries the rest", () => {
  assertEquals(classifyInfluxDBQuery(...RECORDED.createOk), { action: "ok" });
  assertEquals(classifyInfluxDBQuery(...RECORDED.createInvalidName), {
    action: "fatal",
    errorType: "http_200",
    status: 200,
    hint: "check INFLUXDB_DBNAME",
  });
  const notAdmin = classifyInfluxDBQuery(...RECORDED.createNotAdmin);
  assertEquals([notAdmin.action, failure(notAdmin).errorType], ["retry", "http_403"]);
  assertMatch(failure(notAdmin).hint!, /create it as an admin and grant the user WRITE on it$/);
  assertStrictEquals(
    failure(classifyInfluxDBQuery(...RECORDED.wrongPassword)).hint,
    "check INFLUXDB_USER and INFLUXDB_PASSWORD",
  );
  assertEquals(classifyInfluxDBQuery(503, "starting"), {
    action: "retry",
    errorType: "http_503",
    status: 503,
  });
});

Deno.test("classifyInfluxDBError() retries every failure without an answer, naming the setting to check", () => {
  const timeout = new DOMException("Signal timed out.", "TimeoutError");
  assertEquals(classifyInfluxDBError(timeout), {
    action: "retry",
    errorType: "timeout",
    hint: "INFLUXDB_TIMEOUT sets the limit",
  });
  const tls = new TypeError("fetch failed", {
    cause: new Error("invalid peer certificate: UnknownIssuer"),
  });
  assertEquals(classifyInfluxDBError(tls), {
    action: "retry",
    errorType: "tls",
    hint: "check INFLUXDB_CA_FILE and INFLUXDB_VERIFY_SSL",
  });
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    code: "ECONNREFUSED",
  });
  assertEquals(classifyInfluxDBError(refused), { action: "retry", errorType: "network" });
});

Deno.test("statusText() and queryStatusText() give the status, the server's message, a redirect and the hint", () => {
  assertStrictEquals(
    statusText(response(RECORDED.databaseNotFound), "the database does not exist"),
    'HTTP 404: database not found: "nodb"; the database does not exist',
  );
  assertStrictEquals(
    statusText(response([307, ""], { Location: "https://influx/write" })),
    "HTTP 307 (Location: https://influx/write)",
  );
  assertStrictEquals(
    queryStatusText(response(RECORDED.createInvalidName), "check INFLUXDB_DBNAME"),
    "invalid name; check INFLUXDB_DBNAME",
  );
  assertStrictEquals(queryStatusText(response([503, "starting"])), "HTTP 503: starting");
  assert(!statusText(response([204, ""])).includes(":"));
});
