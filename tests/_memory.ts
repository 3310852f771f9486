/**
 * The in-memory source and sink of the unit tests: the pipeline's delivery
 * rules are tested with them, the same rules against real Kafka and real
 * servers in tests/integration/.
 *
 * @module
 */

import { allWritten, type InputRecord, type PreparedRow, type WriteResult } from "../lib/record.ts";
import { type Sink, SinkWriteError } from "../lib/sink.ts";
import type {
  AssignedOptions,
  CommitOffset,
  MessageHandler,
  MessageSource,
  SourceHooks,
  SourceMessage,
  TopicPartition,
} from "../lib/source.ts";

/** A source fed by the test with {@link MemorySource.push}; records commits and heartbeats. */
export class MemorySource implements MessageSource {
  /** Every commit, in order. */
  commits: CommitOffset[][] = [];
  /** Heartbeats sent. */
  heartbeats = 0;
  /** Whether `close()` was called. */
  closed = false;
  #handler: MessageHandler | undefined;
  #hooks: SourceHooks = {};
  /** Resolved: the test decides when messages end. */
  finished: Promise<void> = Promise.resolve();

  /** @inheritdoc */
  start(handler: MessageHandler, hooks: SourceHooks = {}): Promise<void> {
    this.#handler = handler;
    this.#hooks = hooks;
    return Promise.resolve();
  }

  /**
   * Tells the pipeline which partitions it holds, as a consumer group join does.
   *
   * @param partitions The partitions held now.
   * @param options `rejoined`: the member had been out of the group.
   */
  assign(partitions: TopicPartition[], options: AssignedOptions = {}): void {
    this.#hooks.assigned?.(partitions, options);
  }

  /**
   * Hands messages to the pipeline one at a time, waiting when it holds the source.
   *
   * @param messages The messages.
   * @returns Resolves when every message was handled.
   */
  async push(messages: SourceMessage[]): Promise<void> {
    for (const m of messages) await this.#handler!(m);
  }

  /** @inheritdoc */
  drain(): Promise<void> {
    return Promise.resolve();
  }

  /** @inheritdoc */
  commit(offsets: CommitOffset[]): Promise<void> {
    this.commits.push(offsets);
    return Promise.resolve();
  }

  /** @inheritdoc */
  heartbeat(): Promise<void> {
    this.heartbeats++;
    return Promise.resolve();
  }

  /** @inheritdoc */
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/**
 * Writes rows (the records themselves) to an array; fails `failures` times
 * first with a retryable error; refuses (with `split`) any batch holding a
 * row whose `n` is in `bad`; a record with `n: "unconvertible"` cannot be prepared.
 */
export class MemorySink implements Sink<InputRecord> {
  /** Registry name and metric label. */
  readonly name = "memory";
  /** Every row written, in order. */
  rows: InputRecord[] = [];
  /** Write calls, failed ones included. */
  writes = 0;
  /** How many writes fail before they succeed. */
  failures = 0;
  /** `Retry-After` of the failures, in milliseconds. */
  retryAfterMs: number | undefined;
  /** Values of `n` the sink refuses. */
  bad = new Set<number>();

  /** @inheritdoc */
  connect(): Promise<void> {
    return Promise.resolve();
  }

  /** @inheritdoc */
  prepare(record: InputRecord) {
    if (record["n"] === "unconvertible") {
      return { ok: false as const, rejection: { reason: "convert", error: "n is not a number" } };
    }
    return { ok: true as const, row: record, bytes: 10 };
  }

  /** @inheritdoc */
  encode(rows: readonly PreparedRow<InputRecord>[]): string[] {
    return rows.map((r) => JSON.stringify(r.row));
  }

  /** @inheritdoc */
  write(rows: readonly PreparedRow<InputRecord>[]): Promise<WriteResult> {
    this.writes++;
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(
        new SinkWriteError("Cannot connect", {
          action: "retry",
          errorType: "network",
          retryAfterMs: this.retryAfterMs,
        }),
      );
    }
    if (rows.some((r) => this.bad.has(r.row["n"] as number))) {
      return Promise.reject(
        new SinkWriteError("Code: 117. bad data", { action: "split", errorType: "code_117" }),
      );
    }
    this.rows.push(...rows.map((r) => r.row));
    return Promise.resolve(allWritten());
  }

  /** @inheritdoc */
  healthcheck(): Promise<boolean> {
    return Promise.resolve(true);
  }

  /** @inheritdoc */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
