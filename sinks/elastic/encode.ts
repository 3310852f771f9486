/**
 * The Elasticsearch sink's encoding, pure: records to bulk documents and the
 * lines of the NDJSON body of `POST /_bulk`.
 *
 * Bulk API: https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html
 * (OpenSearch: https://opensearch.org/docs/latest/api-reference/document-apis/bulk/).
 * Every document is an `index` action (create or overwrite) with an `_id`
 * made from its Kafka origin, so a replay after a crash overwrites instead of
 * duplicating. No `_type`: Elasticsearch 7+ and OpenSearch need none.
 *
 * A document carries each number of the record with the digits it was
 * written with: a counter beyond 2^53 (`18446744073709551615`) or a literal
 * a double cannot hold (`1e400`) comes from the decoder as a `JsonNumber`,
 * which `JSON.stringify` writes as its text (`lib/json.ts`). What the index
 * makes of it is the mapping's business, and the server says so per item
 * (OpenSearch 2.19: a `long` field refuses 18446744073709551615 with
 * `mapper_parsing_exception` ... `out of range of long`, a `float` field
 * refuses 1e400 with `[float] supports only finite values`; an
 * `unsigned_long` field takes the first), so nothing is rounded on the way.
 *
 * The record time picks the daily index, so it must be in the record-time
 * window (`RECORD_TIME_MIN`, `RECORD_TIME_MAX_FUTURE`, by default 1970-01-01
 * to a day ahead of now): garbage times would otherwise create indexes such
 * as `sflow-1900-01-01` or `sflow-9999-12-31`.
 *
 * @module
 */

import { utf8Length } from "../../lib/text.ts";
import { hasFourDigitYear, type TimeReader, type Timestamp } from "../../lib/time.ts";
import type {
  InputRecord,
  PreparedRow,
  PrepareResult,
  RecordOrigin,
  Rejection,
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
 * @returns A pure function from record and origin to a row (with its byte
 *   size in the body, newlines included) or a rejection.
 */
export function compileDocumentBuilder(
  options: DocumentOptions,
): (record: InputRecord, origin: RecordOrigin) => PrepareResult<ElasticRow> {
  const { indexPrefix, timestampFields, time } = options;
  const fieldList = timestampFields.map((f) => `"${f}"`).join(", ");
  // The records of a purge share their day and mostly their instant: the
  // last index name and @timestamp are kept rather than made again.
  let lastDay = NaN;
  let lastIndex = "";
  let lastIndexJson = "";
  let lastMs = NaN;
  let lastIso = "";
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
    const outside = time.outsideWindow(ts);
    if (outside !== undefined) {
      return reject(`Cannot index record: field "${field}" ${show(record[field])} ${outside}`);
    }
    // Index names need a four-digit year, whatever the window allows.
    if (!hasFourDigitYear(ts.seconds)) {
      return reject(
        `Cannot index record: field "${field}" is not within the years 0000 to 9999, got ${
          show(record[field])
        }`,
      );
    }
    const day = Math.floor(ts.seconds / 86400);
    if (day !== lastDay) {
      lastDay = day;
      lastIndex = indexName(indexPrefix, ts);
      lastIndexJson = JSON.stringify(lastIndex);
    }
    const index = lastIndex;
    const id = documentId(origin);
    const action = `{"index":{"_index":${lastIndexJson},"_id":${JSON.stringify(id)}}}`;
    const ms = ts.seconds * 1000 + Math.floor(ts.micros / 1000);
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = isoTimestamp(ts);
    }
    let source: string;
    try {
      if (Object.hasOwn(record, "@timestamp")) {
        source = JSON.stringify({ ...record, "@timestamp": lastIso });
      } else {
        // The record's JSON with @timestamp last, as the spread above writes
        // it, without copying the record first.
        const json = JSON.stringify(record);
        source = json.length <= 2
          ? `{"@timestamp":"${lastIso}"}`
          : `${json.slice(0, -1)},"@timestamp":"${lastIso}"}`;
      }
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

/** A value as written in the record, for messages. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
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
