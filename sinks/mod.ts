/**
 * The static registry of sinks. `deno compile` embeds only imports it can
 * see, so every backend is listed here by name rather than loaded by path.
 * `main.ts` hands it, with the decoders, to the configuration parser.
 *
 * @module
 */

import type { Registries } from "../lib/config.ts";
import { DECODERS } from "../lib/decode/mod.ts";
import type { SinkModule } from "../lib/sink.ts";
import { clickhouseSink } from "./clickhouse/mod.ts";
import { elasticSink } from "./elastic/mod.ts";
import { influxDBSink } from "./influxdb/mod.ts";
import { victoriaMetricsSink } from "./victoriametrics/mod.ts";

/** Every sink, by the name `SINK` selects. */
export const SINKS: Readonly<Record<string, SinkModule>> = {
  clickhouse: clickhouseSink as SinkModule,
  elastic: elasticSink as SinkModule,
  influxdb: influxDBSink as SinkModule,
  vm: victoriaMetricsSink as SinkModule,
};

/** Both static registries, as `parseConfig()` and `allVariables()` take them. */
export const REGISTRIES: Registries = { sinks: SINKS, decoders: DECODERS };
