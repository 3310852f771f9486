/**
 * The per-record CPU work of sluice, without Kafka and without servers:
 * decode (pmacct JSON), `Sink.prepare()` and `Sink.encode()` for every sink,
 * on realistic pmacct records (the demo's generator, `scripts/demo_feed.ts`,
 * with the fields a typical `aggregate` adds, written the way pmacct's
 * jansson writes them, `", "` and `": "` between items).
 *
 * It measures the process's CPU time, not the wall clock, and reports the
 * median of many short rounds, so that other work on the machine changes
 * the result less. With `--against <dir>` (another checkout of sluice, e.g.
 * `git worktree add /tmp/base HEAD`) it loads that tree's modules into the
 * same process and alternates rounds between the two, so that both meet the
 * same load: the median of the paired ratios is the change.
 *
 * ```sh
 * deno run -A bench/decode_encode.ts [--records 2000] [--rounds 51] [--sink clickhouse,...]
 * deno run -A bench/decode_encode.ts --against /tmp/base --rounds 201
 * ```
 *
 * @module
 */

import process from "node:process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import * as config from "../lib/config.ts";
import { log, writeStdout } from "../lib/log.ts";
import type { PreparedRow } from "../lib/record.ts";
import type { Sink } from "../lib/sink.ts";
import * as time from "../lib/time.ts";
import { flowRecord } from "../scripts/demo_feed.ts";
import * as sinks from "../sinks/mod.ts";

const COMMON = { KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9092", KAFKA_TOPIC: "bench" };

/** Each sink's variables, as a run against the local services would set them. */
const ENVS: Record<string, Record<string, string>> = {
  clickhouse: {
    SINK: "clickhouse",
    CLICKHOUSE_HOST: "http://127.0.0.1:8123",
    CLICKHOUSE_DATA_SCHEMA:
      "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
      "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime,packets:UInt64," +
      "bytes:UInt64,as_src:UInt32,as_dst:UInt32,mac_src:String,timestamp_start:DateTime64(6)",
  },
  elastic: { SINK: "elastic", ELASTIC_HOSTS: "127.0.0.1:9200" },
  vm: { SINK: "vm", VM_URL: "http://127.0.0.1:8428", VM_JOB: "pmacct", VM_INSTANCE: "bench" },
  influxdb: { SINK: "influxdb", INFLUXDB_URL: "http://127.0.0.1:8086", ENCODER: "pmacct" },
};

/** What a tree of sluice gives the benchmark: its configuration, time reader and sinks. */
interface Tree {
  config: { parseConfig: typeof config.parseConfig };
  time: { TimeReader: typeof time.TimeReader };
  sinks: { REGISTRIES: typeof sinks.REGISTRIES };
}

/** One sink of one tree, ready to run. */
interface Runner {
  sink: Sink;
  decode: (value: Uint8Array) => { records: Array<{ index: number; record: unknown }> };
}

/** A pmacct record with the fields of a typical aggregate, as pmacct's JSON writes it. */
function message(i: number, now: number): Uint8Array {
  const flow = flowRecord(i, now);
  const record = {
    ...flow,
    mac_src: `00:1e:67:${(i & 255).toString(16).padStart(2, "0")}:bb:cc`,
    as_src: 64512 + (i % 100),
    as_dst: 15169,
    timestamp_start: `${flow.stamp_updated}.${String(i % 1_000_000).padStart(6, "0")}`,
    writer_id: "default_kafka/18604",
  };
  const text = JSON.stringify(record).replace(/([}\]"\d]),"/g, '$1, "').replaceAll('":', '": ');
  return new TextEncoder().encode(text);
}

function cpuMs(): number {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
}

function build(tree: Tree, name: string): Runner {
  const resolved = tree.config.parseConfig({ ...COMMON, ...ENVS[name] }, tree.sinks.REGISTRIES);
  const sink = resolved.sink.module.create(resolved.sink.config, {
    time: new tree.time.TimeReader(resolved.timeZone),
    log,
    input: resolved.decoder.module.kind,
  });
  return { sink, decode: resolved.decoder.decode };
}

/** One round: every message decoded, prepared and encoded in batches of 1000 rows; ns a record. */
function round(run: Runner, values: readonly Uint8Array[]): number {
  const started = cpuMs();
  let rows: PreparedRow[] = [];
  for (let i = 0; i < values.length; i++) {
    for (const { index, record } of run.decode(values[i]!).records) {
      const origin = { topic: "bench", partition: 0, offset: String(i), index };
      const prepared = run.sink.prepare(record as Record<string, unknown>, origin);
      if (!prepared.ok) throw new Error(`Cannot prepare record ${i}: ${prepared.rejection.error}`);
      rows.push({ row: prepared.row, bytes: prepared.bytes, origin });
      if (rows.length === 1000) {
        run.sink.encode(rows);
        rows = [];
      }
    }
  }
  if (rows.length > 0) run.sink.encode(rows);
  return (cpuMs() - started) * 1e6 / values.length;
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

function rate(nsPerRecord: number): string {
  return `${Math.round(1e9 / nsPerRecord)} records/s (${nsPerRecord.toFixed(0)} ns/record)`;
}

async function main(args: string[]): Promise<number> {
  const { values: flags } = parseArgs({
    args,
    options: {
      records: { type: "string", default: "2000" },
      rounds: { type: "string", default: "51" },
      sink: { type: "string", default: Object.keys(ENVS).join(",") },
      against: { type: "string" },
    },
  });
  const rounds = Number(flags.rounds);
  const now = Date.now();
  const values = Array.from({ length: Number(flags.records) }, (_, i) => message(i, now));
  const here: Tree = { config, time, sinks };
  let other: Tree | undefined;
  if (flags.against !== undefined) {
    const base = pathToFileURL(resolve(flags.against) + "/").href;
    other = {
      config: await import(new URL("lib/config.ts", base).href),
      time: await import(new URL("lib/time.ts", base).href),
      sinks: await import(new URL("sinks/mod.ts", base).href),
    };
  }
  for (const name of flags.sink.split(",")) {
    const mine = build(here, name);
    const theirs = other === undefined ? undefined : build(other, name);
    for (let w = 0; w < 3; w++) {
      round(mine, values);
      if (theirs !== undefined) round(theirs, values);
    }
    const times: number[] = [];
    const base: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which tree goes first, so that neither always runs warmer.
      if (theirs !== undefined && r % 2 === 1) base.push(round(theirs, values));
      times.push(round(mine, values));
      if (theirs !== undefined && r % 2 === 0) base.push(round(theirs, values));
    }
    let line = `${name.padEnd(10)} ${rate(median(times))}`;
    if (theirs !== undefined) {
      const change = median(times.map((t, i) => t / base[i]!)) * 100 - 100;
      line += `, against ${rate(median(base))}: ${change >= 0 ? "+" : ""}${change.toFixed(1)}% ` +
        "CPU time a record (median of paired rounds)";
    }
    writeStdout(`${line}\n`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
