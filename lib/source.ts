/**
 * Where messages come from, as the pipeline sees it: one message at a time,
 * a handler that may hold the source by returning a promise, offsets
 * committed only when the pipeline says so. `lib/kafka.ts` is the real
 * source, `lib/stdin.ts` the one of `--dry-run`.
 *
 * @module
 */

import type { Predecoded } from "./decoder.ts";

/** An offset to commit: the next message to read on a partition. */
export interface CommitOffset {
  /** Topic. */
  topic: string;
  /** Partition. */
  partition: number;
  /** The offset of the next message to read (last consumed + 1), as a string. */
  offset: string;
  /** Metadata stored with the offset: a pinned range (`lib/ranges.ts`), or none. */
  metadata?: string;
}

/** A topic partition. */
export interface TopicPartition {
  /** Topic. */
  topic: string;
  /** Partition. */
  partition: number;
}

/**
 * A partition as a map key, the same wherever sluice keys by partition.
 *
 * @param at The topic and partition.
 * @returns `topic\u0000partition`.
 */
export function partitionKey(at: TopicPartition): string {
  return `${at.topic}\u0000${at.partition}`;
}

/** Where the consumer group left a partition, as it was when this member got it. */
export interface Resume {
  /** The committed offset; `undefined` when the group has none. */
  offset?: string;
  /** The metadata committed with it, if any. */
  metadata?: string;
}

/** One message as the pipeline sees it. */
export interface SourceMessage {
  /** Topic. */
  topic: string;
  /** Partition. */
  partition: number;
  /** Offset, as a decimal string. */
  offset: string;
  /** The value; `null` for a tombstone. */
  value: Uint8Array | null;
  /** The key, if any. */
  key?: Uint8Array | null;
  /**
   * The message's Kafka timestamp, in milliseconds since the epoch: when it
   * was produced (CreateTime) or appended to the log (LogAppendTime), as the
   * topic's `message.timestamp.type` says. Unset when the source has none (stdin).
   */
  timestamp?: number;
  /**
   * Set on the first message of a partition after this member was assigned
   * it: what the group had committed for it then.
   */
  resume?: Resume;
  /** The message decoded and prepared by a decode worker (`lib/workers.ts`), if one did. */
  decoded?: Predecoded;
}

/** How a (re)join came about. */
export interface AssignedOptions {
  /**
   * This member had been out of the group (its session expired: a long
   * pause, a broker outage) and joined as a new member: partitions it held
   * before may have been read and written by others meanwhile, so nothing
   * it holds from before is its own any more, even a partition it got back.
   */
  rejoined?: boolean;
}

/** What a source tells besides messages. */
export interface SourceHooks {
  /**
   * The partitions this member holds now, after every (re)join of the
   * consumer group; the others' unwritten rows belong to their new owner.
   */
  assigned?(partitions: readonly TopicPartition[], options?: AssignedOptions): void;
}

/** Handles one message; may return a promise to hold the source. */
export type MessageHandler = (message: SourceMessage) => void | Promise<void>;

/** Where messages come from. */
export interface MessageSource {
  /**
   * Starts delivering messages to the handler.
   *
   * @param handler Called once per message, in order per partition.
   * @param hooks Told of assignments (a source without groups never calls them).
   * @returns Resolves once the source is running.
   */
  start(handler: MessageHandler, hooks?: SourceHooks): Promise<void>;
  /** Resolves when a finite source (stdin) has delivered everything. */
  readonly finished: Promise<void>;
  /** Stops handing out messages and waits for the handler in flight. */
  drain(): Promise<void>;
  /**
   * Commits offsets (the next offset to read per partition).
   *
   * @param offsets The offsets.
   */
  commit(offsets: CommitOffset[]): Promise<void>;
  /** Keeps the group membership alive during a long write. */
  heartbeat(): Promise<void>;
  /** Leaves the group and disconnects. */
  close(): Promise<void>;
}
