/**
 * The pure half of the Elasticsearch sink: records to bulk documents, the
 * NDJSON body of `POST /_bulk`, and the reading of its answers.
 *
 * Bulk API: https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html
 * (OpenSearch: https://opensearch.org/docs/latest/api-reference/document-apis/bulk/).
 * Every document is an `index` action (create or overwrite) with an `_id`
 * made from its Kafka origin, so a replay after a crash overwrites instead of
 * duplicating. No `_type`: Elasticsearch 7+ and OpenSearch need none.
 *
 * The server answers 200 even when documents failed; each item of `items`
 * carries its own status. Items that failed with 429 or 5xx are sent again;
 * items refused for their content (400 `mapper_parsing_exception`,
 * `document_parsing_exception`, ...) are set aside with the server's reason.
 *
 * @module
 */

import { utf8Length } from "../../lib/text.ts";
import type { TimeReader, Timestamp } from "../../lib/time.ts";
import type {
  InputRecord,
  PreparedRow,
  PrepareResult,
  RecordOrigin,
  Rejection,
  WriteResult,
} from "../../lib/record.ts";

/** One document ready for the bulk body. */
export interface ElasticRow {
  /** Target index, e.g. `sflow-2026-11-21`. */
  index: string;
  /** Document id, from the Kafka origin. */
  id: string;
  /** The action line, `{"index":{"_index":...,"_id":...}}`. */
  action: string;
  /** The document line: the record with `@timestamp`. */
  source: string;
}

/**
 * The document id of a record: `<topic>-<partition>-<offset>-<index>`.
 * Kafka topic names are at most 249 characters of `[a-zA-Z0-9._-]` and the
 * other parts are numbers, so the id is unique per record (read it from the
 * right) and far below Elasticsearch's 512-byte limit.
 *
 * @param origin Where the record came from.
 * @returns The id.
 */
export function documentId(origin: RecordOrigin): string {
  return `${origin.topic}-${origin.partition}-${origin.offset}-${origin.index}`;
}

/**
 * The daily index of an instant: the UTC day, whatever zone the record was written in.
 *
 * @param prefix `ELASTIC_INDEX_PREFIX`.
 * @param ts The record time.
 * @returns E.g. `sflow-2026-11-21`.
 */
export function indexName(prefix: string, ts: Timestamp): string {
  return `${prefix}-${new Date(ts.seconds * 1000).toISOString().slice(0, 10)}`;
}

/**
 * `@timestamp` of an instant: ISO 8601 in UTC with milliseconds, which the
 * default `date` format (`strict_date_optional_time||epoch_millis`) reads.
 *
 * @param ts The record time.
 * @returns E.g. `2026-11-21T22:30:00.000Z`.
 */
export function isoTimestamp(ts: Timestamp): string {
  return new Date(ts.seconds * 1000 + Math.floor(ts.micros / 1000)).toISOString();
}

/** Latest instant with a four-digit year: later ones make invalid index names. */
const MAX_SECONDS = Date.UTC(9999, 11, 31, 23, 59, 59) / 1000;

/** What {@link compileDocumentBuilder} needs. */
export interface DocumentOptions {
  /** `ELASTIC_INDEX_PREFIX`. */
  indexPrefix: string;
  /** `ELASTIC_TIMESTAMP_FIELD`: fields tried in order, the first present is read. */
  timestampFields: readonly string[];
  /** Reads pmacct timestamps in `PMACCT_TIMEZONE`. */
  time: TimeReader;
}

/**
 * Builds the function that turns a record into a bulk document: the index
 * of the record's UTC day, the id of its origin, and the record with
 * `@timestamp` set from the record time (the original script used the wall
 * clock). A record without a readable time is rejected (`convert`): filing
 * it under the wall clock's day would put it in the wrong index for good.
 *
 * @param options Prefix, time fields and time reader.
 * @returns A pure function from record and origin to a row or a rejection.
 */
export function compileDocumentBuilder(
  options: DocumentOptions,
): (record: InputRecord, origin: RecordOrigin) => PrepareResult<ElasticRow> {
  const { indexPrefix, timestampFields, time } = options;
  const fieldList = timestampFields.map((f) => `"${f}"`).join(", ");
  return (record, origin) => {
    const field = timestampFields.find((f) => {
      const v = record[f];
      return v !== undefined && v !== null && v !== "";
    });
    if (field === undefined) {
      return reject(
        `Cannot index record: it has no time field ${fieldList} (ELASTIC_TIMESTAMP_FIELD)`,
      );
    }
    let ts: Timestamp;
    try {
      ts = time.parse(record[field]);
    } catch (error) {
      return reject(`Cannot index record: field "${field}": ${(error as Error).message}`);
    }
    if (ts.seconds > MAX_SECONDS) {
      return reject(
        `Cannot index record: field "${field}" is after the year 9999, got ${
          JSON.stringify(record[field])
        }`,
      );
    }
    const index = indexName(indexPrefix, ts);
    const id = documentId(origin);
    const action = JSON.stringify({ index: { _index: index, _id: id } });
    let source: string;
    try {
      source = JSON.stringify({ ...record, "@timestamp": isoTimestamp(ts) });
    } catch (error) {
      return reject(`Cannot index record: ${(error as Error).message}`);
    }
    return {
      ok: true,
      row: { index, id, action, source },
      bytes: utf8Length(action) + utf8Length(source) + 2,
    };
  };
}

function reject(error: string): { ok: false; rejection: Rejection } {
  return { ok: false, rejection: { reason: "convert", error } };
}

/**
 * The lines of a bulk body: action line and document line per row, in order.
 * The body sent is these lines joined with `\n`, plus a final `\n`.
 *
 * @param rows The rows.
 * @returns Two lines per row.
 */
export function encodeBulk(rows: readonly PreparedRow<ElasticRow>[]): string[] {
  const lines = new Array<string>(rows.length * 2);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!.row;
    lines[2 * i] = row.action;
    lines[2 * i + 1] = row.source;
  }
  return lines;
}

/** What to do with a whole answer of the server. */
export interface ResponseClass {
  /** `items`: read every item; `retry`: send again later; `split`: send halves (413). */
  action: "items" | "retry" | "split";
  /** Bounded metric label, e.g. `http_503`. */
  errorType: string;
  /** Whether another node may do better (5xx): the failed one is skipped for a while. */
  failover: boolean;
  /** Whether the server refused the credentials or their rights (401, 403). */
  auth: boolean;
}

/**
 * Classifies the HTTP status of a bulk (or any) request.
 *
 * - 2xx: read the items, each has its own status;
 * - 413 (body larger than `http.max_content_length`): split, halves may pass;
 * - everything else: retry the same rows; 5xx also fails over to another
 *   node; 401/403 are flagged for a clear log. A whole-request 400 is
 *   retried too, not split: the server reports every problem of a document
 *   (invalid JSON, nesting too deep, a bad index name, a mapping conflict)
 *   in that document's item (checked on OpenSearch 2.19 and Elasticsearch
 *   7.17), so a 400 for the request means the request itself is wrong (a
 *   proxy, a bug) and bisecting would only set every document aside.
 *
 * @param status The HTTP status.
 * @returns The action and its labels.
 */
export function classifyResponse(status: number): ResponseClass {
  const errorType = `http_${status}`;
  if (status >= 200 && status < 300) {
    return { action: "items", errorType: "", failover: false, auth: false };
  }
  if (status === 413) return { action: "split", errorType, failover: false, auth: false };
  return {
    action: "retry",
    errorType,
    failover: status >= 500,
    auth: status === 401 || status === 403,
  };
}

/** What to do with one item of a bulk answer. */
export type ItemOutcome =
  | { kind: "ok" }
  | { kind: "retry"; status: number; errorType: string; error: string }
  | { kind: "reject"; status: number; errorType: string; rejection: Rejection };

/** Item statuses that a later attempt can cure. */
const RETRY_ITEM_STATUSES = new Set([401, 403, 404, 408, 429]);

/**
 * Classifies one item of a bulk answer, e.g.
 * `{"index":{"_index":"sflow-2026-11-21","_id":"t-0-5-0","status":400,"error":{"type":"document_parsing_exception",...}}}`.
 *
 * - 2xx: written;
 * - 429 (`es_rejected_execution_exception`), 5xx (`unavailable_shards_exception`),
 *   408, 401/403 (a read-only block when the disk is full, missing rights) and
 *   404 (`index_not_found_exception` when indexes are not auto-created):
 *   send again later;
 * - any other status (400 `mapper_parsing_exception`, `document_parsing_exception`,
 *   `illegal_argument_exception`, ...): refused for good, set aside with the reason.
 *
 * @param item One element of `items`.
 * @returns The outcome; an item without a status is retried.
 */
export function classifyBulkItem(item: unknown): ItemOutcome {
  const body = isObject(item) ? Object.values(item)[0] : undefined;
  const status = isObject(body) && typeof body.status === "number" ? body.status : undefined;
  if (status === undefined) {
    return {
      kind: "retry",
      status: 0,
      errorType: "bad_item",
      error: `Cannot read bulk item ${JSON.stringify(item)?.slice(0, 200)}`,
    };
  }
  if (status >= 200 && status < 300) return { kind: "ok" };
  const error = errorSummary(isObject(body) ? body.error : undefined) || `HTTP ${status}`;
  const type = isObject(body) && isObject(body.error) && typeof body.error.type === "string"
    ? body.error.type
    : "";
  if (status >= 500 || RETRY_ITEM_STATUSES.has(status)) {
    return { kind: "retry", status, errorType: type || `http_${status}`, error };
  }
  return {
    kind: "reject",
    status,
    errorType: type || `http_${status}`,
    rejection: { reason: "server", error },
  };
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
    const outcome = classifyBulkItem(items[i]);
    if (outcome.kind === "ok") continue;
    if (outcome.kind === "reject") {
      reading.result.rejected.push({ index: i, rejection: outcome.rejection });
      continue;
    }
    reading.result.retry.push(i);
    reading.firstRetry ??= { errorType: outcome.errorType, error: outcome.error };
    if (outcome.errorType === "index_not_found_exception") {
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
 * A readable summary of an error answer's body (JSON `error`, or the text).
 *
 * @param text The body as received.
 * @returns One line of at most about 300 characters.
 */
export function answerSummary(text: string): string {
  let summary = "";
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) summary = errorSummary(parsed.error);
  } catch {
    // Not JSON: a proxy's page or plain text.
  }
  if (summary === "") summary = text;
  summary = summary.replace(/\s+/g, " ").trim();
  return summary.length > 300 ? `${summary.slice(0, 300)}...` : summary;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
