/**
 * What InfluxDB's answers mean, read into the sink contract's verdict
 * (`lib/sink.ts`), and the server's text for messages. Pure: the tests feed
 * it answers recorded from the real servers.
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
 * - `POST /query` answers 200 also when a statement fails, with
 *   `{"results":[{"statement_id":0,"error":"invalid name"}]}`; a user
 *   without admin rights gets 403 for `CREATE DATABASE`.
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
  bodyExcerpt,
  classifyTransportError,
  type HttpResponse,
  parseRetryAfter,
  statusText as httpStatusText,
} from "../../lib/http.ts";
import type { RequestVerdict, RetryVerdict } from "../../lib/sink.ts";

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
 * @returns The verdict, with a hint where the fix is known.
 */
export function classifyInfluxDBResponse(
  status: number,
  body = "",
  retryAfter: string | null = null,
  now: number = Date.now(),
): RequestVerdict {
  if (status >= 200 && status < 300) return { action: "ok" };
  const errorType = `http_${status}`;
  if (status === 400 && /provide either orgID or org/.test(body)) {
    // A request without an organisation is the configuration's fault, not the lines'.
    return { action: "retry", errorType, status, hint: "set INFLUXDB_ORG" };
  }
  if (status === 400 || status === 413 || status === 422) {
    return { action: "split", errorType, status };
  }
  const verdict: RetryVerdict = { action: "retry", errorType, status };
  const wait = parseRetryAfter(retryAfter, now);
  if (wait !== undefined) verdict.retryAfterMs = wait;
  const hint = writeHint(status, body);
  if (hint !== undefined) verdict.hint = hint;
  return verdict;
}

/** What an operator can do about a refused write that is retried, if that is known. */
function writeHint(status: number, body: string): string | undefined {
  if (status === 401 || status === 403) {
    // InfluxDB 2 and 3 answer with {"code": ...}, 1.x with {"error": ...}.
    return status === 403
      ? "the user or token may not write there; grant WRITE on the database or bucket"
      : /"code"\s*:/.test(body)
      ? "the server refused the token; check INFLUXDB_TOKEN"
      : "the server refused the credentials; check INFLUXDB_USER/INFLUXDB_PASSWORD";
  }
  if (isDatabaseNotFound(status, body)) return "the database does not exist";
  if (status === 404 && /bucket .*not found/i.test(body)) {
    return "the bucket does not exist; create it (sluice creates 1.x databases only)";
  }
  if (status === 404 && /organization .*not found/i.test(body)) return "check INFLUXDB_ORG";
  if (status === 404 || status === 405) {
    return "the server does not serve this path; check INFLUXDB_URL and " +
      "INFLUXDB_API_VERSION (/api/v2/write came with InfluxDB 1.8)";
  }
  if (status === 500 && /retention policy not found/.test(body)) {
    return "check INFLUXDB_RETENTION_POLICY; unset, the database's default policy is used";
  }
  if (status >= 300 && status < 400) {
    return "the server redirects; point INFLUXDB_URL at the final address";
  }
  return undefined;
}

/**
 * Whether an answer to a 1.x write says the database does not exist (it
 * was dropped, or never created): the sink then creates it before the next
 * write, when it may.
 *
 * @param status The HTTP status.
 * @param body The response text.
 * @returns `true` for 404 `database not found`.
 */
export function isDatabaseNotFound(status: number, body: string): boolean {
  return status === 404 && /database not found/.test(body);
}

/**
 * Classifies an answer to an InfluxQL statement (`POST /query`, to create
 * the database). 200 without an error is done; 200 with an error (the
 * server refused the statement, e.g. `invalid name`) cannot be helped by
 * waiting (`fatal`); any other status is retried, with a hint for
 * credentials (401) and rights (403).
 *
 * @param status The HTTP status.
 * @param body The response text.
 * @returns The verdict.
 */
export function classifyInfluxDBQuery(status: number, body: string): RequestVerdict {
  const errorType = `http_${status}`;
  if (status === 200) {
    return queryError(body) === undefined
      ? { action: "ok" }
      : { action: "fatal", errorType, status, hint: "check INFLUXDB_DBNAME" };
  }
  const verdict: RetryVerdict = { action: "retry", errorType, status };
  if (status === 401) verdict.hint = "check INFLUXDB_USER and INFLUXDB_PASSWORD";
  if (status === 403) {
    verdict.hint = "the database does not exist or the user has no rights on it: " +
      "create it as an admin and grant the user WRITE on it";
  }
  return verdict;
}

/**
 * Classifies a request to InfluxDB that got no answer (see
 * `classifyTransportError` in lib/http.ts), with the hint naming the
 * variables that fix it.
 *
 * @param error What the transport threw.
 * @returns `retry` with `timeout`, `tls`, `network` or `unknown`.
 */
export function classifyInfluxDBError(error: unknown): RetryVerdict {
  const verdict = classifyTransportError(error, "check INFLUXDB_CA_FILE and INFLUXDB_VERIFY_SSL");
  // The error line says what failed; the hint only names the setting.
  if (verdict.errorType === "tls") verdict.hint = "check INFLUXDB_CA_FILE and INFLUXDB_VERIFY_SSL";
  if (verdict.errorType === "timeout") verdict.hint = "INFLUXDB_TIMEOUT sets the limit";
  return verdict;
}

/**
 * The server's message in an error answer: `error` (1.x), `message` (2.x,
 * 3.x), or the text itself, on one line.
 *
 * @param body The response body.
 * @returns The message, at most 500 characters; `""` for an empty body.
 */
export function serverMessage(body: string): string {
  return bodyExcerpt(body, pickMessage);
}

/** `error` (1.x) or `message` (2.x, 3.x) of a JSON error answer. */
function pickMessage(json: unknown): string | undefined {
  const answer = json as { error?: unknown; message?: unknown } | null;
  if (typeof answer?.error === "string") return answer.error;
  return typeof answer?.message === "string" ? answer.message : undefined;
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

/**
 * A one-line description of an answer for an error message.
 *
 * @param response The answer.
 * @param hint What to do about it, if known.
 * @returns E.g. `HTTP 404: database not found: "x"; the database does not exist`.
 */
export function statusText(response: HttpResponse, hint?: string): string {
  return httpStatusText(response, hint, pickMessage);
}

/**
 * A one-line description of an answer to an InfluxQL statement: the
 * statement's error for a 200, else as {@link statusText}.
 *
 * @param response The answer.
 * @param hint What to do about it, if known.
 * @returns E.g. `invalid name; check INFLUXDB_DBNAME` or `HTTP 503: starting`.
 */
export function queryStatusText(response: HttpResponse, hint?: string): string {
  if (response.status !== 200) return statusText(response, hint);
  return `${queryError(response.body)}${hint ? `; ${hint}` : ""}`;
}
