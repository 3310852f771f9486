/**
 * The static registry of input decoders. `deno compile` embeds only imports
 * it can see, so decoders are listed here rather than loaded by name.
 *
 * @module
 */

import type { InputRecord } from "../../sinks/sink.ts";
import type { RecordKind } from "../point.ts";
import type { VarReader, VarSpec } from "../variables.ts";
import { collectdGraphiteDecoder } from "./collectd_graphite.ts";
import { collectdJsonDecoder } from "./collectd_json.ts";
import { influxLineDecoder } from "./influx_line.ts";
import { decodePmacct } from "./pmacct.ts";

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

/** pmacct's JSON output (one object per line). */
export const pmacctDecoder: DecoderModule = {
  name: "pmacct",
  title: "pmacct JSON flow records (kafka_output: json), one object per line",
  kind: "flows",
  skipReason: "marker",
  variables: [],
  create: () => decodePmacct,
};

/** Every decoder, by the name `ENCODER` selects. */
export const DECODERS: Readonly<Record<string, DecoderModule>> = {
  pmacct: pmacctDecoder,
  collectd_graphite: collectdGraphiteDecoder,
  collectd_json: collectdJsonDecoder,
  influx_line: influxLineDecoder,
};

/**
 * Finds a decoder by name or alias. kafka-influxdb's module paths
 * (`kafka_influxdb.encoder.collectd_graphite_encoder`) are accepted too.
 *
 * @param name The `ENCODER` value.
 * @returns The decoder module, or `undefined`.
 */
export function findDecoder(name: string): DecoderModule | undefined {
  const short = name.trim().toLowerCase().replace(/^kafka_influxdb\.encoder\./, "");
  for (const module of Object.values(DECODERS)) {
    if (module.name === short || module.aliases?.includes(short)) return module;
  }
  return undefined;
}
