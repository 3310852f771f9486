/**
 * The contract of an input decoder: what it makes of one Kafka message, and
 * what a decoder module exports so that the static registry
 * (`lib/decode/mod.ts`) can configure it. Decoders and the pipeline import
 * this file; it imports no decoder.
 *
 * @module
 */

import type { InputRecord, PrepareResult, RecordKind } from "./record.ts";
import type { VarReader, VarSpec } from "./variables.ts";

/** What a decoder makes of one Kafka message. */
export interface DecodeResult {
  /** Decoded records with their position in the message (from 0). */
  records: Array<{ index: number; record: InputRecord }>;
  /**
   * Records or values deliberately left out: pmacct purge markers, collectd
   * `nan`/`inf`/`null` values. Counted under the decoder's `skipReason`.
   */
  skipped: number;
  /**
   * One entry per part of the message that could not be decoded; `data` is
   * that part (the line), kept in the dead-letter file instead of the whole message.
   */
  errors: Array<{ index: number; error: string; data?: string }>;
}

/** Turns one message value into records. Pure; never throws. */
export type Decoder = (value: Uint8Array | string | null) => DecodeResult;

/** A decoder as the registry knows it. */
export interface DecoderModule {
  /** The `ENCODER` value that selects it. */
  readonly name: string;
  /** Other accepted names, e.g. kafka-influxdb's module paths. */
  readonly aliases?: readonly string[];
  /** One line for help output. */
  readonly title: string;
  /** What it produces; sinks declare which kinds they take. */
  readonly kind: RecordKind;
  /** The `reason` label of `sluice_records_skipped_total` for its skips. */
  readonly skipReason: string;
  /** Variables it reads (e.g. `GRAPHITE_PREFIX`). */
  readonly variables: readonly VarSpec[];
  /**
   * Builds the decoder from its variables; problems go to `reader.problems`.
   *
   * @param reader The configuration reader.
   * @returns The decoder.
   */
  create(reader: VarReader): Decoder;
}

/**
 * One record decoded in a decode worker (`lib/workers.ts`) with what the
 * sink's `prepare()` made of it: the row alone, or the rejection with the
 * record (a dead letter needs it); or, decoded on the main thread, the
 * record alone.
 */
export type DecodedRecord =
  | { index: number; record: InputRecord; prepared?: PrepareResult & { ok: false } }
  | { index: number; record?: undefined; prepared: PrepareResult & { ok: true } };

/** A message decoded and prepared ahead: a {@link DecodeResult} with prepared records. */
export interface Predecoded extends Omit<DecodeResult, "records"> {
  /** The records, prepared where a worker did it. */
  records: DecodedRecord[];
}
