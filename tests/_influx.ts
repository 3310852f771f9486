/**
 * Test helpers for the real InfluxDB 1.x (`scripts/services.sh start
 * influxdb`): plain HTTP on `/query` and `/write`, so that what the tests
 * read back does not go through the code under test.
 *
 * Times come back as `bigint`, in the unit the query's `epoch` names:
 * InfluxDB writes them as JSON integers, and a nanosecond time (about 1.7e18)
 * is far above 2^53, so `JSON.parse` alone would round it. The parser here
 * reads every integer too large for a `number` from its source text instead.
 *
 * @module
 */

import { influxUrl, uniqueName } from "./_services.ts";

/** `epoch` of `/query`: the unit of the returned times. */
export type Epoch = "ns" | "u" | "ms" | "s";

/** One row of a query result. */
export interface InfluxRow {
  /** The measurement (series name). */
  measurement: string;
  /** The time, in the unit of the query's `epoch`. */
  time: bigint;
  /** The other columns (tags and fields; `null` where a point lacks one), and GROUP BY tags. */
  values: Record<string, unknown>;
}

interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: unknown[][];
}

interface StatementResult {
  statement_id: number;
  series?: Series[];
  error?: string;
}

/** `JSON.parse` that keeps integers above 2^53 exact, as `bigint`. */
function parseExact(text: string): unknown {
  // The reviver's third argument (the source text) is in V8 since 11.4.
  const reviver = (_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value) &&
      context?.source !== undefined && /^-?\d+$/.test(context.source)
      ? BigInt(context.source)
      : value;
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

/**
 * Sends one request to InfluxDB and returns the body, failing on any status
 * other than 2xx.
 */
async function request(
  path: string,
  params: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  const url = `${influxUrl()}${path}?${new URLSearchParams(params)}`;
  const response = await fetch(url, { method: "POST", body });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(
      `Cannot ${path.slice(1)} ${JSON.stringify(params["q"] ?? params["db"] ?? "")}: ` +
        `HTTP ${response.status} ${text.trim()}`,
    );
  }
  return { status: response.status, text };
}

/**
 * Runs InfluxQL statements (chunked, so large results come whole) and
 * returns each statement's series, the chunks of one series joined.
 *
 * @param db The database, or `undefined` for server-wide statements.
 * @param influxQl The statement(s).
 * @param epoch The unit of returned times.
 * @returns Per statement, its series.
 * @throws {Error} When the request or a statement fails, with the server's message.
 */
export async function statements(
  db: string | undefined,
  influxQl: string,
  epoch: Epoch = "ns",
): Promise<Series[][]> {
  const params: Record<string, string> = { q: influxQl, epoch, chunked: "true" };
  if (db !== undefined) params["db"] = db;
  const { text } = await request("/query", params);
  const results: Series[][] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const chunk = parseExact(line) as { results?: StatementResult[]; error?: string };
    if (chunk.error) throw new Error(`Cannot query ${JSON.stringify(influxQl)}: ${chunk.error}`);
    for (const result of chunk.results ?? []) {
      if (result.error) {
        throw new Error(`Cannot query ${JSON.stringify(influxQl)}: ${result.error}`);
      }
      const all = results[result.statement_id] ??= [];
      for (const series of result.series ?? []) {
        const key = `${series.name}\u0000${JSON.stringify(series.tags ?? {})}`;
        const same = all.find((s) => `${s.name}\u0000${JSON.stringify(s.tags ?? {})}` === key);
        if (same) same.values = [...(same.values ?? []), ...(series.values ?? [])];
        else all.push({ ...series, values: [...(series.values ?? [])] });
      }
    }
  }
  return results;
}

/**
 * Runs one SELECT and returns its rows with exact times.
 *
 * @param db The database.
 * @param influxQl The SELECT (its first column must be `time`, as InfluxDB puts it).
 * @param epoch The unit of `time`; `ns` by default.
 * @returns The rows of every series, in the server's order.
 * @throws {Error} When the query fails.
 */
export async function query(
  db: string,
  influxQl: string,
  epoch: Epoch = "ns",
): Promise<InfluxRow[]> {
  const [series = []] = await statements(db, influxQl, epoch);
  const rows: InfluxRow[] = [];
  for (const s of series) {
    for (const row of s.values ?? []) {
      const values: Record<string, unknown> = { ...s.tags };
      let time: bigint | undefined;
      s.columns.forEach((column, i) => {
        if (column === "time") time = BigInt(row[i] as number | bigint);
        else values[column] = row[i];
      });
      if (time === undefined) {
        throw new Error(`Cannot read ${JSON.stringify(influxQl)}: the result has no time column`);
      }
      rows.push({ measurement: s.name, time, values });
    }
  }
  return rows;
}

/**
 * Quotes an identifier for InfluxQL (a database, measurement, tag or field
 * name may hold any character).
 *
 * @param name The name.
 * @returns `"name"` with `"` and `\` escaped.
 */
export function ident(name: string): string {
  return `"${name.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Creates a database (no error when it exists).
 *
 * @param db The name.
 */
export async function createDatabase(db: string): Promise<void> {
  await statements(undefined, `CREATE DATABASE ${ident(db)}`);
}

/**
 * Drops a database (no error when it does not exist).
 *
 * @param db The name.
 */
export async function dropDatabase(db: string): Promise<void> {
  await statements(undefined, `DROP DATABASE ${ident(db)}`);
}

/**
 * The databases of the server.
 *
 * @returns Their names.
 */
export async function databases(): Promise<string[]> {
  const [series = []] = await statements(undefined, "SHOW DATABASES");
  return series.flatMap((s) => (s.values ?? []).map((v) => String(v[0])));
}

/**
 * The measurements of a database.
 *
 * @param db The database.
 * @returns Their names, sorted; empty when the database is empty or missing.
 */
export async function measurements(db: string): Promise<string[]> {
  try {
    const [series = []] = await statements(db, "SHOW MEASUREMENTS");
    return series.flatMap((s) => (s.values ?? []).map((v) => String(v[0]))).sort();
  } catch (error) {
    if (/database not found/.test(String(error))) return [];
    throw error;
  }
}

/** A stored point, as read back: tags and fields apart. */
export interface StoredPoint {
  /** The measurement. */
  measurement: string;
  /** Its tags (a tag the point does not have is absent). */
  tags: Record<string, string>;
  /** Its fields (a field the point does not have is absent). */
  fields: Record<string, unknown>;
  /** The time, in the unit of the query's `epoch`. */
  time: bigint;
}

/**
 * Every point of a measurement, with exact times, tags and fields apart
 * (`GROUP BY *` puts the tags in the series, so the columns are the fields).
 *
 * @param db The database.
 * @param measurement The measurement.
 * @param epoch The unit of `time`.
 * @returns One entry per point.
 */
export async function points(
  db: string,
  measurement: string,
  epoch: Epoch = "ns",
): Promise<StoredPoint[]> {
  const rows = await query(db, `SELECT * FROM ${ident(measurement)} GROUP BY *`, epoch);
  const [series = []] = await statements(db, `SHOW TAG KEYS FROM ${ident(measurement)}`);
  const tagKeys = new Set(series.flatMap((s) => (s.values ?? []).map((v) => String(v[0]))));
  return rows.map((row) => {
    const tags: Record<string, string> = {};
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(row.values)) {
      if (tagKeys.has(key)) {
        // GROUP BY * gives a tag a point lacks as "".
        if (value !== "" && value !== null) tags[key] = String(value);
      } else if (value !== null) fields[key] = value;
    }
    return { measurement: row.measurement, tags, fields, time: row.time };
  });
}

/**
 * Every point of every measurement of a database.
 *
 * @param db The database.
 * @param epoch The unit of `time`.
 * @returns The points; none when the database is missing.
 */
export async function allPoints(db: string, epoch: Epoch = "ns"): Promise<StoredPoint[]> {
  const all: StoredPoint[] = [];
  for (const m of await measurements(db)) all.push(...await points(db, m, epoch));
  return all;
}

/**
 * The field types of a measurement (`SHOW FIELD KEYS`).
 *
 * @param db The database.
 * @param measurement The measurement.
 * @returns Field name to `float`, `integer`, `string` or `boolean`.
 */
export async function fieldTypes(db: string, measurement: string): Promise<Record<string, string>> {
  const [series = []] = await statements(db, `SHOW FIELD KEYS FROM ${ident(measurement)}`);
  return Object.fromEntries(
    series.flatMap((s) => (s.values ?? []).map((v) => [String(v[0]), String(v[1])])),
  );
}

/**
 * Points in a form `assertEquals` compares and shows well: one sorted line
 * per point, `measurement {tags} time {fields}`, keys sorted.
 *
 * @param list The points.
 * @returns The lines, sorted.
 */
export function pointLines(list: readonly StoredPoint[]): string[] {
  const sorted = (o: Record<string, unknown>) =>
    JSON.stringify(
      Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)),
      (_k, v) => typeof v === "bigint" ? `${v}i` : v,
    );
  return list.map((p) => `${p.measurement} ${sorted(p.tags)} ${p.time} ${sorted(p.fields)}`)
    .sort();
}

/**
 * How many points a measurement holds (a missing database or measurement
 * holds none). Counts rows, not field values: a point missing a field counts once.
 *
 * @param db The database.
 * @param measurement The measurement.
 * @returns The number of points.
 */
export async function countPoints(db: string, measurement: string): Promise<number> {
  try {
    return (await query(db, `SELECT * FROM ${ident(measurement)}`, "s")).length;
  } catch (error) {
    if (/database not found/.test(String(error))) return 0;
    throw error;
  }
}

/**
 * Points in every measurement of a database.
 *
 * @param db The database.
 * @returns The total; 0 when the database is missing.
 */
export async function countAllPoints(db: string): Promise<number> {
  let total = 0;
  for (const m of await measurements(db)) total += await countPoints(db, m);
  return total;
}

/**
 * Writes line protocol directly (to set up a test, e.g. a field's type).
 *
 * @param db The database.
 * @param lines The lines.
 * @param precision The unit of their times.
 * @throws {Error} When the server does not answer 204.
 */
export async function writeLines(
  db: string,
  lines: readonly string[],
  precision: "ns" | "u" | "ms" | "s" = "ns",
): Promise<void> {
  const { status, text } = await request("/write", { db, precision }, lines.join("\n") + "\n");
  if (status !== 204) throw new Error(`Cannot write to ${db}: HTTP ${status} ${text}`);
}

/**
 * A database name no other test run uses.
 *
 * @param what What the test is about.
 * @returns E.g. `it_influx_graphite_1732233600000_ab12`.
 */
export function uniqueDatabase(what: string): string {
  return uniqueName(`it_influx_${what}`);
}
