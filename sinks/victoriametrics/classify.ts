/**
 * What VictoriaMetrics' answers mean, read into the sink contract's
 * verdict (`lib/sink.ts`). Pure: the tests feed it answers recorded from the real
 * server.
 *
 * What the server does (recorded against VictoriaMetrics 1.79.5):
 * - `POST /api/v1/import` answers 204 when it read the body, also when it
 *   dropped lines of it (see `encode.ts`), and also for an empty body, so an
 *   empty import probes the path and the credentials without writing.
 * - A body that is not valid gzip, and a path it does not serve, answer
 *   400 with `unsupported path requested: "/..."` in the text: the first is
 *   the request's fault (split), the second the configuration's (retry, and
 *   refused at start).
 * - With `-httpAuth.username` it answers 401 to missing or wrong credentials.
 * - `GET /health` answers 200 `OK`.
 *
 * @module
 */

import { classifyTransportError, parseRetryAfter } from "../../lib/http.ts";
import type { RequestVerdict, RetryVerdict } from "../../lib/sink.ts";

const PATH_HINT = "the server does not serve this path; check VM_URL and VM_IMPORT_PATH";

/**
 * Classifies an answer to an import. 2xx is written; 400 (a line or body
 * the server could not read) and 413 (too large) split the batch, so the bad
 * row is isolated or the halves fit; everything else is retried unchanged:
 * 429 and 5xx (honouring `Retry-After`), 401/403 (credentials: an operator
 * must fix them; consumption stays paused meanwhile), 404/405 or a 400 for
 * an unsupported path (`VM_IMPORT_PATH`), redirects (`VM_URL`).
 *
 * @param status The HTTP status.
 * @param body The response text.
 * @param retryAfter The `Retry-After` header, if any.
 * @param now The current time in milliseconds (for an HTTP-date `Retry-After`).
 * @returns The verdict, with a hint where the fix is known.
 */
export function classifyVictoriaMetricsResponse(
  status: number,
  body = "",
  retryAfter: string | null = null,
  now: number = Date.now(),
): RequestVerdict {
  if (status >= 200 && status < 300) return { action: "ok" };
  const errorType = `http_${status}`;
  if (status === 400 && /unsupported path requested/.test(body)) {
    return { action: "retry", errorType, status, hint: PATH_HINT };
  }
  if (status === 400 || status === 413) return { action: "split", errorType, status };
  if (status === 401 || status === 403) {
    return {
      action: "retry",
      errorType,
      status,
      hint: "the server refused the credentials; check VM_USERNAME/VM_PASSWORD or VM_BEARER_TOKEN",
    };
  }
  if (status === 404 || status === 405) {
    return { action: "retry", errorType, status, hint: PATH_HINT };
  }
  if (status >= 300 && status < 400) {
    return {
      action: "retry",
      errorType,
      status,
      hint: "the server redirects; point VM_URL at the final address",
    };
  }
  const verdict: RetryVerdict = { action: "retry", errorType, status };
  const wait = parseRetryAfter(retryAfter, now);
  if (wait !== undefined) verdict.retryAfterMs = wait;
  return verdict;
}

/**
 * Classifies a request to VictoriaMetrics that got no answer (see
 * `classifyTransportError` in lib/http.ts), with the TLS hint naming its variables.
 *
 * @param error What the transport threw.
 * @returns `retry` with `timeout`, `tls`, `network` or `unknown`.
 */
export function classifyVictoriaMetricsError(error: unknown): RetryVerdict {
  return classifyTransportError(error, "check VM_CA_FILE or VM_SSL_VERIFY");
}
