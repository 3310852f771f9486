/**
 * The static registry of input decoders. `deno compile` embeds only imports
 * it can see, so decoders are listed here rather than loaded by name.
 * `main.ts` hands it to the configuration parser; decoders import their
 * contract from `lib/decoder.ts`, never this file.
 *
 * @module
 */

import type { DecoderModule } from "../decoder.ts";
import { collectdGraphiteDecoder } from "./collectd_graphite.ts";
import { collectdJsonDecoder } from "./collectd_json.ts";
import { influxLineDecoder } from "./influx_line.ts";
import { pmacctDecoder } from "./pmacct.ts";

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
 * @param decoders The registry.
 * @param name The `ENCODER` value.
 * @returns The decoder module, or `undefined`.
 */
export function findDecoder(
  decoders: Readonly<Record<string, DecoderModule>>,
  name: string,
): DecoderModule | undefined {
  const short = name.trim().toLowerCase().replace(/^kafka_influxdb\.encoder\./, "");
  for (const module of Object.values(decoders)) {
    if (module.name === short || module.aliases?.includes(short)) return module;
  }
  return undefined;
}
