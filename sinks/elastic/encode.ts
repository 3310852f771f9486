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
 * @returns A pure function from record and origin to a row (with its byte
 *   size in the body, newlines included) or a rejection.
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
