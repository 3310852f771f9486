/**
 * `--dry-run`: the pipeline with standard input as the source and standard
 * output as the destination. Every row is printed exactly as the selected
 * sink would send it (for ClickHouse, the JSONEachRow lines), so users can
 * debug their schema without a server.
 *
 * @module
 */

import { writeStdout } from "./log.ts";
import type { PipelineStats } from "./pipeline/mod.ts";
import { allWritten, type PreparedRow, type WriteResult } from "./record.ts";
import type { Sink } from "./sink.ts";

/**
 * Wraps a sink so that writes print the encoded rows instead of sending them.
 *
 * @param inner The configured sink (never connected).
 * @param write Where lines go; standard output by default.
 * @returns A sink that prints.
 */
export function printingSink(inner: Sink, write: (text: string) => void = writeStdout): Sink {
  return {
    name: inner.name,
    connect: () => Promise.resolve(),
    prepare: (record, origin) => inner.prepare(record, origin),
    encode: (rows) => inner.encode(rows),
    write(rows: readonly PreparedRow[]): Promise<WriteResult> {
      const lines = inner.encode(rows);
      if (lines.length > 0) write(lines.join("\n") + "\n");
      return Promise.resolve(allWritten());
    },
    healthcheck: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
}

/**
 * The summary `--dry-run` prints on standard error.
 *
 * @param stats The pipeline's totals.
 * @returns One line, e.g. `Dry run: 3 messages, 4 records, 3 rows, 1 skipped, 1 rejected (convert 1)`.
 */
export function dryRunSummary(stats: PipelineStats): string {
  const rejected = Object.values(stats.rejected).reduce((a, b) => a + b, 0);
  const reasons = Object.entries(stats.rejected).map(([reason, n]) => `${reason} ${n}`).join(", ");
  return `Dry run: ${stats.messages} messages, ${stats.records} records, ${stats.written} rows, ` +
    `${stats.skipped} skipped, ${rejected} rejected${reasons ? ` (${reasons})` : ""}`;
}
