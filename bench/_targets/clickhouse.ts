/**
 * The ClickHouse target: table `flows_<run>` in a fresh database
 * `sluice_bench_<id>`, created by sluice from `CLICKHOUSE_DATA_SCHEMA`: the
 * 11 columns of the demo's records (`--columns 11`, as the ClickHouse-only
 * bench measured it), or 24 of nfacctd's 25 fields (`--columns 20`). On
 * Debian's 18.16 (`--sink clickhouse`) or the current server
 * (`--sink clickhouse26`).
 *
 * @module
 */

import { decodePmacct } from "../../lib/decode/pmacct.ts";
import { errorText } from "../../lib/log.ts";
import { TimeReader } from "../../lib/time.ts";
import { compileRowConverter } from "../../sinks/clickhouse/encode.ts";
import { parseSchema } from "../../sinks/clickhouse/schema.ts";
import type { Dataset, RecordShape } from "../_dataset.ts";
import { type Baseline, num } from "../_measure.ts";
import { sluiceEnv } from "../_sluice.ts";
import { HINT } from "./_common.ts";
import type { Target, TargetContext } from "./mod.ts";

/** The two local servers: Debian's 18.16 (`clickhouse`) and the current one (`clickhouse26`). */
const SERVERS = {
  clickhouse: `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`,
  clickhouse26: `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE26_HTTP_PORT") ?? "28123"}`,
} as const;

/** Which local ClickHouse a target writes to (its `scripts/services.sh` service). */
export type ClickHouseService = keyof typeof SERVERS;

/** `CLICKHOUSE_DATA_SCHEMA` per record shape; the direct-insert baseline uses the same. */
export const SCHEMAS: Readonly<Record<RecordShape, string>> = {
  11: "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
    "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime,packets:UInt64," +
    "bytes:UInt64",
  // Every field but the constant event_type. tcp_flags arrives as a decimal
  // string ("24"), which both sluice and 18.16's JSONEachRow read into a
  // UInt8; timestamp_start/_end stay String, since 18.16 has no DateTime64
  // and a DateTime would drop the microseconds.
  20: "as_src:UInt32,as_dst:UInt32,peer_as_dst:UInt32,peer_ip_src:String,iface_in:UInt32," +
    "iface_out:UInt32,ip_src:String,ip_dst:String,mask_src:UInt8,mask_dst:UInt8," +
    "port_src:UInt16,port_dst:UInt16,tcp_flags:UInt8,ip_proto:String,tos:UInt8," +
    "sampling_rate:UInt32,timestamp_start:String,timestamp_end:String," +
    "stamp_inserted:DateTime,stamp_updated:DateTime,flows:UInt64,packets:UInt64,bytes:UInt64," +
    "writer_id:String",
};
/** `CLICKHOUSE_ORDER_BY` of the bench's tables. */
export const ORDER_BY = "stamp_inserted, ip_src, ip_dst";

async function ch(
  base: string,
  sql: string,
  body?: BodyInit,
  params = "",
): Promise<string> {
  const url = body === undefined
    ? `${base}/${params}`
    : `${base}/?query=${encodeURIComponent(sql)}${params.replace(/^\?/, "&")}`;
  let response: Response;
  try {
    response = await fetch(url, { method: "POST", body: body ?? sql });
  } catch (error) {
    throw new Error(
      `Cannot reach ClickHouse at ${base} for ${JSON.stringify(sql.slice(0, 60))}: ${
        errorText(error)
      } (bash scripts/services.sh status)`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`Cannot run ${JSON.stringify(sql.slice(0, 100))}: ${text.trim()}`);
  }
  return text;
}

/**
 * A number a query of the server at `base` gives.
 *
 * @param base The server's URL.
 * @param sql The query.
 * @returns The number.
 * @throws {Error} When the server does not answer or refuses the query.
 */
export async function chNumber(base: string, sql: string): Promise<number> {
  return Number((await ch(base, sql)).trim());
}

/**
 * Checks that ClickHouse answers and builds its target.
 *
 * @param ctx What the target needs.
 * @returns The target.
 * @throws {Error} When ClickHouse does not answer.
 */
export async function openClickHouse(
  ctx: TargetContext,
  service: ClickHouseService = "clickhouse",
): Promise<Target> {
  const base = SERVERS[service];
  try {
    const response = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(3000) });
    if ((await response.text()).trim() !== "Ok.") throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new Error(`Cannot reach ClickHouse at ${base} (${errorText(error)}); ${HINT}`);
  }
  const version = (await ch(base, "SELECT version()")).trim();
  const db = `sluice_bench_${ctx.id}`;
  const schema = SCHEMAS[ctx.columns];
  return {
    name: service,
    product: `ClickHouse ${version.split(".").slice(0, 2).join(".")}`,
    server: `ClickHouse ${version} at ${base}`,
    service,
    batchVariable: "CLICKHOUSE_MAX_SAMPLES_PER_SEND",
    setup: async () => void await ch(base, `CREATE DATABASE ${db}`),
    run(run, group) {
      const table = `flows_${run}`;
      return {
        env: sluiceEnv({
          ...ctx.common(group),
          SINK: "clickhouse",
          CLICKHOUSE_HOST: base,
          CLICKHOUSE_DB: db,
          CLICKHOUSE_TABLE: table,
          CLICKHOUSE_DATA_SCHEMA: schema,
          CLICKHOUSE_ORDER_BY: ORDER_BY,
          CLICKHOUSE_MAX_SAMPLES_PER_SEND: String(ctx.batch),
          CLICKHOUSE_MAX_TIME_TO_SEND: "1",
        }),
        // count() every 50 ms costs ClickHouse a little; /metrics costs sluice
        // itself (prom-client renders every metric), so it is read less often.
        pollMs: 50,
        metricsEvery: 10,
        unit: "rows in ClickHouse",
        visible: () => chNumber(base, `SELECT count() FROM ${db}.${table}`),
        async verify() {
          const n = ctx.data.records.length;
          const [rows, bytes] = (await ch(
            base,
            `SELECT count(), sum(bytes) FROM ${db}.${table} FORMAT TSV`,
          )).trim().split("\t").map(Number);
          if (rows !== n || bytes !== ctx.data.bytes) {
            throw new Error(
              `Cannot verify the rows: count ${rows} (want ${n}), ` +
                `sum(bytes) ${bytes} (want ${ctx.data.bytes})`,
            );
          }
          return `verified ${num(rows)} rows and sum(bytes) ${num(bytes)}`;
        },
        drop: async () => void await ch(base, `DROP TABLE ${db}.${table}`),
      };
    },
    async baselines() {
      return [
        baselineClickHouseCpu(ctx.data, schema),
        await baselineClickHouseInsert(base, version, db, schema, ctx),
      ];
    },
    cleanup: async () => void await ch(base, `DROP DATABASE IF EXISTS ${db}`),
  };
}

/**
 * sluice's per-record work without I/O: decode the messages as produced
 * (K records each with `--per-message`), convert, JSON encode for the insert.
 */
function baselineClickHouseCpu(data: Dataset, schema: string): Baseline {
  const { columns } = parseSchema(schema);
  const convert = compileRowConverter(columns, { time: new TimeReader("UTC") });
  const encoder = new TextEncoder();
  const bytes = data.messages.map((m) => encoder.encode(m));
  const started = performance.now();
  let ok = 0;
  for (const value of bytes) {
    for (const { record } of decodePmacct(value).records) {
      const prepared = convert(record);
      if (prepared.ok && prepared.row.length > 0) ok++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (ok !== data.records.length) {
    throw new Error(`Cannot convert every record: ${ok} of ${data.records.length}`);
  }
  return {
    label: "sluice's decode + convert + JSON encode for ClickHouse alone (in this process, no I/O)",
    seconds,
    records: ok,
    note: "CPU-bound, one core",
  };
}

/** Plain HTTP inserts of the same records as JSON lines, one request at a time. */
async function baselineClickHouseInsert(
  base: string,
  version: string,
  db: string,
  schema: string,
  ctx: TargetContext,
): Promise<Baseline> {
  const { data, batch } = ctx;
  const columns = schema.split(",").map((c) => c.split(":")).map(([n, t]) => `${n} ${t}`);
  await ch(
    base,
    `CREATE TABLE ${db}.raw_insert (${
      columns.join(", ")
    }) ENGINE = MergeTree() ORDER BY (${ORDER_BY})`,
  );
  const started = Date.now();
  for (let start = 0; start < data.records.length; start += batch) {
    const body = data.records.slice(start, start + batch).join("\n") + "\n";
    await ch(
      base,
      `INSERT INTO ${db}.raw_insert FORMAT JSONEachRow`,
      body,
      "?input_format_skip_unknown_fields=1",
    );
  }
  const seconds = (Date.now() - started) / 1000;
  const count = await chNumber(base, `SELECT count() FROM ${db}.raw_insert`);
  if (count !== data.records.length) {
    throw new Error(`Cannot insert every row directly: ${count} of ${data.records.length}`);
  }
  await ch(base, `DROP TABLE ${db}.raw_insert`);
  return {
    label: `ClickHouse ${version} alone: HTTP INSERT FORMAT JSONEachRow, ${
      num(batch)
    } rows per request`,
    seconds,
    records: count,
    note: "one request at a time, uncompressed",
  };
}
