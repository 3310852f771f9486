/**
 * The InfluxDB target: database `sluice_bench_<id>_run<run>` (created by
 * sluice, `INFLUXDB_CREATE_DATABASE`), dropped after the check; the flow
 * records become points of `INFLUXDB_MEASUREMENT` (`ENCODER=pmacct`).
 *
 * The demo's records (`--columns 11`) run with the sink's defaults, as
 * before. nfacctd's records (`--columns 20`) keep the ports out of the tags
 * too, so that series are a few thousand rather than one per record
 * (InfluxDB 1.x slows down as series grow), and take the point time from
 * `timestamp_end` at microsecond precision: with fewer tags, points sharing
 * the purge's second would overwrite each other, the flows' own times do not.
 *
 * @module
 */

import { parseConfig } from "../../lib/config.ts";
import { errorText } from "../../lib/log.ts";
import { DEFAULT_AVOID_TAGS, type InfluxDBConfig } from "../../sinks/influxdb/config.ts";
import { quoteIdentifier } from "../../sinks/influxdb/client.ts";
import type { RecordShape } from "../_dataset.ts";
import { type Baseline, num, progress } from "../_measure.ts";
import { sluiceEnv } from "../_sluice.ts";
import { field, HINT, prepareAll, prepareBaseline, type Prepared, requestOk } from "./_common.ts";
import type { Target, TargetContext } from "./mod.ts";
import { REGISTRIES } from "../../sinks/mod.ts";

const INFLUX = `http://127.0.0.1:${Deno.env.get("SLUICE_INFLUXDB_PORT") ?? "18086"}`;

/** sluice's tag and time variables per record shape. */
const SHAPE_SETTINGS: Readonly<Record<RecordShape, Record<string, string>>> = {
  11: {},
  20: {
    INFLUXDB_AVOID_TAGS: `${DEFAULT_AVOID_TAGS},port_src,port_dst`,
    INFLUXDB_TIMESTAMP_FIELD: "timestamp_end",
    INFLUXDB_TIME_PRECISION: "us",
  },
};

/**
 * Runs one InfluxQL statement (`POST /query`) and insists that neither the
 * request nor the statement failed (1.x answers 200 with `results[0].error`).
 *
 * @param statement The statement.
 * @param database The database it reads (`db`), if any.
 * @returns The statement's first series, if any.
 * @throws {Error} When the server cannot be reached or refuses the statement.
 */
export async function influxQuery(
  statement: string,
  database?: string,
): Promise<{ columns: unknown[]; values: unknown[][] } | undefined> {
  const form = new URLSearchParams({ q: statement });
  if (database !== undefined) form.set("db", database);
  const text = await requestOk(
    "InfluxDB",
    INFLUX,
    "POST",
    "/query",
    form.toString(),
    "application/x-www-form-urlencoded",
  );
  const parsed: unknown = JSON.parse(text);
  const result = (field(parsed, "results") as unknown[] | undefined)?.[0];
  const error = field(parsed, "error") ?? field(result, "error");
  if (error !== undefined) {
    throw new Error(`InfluxDB refuses ${statement.slice(0, 100)}: ${String(error)}`);
  }
  const series = (field(result, "series") as unknown[] | undefined)?.[0];
  const columns = field(series, "columns"), values = field(series, "values");
  return Array.isArray(columns) && Array.isArray(values)
    ? { columns, values: values as unknown[][] }
    : undefined;
}

/**
 * Checks that InfluxDB answers and builds its target.
 *
 * @param ctx What the target needs.
 * @returns The target.
 * @throws {Error} When the server does not answer.
 */
export async function openInfluxDB(ctx: TargetContext): Promise<Target> {
  const version = await influxVersion(HINT);
  const databaseOf = (what: string) => `sluice_bench_${ctx.id}_${what}`;
  const settings = (group: string, database: string) =>
    sluiceEnv({
      ...ctx.common(group),
      SINK: "influxdb",
      ENCODER: "pmacct",
      INFLUXDB_URL: INFLUX,
      INFLUXDB_DBNAME: database,
      BUFFER_SIZE: String(ctx.batch),
      BUFFER_TIMEOUT: "1",
      ...SHAPE_SETTINGS[ctx.columns],
    });
  // The lines do not depend on the database or group: worked out once, on first need.
  let expected: Expected | undefined;
  const expect = (env: Record<string, string>, prepared?: Prepared) =>
    expected ??= expectedPoints((prepared ?? prepareAll(env, ctx)).requests, ["bytes", "packets"]);
  return {
    name: "influxdb",
    product: "InfluxDB",
    server: `InfluxDB ${version} at ${INFLUX}`,
    service: "influxdb",
    batchVariable: "BUFFER_SIZE",
    setup: () => Promise.resolve(),
    run(run, group) {
      const database = databaseOf(`run${run}`);
      const env = settings(group, database);
      return {
        env,
        pollMs: 250,
        metricsEvery: 1,
        unit: "records",
        verify: () => verifyInfluxDB(database, env, expect(env), ctx),
        drop: () => dropDatabase(database),
      };
    },
    async baselines() {
      const database = databaseOf("baseline");
      const env = settings(`${database}-unused`, database);
      const prepared = prepareAll(env, ctx);
      return [
        prepareBaseline("InfluxDB", prepared, ", gzip not included"),
        await baselineWrite(database, env, prepared, expect(env, prepared), ctx),
      ];
    },
    async cleanup() {
      const shown = await influxQuery("SHOW DATABASES");
      for (const [name] of shown?.values ?? []) {
        if (typeof name === "string" && name.startsWith(databaseOf(""))) await dropDatabase(name);
      }
    },
  };
}

async function dropDatabase(database: string): Promise<void> {
  await influxQuery(`DROP DATABASE ${quoteIdentifier(database)}`);
}

/** The configuration sluice reads from the run's variables. */
function influxConfig(env: Record<string, string>): InfluxDBConfig {
  return parseConfig(env, REGISTRIES).sink.config as InfluxDBConfig;
}

/** The index of the first space not escaped by a backslash, or -1. */
function firstUnescapedSpace(line: string): number {
  for (let i = line.indexOf(" "); i !== -1; i = line.indexOf(" ", i + 1)) {
    if (i === 0 || line[i - 1] !== "\\") return i;
  }
  return -1;
}

/** The lowest and highest possible sums of one field over the stored points. */
interface SumRange {
  min: number;
  max: number;
}

/** What the database must hold, from {@link expectedPoints}. */
interface Expected {
  /** Lines written. */
  lines: number;
  /** Distinct (series, time) keys among them: the points stored. */
  distinct: number;
  /** Per summed field, the range of its sum. */
  sums: Map<string, SumRange>;
}

/**
 * What InfluxDB must hold after storing these lines: a point per distinct
 * (series, time) key, since a point with the same measurement, tags and
 * time overwrites the fields of the one before (last write wins); and, per
 * field, the range of its sum over the stored points (one value per key,
 * which of the colliding ones depends on the order of the writes).
 *
 * @param requests The body lines of each write.
 * @param names The integer fields to sum.
 * @returns The number of lines and of distinct keys, and the sums' ranges.
 */
function expectedPoints(
  requests: readonly string[][],
  names: readonly string[],
): Expected {
  // Per key: per field, the smallest and largest value written.
  const keys = new Map<string, number[]>();
  const patterns = names.map((name) => new RegExp(`(?:^|,)${name}=(-?\\d+)i(?:,|$)`));
  let lines = 0;
  for (const batch of requests) {
    for (const line of batch) {
      lines++;
      // The field set lies between the first unescaped space and the last space (the time).
      const first = firstUnescapedSpace(line);
      const last = line.lastIndexOf(" ");
      const fieldSet = last > first ? line.slice(first + 1, last) : line.slice(first + 1);
      const key = last > first ? line.slice(0, first) + line.slice(last) : line.slice(0, first);
      const values = patterns.map((p) => Number(p.exec(fieldSet)?.[1] ?? 0));
      const seen = keys.get(key);
      if (seen === undefined) {
        keys.set(key, values.flatMap((v) => [v, v]));
        continue;
      }
      values.forEach((v, i) => {
        seen[2 * i] = Math.min(seen[2 * i]!, v);
        seen[2 * i + 1] = Math.max(seen[2 * i + 1]!, v);
      });
    }
  }
  const sums = new Map(names.map((name) => [name, { min: 0, max: 0 }]));
  for (const range of keys.values()) {
    names.forEach((name, i) => {
      const sum = sums.get(name)!;
      sum.min += range[2 * i]!;
      sum.max += range[2 * i + 1]!;
    });
  }
  return { lines, distinct: keys.size, sums };
}

/**
 * Checks a database with InfluxQL: `count(bytes)` must be the number of
 * distinct (series, time) keys among the lines sluice encodes for these
 * records (about 450 of 200,000 collide here: the tags leave out the
 * per-record fields `stamp_inserted`, `bytes` and `packets`, and distinct
 * records of one flow key purged in the same second share series and time);
 * without collisions the sums of `bytes` and `packets` must be the
 * dataset's, with them they must lie between the sums of the smallest and of
 * the largest colliding values.
 */
async function verifyInfluxDB(
  database: string,
  env: Record<string, string>,
  expected: Expected,
  ctx: TargetContext,
): Promise<string> {
  const measurement = influxConfig(env).flows.measurement;
  const answer = await influxQuery(
    `SELECT count(bytes), sum(bytes), sum(packets) FROM ${quoteIdentifier(measurement)}`,
    database,
  );
  const row = answer?.values[0] ?? [];
  // Columns: time, count, sum, sum_1.
  const [count, bytes, packets] = [1, 2, 3].map((i) => Number(row[i] ?? 0)) as [
    number,
    number,
    number,
  ];
  const collided = expected.lines - expected.distinct;
  const problems: string[] = [];
  if (count !== expected.distinct) {
    problems.push(`count(bytes) ${num(count)} (want ${num(expected.distinct)})`);
  }
  for (
    const [name, got, total] of [
      ["bytes", bytes, ctx.data.bytes],
      ["packets", packets, ctx.data.packets],
    ] as const
  ) {
    const { min, max } = expected.sums.get(name)!;
    if (collided === 0 && got !== total) {
      problems.push(`sum(${name}) ${got} (want ${total})`);
    } else if (got < min || got > max) {
      problems.push(`sum(${name}) ${got} (want ${min}..${max} of ${total})`);
    }
  }
  const what = `${num(count)} points in ${database}.${measurement}, sum(bytes) ${
    num(bytes)
  }, sum(packets) ${num(packets)}`;
  if (problems.length > 0) {
    throw new Error(
      `Cannot verify ${database}: ${what}; ${problems.join(", ")} (${num(expected.lines)} lines, ${
        num(expected.distinct)
      } distinct series and times)`,
    );
  }
  if (collided === 0) return `verified ${what}: one per record, no collisions`;
  return `verified ${what}: ${num(collided)} of ${
    num(expected.lines)
  } records collided with another's series and time and were overwritten, so ${
    num(expected.distinct)
  } points; the sums are within the range the overwrites allow (dataset: ${
    num(ctx.data.bytes)
  } bytes, ${num(ctx.data.packets)} packets)`;
}

/** The server alone: sluice's lines, one request at a time, uncompressed. */
async function baselineWrite(
  database: string,
  env: Record<string, string>,
  prepared: Prepared,
  expected: Expected,
  ctx: TargetContext,
): Promise<Baseline> {
  const config = influxConfig(env);
  // sluice's own write URL (database, precision): /write?db=...&precision=s.
  const path = config.writeUrl.slice(config.url.length);
  await influxQuery(`CREATE DATABASE ${quoteIdentifier(database)}`);
  try {
    const started = Date.now();
    for (const lines of prepared.requests) {
      await requestOk("InfluxDB", INFLUX, "POST", path, lines.join("\n"), "text/plain");
    }
    const seconds = (Date.now() - started) / 1000;
    progress(`baseline: ${await verifyInfluxDB(database, env, expected, ctx)}`);
    return {
      label: `InfluxDB alone: POST ${path.replace(/db=[^&]*/, "db=...")} of sluice's lines, ${
        num(ctx.batch)
      } records per request`,
      seconds,
      records: prepared.records,
      note: "one request at a time, uncompressed (sluice gzips)",
    };
  } finally {
    await dropDatabase(database);
  }
}

/**
 * The version of the local InfluxDB 1.x, from its `/ping`.
 *
 * @param hint How to start it, for the error.
 * @returns The version, or `?`.
 * @throws {Error} When it does not answer.
 */
export async function influxVersion(hint: string): Promise<string> {
  try {
    const response = await fetch(`${INFLUX}/ping`, { signal: AbortSignal.timeout(3000) });
    await response.body?.cancel();
    if (response.status !== 204) throw new Error(`HTTP ${response.status}`);
    return response.headers.get("x-influxdb-version") ?? "?";
  } catch (error) {
    throw new Error(`Cannot reach InfluxDB at ${INFLUX} (${errorText(error)}); ${hint}`);
  }
}
