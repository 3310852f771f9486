/**
 * Talking to VictoriaMetrics over HTTP: the import request (body, gzip,
 * authentication), the transport that sends it, and the classification of
 * an answer or a failure into "ok", "retry" or "split".
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
 * TLS: `fetch` verifies certificates, against the system CAs plus
 * `VM_CA_FILE` (`Deno.createHttpClient({ caCerts })`). Deno has no
 * per-client switch to turn verification off (`--unsafely-ignore-certificate-errors`
 * is process-wide), so `VM_SSL_VERIFY=NO` sends requests with `node:https`
 * and `rejectUnauthorized: false` instead.
 *
 * @module
 */

import type { VictoriaMetricsConfig } from "./config.ts";
import { classifyTransportError, type HttpOutcome } from "../../lib/http.ts";

export {
  bodyExcerpt,
  createTransport,
  fetchTransport,
  gzip,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
  insecureTransport,
  parseRetryAfter,
} from "../../lib/http.ts";
import { basicAuthorization, gzip, type HttpRequest, parseRetryAfter } from "../../lib/http.ts";

/** What an answer or a failure should lead to. */
export type VictoriaMetricsOutcome = HttpOutcome;

const encoder = new TextEncoder();

/**
 * The value of the `Authorization` header, if any.
 *
 * @param auth The configured credentials.
 * @returns `Basic base64(user:password)`, `Bearer token`, or `undefined`.
 */
export function authorizationHeader(auth: VictoriaMetricsConfig["auth"]): string | undefined {
  if (auth.kind === "bearer") return `Bearer ${auth.token}`;
  if (auth.kind === "basic") return basicAuthorization(auth.username, auth.password);
  return undefined;
}

/**
 * Builds the import request of some lines: one line each, newline
 * terminated, gzip when configured.
 *
 * @param config The resolved configuration.
 * @param lines The JSON lines.
 * @returns The request.
 */
export async function importRequest(
  config: Pick<VictoriaMetricsConfig, "importUrl" | "auth" | "compression" | "requestTimeoutMs">,
  lines: readonly string[],
): Promise<HttpRequest> {
  const headers: Record<string, string> = {
    "Content-Type": "application/x-ndjson",
    "User-Agent": "sluice",
  };
  const authorization = authorizationHeader(config.auth);
  if (authorization !== undefined) headers["Authorization"] = authorization;
  let body: Uint8Array = encoder.encode(lines.length === 0 ? "" : lines.join("\n") + "\n");
  if (config.compression && body.length > 0) {
    body = await gzip(body);
    headers["Content-Encoding"] = "gzip";
  }
  return {
    method: "POST",
    url: config.importUrl,
    headers,
    body,
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Builds the health check request (`GET /health`).
 *
 * @param config The resolved configuration.
 * @returns The request.
 */
export function healthRequest(
  config: Pick<VictoriaMetricsConfig, "healthUrl" | "auth" | "requestTimeoutMs">,
): HttpRequest {
  const headers: Record<string, string> = { "User-Agent": "sluice" };
  const authorization = authorizationHeader(config.auth);
  if (authorization !== undefined) headers["Authorization"] = authorization;
  return { method: "GET", url: config.healthUrl, headers, timeoutMs: config.requestTimeoutMs };
}

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
 * @returns The action, the metric category and, where known, a hint.
 */
export function classifyVictoriaMetricsResponse(
  status: number,
  body = "",
  retryAfter: string | null = null,
  now: number = Date.now(),
): VictoriaMetricsOutcome {
  if (status >= 200 && status < 300) return { action: "ok", errorType: "", status };
  const errorType = `http_${status}`;
  if (status === 400 && /unsupported path requested/.test(body)) {
    return {
      action: "retry",
      errorType,
      status,
      hint: "the server does not serve this path; check VM_URL and VM_IMPORT_PATH",
    };
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
    return {
      action: "retry",
      errorType,
      status,
      hint: "the server does not serve this path; check VM_URL and VM_IMPORT_PATH",
    };
  }
  if (status >= 300 && status < 400) {
    return {
      action: "retry",
      errorType,
      status,
      hint: "the server redirects; point VM_URL at the final address",
    };
  }
  const outcome: VictoriaMetricsOutcome = { action: "retry", errorType, status };
  const wait = parseRetryAfter(retryAfter, now);
  if (wait !== undefined) outcome.retryAfterMs = wait;
  return outcome;
}

/**
 * Classifies a request to VictoriaMetrics that got no answer (see
 * {@link classifyTransportError}), with the TLS hint naming its variables.
 *
 * @param error What the transport threw.
 * @returns `retry` with `timeout`, `tls`, `network` or `unknown`.
 */
export function classifyVictoriaMetricsError(error: unknown): VictoriaMetricsOutcome {
  return classifyTransportError(error, "check VM_CA_FILE or VM_SSL_VERIFY");
}
