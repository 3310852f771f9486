/**
 * The chaos suite's destinations, one per sink: sluice's variables for a
 * scenario's own table, index prefix, job or database, a cheap progress
 * count, the exact count at the end (records held and distinct records, by
 * `tag`), and the cleanup.
 *
 * - `clickhouse26`, `clickhouse18`: table `<scenario>` in a fresh database
 *   `sluice_chaos_<id>`, created by sluice from `CLICKHOUSE_DATA_SCHEMA` (on
 *   26.x with `non_replicated_deduplication_window`, for the insert
 *   deduplication tokens); `count()` and `uniqExact(tag)`.
 * - `elastic`: daily indexes `sluice-chaos-<id>-<scenario>-YYYY-MM-DD`;
 *   `_count` after `_refresh`, and a `terms` aggregation on `tag` with
 *   `min_doc_count: 2` for the duplicates (the shipped mapping leaves `tag`
 *   to dynamic mapping, which makes an integer a `long`; checked).
 * - `vm`: series of `job="sluice-chaos-<id>-<scenario>"`, the time from
 *   `timestamp_end`, `tag` and the ports left out of the labels (a few
 *   thousand series, as a real flow deployment has); `/api/v1/export` of
 *   the `bytes` metric after `/internal/force_flush`, counting samples and
 *   distinct (series, timestamp).
 * - `influxdb`: database `sluice_chaos_<id>_<scenario>` (created by sluice),
 *   time from `timestamp_end` at millisecond precision (unique per record),
 *   `tag` a field, only `peer_ip_src` and `ip_proto` as tags (few series);
 *   `count(bytes)`. A point with the same series and time overwrites the
 *   one before, so duplicates cannot show there.
 *
 * @module
 */

import { errorText } from "../../lib/log.ts";
import { CLICKHOUSE_18, CLICKHOUSE_26, type ClickHouseServer } from "../../tests/_clickhouse.ts";
import { DEFAULT_AVOID_LABELS } from "../../sinks/victoriametrics/config.ts";
import { debianVersion, progress } from "../_measure.ts";
import { field, requestOk } from "../_targets/_common.ts";
import { elasticServer } from "../_targets/elastic.ts";
import { influxQuery, influxVersion } from "../_targets/influxdb.ts";
import type { ServiceName } from "./services.ts";

/** The sinks the suite knows, in the order `--sink all` runs them. */
export const CHAOS_SINKS = ["clickhouse26", "clickhouse18", "elastic", "vm", "influxdb"] as const;

/** A sink of the suite. */
export type ChaosSinkName = (typeof CHAOS_SINKS)[number];

/** Records per write, for every sink. */
export const BATCH = 10_000;

/** What a destination holds at the end. */
export interface Held {
  /** Records held, duplicates included (InfluxDB: points). */
  rows: number;
  /** Distinct records held (by `tag`; VictoriaMetrics: by series and time). */
  distinct: number;
}

/** A sink's server and how the suite uses it. */
export interface ChaosSink {
  /** The suite's name of the sink. */
  name: ChaosSinkName;
  /** The server's product and version, for the title. */
  server: string;
  /** The `scripts/services.sh` service that runs the server. */
  service: ServiceName;
  /** Whether duplicates are reported only (ClickHouse 18.16 has no insert deduplication token). */
  duplicatesAllowed: boolean;
  /** Notes for the report, about this sink's figures. */
  notes: string[];
  /**
   * sluice's sink variables for a scenario.
   *
   * @param dest The scenario's destination name (`[a-z0-9_]`).
   * @returns The variables.
   */
  env(dest: string): Record<string, string>;
  /**
   * Distinct records the destination shows so far, cheaply.
   *
   * @param dest The destination.
   * @returns The count (0 before it exists).
   * @throws {Error} When the server does not answer.
   */
  progress(dest: string): Promise<number>;
  /**
   * The exact count at the end.
   *
   * @param dest The destination.
   * @returns Rows and distinct records.
   * @throws {Error} When the server does not answer or the data cannot be checked.
   */
  count(dest: string): Promise<Held>;
  /**
   * Drops a destination.
   *
   * @param dest The destination.
   */
  drop(dest: string): Promise<void>;
  /** Drops whatever the run wrote, best effort. */
  cleanup(): Promise<void>;
  /** Resolves when the server answers, throws when not. */
  probe(): Promise<void>;
}

const port = (name: string, fallback: string) => Deno.env.get(name) ?? fallback;
const ELASTIC_HOST = `127.0.0.1:${port("SLUICE_ELASTIC_PORT", "19200")}`;
const ELASTIC = `http://${ELASTIC_HOST}`;
const VM = `http://127.0.0.1:${port("SLUICE_VM_PORT", "18428")}`;
const INFLUX = `http://127.0.0.1:${port("SLUICE_INFLUXDB_PORT", "18086")}`;

/** The pmacct columns of the benchmark, plus `tag`. */
const CLICKHOUSE_SCHEMA =
  "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
  "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime,packets:UInt64," +
  "bytes:UInt64,tag:UInt64";

function hint(service: ServiceName): string {
  return `start it with bash scripts/services.sh start ${service}`;
}

async function probeHttp(url: string, ok: (r: Response, text: string) => boolean): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
  const text = await response.text();
  if (!ok(response, text)) throw new Error(`HTTP ${response.status} from ${url}`);
}

/**
 * Checks that a sink's server answers and builds its destination maker.
 *
 * @param name The sink.
 * @param id The run's id: names databases, indexes and jobs.
 * @returns The sink.
 * @throws {Error} When the server does not answer, saying how to start it.
 */
export async function openChaosSink(name: ChaosSinkName, id: string): Promise<ChaosSink> {
  switch (name) {
    case "clickhouse26":
      return await openClickHouse(name, CLICKHOUSE_26, id);
    case "clickhouse18":
      return await openClickHouse(name, CLICKHOUSE_18, id);
    case "elastic":
      return await openElastic(id);
    case "vm":
      return await openVictoriaMetrics(id);
    case "influxdb":
      return await openInfluxDB(id);
  }
}

async function openClickHouse(
  name: ChaosSinkName,
  server: ClickHouseServer,
  id: string,
): Promise<ChaosSink> {
  let version: string;
  try {
    version = await server.expectVersion();
  } catch (error) {
    throw new Error(
      `Cannot reach ${server.label} at ${server.url} (${errorText(error)}); ${
        hint(server.service)
      }`,
    );
  }
  const db = `sluice_chaos_${id}`;
  const url = new URL(server.url);
  return {
    name,
    server: `ClickHouse ${version}`,
    service: server.service,
    duplicatesAllowed: server.legacy,
    notes: server.legacy
      ? [
        `${name}: duplicates are reported, not failed: ClickHouse 18.16 has no ` +
        "insert_deduplication_token, so a batch written again after a crash is stored twice",
      ]
      : [],
    env: (dest) => ({
      SINK: "clickhouse",
      CLICKHOUSE_HOST: url.hostname,
      CLICKHOUSE_PORT: url.port,
      CLICKHOUSE_DB: db,
      CLICKHOUSE_TABLE: dest,
      CLICKHOUSE_DATA_SCHEMA: CLICKHOUSE_SCHEMA,
      CLICKHOUSE_ORDER_BY: "stamp_inserted, ip_src, ip_dst",
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: String(BATCH),
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
    }),
    progress: (dest) => server.scalar(`SELECT uniqExact(tag) FROM ${db}.${dest}`),
    async count(dest) {
      const rows = await server.scalar(`SELECT count() FROM ${db}.${dest}`);
      const distinct = await server.scalar(`SELECT uniqExact(tag) FROM ${db}.${dest}`);
      return { rows, distinct };
    },
    drop: async (dest) => void await server.query(`DROP TABLE IF EXISTS ${db}.${dest}`),
    cleanup: async () => void await server.query(`DROP DATABASE IF EXISTS ${db}`),
    probe: () => probeHttp(`${server.url}/ping`, (_, text) => text.trim() === "Ok."),
  };
}

const es = (method: string, path: string, body?: string) =>
  requestOk("Elasticsearch", ELASTIC, method, path, body, "application/json");

async function openElastic(id: string): Promise<ChaosSink> {
  const { product, version } = await elasticServer(hint("elasticsearch"));
  const prefixOf = (dest: string) => `sluice-chaos-${id}-${dest.replaceAll("_", "-")}`;
  const countOf = async (prefix: string) =>
    Number(field(JSON.parse(await es("GET", `/${prefix}-*/_count`)), "count") ?? 0);
  const deleteIndexes = async (prefix: string) => {
    const listed: unknown = JSON.parse(
      await es("GET", `/_cat/indices/${prefix}-*?format=json&h=index`),
    );
    const names = Array.isArray(listed) ? listed.map((i) => String(field(i, "index"))) : [];
    // By name: wildcard deletes may be refused (action.destructive_requires_name).
    if (names.length > 0) await es("DELETE", `/${names.join(",")}`);
  };
  return {
    name: "elastic",
    server: `${product} ${version}`,
    service: "elasticsearch",
    duplicatesAllowed: false,
    notes: [],
    env: (dest) => ({
      SINK: "elastic",
      ELASTIC_HOSTS: ELASTIC_HOST,
      ELASTIC_INDEX_PREFIX: prefixOf(dest),
      ELASTIC_MAX_SAMPLES_PER_SEND: String(BATCH),
      ELASTIC_MAX_TIME_TO_SEND: "1",
    }),
    progress: (dest) => countOf(prefixOf(dest)),
    async count(dest) {
      const prefix = prefixOf(dest);
      await es("POST", `/${prefix}-*/_refresh`);
      const rows = await countOf(prefix);
      if (rows === 0) return { rows, distinct: 0 };
      const mappings: unknown = JSON.parse(await es("GET", `/${prefix}-*/_mapping/field/tag`));
      for (const [index, value] of Object.entries(mappings as Record<string, unknown>)) {
        const type = field(value, "mappings", "tag", "mapping", "tag", "type");
        if (!["long", "integer", "unsigned_long"].includes(String(type))) {
          throw new Error(`Cannot count duplicates by tag: ${index} maps tag as ${String(type)}`);
        }
      }
      const size = 10_000;
      const found: unknown = JSON.parse(
        await es(
          "POST",
          `/${prefix}-*/_search`,
          JSON.stringify({
            size: 0,
            aggs: { tags: { terms: { field: "tag", min_doc_count: 2, size } } },
          }),
        ),
      );
      const buckets = field(found, "aggregations", "tags", "buckets");
      const list = Array.isArray(buckets) ? buckets : [];
      if (list.length >= size) {
        progress(
          `elastic: ${size} or more duplicated tags in ${prefix}-*: counted the first ${size}`,
        );
      }
      const duplicates = list.reduce((n, b) => n + Number(field(b, "doc_count")) - 1, 0);
      return { rows, distinct: rows - duplicates };
    },
    drop: (dest) => deleteIndexes(prefixOf(dest)),
    cleanup: () => deleteIndexes(`sluice-chaos-${id}`),
    probe: () => probeHttp(`${ELASTIC}/`, (r) => r.status === 200),
  };
}

async function openVictoriaMetrics(id: string): Promise<ChaosSink> {
  let flags: string;
  try {
    await probeHttp(`${VM}/health`, (_, text) => text.trim() === "OK");
    flags = await requestOk("VictoriaMetrics", VM, "GET", "/flags");
  } catch (error) {
    throw new Error(
      `Cannot reach VictoriaMetrics at ${VM} (${errorText(error)}); ${hint("victoriametrics")}`,
    );
  }
  const notes: string[] = [];
  if (!/-dedup\.minScrapeInterval="1ms"/.test(flags)) {
    const text = "VictoriaMetrics runs without -dedup.minScrapeInterval=1ms, so a batch " +
      "written again after a crash shows as duplicates; restart it with bash " +
      "scripts/services.sh stop victoriametrics; bash scripts/services.sh start victoriametrics";
    progress(text);
    notes.push(`vm: ${text}`);
  }
  const jobOf = (dest: string) => `sluice-chaos-${id}-${dest.replaceAll("_", "-")}`;
  const vm = (method: string, path: string) => requestOk("VictoriaMetrics", VM, method, path);
  const deleteSeries = async (selector: string) => {
    // Series registered moments ago are not found by the delete until flushed.
    await vm("GET", "/internal/force_flush");
    await vm("POST", `/api/v1/admin/tsdb/delete_series?match[]=${encodeURIComponent(selector)}`);
  };
  return {
    name: "vm",
    server: `VictoriaMetrics ${await debianVersion("victoria-metrics")}`,
    service: "victoriametrics",
    duplicatesAllowed: false,
    notes,
    env: (dest) => ({
      SINK: "vm",
      VM_URL: VM,
      VM_JOB: jobOf(dest),
      VM_INSTANCE: "chaos",
      VM_TIMESTAMP_FIELD: "timestamp_end",
      // Neither the record number nor the ephemeral ports are labels: each
      // record its own series is what no one runs, and VictoriaMetrics
      // slows to a few thousand samples/s creating them.
      VM_AVOID_LABELS: `${DEFAULT_AVOID_LABELS},tag,port_src,port_dst`,
      VM_MAX_SAMPLES_PER_SEND: String(BATCH),
      VM_MAX_TIME_TO_SEND: "1",
    }),
    async progress(dest) {
      // Samples become searchable about a second after the import, new series
      // later still; a flush first makes the count current.
      await vm("GET", "/internal/force_flush");
      const query = `sum(count_over_time(bytes{job="${jobOf(dest)}"}[2d]))`;
      const answer: unknown = JSON.parse(
        await vm("GET", `/api/v1/query?query=${encodeURIComponent(query)}&nocache=1`),
      );
      const result = field(answer, "data", "result");
      const value = Array.isArray(result) ? field(result[0], "value") : undefined;
      return Array.isArray(value) ? Number(value[1]) : 0;
    },
    async count(dest) {
      await vm("GET", "/internal/force_flush");
      const selector = `{__name__="bytes",job="${jobOf(dest)}"}`;
      const response = await fetch(
        `${VM}/api/v1/export?match[]=${encodeURIComponent(selector)}&start=0`,
      );
      if (!response.ok || response.body === null) {
        throw new Error(`Cannot export ${selector} from VictoriaMetrics: HTTP ${response.status}`);
      }
      // One series may come in several lines: times per series, then distinct.
      const times = new Map<string, Set<number>>();
      let rows = 0, rest = "";
      const take = (line: string) => {
        if (line.trim() === "") return;
        const parsed: unknown = JSON.parse(line);
        const stamps = field(parsed, "timestamps");
        if (!Array.isArray(stamps)) return;
        const key = JSON.stringify(field(parsed, "metric"));
        let set = times.get(key);
        if (set === undefined) times.set(key, set = new Set());
        for (const t of stamps) set.add(Number(t));
        rows += stamps.length;
      };
      for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) take(line);
      }
      take(rest);
      let distinct = 0;
      for (const set of times.values()) distinct += set.size;
      return { rows, distinct };
    },
    drop: (dest) => deleteSeries(`{job="${jobOf(dest)}"}`),
    cleanup: () => deleteSeries(`{job=~"sluice-chaos-${id}-.*"}`),
    probe: () => probeHttp(`${VM}/health`, (_, text) => text.trim() === "OK"),
  };
}

async function openInfluxDB(id: string): Promise<ChaosSink> {
  const version = await influxVersion(hint("influxdb"));
  const databaseOf = (dest: string) => `sluice_chaos_${id}_${dest}`;
  const countOf = async (dest: string) => {
    try {
      const series = await influxQuery("SELECT count(bytes) FROM pmacct", databaseOf(dest));
      return Number(series?.values[0]?.[1] ?? 0);
    } catch (error) {
      // Before sluice created it.
      if (/database not found/.test(errorText(error))) return 0;
      throw error;
    }
  };
  const drop = async (database: string) =>
    void await influxQuery(`DROP DATABASE "${database.replace(/["\\]/g, "\\$&")}"`);
  return {
    name: "influxdb",
    server: `InfluxDB ${version}`,
    service: "influxdb",
    duplicatesAllowed: false,
    notes: [
      "influxdb: a point with the same series and time overwrites the one before, so " +
      "duplicates cannot show; in sink is count(bytes) and missing = expected - count",
    ],
    env: (dest) => ({
      SINK: "influxdb",
      ENCODER: "pmacct",
      INFLUXDB_URL: INFLUX,
      INFLUXDB_DBNAME: databaseOf(dest),
      INFLUXDB_TIMESTAMP_FIELD: "timestamp_end",
      INFLUXDB_TIME_PRECISION: "ms",
      INFLUXDB_FIELDS: "bytes,packets,tag",
      // Few series: InfluxDB 1.6 slows down as the series grow (to a few
      // hundred points/s with one per record, and stops at 1,000,000), and
      // so does the count. No two records share a time (timestamp_end is
      // unique per record), so no point overwrites another in a series.
      INFLUXDB_TAGS: "peer_ip_src,ip_proto",
      BUFFER_SIZE: String(BATCH),
      BUFFER_TIMEOUT: "1",
    }),
    progress: countOf,
    async count(dest) {
      const rows = await countOf(dest);
      return { rows, distinct: rows };
    },
    drop: (dest) => drop(databaseOf(dest)),
    async cleanup() {
      const shown = await influxQuery("SHOW DATABASES");
      for (const [name] of shown?.values ?? []) {
        if (typeof name === "string" && name.startsWith(databaseOf(""))) await drop(name);
      }
    },
    probe: () => probeHttp(`${INFLUX}/ping`, (r) => r.status === 204),
  };
}
