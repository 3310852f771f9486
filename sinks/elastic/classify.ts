/**
 * What Elasticsearch's and OpenSearch's answers mean, read into the sink
 * contract's verdict (`lib/sink.ts`), and what `GET /` tells about the
 * server. Pure: the tests feed it answers recorded from the real servers.
 *
 * What the servers do (checked on OpenSearch 2.19 and Elasticsearch 7.17):
 * - `POST /_bulk` answers 200 even when documents failed; each item of
 *   `items` carries its own status, in the order of the documents. Items
 *   that failed with 429 or 5xx are sent again; items refused for their
 *   content (400 `mapper_parsing_exception`, `document_parsing_exception`,
 *   ...) are set aside with the server's reason.
 * - Every problem of a document (invalid JSON, nesting too deep, a bad index
 *   name, a mapping conflict) is reported in that document's item, so a 400
 *   for the whole request means the request itself is wrong (a proxy, a
 *   bug): it is retried, not split, since bisecting would only set every
 *   document aside. 413 (a body over `http.max_content_length`) is split.
 * - `GET /` answers `{"version":{"number":"8.15.0","build_flavor":"default",...},
 *   "tagline":"You Know, for Search"}` (Elasticsearch) or
 *   `{"version":{"distribution":"opensearch","number":"2.17.1",...}}`
 *   (OpenSearch, whose `number` may be `7.10.2` when
 *   `compatibility.override_main_response_version` is on; its
 *   `distribution` stays).
 *
 * @module
 */

import {
  bodyExcerpt,
  classifyTransportError,
  type HttpResponse,
  statusText as httpStatusText,
} from "../../lib/http.ts";
import type { PreparedRow, WriteResult } from "../../lib/record.ts";
import type { RequestVerdict, RetryVerdict, Verdict } from "../../lib/sink.ts";
import type { ElasticRow } from "./encode.ts";

const AUTH_HINT =
  "check ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY and the user's privileges";

/**
 * Classifies the HTTP status of a bulk (or any) request.
 *
 * - 2xx: `ok`, and the items are read, each has its own status;
 * - 413 (body larger than `http.max_content_length`): `split`, halves may pass;
 * - everything else: `retry` the same rows (a 400 included: see the module
 *   documentation); 401/403 with a hint on the credentials, redirects with
 *   one on `ELASTIC_HOSTS` (they are not followed: a POST would lose its body).
 *
 * @param status The HTTP status.
 * @returns The verdict, with a hint where the fix is known.
 */
export function classifyElasticResponse(status: number): RequestVerdict {
  if (status >= 200 && status < 300) return { action: "ok" };
  const errorType = `http_${status}`;
  if (status === 413) return { action: "split", errorType, status };
  if (status === 401 || status === 403) {
    return { action: "retry", errorType, status, hint: AUTH_HINT };
  }
  if (status >= 300 && status < 400) {
    return {
      action: "retry",
      errorType,
      status,
      hint: "the node redirects; point ELASTIC_HOSTS at the final address",
    };
  }
  return { action: "retry", errorType, status };
}

/**
 * Classifies a failed request that sets an index up (checking or creating
 * it): always `retry`, never `split`, since that is never the documents'
 * fault; with the hint {@link classifyElasticResponse} gives.
 *
 * @param status The HTTP status.
 * @returns `retry` with `http_<status>`.
 */
export function classifySetupResponse(status: number): RetryVerdict {
  const verdict = classifyElasticResponse(status);
  const retry: RetryVerdict = { action: "retry", errorType: `http_${status}`, status };
  if (verdict.action !== "ok" && verdict.hint !== undefined) retry.hint = verdict.hint;
  return retry;
}

/**
 * Classifies a request to which no node answered (see
 * `classifyTransportError` in lib/http.ts), with the TLS hint naming the
 * sink's variables.
 *
 * @param error What the transport threw for the last node.
 * @returns `retry` with `timeout`, `tls`, `network` or `unknown`.
 */
export function classifyElasticError(error: unknown): RetryVerdict {
  return classifyTransportError(error, "set ELASTIC_CA_FILE, or ELASTIC_VERIFY_SSL=NO");
}

/** Item statuses that a later attempt can cure. */
const RETRY_ITEM_STATUSES = new Set([401, 403, 404, 408, 429]);

/**
 * Classifies one item of a bulk answer, e.g.
 * `{"index":{"_index":"sflow-2026-11-21","_id":"t-0-5-0","status":400,"error":{"type":"document_parsing_exception",...}}}`.
 *
 * - 2xx: `ok`;
 * - 429 (`es_rejected_execution_exception`), 5xx (`unavailable_shards_exception`),
 *   408, 401/403 (a read-only block when the disk is full, missing rights) and
 *   404 (`index_not_found_exception` when indexes are not auto-created):
 *   `retry`;
 * - any other status (400 `mapper_parsing_exception`, `document_parsing_exception`,
 *   `illegal_argument_exception`, ...): `reject`, refused for good, with the reason.
 *
 * The error type is the server's (`mapper_parsing_exception`), else `http_<status>`.
 *
 * @param item One element of `items`.
 * @returns The verdict; an item without a status is retried (`bad_item`).
 */
export function classifyBulkItem(item: unknown): Verdict {
  const body = itemBody(item);
  const status = typeof body?.status === "number" ? body.status : undefined;
  if (status === undefined) return { action: "retry", errorType: "bad_item" };
  if (status >= 200 && status < 300) return { action: "ok" };
  const type = isObject(body?.error) && typeof body.error.type === "string" ? body.error.type : "";
  const errorType = type || `http_${status}`;
  if (status >= 500 || RETRY_ITEM_STATUSES.has(status)) {
    return { action: "retry", errorType, status };
  }
  return {
    action: "reject",
    errorType,
    status,
    rejection: { reason: "server", error: bulkItemError(item) },
  };
}

/**
 * What went wrong with one item of a bulk answer, in one line.
 *
 * @param item One element of `items`.
 * @returns The server's error (see {@link errorSummary}), `HTTP <status>`
 *   when it gave none, or what could not be read.
 */
export function bulkItemError(item: unknown): string {
  const body = itemBody(item);
  if (typeof body?.status !== "number") {
    return `Cannot read bulk item ${JSON.stringify(item)?.slice(0, 200)}`;
  }
  return errorSummary(body.error) || `HTTP ${body.status}`;
}

/** The item's only value: `{"index": {...}}` gives `{...}`. */
function itemBody(item: unknown): Record<string, unknown> | undefined {
  const body = isObject(item) ? Object.values(item)[0] : undefined;
  return isObject(body) ? body : undefined;
}

/** The items of a bulk answer, read into the pipeline's terms. */
export interface BulkReading {
  /** Rows refused for good and rows to send again. */
  result: WriteResult;
  /** The first error of the retried rows, for the log. */
  firstRetry?: { errorType: string; error: string };
  /** Indexes reported missing (`index_not_found_exception`). */
  missingIndexes: string[];
}

/**
 * Reads every item of a bulk answer.
 *
 * @param body The parsed JSON answer.
 * @param rows The rows sent, in order (the items answer them in the same order).
 * @returns The reading, or `undefined` when the answer does not hold one item per row.
 */
export function readBulkItems(
  body: unknown,
  rows: readonly PreparedRow<ElasticRow>[],
): BulkReading | undefined {
  const items = isObject(body) && Array.isArray(body.items) ? body.items : undefined;
  if (items === undefined || items.length !== rows.length) return undefined;
  const reading: BulkReading = { result: { rejected: [], retry: [] }, missingIndexes: [] };
  for (let i = 0; i < items.length; i++) {
    const verdict = classifyBulkItem(items[i]);
    if (verdict.action === "ok") continue;
    if (verdict.action === "reject") {
      reading.result.rejected.push({ index: i, rejection: verdict.rejection });
      continue;
    }
    reading.result.retry.push(i);
    reading.firstRetry ??= { errorType: verdict.errorType, error: bulkItemError(items[i]) };
    if (verdict.errorType === "index_not_found_exception") {
      const index = rows[i]!.row.index;
      if (!reading.missingIndexes.includes(index)) reading.missingIndexes.push(index);
    }
  }
  return reading;
}

/**
 * One line from an Elasticsearch error object:
 * `type: reason (caused by type: reason)`.
 *
 * @param error The `error` of an item or of an error answer; a string is kept as it is.
 * @returns The summary, `""` when there is nothing to say.
 */
export function errorSummary(error: unknown): string {
  if (typeof error === "string") return error;
  if (!isObject(error)) return "";
  const part = (e: Record<string, unknown>) =>
    [e.type, e.reason].filter((v) => typeof v === "string" && v !== "").join(": ");
  let text = part(error);
  if (isObject(error.caused_by)) {
    const cause = part(error.caused_by);
    if (cause !== "" && !text.includes(cause)) text += ` (caused by ${cause})`;
  }
  return text;
}

/**
 * A readable summary of an error answer's body: its JSON `error`, or the
 * text (see `bodyExcerpt` in lib/http.ts).
 *
 * @param text The body as received.
 * @returns One bounded line.
 */
export function answerSummary(text: string): string {
  return bodyExcerpt(text, pickError);
}

/** The `error` of a JSON error answer, summarised. */
function pickError(json: unknown): string | undefined {
  return isObject(json) ? errorSummary(json.error) : undefined;
}

/**
 * A one-line description of an answer for an error message.
 *
 * @param response The answer.
 * @param hint What to do about it, if known.
 * @returns E.g. `HTTP 401: security_exception: missing authentication credentials; check ...`.
 */
export function statusText(
  response: Pick<HttpResponse, "status" | "headers" | "body">,
  hint?: string,
): string {
  return httpStatusText(response, hint, pickError);
}

/** The server's product and version. */
export interface ServerInfo {
  /** `elasticsearch`, `opensearch`, or `unknown` when `GET /` was not allowed. */
  flavour: "elasticsearch" | "opensearch" | "unknown";
  /** The version text, e.g. `8.15.0`; `""` when unknown. */
  version: string;
  /** Major version, 0 when unknown. */
  major: number;
  /** Minor version, 0 when unknown. */
  minor: number;
}

/** A server sluice could not ask (`GET /` refused with 403). */
export const UNKNOWN_SERVER: ServerInfo = { flavour: "unknown", version: "", major: 0, minor: 0 };

/**
 * Reads the answer of `GET /`.
 *
 * @param body The parsed JSON.
 * @returns The product and version; `unknown` when the answer has no version.
 */
export function readServerInfo(body: unknown): ServerInfo {
  const version = isObject(body) && isObject(body.version) ? body.version : undefined;
  const number = typeof version?.number === "string" ? version.number : "";
  if (number === "") return UNKNOWN_SERVER;
  const [major = 0, minor = 0] = number.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  const flavour = version?.distribution === "opensearch" ? "opensearch" : "elasticsearch";
  return { flavour, version: number, major, minor };
}

/**
 * Whether sluice can write to the server: without mapping types, which
 * Elasticsearch needs from 7 on and OpenSearch always.
 *
 * @param server The server.
 * @returns What is wrong, or `undefined`.
 */
export function serverProblem(server: ServerInfo): string | undefined {
  if (server.flavour === "elasticsearch" && server.major < 7) {
    return `sluice needs Elasticsearch 7 or later (or OpenSearch), the server is ${server.version}`;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
