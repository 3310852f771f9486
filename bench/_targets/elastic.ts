/**
 * The Elasticsearch / OpenSearch target: daily indexes
 * `sluice-bench-<id>-run<run>-YYYY-MM-DD`, deleted by name after the check.
 *
 * @module
 */

import { errorText } from "../../lib/log.ts";
import type { Dataset } from "../_dataset.ts";
import { type Baseline, num, progress } from "../_measure.ts";
import { sluiceEnv } from "../_sluice.ts";
import { field, HINT, prepareAll, prepareBaseline, type Prepared, requestOk } from "./_common.ts";
import type { Target, TargetContext } from "./mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ELASTIC_HOST = `127.0.0.1:${Deno.env.get("SLUICE_ELASTIC_PORT") ?? "19200"}`;
const ELASTIC = `http://${ELASTIC_HOST}`;
/** The bulk request sluice sends (`BULK_PATH` in `sinks/elastic/mod.ts`), for the baseline. */
const ELASTIC_BULK_PATH =
  "/_bulk?filter_path=errors,items.*._index,items.*._id,items.*.status,items.*.error";

const es = (method: string, path: string, body?: string, contentType = "application/json") =>
  requestOk("Elasticsearch", ELASTIC, method, path, body, contentType);

/**
 * Checks that Elasticsearch or OpenSearch answers and builds its target.
 *
 * @param ctx What the target needs.
 * @returns The target.
 * @throws {Error} When the server does not answer.
 */
export async function openElastic(ctx: TargetContext): Promise<Target> {
  const { product, version } = await elasticServer(HINT);
  const prefixOf = (what: string) => `sluice-bench-${ctx.id}-${what}`;
  const settings = (group: string, prefix: string) =>
    sluiceEnv({
      ...ctx.common(group),
      SINK: "elastic",
      ELASTIC_HOSTS: ELASTIC_HOST,
      ELASTIC_INDEX_PREFIX: prefix,
      ELASTIC_MAX_SAMPLES_PER_SEND: String(ctx.batch),
      ELASTIC_MAX_TIME_TO_SEND: "1",
    });
  return {
    name: "elastic",
    product,
    server: `${product} ${version} at ${ELASTIC}`,
    service: "elasticsearch",
    batchVariable: "ELASTIC_MAX_SAMPLES_PER_SEND",
    setup: () => Promise.resolve(),
    run(run, group) {
      const prefix = prefixOf(`run${run}`);
      return {
        env: settings(group, prefix),
        pollMs: 250,
        metricsEvery: 1,
        unit: "documents",
        verify: () => verifyElastic(prefix, ctx.data),
        drop: () => deleteIndexes(prefix),
      };
    },
    async baselines() {
      const prefix = prefixOf("baseline");
      const prepared = prepareAll(settings(`${prefixOf("baseline")}-unused`, prefix), ctx);
      return [
        prepareBaseline(product, prepared),
        await baselineBulk(product, prefix, prepared, ctx),
      ];
    },
    cleanup: () => deleteIndexes(`sluice-bench-${ctx.id}`),
  };
}

/** The indexes `<prefix>-*`. */
async function indexesOf(prefix: string): Promise<string[]> {
  const listed: unknown = JSON.parse(
    await es("GET", `/_cat/indices/${prefix}-*?format=json&h=index`),
  );
  return Array.isArray(listed) ? listed.map((i) => String(field(i, "index"))).sort() : [];
}

/** Deletes the indexes `<prefix>-*` by name (wildcard deletes may be refused). */
async function deleteIndexes(prefix: string): Promise<void> {
  const indexes = await indexesOf(prefix);
  if (indexes.length > 0) await es("DELETE", `/${indexes.join(",")}`);
}

async function verifyElastic(prefix: string, data: Dataset): Promise<string> {
  const n = data.records.length;
  await es("POST", `/${prefix}-*/_refresh`);
  const count = field(JSON.parse(await es("GET", `/${prefix}-*/_count`)), "count");
  const sums: unknown = JSON.parse(
    await es(
      "POST",
      `/${prefix}-*/_search`,
      JSON.stringify({
        size: 0,
        aggs: { bytes: { sum: { field: "bytes" } }, packets: { sum: { field: "packets" } } },
      }),
    ),
  );
  const bytes = field(sums, "aggregations", "bytes", "value");
  const packets = field(sums, "aggregations", "packets", "value");
  if (count !== n || bytes !== data.bytes || packets !== data.packets) {
    throw new Error(
      `Cannot verify the documents in ${prefix}-*: count ${count} (want ${n}), ` +
        `sum(bytes) ${bytes} (want ${data.bytes}), sum(packets) ${packets} (want ${data.packets})`,
    );
  }
  const indexes = await indexesOf(prefix);
  return `verified ${num(count)} documents in ${indexes.join(", ")}, sum(bytes) ${
    num(bytes)
  }, sum(packets) ${num(packets)}`;
}

/**
 * The server alone: sluice's bulk bodies, one request at a time, into
 * indexes created beforehand with the same mappings and settings sluice
 * gives them (`new-index-template.json`, 1 shard, 0 replicas).
 */
async function baselineBulk(
  product: string,
  prefix: string,
  prepared: Prepared,
  ctx: TargetContext,
): Promise<Baseline> {
  const template: unknown = JSON.parse(Deno.readTextFileSync(ROOT + "new-index-template.json"));
  const indexes = new Set<string>();
  for (const lines of prepared.requests) {
    for (let i = 0; i < lines.length; i += 2) {
      const index = /"_index":"([^"]+)"/.exec(lines[i]!)?.[1];
      if (index !== undefined) indexes.add(index);
    }
  }
  const body = JSON.stringify({
    settings: {
      number_of_shards: 1,
      number_of_replicas: 0,
      ...(field(template, "settings") as Record<string, unknown> | undefined),
    },
    mappings: field(template, "mappings"),
  });
  for (const index of indexes) await es("PUT", `/${index}`, body);
  const started = Date.now();
  for (const lines of prepared.requests) {
    const answer = await es(
      "POST",
      ELASTIC_BULK_PATH,
      lines.join("\n") + "\n",
      "application/x-ndjson",
    );
    if (field(JSON.parse(answer), "errors") !== false) {
      throw new Error(`Cannot bulk index directly: ${answer.slice(0, 300)}`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  progress(`baseline: ${await verifyElastic(prefix, ctx.data)}`);
  await deleteIndexes(prefix);
  return {
    label: `${product} alone: POST /_bulk of sluice's bodies, ${
      num(ctx.batch)
    } documents per request`,
    seconds,
    records: prepared.records,
    note: "one request at a time, uncompressed, as sluice",
  };
}

/**
 * Which server answers on the local Elasticsearch port.
 *
 * @param hint How to start it, for the error.
 * @returns `Elasticsearch` or `OpenSearch`, and its version.
 * @throws {Error} When it does not answer.
 */
export async function elasticServer(hint: string): Promise<{ product: string; version: string }> {
  let info: unknown;
  try {
    const response = await fetch(`${ELASTIC}/`, { signal: AbortSignal.timeout(3000) });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
    info = await response.json();
  } catch (error) {
    throw new Error(`Cannot reach Elasticsearch at ${ELASTIC} (${errorText(error)}); ${hint}`);
  }
  const product = field(info, "version", "distribution") === "opensearch"
    ? "OpenSearch"
    : "Elasticsearch";
  return { product, version: String(field(info, "version", "number") ?? "?") };
}
