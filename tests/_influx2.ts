/**
 * Test helpers for the real InfluxDB 2.x (`bash scripts/influxdb2.sh start`):
 * plain HTTP on its v2 API (`/api/v2/buckets`, `/api/v2/write`, Flux on
 * `/api/v2/query`), so that what the tests read back does not go through the
 * code under test.
 *
 * Points are read with Flux as CSV (`Content-Type: application/vnd.flux`,
 * `Accept: application/csv`), one row per field value; that CSV has no type
 * annotations, so the query adds each value's type in a column of its own
 * (`types.isType`), and values come back typed: floats as `number`,
 * integers as `bigint`, strings, booleans. Times come as RFC 3339 text with
 * up to 9 decimals and are returned exactly, as `bigint` nanoseconds.
 *
 * A server that does not answer fails the test with the command that starts it.
 *
 * @module
 */

import type { StoredPoint } from "./_influx.ts";
import { influx2, uniqueName } from "./_services.ts";

export type { StoredPoint } from "./_influx.ts";

/** The `precision` of `/api/v2/write`. */
export type Precision = "s" | "ms" | "us" | "ns";

const START_HINT = "start it with `bash scripts/influxdb2.sh start`";

/**
 * Sends one request to the v2 API with the operator token.
 *
 * @param method The HTTP method.
 * @param path The path, e.g. `/api/v2/buckets`.
 * @param options Query parameters, a body and its headers, and the statuses that are not errors.
 * @returns The status and the body text.
 * @throws {Error} When the server does not answer (saying how to start it), or answers
 *   with a status not in `ok` (2xx by default).
 */
async function request(
  method: string,
  path: string,
  options: {
    params?: Record<string, string>;
    body?: string;
    headers?: Record<string, string>;
    ok?: readonly number[];
  } = {},
): Promise<{ status: number; text: string }> {
  const server = influx2();
  const query = options.params ? `?${new URLSearchParams(options.params)}` : "";
  let response: Response;
  try {
    response = await fetch(`${server.url}${path}${query}`, {
      method,
      body: options.body,
      headers: { Authorization: `Token ${server.token}`, ...options.headers },
    });
  } catch (error) {
    // fetch says "fetch failed"; the reason (e.g. connection refused) is in the causes.
    let reason: unknown = error;
    while (reason instanceof Error && reason.cause !== undefined) reason = reason.cause;
    throw new Error(
      `Cannot reach InfluxDB 2 at ${server.url} (${
        reason instanceof Error ? reason.message : String(reason)
      }): ${START_HINT}`,
      { cause: error },
    );
  }
  const text = await response.text();
  const ok = options.ok ?? [];
  if (!response.ok && !ok.includes(response.status)) {
    const hint = response.status === 401
      ? `; the token ${JSON.stringify(server.token)} is refused: is this the server of ` +
        "scripts/influxdb2.sh (SLUICE_INFLUXDB2_TOKEN)?"
      : response.status === 404 && !text.trimStart().startsWith("{")
      ? `; ${server.url} has no v2 API, it is not InfluxDB 2: ${START_HINT}`
      : "";
    throw new Error(
      `Cannot ${method} ${path}${query}: HTTP ${response.status} ${text.trim()}${hint}`,
    );
  }
  return { status: response.status, text };
}

let orgIdOnce: Promise<string> | undefined;

/**
 * The id of the organisation (`GET /api/v2/orgs?org=`), which creating a bucket needs.
 *
 * @returns The id, e.g. `697087c20b9c836f`.
 * @throws {Error} When the server does not answer or has no such organisation.
 */
export function orgId(): Promise<string> {
  const org = influx2().org;
  orgIdOnce ??= request("GET", "/api/v2/orgs", { params: { org } }).then(({ text }) => {
    const id = (JSON.parse(text) as { orgs?: Array<{ id: string; name: string }> }).orgs
      ?.find((o) => o.name === org)?.id;
    if (id === undefined) throw new Error(`InfluxDB 2 has no organisation ${JSON.stringify(org)}`);
    return id;
  });
  // A failure is not kept: the next test asks again.
  orgIdOnce.catch(() => orgIdOnce = undefined);
  return orgIdOnce;
}

/**
 * Creates a bucket that keeps its points for ever (tests write old times).
 *
 * @param name The bucket.
 * @returns Its id.
 */
export async function createBucket(name: string): Promise<string> {
  const { text } = await request("POST", "/api/v2/buckets", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ orgID: await orgId(), name, retentionRules: [] }),
  });
  return (JSON.parse(text) as { id: string }).id;
}

/**
 * The id of a bucket of the organisation.
 *
 * @param name The bucket.
 * @returns The id, or `undefined` when there is no such bucket.
 */
export async function bucketId(name: string): Promise<string | undefined> {
  const { status, text } = await request("GET", "/api/v2/buckets", {
    params: { orgID: await orgId(), name },
    ok: [404],
  });
  if (status === 404) return undefined;
  return (JSON.parse(text) as { buckets?: Array<{ id: string; name: string }> }).buckets
    ?.find((b) => b.name === name)?.id;
}

/**
 * Deletes a bucket and its points (no error when it does not exist).
 *
 * @param name The bucket.
 */
export async function deleteBucket(name: string): Promise<void> {
  const id = await bucketId(name);
  if (id !== undefined) await request("DELETE", `/api/v2/buckets/${id}`, { ok: [404] });
}

/**
 * Writes line protocol directly (to set up a test, e.g. a field's type).
 *
 * @param bucket The bucket.
 * @param lines The lines.
 * @param precision The unit of their times.
 * @throws {Error} When the server does not answer 204.
 */
export async function writeLines(
  bucket: string,
  lines: readonly string[],
  precision: Precision = "ns",
): Promise<void> {
  const { status, text } = await request("POST", "/api/v2/write", {
    params: { org: influx2().org, bucket, precision },
    headers: { "Content-Type": "text/plain; charset=utf-8" },
    body: lines.join("\n") + "\n",
  });
  if (status !== 204) throw new Error(`Cannot write to ${bucket}: HTTP ${status} ${text}`);
}

/**
 * Reads CSV (RFC 4180: quoted cells with `""` for a quote, line breaks
 * inside quotes, CRLF or LF between records).
 *
 * @param text The CSV text.
 * @returns The records, a blank line as an empty record.
 */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = "";
  let quoted = false;
  let touched = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') {
        cell += '"';
        i++;
      } else quoted = false;
    } else if (c === '"') {
      quoted = true;
      touched = true;
    } else if (c === ",") {
      record.push(cell);
      cell = "";
      touched = true;
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      if (touched || cell !== "") record.push(cell);
      records.push(record);
      record = [];
      cell = "";
      touched = false;
    } else {
      cell += c;
      touched = true;
    }
  }
  if (touched || cell !== "") {
    record.push(cell);
    records.push(record);
  }
  return records;
}

/**
 * Runs a Flux query and returns its rows, each as column name to cell text
 * (the tables of a result are apart in the CSV, each with its own header).
 *
 * @param flux The query.
 * @returns The rows of every table, in the server's order.
 * @throws {Error} When the request fails or the result holds an error.
 */
export async function fluxRows(flux: string): Promise<Array<Record<string, string>>> {
  const { text } = await request("POST", "/api/v2/query", {
    params: { org: influx2().org },
    headers: { "Content-Type": "application/vnd.flux", Accept: "application/csv" },
    body: flux,
  });
  const rows: Array<Record<string, string>> = [];
  let header: string[] | undefined;
  for (const record of parseCsv(text)) {
    if (record.length === 0) {
      header = undefined;
      continue;
    }
    if (record[0]!.startsWith("#")) continue; // annotations, when asked for
    if (header === undefined) {
      header = record;
      continue;
    }
    const row = Object.fromEntries(header.map((name, i) => [name, record[i] ?? ""]));
    if (header.includes("error")) {
      throw new Error(`Cannot run Flux ${JSON.stringify(flux)}: ${row["error"]}`);
    }
    rows.push(row);
  }
  return rows;
}

/**
 * Quotes a Flux string literal (`"`, `\` and the `${` of interpolation escaped).
 *
 * @param text The text.
 * @returns E.g. `"my \"bucket\""`.
 */
export function fluxString(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`).replaceAll("${", "\\${")}"`;
}

/**
 * Reads an RFC 3339 time as Flux writes it (`2023-11-14T22:13:20.123456789Z`).
 *
 * @param text The time, UTC, with 0 to 9 decimals.
 * @returns Nanoseconds since the epoch, exactly.
 * @throws {Error} When the text is not such a time.
 */
export function rfc3339Nanos(text: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(text);
  const seconds = m ? Date.parse(`${m[1]}Z`) : NaN;
  if (!m || Number.isNaN(seconds)) throw new Error(`Cannot read the time ${JSON.stringify(text)}`);
  return BigInt(seconds / 1000) * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** Columns of a Flux row that are not tags. */
const NOT_TAGS = new Set([
  "",
  "result",
  "table",
  "_start",
  "_stop",
  "_time",
  "_value",
  "_field",
  "_measurement",
  "_sluice_type",
]);

/** The Flux that tags each value with its type (CSV without annotations does not say it). */
const TYPED = `map(fn: (r) => ({r with _sluice_type:
    if types.isType(v: r._value, type: "float") then "float"
    else if types.isType(v: r._value, type: "int") then "integer"
    else if types.isType(v: r._value, type: "uint") then "unsigned"
    else if types.isType(v: r._value, type: "string") then "string"
    else if types.isType(v: r._value, type: "bool") then "boolean"
    else "unknown"}))`;

function typedValue(row: Record<string, string>): unknown {
  const text = row["_value"] ?? "";
  switch (row["_sluice_type"]) {
    case "float":
      return Number(text);
    case "integer":
    case "unsigned":
      return BigInt(text);
    case "boolean":
      return text === "true";
    case "string":
      return text;
    default:
      throw new Error(`Cannot read the value ${JSON.stringify(text)} of ${JSON.stringify(row)}`);
  }
}

/**
 * Every point of a bucket from 1970 to 2200, its field values typed (a
 * float as `number`, an integer as `bigint`) and its time in nanoseconds;
 * the field values of one measurement, tag set and time make one point.
 *
 * @param bucket The bucket.
 * @param filter A Flux predicate on `r`, e.g. `r._measurement == "m"`; all by default.
 * @returns The points, in no particular order.
 */
export async function points(bucket: string, filter = "true"): Promise<StoredPoint[]> {
  const rows = await fluxRows(`import "types"
from(bucket: ${fluxString(bucket)})
  |> range(start: 1970-01-01T00:00:00Z, stop: 2200-01-01T00:00:00Z)
  |> filter(fn: (r) => ${filter})
  |> ${TYPED}`);
  const byKey = new Map<string, StoredPoint>();
  for (const row of rows) {
    const tags: Record<string, string> = {};
    for (const [column, value] of Object.entries(row)) {
      // A tag the series lacks is an empty cell (line protocol has no empty tag values).
      if (!NOT_TAGS.has(column) && value !== "") tags[column] = value;
    }
    const measurement = row["_measurement"]!;
    const time = rfc3339Nanos(row["_time"]!);
    const key = JSON.stringify([measurement, Object.entries(tags).sort(), String(time)]);
    let point = byKey.get(key);
    if (!point) byKey.set(key, point = { measurement, tags, fields: {}, time });
    point.fields[row["_field"]!] = typedValue(row);
  }
  return [...byKey.values()];
}

/**
 * How many points a bucket holds.
 *
 * @param bucket The bucket.
 * @returns The number of points (not of field values).
 */
export async function countPoints(bucket: string): Promise<number> {
  return (await points(bucket)).length;
}

/**
 * A bucket name no other test run uses.
 *
 * @param what What the test is about.
 * @returns E.g. `it_influx2_graphite_1732233600000_ab12`.
 */
export function uniqueBucket(what: string): string {
  return uniqueName(`it_influx2_${what}`);
}
