/**
 * Committing offsets. These are the commit rules of sluice, for every sink:
 *
 * - a batch's offsets are committed only after the sink acknowledged it
 *   (the batcher gives, per partition, the offset after the last message
 *   whose records are all written or set aside);
 * - commits run one after the other, in the order of the batches, so a
 *   later offset never lands before an earlier one;
 * - a sink that acknowledges before its data is durable (`commitDelayMs`)
 *   has its offsets held until that delay passed since the acknowledgement;
 * - a commit that fails is kept and sent with the next one, or by the
 *   timer when no next one comes (a later offset of a partition supersedes
 *   an earlier one): the rows are written, so the worst case is reading
 *   them again;
 * - at a stop, held offsets are committed once their delay passed, within
 *   the stop's deadline; offsets still held then stay uncommitted and are
 *   read again;
 * - for a sink that makes its writes repeatable (`Sink.pinsRanges`), each
 *   batch's ranges are committed as pins before the write ({@link Commits.pin}):
 *   that commit must succeed, so it is retried like a write;
 * - offsets of partitions this member no longer holds are not committed:
 *   their new owner's commits must not be overwritten by older ones (a
 *   commit that fails as the group moves a partition is not sent again
 *   for it either);
 * - every commit first waits until the dead letters set aside so far are
 *   stored (`lib/dead_letter.ts`), so a message's offset is never committed
 *   before its dead letters.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { sleep } from "../retry.ts";
import { type CommitOffset, type MessageSource, partitionKey } from "../source.ts";

/** Commits the offsets of acknowledged batches, in order. */
export class Commits {
  readonly #source: MessageSource;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #delayMs: () => number;
  readonly #clock: () => number;
  readonly #stored: (() => Promise<void>) | undefined;
  readonly #holds: (key: string) => boolean;
  /** Offsets of acknowledged batches waiting for the sink's commit delay, oldest first. */
  readonly #held: Array<{ offsets: readonly CommitOffset[]; due: number }> = [];
  #chain: Promise<void> = Promise.resolve();
  /** Offsets whose commit failed, sent again with the next commit. */
  #failed = new Map<string, CommitOffset>();

  /**
   * @param options The source to commit to, where counts and logs go, the
   *   sink's commit delay (read at each acknowledgement), the clock, what
   *   resolves once the dead letters set aside so far are stored, and
   *   whether this member holds a partition ({@link partitionKey}; unset: all).
   */
  constructor(options: {
    source: MessageSource;
    metrics: Metrics;
    log: Logger;
    delayMs: () => number;
    clock: () => number;
    stored?: () => Promise<void>;
    holds?: (key: string) => boolean;
  }) {
    this.#source = options.source;
    this.#metrics = options.metrics;
    this.#log = options.log;
    this.#delayMs = options.delayMs;
    this.#clock = options.clock;
    this.#stored = options.stored;
    this.#holds = options.holds ?? (() => true);
  }

  /** Whether a commit failed and waits to be sent again. */
  get failing(): boolean {
    return this.#failed.size > 0;
  }

  /**
   * Sends a failed commit again (the timer does, so that it does not wait
   * for a next batch that may not come on a quiet topic).
   *
   * @returns Resolves when it is done (or failed and kept).
   */
  async retryFailed(): Promise<void> {
    if (this.#failed.size > 0) await this.#serial([]);
  }

  /** Whether offsets are held for the commit delay. */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /**
   * Commits the offsets of a batch the sink acknowledged just now, or holds
   * them for the sink's commit delay.
   *
   * @param offsets The batch's offsets.
   * @returns Resolves when the commits due now are done.
   */
  async acknowledged(offsets: readonly CommitOffset[]): Promise<void> {
    const delay = this.#delayMs();
    if (delay <= 0) return void await this.#serial(offsets);
    this.#held.push({ offsets, due: this.#clock() + delay });
    await this.commitDue();
  }

  /**
   * Commits the held offsets whose delay passed (all of them with `all`).
   *
   * @param all Whether to commit every held offset regardless of its delay.
   * @returns Resolves when they are committed (or failed and kept).
   */
  async commitDue(all = false): Promise<void> {
    const now = this.#clock();
    const ready = all ? this.#held.length : this.#held.findIndex((h) => h.due > now);
    const count = ready === -1 ? this.#held.length : ready;
    if (count === 0) return;
    await this.#serial(this.#held.splice(0, count).flatMap((h) => h.offsets));
  }

  /**
   * The last commits of a stop: waits for the last held offsets' delay,
   * commits everything, and sends again a commit that had failed.
   *
   * @param stop The stop's deadline.
   * @returns Resolves when everything is committed.
   * @throws {Error} The signal's reason, when the deadline passed with offsets still held;
   *   an error when the last commit failed (the offsets are read again at the next start).
   */
  async finish(stop: AbortSignal): Promise<void> {
    const last = this.#held.at(-1);
    if (last !== undefined) {
      await sleep(Math.max(0, last.due - this.#clock()), stop);
      if (stop.aborted) throw stop.reason;
      await this.commitDue(true);
    }
    await this.#chain;
    await this.retryFailed();
    if (this.#failed.size > 0) {
      throw new Error(
        `Cannot commit the offsets of ${this.#failed.size} partition(s) at stop; ` +
          "their messages are read again at the next start",
      );
    }
  }

  /**
   * Commits the pins of a batch about to be written (offset and pinned
   * range per partition), after every earlier commit.
   *
   * @param offsets One pin per partition of the batch.
   * @returns Whether the commit succeeded (a failed one is kept for the next commit).
   */
  async pin(offsets: readonly CommitOffset[]): Promise<boolean> {
    return await this.#serial(offsets);
  }

  /**
   * Forgets what is kept of partitions this member no longer holds.
   *
   * @param holds Whether this member holds a partition ({@link partitionKey}).
   */
  keepOnly(holds: (key: string) => boolean): void {
    for (const key of [...this.#failed.keys()]) if (!holds(key)) this.#failed.delete(key);
    for (const h of this.#held) {
      h.offsets = h.offsets.filter((o) => holds(partitionKey(o)));
    }
  }

  /** Commits one after the other: the timer and the write path may both commit. */
  #serial(offsets: readonly CommitOffset[]): Promise<boolean> {
    const next = this.#chain.then(() => this.#commit(offsets));
    this.#chain = next.then(() => {});
    return next;
  }

  async #commit(offsets: readonly CommitOffset[]): Promise<boolean> {
    const merged = new Map(this.#failed);
    for (const o of offsets) merged.set(partitionKey(o), o);
    // A commit kept from before the group moved a partition (it failed
    // after keepOnly() ran) must not reach its new owner's offsets.
    for (const key of [...merged.keys()]) if (!this.#holds(key)) merged.delete(key);
    if (merged.size === 0) return true;
    try {
      await this.#stored?.();
      await this.#source.commit([...merged.values()]);
      this.#log.debug("Committed offsets", { offsets: [...merged.values()] });
      this.#failed.clear();
      this.#metrics.commits.inc({ outcome: "ok" });
      return true;
    } catch (error) {
      this.#failed = merged;
      this.#metrics.commits.inc({ outcome: "failed" });
      this.#log.warn("Cannot commit offsets; retrying with the next batch", {
        error,
        partitions: merged.size,
      });
      return false;
    }
  }
}
