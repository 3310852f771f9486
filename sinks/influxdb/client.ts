/**
 * Talking to InfluxDB over HTTP: the write, ping and query requests, and the
 * classification of an answer into "ok", "retry" or "split". The transport
 * (`fetch`, or `node:https` when `INFLUXDB_VERIFY_SSL=NO`), gzip, `Retry-After`
 * and the reading of network failures are the VictoriaMetrics sink's.
 *
 * Requests:
 * - API 1: `POST /write?db=<db>[&rp=<rp>]&precision=<s|ms|u|n>`, basic
 *   authentication with `INFLUXDB_USER`/`INFLUXDB_PASSWORD` (a server without
 *   `auth-enabled` ignores it). 1.6 reads `precision=us` and `ns` as
 *   nanoseconds silently, so `u` and `n` are sent.
 * - API 2: `POST /api/v2/write?org=<org>&bucket=<bucket>&precision=<s|ms|us|ns>`,
 *   `Authorization: Token <token>`.
 * - `GET /ping` answers 204 with the version in `X-Influxdb-Version`.
 * - API 1: `POST /query` with `q=CREATE DATABASE "<db>"`: 200 also when it
 *   exists; a statement the server refuses is 200 with
 *   `{"results":[{"statement_id":0,"error":"invalid name"}]}`.
 *
 * Answers recorded from InfluxDB 1.6.7 (`X-Influxdb-Version: 1.6.7~rc0`):
 * - 204: written, also for an empty body.
 * - 400 `{"error":"partial write: ... dropped=N"}`: the other points of the
 *   body were written (field type conflicts, `time` as a key, points beyond
 *   the retention policy, `max-values-per-tag limit exceeded`,
 *   `max-series-per-database limit exceeded`, and lines it cannot parse);
 *   400 `{"error":"unable to parse '...': ..."}` when nothing could be read.
 *   Both split the batch: a rewrite of the good points is harmless, since a
 *   point with the same measurement, tags and time replaces the stored one.
 * - 413 `{"error":"Request Entity Too Large"}` over `max-body-size`
 *   (25000000 bytes, counted before decompression): split.
 * - 404 `{"error":"database not found: \"x\""}`: retry (and create it again).
 * - 401 `{"error":"authorization failed"}` (wrong user or password) and
 *   `{"error":"unable to parse authentication credentials"}` (none);
 *   403 `{"error":"\"writer\" user is not authorized to write to database \"y\""}`:
 *   retry until an operator fixes the credentials.
 * - 500 `{"error":"retention policy not found: autogen"}`: retry, with a hint.
 * - `/api/v2/write` is `404 page not found` (text) before 1.8.
 *
 * Answers recorded from InfluxDB 2.7.12 (`X-Influxdb-Version: v2.7.12`),
 * `{"code":"...","message":"..."}`:
 * - 204: written.
 * - 422 `unprocessable entity` `failure writing points to database: partial
 *   write: field type conflict: ... dropped=1`: the other points written; split.
 * - 400 `invalid` `unable to parse 'garbage': missing fields`: nothing
 *   written (also for reserved tag keys `_measurement`, `_field`, `time`); split.
 *   But 400 `Please provide either orgID or org` is the configuration's
 *   fault: retried with a hint.
 * - 404 `bucket "nob" not found`, `organization name "noorg" not found`,
 *   401 `unauthorized access`: retried with a hint.
 * - No body limit by default (26 MB was written).
 * InfluxDB 3 was not at hand; its documentation describes 400 for refused
 * points (the others written), which splits the same way.
 *
 * @module
 */

import {
  basicAuthorization,
  gzip,
  type HttpRequest,
  type HttpResponse,
  parseRetryAfter,
} from "../../lib/http.ts";
import type { InfluxDBAuth, InfluxDBConfig } from "./config.ts";

const encoder = new TextEncoder();

/** What an answer or a failure should lead to (until this sink reads answers into a Verdict). */
type LegacyOutcome = {
  action: "ok" | "retry" | "split";
  errorType: string;
  status?: number;
  retryAfterMs?: number;
  hint?: string;
};

/**
 * The value of the `Authorization` header.
 *
 * @param auth The configured credentials.
 * @returns `Basic base64(user:password)` (1.x) or `Token <token>` (2.x, 3.x).
 */
export function authorizationHeader(auth: InfluxDBAuth): string {
  if (auth.kind === "token") return `Token ${auth.token}`;
  return basicAuthorization(auth.username, auth.password);
}

function headers(auth: InfluxDBAuth): Record<string, string> {
  return { "User-Agent": "sluice", "Authorization": authorizationHeader(auth) };
}

/**
 * Builds the write request of some lines, joined with newlines, gzipped when configured.
 *
 * @param config The resolved configuration.
 * @param lines Line protocol lines, without newlines.
 * @returns The request.
 */
export async function writeRequest(
  config: Pick<InfluxDBConfig, "writeUrl" | "auth" | "gzip" | "requestTimeoutMs">,
  lines: readonly string[],
): Promise<HttpRequest> {
  let body: Uint8Array = encoder.encode(lines.join("\n"));
  const request: HttpRequest = {
    method: "POST",
    url: config.writeUrl,
    headers: { ...headers(config.auth), "Content-Type": "text/plain; charset=utf-8" },
    body,
    timeoutMs: config.requestTimeoutMs,
  };
  if (config.gzip && body.length > 0) {
    body = await gzip(body);
    request.body = body;
    request.headers["Content-Encoding"] = "gzip";
  }
  return request;
}

/**
 * Builds the ping request (`GET /ping`), credentials included for servers
 * that require them there (`ping-auth-enabled`).
 *
 * @param config The resolved configuration.
 * @returns The request.
 */
export function pingRequest(
  config: Pick<InfluxDBConfig, "pingUrl" | "auth" | "requestTimeoutMs">,
): HttpRequest {
  return {
    method: "GET",
    url: config.pingUrl,
    headers: headers(config.auth),
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Builds an InfluxQL request (`POST /query`, form encoded).
 *
 * @param config The resolved configuration.
 * @param statement The statement, e.g. `CREATE DATABASE "metrics"`.
 * @returns The request.
 */
export function queryRequest(
  config: Pick<InfluxDBConfig, "queryUrl" | "auth" | "requestTimeoutMs">,
  statement: string,
): HttpRequest {
  return {
    method: "POST",
    url: config.queryUrl,
    headers: { ...headers(config.auth), "Content-Type": "application/x-www-form-urlencoded" },
    body: encoder.encode(new URLSearchParams({ q: statement }).toString()),
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Quotes an InfluxQL identifier: `"` and `\` get a backslash.
 *
 * @param name The name, e.g. a database.
 * @returns E.g. `"my \"db\""`.
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The statement that creates a database (idempotent in 1.x).
 *
 * @param database The name.
 * @returns `CREATE DATABASE "<name>"`.
 */
export function createDatabaseStatement(database: string): string {
  return `CREATE DATABASE ${quoteIdentifier(database)}`;
}

/**
 * The server's message in an error answer: `error` (1.x), `message` (2.x,
 * 3.x), or the text itself, on one line.
 *
 * @param body The response body.
 * @returns The message, at most 500 characters; `""` for an empty body.
 */
export function serverMessage(body: string): string {
  let text = body;
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    if (typeof parsed?.error === "string") text = parsed.error;
    else if (typeof parsed?.message === "string") text = parsed.message;
  } catch {
    // Not JSON: the text itself (e.g. `404 page not found`).
  }
  text = text.replace(/\s+/g, " ").trim();
  return text.length > 500 ? `${text.slice(0, 500)}...` : text;
}

/**
 * The first error of an InfluxQL answer: `{"error": ...}` for the request,
 * `{"results": [{"error": ...}]}` for a statement.
 *
 * @param body The response body.
 * @returns The error, or `undefined` when there is none.
 */
export function queryError(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body.trim() === "" ? undefined : serverMessage(body);
  }
  const answer = parsed as { error?: unknown; results?: Array<{ error?: unknown }> };
  if (typeof answer?.error === "string") return answer.error;
  for (const result of Array.isArray(answer?.results) ? answer.results : []) {
    if (typeof result?.error === "string") return result.error;
  }
  return undefined;
}

/**
 * The database names in an answer to `SHOW DATABASES` (only those the user
 * may read or write, for a user without admin rights).
 *
 * @param body The response body.
 * @returns The names; empty when there are none or the answer is not one.
 */
export function databaseNames(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as {
      results?: Array<{ series?: Array<{ values?: unknown[][] }> }>;
    };
    return (parsed.results?.[0]?.series?.[0]?.values ?? []).map((row) => String(row[0]));
  } catch {
    return [];
  }
}

/** What an answer to a write should lead to: the VictoriaMetrics sink's outcome, and more. */
export interface InfluxDBOutcome extends LegacyOutcome {
  /** The 1.x database does not exist (`database not found`). */
  databaseNotFound?: boolean;
}

/**
 * Classifies an answer to a write. 2xx is written. 400 (lines it cannot
 * read or points it refused, the others written), 413 (too large) and 422
 * (API 2: points refused) split the batch, so a bad line is isolated and set
 * aside with the server's message. Everything else is retried unchanged:
 * 429 and 5xx honouring `Retry-After`; 401/403 (credentials or rights:
 * consumption pauses until an operator fixes them); 404 (database or bucket
 * missing, or a path the server does not serve); redirects.
 *
 * @param status The HTTP status.
 * @param body The response text.
 * @param retryAfter The `Retry-After` header, if any.
 * @param now The current time in milliseconds (for an HTTP-date `Retry-After`).
 * @returns The action, the metric category and, where known, a hint.
 */
export function classifyInfluxDBResponse(
  status: number,
  body = "",
  retryAfter: string | null = null,
  now: number = Date.now(),
): InfluxDBOutcome {
  if (status >= 200 && status < 300) return { action: "ok", errorType: "", status };
  const errorType = `http_${status}`;
  if (status === 400 && /provide either orgID or org/.test(body)) {
    // A request without an organisation is the configuration's fault, not the lines'.
    return { action: "retry", errorType, status, hint: "set INFLUXDB_ORG" };
  }
  if (status === 400 || status === 413 || status === 422) {
    return { action: "split", errorType, status };
  }
  const outcome: InfluxDBOutcome = { action: "retry", errorType, status };
  const wait = parseRetryAfter(retryAfter, now);
  if (wait !== undefined) outcome.retryAfterMs = wait;
  if (status === 401 || status === 403) {
    // InfluxDB 2 and 3 answer with {"code": ...}, 1.x with {"error": ...}.
    const v2 = /"code"\s*:/.test(body);
    outcome.hint = status === 403
      ? "the user or token may not write there; grant WRITE on the database or bucket"
      : v2
      ? "the server refused the token; check INFLUXDB_TOKEN"
      : "the server refused the credentials; check INFLUXDB_USER/INFLUXDB_PASSWORD";
  } else if (status === 404 && /database not found/.test(body)) {
    outcome.databaseNotFound = true;
    outcome.hint = "the database does not exist";
  } else if (status === 404 && /bucket .*not found/i.test(body)) {
    outcome.hint = "the bucket does not exist; create it (sluice creates 1.x databases only)";
  } else if (status === 404 && /organization .*not found/i.test(body)) {
    outcome.hint = "check INFLUXDB_ORG";
  } else if (status === 404 || status === 405) {
    outcome.hint = "the server does not serve this path; check INFLUXDB_URL and " +
      "INFLUXDB_API_VERSION (/api/v2/write came with InfluxDB 1.8)";
  } else if (status === 500 && /retention policy not found/.test(body)) {
    outcome.hint = "check INFLUXDB_RETENTION_POLICY; unset, the database's default policy is used";
  } else if (status >= 300 && status < 400) {
    outcome.hint = "the server redirects; point INFLUXDB_URL at the final address";
  }
  return outcome;
}

/**
 * A one-line description of an answer for an error message.
 *
 * @param response The answer.
 * @param hint What to do about it, if known.
 * @returns E.g. `HTTP 404: database not found: "x"; the database does not exist`.
 */
export function statusText(response: HttpResponse, hint?: string): string {
  const message = serverMessage(response.body);
  const location = response.headers.get("location");
  return `HTTP ${response.status}${message ? `: ${message}` : ""}${
    location === null ? "" : ` (Location: ${location})`
  }${hint ? `; ${hint}` : ""}`;
}
