/**
 * What each backend module exports so the static registry in `sinks/mod.ts`
 * can configure and build it without knowing its details.
 *
 * @module
 */

import type { Logger } from "../lib/log.ts";
import type { RecordKind } from "../lib/point.ts";
import type { TimeReader } from "../lib/time.ts";
import type { Env, VarReader, VarSpec } from "../lib/variables.ts";
import type { Sink } from "./sink.ts";

/** Batch limits, read from the sink's own variables (e.g. `CLICKHOUSE_MAX_SAMPLES_PER_SEND`). */
export interface BatchLimits {
  /** Flush when the batch holds this many rows. */
  maxRows: number;
  /** Flush when the encoded rows reach this many bytes. */
  maxBytes: number;
  /** Flush when the oldest row has waited this long (milliseconds). */
  maxAgeMs: number;
}

/** What a sink needs from the rest of sluice. */
export interface SinkDeps {
  /** Reads pmacct timestamps in the configured zone. */
  time: TimeReader;
  /** The logger. */
  log: Logger;
  /** What the configured decoder produces (one of the sink's `inputs`). @default "flows" */
  input?: RecordKind;
}

/** A backend as the registry knows it. */
export interface SinkModule<Config = unknown> {
  /** The `SINK` value that selects it. */
  readonly name: string;
  /** Human name for help output. */
  readonly title: string;
  /** Every variable the sink reads. */
  readonly variables: readonly VarSpec[];
  /** Default of `KAFKA_CONSUMER_GROUP_ID` for this sink (the original script's). */
  readonly consumerGroupDefault: string;
  /** The record kinds it can write; `ENCODER` must produce one of them. @default ["flows"] */
  readonly inputs?: readonly RecordKind[];
  /**
   * Defaults of common variables that differ for this sink, as the tool it
   * replaces had them (e.g. `ENCODER`, `KAFKA_TOPIC` for kafka-influxdb).
   */
  readonly commonDefaults?: Readonly<Record<string, string>>;
  /**
   * Whether the environment configures this sink (used when `SINK` is unset).
   *
   * @param env The environment.
   * @returns `true` when one of its identifying variables is set.
   */
  isConfigured(env: Env): boolean;
  /**
   * Reads and validates the sink's variables; problems go to `reader.problems`.
   *
   * @param reader The reader holding the environment.
   * @returns The resolved sink configuration and batch limits.
   */
  parseConfig(reader: VarReader): { config: Config; batch: BatchLimits };
  /**
   * Describes the resolved configuration for `--check-config` (secrets masked).
   *
   * @param config The resolved configuration.
   * @returns Lines of text.
   */
  describe(config: Config): string[];
  /**
   * Builds the sink.
   *
   * @param config The resolved configuration.
   * @param deps Shared services.
   * @returns A sink, not yet connected.
   */
  create(config: Config, deps: SinkDeps): Sink;
}
