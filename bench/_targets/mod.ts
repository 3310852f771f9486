/**
 * The destinations the benchmark drives sluice into, one {@link Target} per
 * sink: how to reach the local server, sluice's variables for a run, how the
 * benchmark sees that all N records arrived, how it checks them, and how it
 * cleans up. Each run writes to a place of its own (a table, an index
 * prefix, a `job` label, a database), dropped once checked. What sluice
 * stores follows the records' shape (`TargetContext.columns`): the
 * ClickHouse columns, and for nfacctd's records the VictoriaMetrics labels
 * and InfluxDB tags without the ports and the time from `timestamp_end`.
 * One file per sink:
 *
 * - `clickhouse.ts`: table `flows_<run>` in a fresh database; progress by
 *   `count()` every 50 ms (and `/metrics` every 500 ms), checked with
 *   `count()` and `sum(bytes)`. With the demo's records, unchanged from the
 *   ClickHouse-only bench.
 * - `elastic.ts`: daily indexes `sluice-bench-<id>-run<run>-YYYY-MM-DD`;
 *   progress by `/metrics` every 250 ms; checked after `_refresh` with
 *   `_count` and sum aggregations of `bytes` and `packets`.
 * - `victoriametrics.ts`: series labelled `job="sluice-bench-<id>-run<run>"`;
 *   progress by `/metrics` every 250 ms; checked after
 *   `/internal/force_flush` by exporting the job's raw samples
 *   (`/api/v1/export`): their number and the sums of `bytes` and `packets`.
 * - `influxdb.ts`: database `sluice_bench_<id>_run<run>` (created by sluice),
 *   one point per record in `pmacct`; progress by `/metrics` every 250 ms;
 *   checked with InfluxQL (`count(bytes)`, `sum(bytes)`, `sum(packets)`)
 *   against the distinct (series, time) keys of the lines sluice encodes,
 *   since points sharing measurement, tags and time overwrite each other.
 *
 * @module
 */

import type { Dataset, RecordShape } from "../_dataset.ts";
import type { Baseline } from "../_measure.ts";
import { openClickHouse } from "./clickhouse.ts";
import { openElastic } from "./elastic.ts";
import { openInfluxDB } from "./influxdb.ts";
import { openVictoriaMetrics } from "./victoriametrics.ts";

/** The sinks the benchmark knows, in the order `--sink all` runs them. */
export const SINK_NAMES = ["clickhouse", "clickhouse26", "elastic", "vm", "influxdb"] as const;

/** A sink name, as `SINK` selects it. */
export type SinkName = (typeof SINK_NAMES)[number];

/** What every target needs from the benchmark. */
export interface TargetContext {
  /** Unique per benchmark: names databases, indexes and jobs. */
  id: string;
  /** The topic holding the records. */
  topic: string;
  /** Its partitions. */
  partitions: number;
  /** The records' shape (`--columns`): what sluice is configured to store. */
  columns: RecordShape;
  /** Records per write (`--batch`). */
  batch: number;
  /** The records (count and sum these) and the messages that carry them (decode these). */
  data: Dataset;
  /**
   * sluice's Kafka, metrics and log variables for a run.
   *
   * @param group The run's consumer group.
   * @returns The variables.
   */
  common(group: string): Record<string, string>;
}

/** One run's destination. */
export interface RunTarget {
  /** sluice's whole environment (see `sluiceEnv`). */
  env: Record<string, string>;
  /** How often the benchmark looks at the progress, in milliseconds. */
  pollMs: number;
  /** Read sluice's `/metrics` every this many looks. */
  metricsEvery: number;
  /** What {@link visible} counts, e.g. `rows in ClickHouse`. */
  unit: string;
  /** Records the destination shows so far, when it can tell cheaply. */
  visible?: () => Promise<number>;
  /**
   * Checks that the destination holds exactly the records.
   *
   * @returns What was checked, for the progress log.
   * @throws {Error} When it does not.
   */
  verify(): Promise<string>;
  /** Drops what the run wrote. */
  drop(): Promise<void>;
}

/** A sink under test and its local server. */
export interface Target {
  /** The sink. */
  name: SinkName;
  /** The server's product, e.g. `OpenSearch`. */
  product: string;
  /** The server's product, version and address, for the log. */
  server: string;
  /** The `scripts/services.sh` service whose pid file names the server process. */
  service: string;
  /** The variable `--batch` sets. */
  batchVariable: string;
  /** Prepares what every run shares (ClickHouse: the database). */
  setup(): Promise<void>;
  /**
   * The destination of one run.
   *
   * @param run The run's number, from 1.
   * @param group The run's consumer group.
   * @returns Its variables, progress and check.
   */
  run(run: number, group: string): RunTarget;
  /**
   * Baselines on the same records: sluice's per-record CPU work for this
   * sink without I/O, and the server alone taking the same bodies.
   *
   * @returns The baselines.
   */
  baselines(): Promise<Baseline[]>;
  /** Drops whatever the benchmark wrote to the server, best effort. */
  cleanup(): Promise<void>;
}

/**
 * Checks that a sink's server answers and builds its target.
 *
 * @param name The sink.
 * @param ctx What the target needs.
 * @returns The target.
 * @throws {Error} When the server does not answer.
 */
export function openTarget(name: SinkName, ctx: TargetContext): Promise<Target> {
  switch (name) {
    case "clickhouse":
    case "clickhouse26":
      return openClickHouse(ctx, name);
    case "elastic":
      return openElastic(ctx);
    case "vm":
      return openVictoriaMetrics(ctx);
    case "influxdb":
      return openInfluxDB(ctx);
  }
}
