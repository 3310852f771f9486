/**
 * The static registry of sinks. `deno compile` embeds only imports it can
 * see, so every backend is listed here by name rather than loaded by path.
 *
 * @module
 */

import { clickhouseSink } from "./clickhouse/mod.ts";
import { elasticSink } from "./elastic/mod.ts";
import { influxDBSink } from "./influxdb/mod.ts";
import type { SinkModule } from "./registry_types.ts";
import { victoriaMetricsSink } from "./victoriametrics/mod.ts";

/** Every sink, by the name `SINK` selects. */
export const SINKS: Readonly<Record<string, SinkModule>> = {
  clickhouse: clickhouseSink as SinkModule,
  elastic: elasticSink as SinkModule,
  influxdb: influxDBSink as SinkModule,
  vm: victoriaMetricsSink as SinkModule,
};
