/**
 * The VictoriaMetrics target: series labelled `job="sluice-bench-<id>-run<run>"`,
 * `instance="bench"`, deleted after the check.
 *
 * The demo's records (`--columns 11`) run with the sink's defaults, as
 * before. nfacctd's records (`--columns 20`) run as a flow deployment would:
 * the ports out of the labels too, so that series are a few thousand
 * (exporter, interfaces, ASes, hosts, masks, flags, protocol, ToS, sampling
 * rate) rather than one per record, and the sample time from
 * `timestamp_end`, the flow's own time to the microsecond, rather than the
 * purge's second that thousands of records of a series share.
 *
 * @module
 */

import { errorText } from "../../lib/log.ts";
import { DEFAULT_AVOID_LABELS } from "../../sinks/victoriametrics/config.ts";
import type { RecordShape } from "../_dataset.ts";
import { type Baseline, debianVersion, num, progress, sleep } from "../_measure.ts";
import { sluiceEnv } from "../_sluice.ts";
import { field, HINT, prepareAll, prepareBaseline, type Prepared, requestOk } from "./_common.ts";
import type { Target, TargetContext } from "./mod.ts";

const VM = `http://127.0.0.1:${Deno.env.get("SLUICE_VM_PORT") ?? "18428"}`;

const vm = (method: string, path: string, body?: BodyInit) =>
  requestOk("VictoriaMetrics", VM, method, path, body);

/** sluice's label and time variables per record shape. */
const SHAPE_SETTINGS: Readonly<Record<RecordShape, Record<string, string>>> = {
  11: {},
  20: {
    VM_AVOID_LABELS: `${DEFAULT_AVOID_LABELS},port_src,port_dst`,
    VM_TIMESTAMP_FIELD: "timestamp_end",
  },
};

/**
 * Checks that VictoriaMetrics answers and builds its target.
 *
 * @param ctx What the target needs.
 * @returns The target.
 * @throws {Error} When the server does not answer.
 */
export async function openVictoriaMetrics(ctx: TargetContext): Promise<Target> {
  try {
    const response = await fetch(`${VM}/health`, { signal: AbortSignal.timeout(3000) });
    if ((await response.text()).trim() !== "OK") throw new Error(`HTTP ${response.status}`);
  } catch (error) {
    throw new Error(`Cannot reach VictoriaMetrics at ${VM} (${errorText(error)}); ${HINT}`);
  }
  const jobOf = (what: string) => `sluice-bench-${ctx.id}-${what}`;
  const settings = (group: string, job: string) =>
    sluiceEnv({
      ...ctx.common(group),
      SINK: "vm",
      VM_URL: VM,
      VM_JOB: job,
      VM_INSTANCE: "bench",
      VM_MAX_SAMPLES_PER_SEND: String(ctx.batch),
      VM_MAX_TIME_TO_SEND: "1",
      ...SHAPE_SETTINGS[ctx.columns],
    });
  return {
    name: "vm",
    product: "VictoriaMetrics",
    server: `VictoriaMetrics ${await debianVersion("victoria-metrics")} at ${VM}`,
    service: "victoriametrics",
    batchVariable: "VM_MAX_SAMPLES_PER_SEND",
    setup: () => Promise.resolve(),
    run(run, group) {
      const job = jobOf(`run${run}`);
      const env = settings(group, job);
      return {
        env,
        pollMs: 250,
        metricsEvery: 1,
        unit: "records",
        verify: () => verifyVictoriaMetrics(job, env, ctx),
        drop: () => deleteSeries(`{job="${job}"}`),
      };
    },
    async baselines() {
      const job = jobOf("baseline");
      const env = settings(`${job}-unused`, job);
      const prepared = prepareAll(env, ctx);
      return [
        prepareBaseline("VictoriaMetrics", prepared, ", gzip not included"),
        await baselineImport(job, env, prepared, ctx),
      ];
    },
    cleanup: () => deleteSeries(`{job=~"sluice-bench-${ctx.id}-.*"}`),
  };
}

async function deleteSeries(selector: string): Promise<void> {
  // Series registered moments ago are not found by the delete until flushed.
  await vm("GET", "/internal/force_flush");
  await vm("POST", `/api/v1/admin/tsdb/delete_series?match[]=${encodeURIComponent(selector)}`);
}

/** Samples and value sums per metric name of a job, from the raw export. */
async function exportJob(
  job: string,
): Promise<{ series: number; samples: Map<string, number>; sums: Map<string, number> }> {
  const path = `/api/v1/export?match[]=${encodeURIComponent(`{job="${job}"}`)}&start=0`;
  const response = await fetch(VM + path);
  if (!response.ok || response.body === null) {
    throw new Error(`Cannot export job ${job} from VictoriaMetrics: HTTP ${response.status}`);
  }
  const samples = new Map<string, number>();
  const sums = new Map<string, number>();
  let series = 0, rest = "";
  const take = (line: string) => {
    if (line.trim() === "") return;
    const parsed: unknown = JSON.parse(line);
    const name = String(field(parsed, "metric", "__name__"));
    const values = field(parsed, "values");
    if (!Array.isArray(values)) return;
    series++;
    samples.set(name, (samples.get(name) ?? 0) + values.length);
    sums.set(name, values.reduce((a: number, v) => a + Number(v), sums.get(name) ?? 0));
  };
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) take(line);
  }
  take(rest);
  return { series, samples, sums };
}

/**
 * Checks a job's samples: one per metric name per record, and the sums of
 * `bytes` and `packets`. VictoriaMetrics 1.79.5 keeps every sample of a
 * series at one timestamp unless `-dedup.minScrapeInterval` is set (which
 * the local service does not set), so records whose labels and timestamp
 * collide (about 450 of 200,000 here: the labels leave the per-record fields
 * `stamp_inserted`, `bytes` and `packets` out) are all stored. A server that
 * deduplicates keeps one per (labels, timestamp): that count is accepted
 * too, and said.
 */
async function verifyVictoriaMetrics(
  job: string,
  env: Record<string, string>,
  ctx: TargetContext,
): Promise<string> {
  const n = ctx.data.records.length;
  const names = (env["VM_METRICS_NAMES"] ?? env["VM_METRIC_NAME"] ?? "bytes,packets")
    .split(",").map((s) => s.trim()).filter((s) => s !== "");
  const want = n * names.length;
  await vm("GET", "/internal/force_flush");
  let exported = await exportJob(job);
  let total = 0;
  // Series registered moments ago may take a little longer to be searchable.
  for (let attempt = 0; attempt < 20; attempt++) {
    total = [...exported.samples.values()].reduce((a, b) => a + b, 0);
    if (total >= want) break;
    await sleep(250);
    exported = await exportJob(job);
  }
  const sums: string[] = [];
  const problems: string[] = [];
  for (
    const [name, expected] of [["bytes", ctx.data.bytes], ["packets", ctx.data.packets]] as const
  ) {
    if (!names.includes(name)) continue;
    const got = exported.sums.get(name) ?? 0;
    sums.push(`sum(${name}) ${num(got)}`);
    if (got !== expected) problems.push(`sum(${name}) ${got} (want ${expected})`);
  }
  const what = `${num(total)} samples of ${names.join(", ")} in ${num(exported.series)} series`;
  if (total === want && problems.length === 0) return `verified ${what}, ${sums.join(", ")}`;
  // Fewer samples: would a deduplicating server have kept exactly this many?
  const distinct = new Set<string>();
  for (const lines of prepareAll(env, ctx).requests) {
    for (const line of lines) distinct.add(line.replace(/"values":\[[^\]]*\],/, ""));
  }
  if (total === distinct.size) {
    return `verified ${what}: ${num(want - total)} samples fewer than ${
      num(want)
    } because the server deduplicated samples of identical labels and timestamp ` +
      `(${num(distinct.size)} distinct), so the sums were not checked`;
  }
  throw new Error(
    `Cannot verify job ${job}: ${what} (want ${num(want)}, or ${
      num(distinct.size)
    } if the server deduplicates)${problems.length > 0 ? `; ${problems.join(", ")}` : ""}`,
  );
}

/** The server alone: sluice's import lines, one request at a time, uncompressed. */
async function baselineImport(
  job: string,
  env: Record<string, string>,
  prepared: Prepared,
  ctx: TargetContext,
): Promise<Baseline> {
  const started = Date.now();
  for (const lines of prepared.requests) {
    await vm("POST", "/api/v1/import", lines.join("\n") + "\n");
  }
  const seconds = (Date.now() - started) / 1000;
  progress(`baseline: ${await verifyVictoriaMetrics(job, env, ctx)}`);
  await deleteSeries(`{job="${job}"}`);
  return {
    label: `VictoriaMetrics alone: POST /api/v1/import of sluice's lines, ${
      num(ctx.batch)
    } records per request`,
    seconds,
    records: prepared.records,
    note: "one request at a time, uncompressed (sluice gzips)",
  };
}
