/**
 * Delivering one batch: write it, and keep at it until the sink
 * acknowledged every row or set it aside. These are the retry rules of
 * sluice, for every sink:
 *
 * - a write that fails with `retry` (or any error that is not a
 *   {@link SinkWriteError}) is sent again after the retry policy's backoff,
 *   honouring the sink's `Retry-After`, with heartbeats to the consumer
 *   group meanwhile; there is no limit on attempts: nothing is dropped for
 *   a sink that is down;
 * - rows the sink asks to send again (per-item 429 in a bulk answer) are
 *   sent again the same way, alone;
 * - `split` sends each half on its own, down to a single row, which is
 *   then set aside with the sink's message (`reason="server"`); for a sink
 *   with `pinsRanges`, each partition's range goes alone first;
 * - rows the sink refused in its answer are set aside, the others counted
 *   as written;
 * - only a stop's deadline ends the attempts (the stop signal aborts).
 *
 * @module
 */

import { errorLine, type Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { partitionRows } from "../ranges.ts";
import type { PreparedRow } from "../record.ts";
import type { RetryPolicy } from "../retry.ts";
import { type Sink, SinkWriteError } from "../sink.ts";
import type { Tally } from "./stats.ts";

/** Writes batches into one sink until they are acknowledged. */
export class Delivery {
  readonly #sink: Sink;
  readonly #policy: RetryPolicy;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #tally: Tally;
  readonly #heartbeat: () => Promise<void>;
  readonly #clock: () => number;
  #failingSince: number | undefined;

  /**
   * @param options The sink, the retry policy, where counts and logs go,
   *   the consumer group heartbeat, and the clock.
   */
  constructor(options: {
    sink: Sink;
    policy: RetryPolicy;
    metrics: Metrics;
    log: Logger;
    tally: Tally;
    heartbeat: () => Promise<void>;
    clock: () => number;
  }) {
    this.#sink = options.sink;
    this.#policy = options.policy;
    this.#metrics = options.metrics;
    this.#log = options.log;
    this.#tally = options.tally;
    this.#heartbeat = options.heartbeat;
    this.#clock = options.clock;
  }

  /** Clock time of the first failure of the current outage, if the sink is failing. */
  get failingSince(): number | undefined {
    return this.#failingSince;
  }

  /**
   * Writes rows until every one is acknowledged or set aside.
   *
   * @param rows The rows, in order.
   * @param stop Aborts the attempts (a stop's deadline); its reason is thrown.
   * @returns Resolves when the rows are delivered.
   * @throws {Error} The stop signal's reason, when it aborted while rows were left.
   */
  async deliver(rows: readonly PreparedRow[], stop: AbortSignal): Promise<void> {
    const sinkName = this.#sink.name;
    let pending = rows;
    let attempt = 0;
    while (pending.length > 0) {
      let error: SinkWriteError;
      try {
        const result = await this.#sink.write(pending);
        this.#markUp();
        for (const { index, rejection } of result.rejected) {
          const row = pending[index];
          if (row) this.#tally.setAside(row.origin, rejection, row.row, "row");
        }
        // One count per write: the rows' bytes, minus those refused or to be sent again.
        let bytes = 0;
        for (const row of pending) bytes += row.bytes;
        for (const { index } of result.rejected) bytes -= pending[index]?.bytes ?? 0;
        for (const index of result.retry) bytes -= pending[index]?.bytes ?? 0;
        this.#tally.written(
          pending.length - result.rejected.length - result.retry.length,
          bytes,
        );
        if (result.overwritten) {
          this.#metrics.overwritten.inc({ sink: sinkName }, result.overwritten);
        }
        if (result.retry.length === 0) return;
        pending = result.retry.flatMap((i) => pending[i] ?? []);
        error = new SinkWriteError(`Sink asked to send ${pending.length} rows again`, {
          action: "retry",
          errorType: "partial",
        });
      } catch (caught) {
        error = caught instanceof SinkWriteError ? caught : new SinkWriteError(
          `Cannot write to ${sinkName}: ${String(caught)}`,
          { action: "retry", errorType: "unknown", cause: caught },
        );
      }
      if (error.action === "split") {
        this.#metrics.splits.inc({ sink: sinkName });
        if (pending.length === 1) {
          const row = pending[0]!;
          this.#tally.setAside(
            row.origin,
            { reason: "server", error: error.message },
            row.row,
            "row",
          );
          return;
        }
        // A sink that writes each partition's range with its own token is
        // split by partition first: a range that landed keeps its token.
        const parts = this.#sink.pinsRanges ? partitionRows(pending) : [];
        if (parts.length > 1) {
          for (const part of parts) await this.deliver(part.rows, stop);
          return;
        }
        const middle = Math.ceil(pending.length / 2);
        await this.deliver(pending.slice(0, middle), stop);
        await this.deliver(pending.slice(middle), stop);
        return;
      }
      attempt++;
      this.#tally.retry(error.errorType);
      this.#metrics.sinkReachable(sinkName, false, errorLine(error));
      this.#failingSince ??= this.#clock();
      if (stop.aborted) throw stop.reason;
      const delay = this.#policy.delay(attempt, error.retryAfterMs);
      this.#log.limited(`retry:${sinkName}`, "warn", "Cannot write batch, retrying", {
        sink: sinkName,
        rows: pending.length,
        attempt,
        retry_in_seconds: delay / 1000,
        error,
      });
      await this.#policy.wait(delay, { signal: stop, heartbeat: this.#heartbeat });
    }
  }

  #markUp(): void {
    if (this.#failingSince !== undefined) {
      this.#log.info("Sink is writing again", {
        sink: this.#sink.name,
        after_seconds: (this.#clock() - this.#failingSince) / 1000,
      });
      this.#failingSince = undefined;
    }
    this.#metrics.sinkReachable(this.#sink.name, true);
  }
}
