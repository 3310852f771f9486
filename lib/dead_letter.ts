/**
 * Where rejected records are set aside: a Kafka topic (`DEAD_LETTER_TOPIC`),
 * a JSON-lines file (`DEAD_LETTER_FILE`), or both.
 *
 * The rule that makes a dead letter safe: the source offsets of a message
 * are committed only after its dead letters are stored ({@link DeadLetters.stored},
 * awaited by every commit). A topic that cannot be written to therefore
 * holds the commits, like a sink outage: letters wait in memory (bounded,
 * {@link DeadLetters.full} holds the source), are sent again with the retry
 * policy, and are never dropped. After a crash the messages after the last
 * commit are read again, so a poison message among them is dead-lettered a
 * second time; its repeat carries the same `sluice.source.*` headers
 * (topic, partition, offset, index), which identify it.
 *
 * A topic message is: the original message bytes as the value (a record of
 * a multi-record message, or a row the server refused, as JSON instead;
 * header `sluice.value` says which), the message's key, and the headers
 * `sluice.reason`, `sluice.error`, `sluice.source.topic`,
 * `sluice.source.partition`, `sluice.source.offset`, `sluice.source.index`,
 * `sluice.sink` and `sluice.version`. Produced with acks from all in-sync
 * replicas, idempotently.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  type Admin,
  type Kafka,
  type Message,
  Partitioners,
  type PartitionMetadata,
  type Producer,
} from "kafkajs";
import { errorLine, type Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { RecordOrigin, Rejection } from "./record.ts";
import type { RetryPolicy } from "./retry.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What the value of a dead letter holds (header `sluice.value`). */
export type LetterValue =
  /** The Kafka message's bytes, unchanged. */
  | "message"
  /** One record of the message, as JSON (the message held others that were written). */
  | "record"
  /** The row the sink made of the record and the server refused, as JSON. */
  | "row";

/** One record set aside. */
export interface DeadLetter {
  /** Where it came from (with the message's key, when it had one). */
  origin: RecordOrigin;
  /** Why. */
  rejection: Rejection;
  /** What the file keeps: the record, the row, the part of the message, or its bytes. */
  data: unknown;
  /** What the topic keeps as the value. */
  value: LetterValue;
  /** The message's bytes, when `value` is "message". */
  message?: Uint8Array | null;
}

/** Writes bigints (point times and integer fields) as decimal strings. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** A place dead letters go. */
interface Destination {
  /** `file` or `topic`: the metrics label. */
  readonly kind: "file" | "topic";
  add(letter: DeadLetter): void;
  stored(signal?: AbortSignal): Promise<void>;
  readonly full: boolean;
  room(): Promise<void>;
  close(): Promise<void>;
}

/** Letters waiting at most, before the source is held ({@link Outbox.full}). */
const MAX_WAITING = 10_000;
/** Bytes waiting at most, before the source is held. */
const MAX_WAITING_BYTES = 32 * 1024 * 1024;
/** Letters per attempt at most. */
const SEND_MAX = 500;
/** The error header is cut at this many characters. */
const ERROR_MAX = 1000;

/** What a destination needs to wait, retry, log and count. */
export interface OutboxDeps {
  /** Logs. */
  log: Logger;
  /** Counts. */
  metrics: Metrics;
  /** How long to wait between attempts when the destination cannot be written to. */
  policy: RetryPolicy;
}

/** One letter, ready for its destination. */
interface Item<T> {
  payload: T;
  bytes: number;
  reason: string;
}

/**
 * A destination's outbox: the letters it has not stored yet, in order, and
 * the loop that stores them (attempts in the background, waits with the
 * retry policy after a failure, never drops one). The file and the topic
 * extend it with how they store a letter.
 */
abstract class Outbox<T> implements Destination {
  abstract readonly kind: "file" | "topic";
  readonly #what: string;
  readonly #deps: OutboxDeps;
  readonly #waiting: Item<T>[] = [];
  #waitingBytes = 0;
  #added = 0;
  #stored = 0;
  #sending: Promise<void> | undefined;
  readonly #closing = new AbortController();
  readonly #waiters: Array<{ upTo: number; resolve: () => void }> = [];
  #roomWaiters: Array<() => void> = [];

  /**
   * @param what The destination, for logs.
   * @param deps Logs, counts and the retry policy.
   */
  constructor(what: string, deps: OutboxDeps) {
    this.#what = what;
    this.#deps = deps;
  }

  /** Sets one record aside. */
  abstract add(letter: DeadLetter): void;

  /** Stores the first items; resolves with how many it stored, rejects when none could be. */
  protected abstract deliver(items: readonly T[]): Promise<number>;

  /** Whether no letter waits. */
  protected get empty(): boolean {
    return this.#waiting.length === 0;
  }

  get full(): boolean {
    return this.#waiting.length >= MAX_WAITING || this.#waitingBytes >= MAX_WAITING_BYTES;
  }

  /** Counts a letter stored at once, without waiting here. */
  protected storedNow(reason: string): void {
    this.#deps.metrics.deadLetters.inc({ destination: this.kind, reason });
    this.#deps.metrics.deadLettersStorable(this.kind, true);
  }

  /** Queues a letter for the background loop. */
  protected push(item: Item<T>): void {
    this.#waiting.push(item);
    this.#waitingBytes += item.bytes;
    this.#added++;
    this.#deps.metrics.deadLettersWaiting.set({ destination: this.kind }, this.#waiting.length);
    this.#kick();
  }

  /**
   * Starts the sending loop unless it runs. A letter pushed after the loop
   * found nothing more but before it was marked ended (a waiter it woke may
   * add one in between) starts the next loop from there.
   */
  #kick(): void {
    if (this.#sending !== undefined) return;
    this.#sending = this.#send().finally(() => {
      this.#sending = undefined;
      if (this.#waiting.length > 0 && !this.#closing.signal.aborted) this.#kick();
    });
  }

  /**
   * Waits until every letter added so far is stored.
   *
   * @param signal Gives up waiting (a stop's deadline).
   * @returns Resolves when they are stored.
   * @throws {Error} The signal's reason, when it aborted first.
   */
  stored(signal?: AbortSignal): Promise<void> {
    if (this.#stored >= this.#added) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    const upTo = this.#added;
    return new Promise((resolve, reject) => {
      const waiter = { upTo, resolve };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", () => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        reject(signal.reason);
      }, { once: true });
    });
  }

  /** @returns Resolves once the letters waiting are down to half the cap. */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  async #send(): Promise<void> {
    // Letters added in the same turn (a message's bad parts) go in one attempt.
    await null;
    let attempt = 0;
    while (this.#waiting.length > 0 && !this.#closing.signal.aborted) {
      const chunk = this.#waiting.slice(0, SEND_MAX);
      let count: number;
      try {
        count = await this.deliver(chunk.map((c) => c.payload));
      } catch (error) {
        attempt++;
        const delay = this.#deps.policy.delay(attempt);
        this.#deps.metrics.deadLetterErrors.inc({ destination: this.kind });
        this.#deps.metrics.deadLettersStorable(
          this.kind,
          false,
          `Cannot store dead letters in ${this.#what}: ${errorLine(error)}`,
        );
        this.#deps.log.limited(
          `dead_letter_${this.kind}`,
          "error",
          `Cannot store dead letters in ${this.#what}; retrying, offsets wait`,
          {
            waiting: this.#waiting.length,
            attempt,
            retry_in_seconds: delay / 1000,
            error,
          },
        );
        await this.#deps.policy.wait(delay, { signal: this.#closing.signal });
        continue;
      }
      attempt = 0;
      for (const c of this.#waiting.splice(0, count)) {
        this.#waitingBytes -= c.bytes;
        this.storedNow(c.reason);
      }
      this.#stored += count;
      this.#deps.metrics.deadLettersWaiting.set({ destination: this.kind }, this.#waiting.length);
      this.#wake();
    }
  }

  #wake(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (waiter.upTo <= this.#stored) {
        this.#waiters.splice(i, 1);
        waiter.resolve();
      }
    }
    const half = this.#waiting.length < MAX_WAITING / 2 &&
      this.#waitingBytes < MAX_WAITING_BYTES / 2;
    if (half && this.#roomWaiters.length > 0) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Stops attempting; letters still waiting are not stored (their offsets were not committed). */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#sending;
    for (const resolve of this.#roomWaiters) resolve();
    this.#roomWaiters = [];
    if (this.#waiting.length > 0) {
      this.#deps.log.warn("Dead letters not stored at stop; their messages will be read again", {
        destination: this.#what,
        waiting: this.#waiting.length,
      });
    }
  }
}

/** When a dead-letter file is rotated, and how many rotated files are kept. */
export interface Rotation {
  /** Rotate before a line would take the file past this many bytes; 0: never. */
  maxBytes: number;
  /** Rotated files kept, `FILE.1` (the newest) to `FILE.keep`; the oldest beyond is deleted. */
  keep: number;
}

/**
 * Appends dead letters to a file, one JSON object per line. A line is
 * written before `add()` returns; when the write fails (disk full, the
 * file removed from a read-only mount), the line waits in memory and is
 * written again with the retry policy, and commits wait for it: a full
 * disk holds the pipeline like a sink outage, and nothing is lost.
 *
 * The file holds flow records (addresses), so it is created readable by
 * its owner only (0600). An existing file keeps its mode (an operator may
 * have shared it with a log shipper's group on purpose); a warning says
 * when others may read it.
 *
 * Rotation ({@link Rotation}): before a line would take a regular file past
 * `maxBytes`, `FILE.N-1` is renamed to `FILE.N` ... `FILE` to `FILE.1`, and a
 * new `FILE` is started. Lines are whole in one file; a rename that fails
 * is retried like a write, and a letter is never dropped by a rotation
 * (only the oldest rotated file beyond `keep` is deleted, which is said).
 */
export class DeadLetterFile extends Outbox<Uint8Array> {
  readonly kind = "file";
  readonly #path: string;
  readonly #log: Logger;
  readonly #rotation: Rotation;
  #file: Deno.FsFile;
  /** The file's size; counted only for a regular file (a device or a pipe is never rotated). */
  #size = 0;
  #regular = false;
  /** `FILE` was renamed away, and a new one is still to be opened. */
  #renamed = false;
  /** Bytes of the first waiting line already written by a failed attempt. */
  #partial = 0;

  /**
   * @param path The file, created (mode 0600) if missing and appended to.
   * @param deps Logs, counts, the retry policy, and the rotation (unset: never).
   * @throws {Deno.errors.PermissionDenied} When it cannot be opened.
   */
  constructor(path: string, deps: OutboxDeps & { rotation?: Rotation }) {
    super(path, deps);
    this.#path = path;
    this.#log = deps.log;
    this.#rotation = deps.rotation ?? { maxBytes: 0, keep: 1 };
    this.#file = this.#open();
    this.#warnIfShared();
  }

  /** Opens `FILE` for appending, created readable and writable by its owner only. */
  #open(): Deno.FsFile {
    const file = Deno.openSync(this.#path, { append: true, create: true, mode: 0o600 });
    try {
      const stat = file.statSync();
      this.#regular = stat.isFile;
      this.#size = stat.size;
    } catch (error) {
      file.close();
      throw error;
    }
    return file;
  }

  #warnIfShared(): void {
    const mode = this.#regular ? this.#file.statSync().mode : null;
    if (mode === null || (mode & 0o077) === 0) return;
    this.#log.warn("The dead-letter file may be read by other users; it holds flow records", {
      path: this.#path,
      mode: (mode & 0o777).toString(8).padStart(4, "0"),
      fix: `chmod 600 ${this.#path}`,
    });
  }

  /** Rotates the file first when `bytes` more would take it past the cap. */
  #rotateFor(bytes: number): void {
    const { maxBytes, keep } = this.#rotation;
    if (!this.#renamed) {
      if (maxBytes <= 0 || !this.#regular || this.#size === 0) return;
      if (this.#size + bytes <= maxBytes) return;
      const oldest = `${this.#path}.${keep}`;
      if (exists(oldest)) {
        this.#log.warn("Deleting the oldest rotated dead-letter file (DEAD_LETTER_FILE_KEEP)", {
          path: oldest,
          keep,
        });
      }
      // Oldest first, so that no rename replaces a file not moved yet.
      for (let n = keep - 1; n >= 1; n--) {
        if (exists(`${this.#path}.${n}`)) {
          Deno.renameSync(`${this.#path}.${n}`, `${this.#path}.${n + 1}`);
        }
      }
      // What was written stays in the open file, now FILE.1.
      Deno.renameSync(this.#path, `${this.#path}.1`);
      this.#renamed = true;
      this.#log.info("Rotated the dead-letter file", {
        path: this.#path,
        to: `${this.#path}.1`,
        bytes: this.#size,
      });
    }
    const next = this.#open();
    this.#file.close();
    this.#file = next;
    this.#renamed = false;
  }

  /**
   * Appends one letter.
   *
   * @param letter The record set aside.
   */
  add(letter: DeadLetter): void {
    const { key, ...origin } = letter.origin;
    const data = letter.data instanceof Uint8Array ? decoder.decode(letter.data) : letter.data;
    const line = JSON.stringify({
      ts: new Date().toISOString(),
      ...letter.rejection,
      ...origin,
      ...(key === undefined ? {} : { key: decoder.decode(key) }),
      data,
    }, jsonSafe);
    const bytes = encoder.encode(line + "\n");
    const reason = letter.rejection.reason;
    if (this.empty) {
      try {
        this.#write([bytes]);
        this.storedNow(reason);
        return;
      } catch {
        // Kept below and written again by the outbox, which logs the error.
      }
    }
    this.push({ payload: bytes, bytes: bytes.length, reason });
  }

  /** @inheritdoc */
  protected deliver(lines: readonly Uint8Array[]): Promise<number> {
    return Promise.resolve(this.#write(lines));
  }

  /** Writes lines in order; returns how many are whole, throws when not even the first is. */
  #write(lines: readonly Uint8Array[]): number {
    let done = 0;
    try {
      for (const bytes of lines) {
        if (this.#partial === 0) this.#rotateFor(bytes.length);
        while (this.#partial < bytes.length) {
          const written = this.#file.writeSync(bytes.subarray(this.#partial));
          this.#partial += written;
          this.#size += written;
        }
        this.#partial = 0;
        done++;
      }
    } catch (error) {
      if (done === 0) throw error;
    }
    return done;
  }

  /** @returns Resolves when the file is closed. */
  override async close(): Promise<void> {
    await super.close();
    this.#file.close();
  }
}

/** Options of a {@link DeadLetterTopic}. */
export interface DeadLetterTopicOptions extends OutboxDeps {
  /** The topic. */
  topic: string;
  /** A kafkajs client with sluice's Kafka settings. */
  kafka: Kafka;
  /** The sink's name (header `sluice.sink`). */
  sink: string;
  /** sluice's version (header `sluice.version`). */
  version: string;
}

/**
 * Produces dead letters to a Kafka topic, in order, with acks from all in-sync replicas.
 *
 * Each `send()` holds one partition's letters. kafkajs 2.2.4 keeps the
 * answers of one `send()` per broker across its retries (`sendMessages.js`):
 * when a broker answers "not the leader" for one partition and the new
 * leader is a broker that already answered for another, that partition is
 * never sent again, and `send()` resolves all the same. One partition per
 * send leaves no other answer to hide behind. The partition is the one
 * Kafka's default partitioner gives the key (murmur2), so letters of one
 * source key stay in order in one partition.
 */
export class DeadLetterTopic extends Outbox<Message> {
  readonly kind = "topic";
  readonly #opts: DeadLetterTopicOptions;
  readonly #producer: Producer;
  readonly #partitioner = Partitioners.DefaultPartitioner();
  /** The topic's partitions, read once (letters never need a partition added later). */
  #partitions: PartitionMetadata[] | undefined;
  /** Letters already acknowledged by their partition in an attempt that failed for another. */
  readonly #sent = new WeakSet<Message>();
  #connected = false;

  /** @param options The topic, the client, and what goes in headers, logs and metrics. */
  constructor(options: DeadLetterTopicOptions) {
    super(`topic ${options.topic}`, options);
    this.#opts = options;
    this.#producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
  }

  /** @inheritdoc */
  protected async deliver(messages: readonly Message[]): Promise<number> {
    if (!this.#connected) {
      await this.#producer.connect();
      this.#connected = true;
    }
    const topic = this.#opts.topic;
    const partitionMetadata = this.#partitions ??= await this.#withAdmin((admin) =>
      this.#readPartitions(admin)
    );
    const perPartition = new Map<number, Message[]>();
    for (const message of messages) {
      if (this.#sent.has(message)) continue;
      const partition = this.#partitioner({ topic, partitionMetadata, message });
      const group = perPartition.get(partition) ?? [];
      group.push(message);
      perPartition.set(partition, group);
    }
    const sends = [...perPartition].map(async ([partition, group]) => {
      await this.#producer.send({
        topic,
        acks: -1,
        messages: group.map((m) => ({ ...m, partition })),
      });
      for (const m of group) this.#sent.add(m);
    });
    // Every partition's send runs to its end; a failed one fails the
    // attempt, and the next attempt sends only what was not acknowledged.
    const failed = (await Promise.allSettled(sends)).find((r) => r.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    return messages.length;
  }

  /** Runs `task` with an admin client of sluice's Kafka settings, disconnected after. */
  async #withAdmin<R>(task: (admin: Admin) => Promise<R>): Promise<R> {
    const admin = this.#opts.kafka.admin();
    await admin.connect();
    try {
      return await task(admin);
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  /** The topic's partitions, as kafkajs's partitioner takes them. */
  async #readPartitions(admin: Admin): Promise<PartitionMetadata[]> {
    const { topics } = await admin.fetchTopicMetadata({ topics: [this.#opts.topic] });
    const partitions = topics[0]?.partitions ?? [];
    if (partitions.length === 0) {
      throw new Error(`DEAD_LETTER_TOPIC "${this.#opts.topic}" has no partitions`);
    }
    // Every partition counts as available (a leader id >= 0): a keyless
    // letter may go to any, and a keyed one goes where its key hashes.
    return partitions.map((p) => ({ ...p, leader: Math.max(0, p.leader) }));
  }

  /**
   * Connects and checks that the topic exists: a dead-letter topic that is
   * missing is a configuration mistake, named at start.
   *
   * @throws {Error} When the topic does not exist, or the broker cannot be reached.
   */
  async connect(): Promise<void> {
    this.#partitions = await this.#withAdmin(async (admin) => {
      const topics = await admin.listTopics();
      if (!topics.includes(this.#opts.topic)) {
        throw new Error(
          `DEAD_LETTER_TOPIC "${this.#opts.topic}" does not exist; create it ` +
            `(kafka-topics.sh --create --topic ${this.#opts.topic} --replication-factor 3 ` +
            `on a cluster, 1 on a single broker), or unset DEAD_LETTER_TOPIC`,
        );
      }
      return await this.#readPartitions(admin);
    });
    await this.#producer.connect();
    this.#connected = true;
  }

  /**
   * Queues one letter; it is sent in the background.
   *
   * @param letter The record set aside.
   */
  add(letter: DeadLetter): void {
    const { origin, rejection } = letter;
    const value = letterBytes(letter);
    const message: Message = {
      key: origin.key === undefined ? null : Buffer.from(origin.key),
      value: value === null ? null : Buffer.from(value),
      headers: {
        "sluice.reason": rejection.reason,
        "sluice.error": rejection.error.slice(0, ERROR_MAX),
        "sluice.source.topic": origin.topic,
        "sluice.source.partition": String(origin.partition),
        "sluice.source.offset": origin.offset,
        "sluice.source.index": String(origin.index),
        "sluice.value": letter.value,
        "sluice.sink": this.#opts.sink,
        "sluice.version": this.#opts.version,
      },
    };
    this.push({ payload: message, bytes: value?.length ?? 0, reason: rejection.reason });
  }

  /**
   * Stops sending and disconnects. Letters still waiting are not stored;
   * their source offsets were not committed either, so they are read again.
   *
   * @returns Resolves when the producer is disconnected.
   */
  override async close(): Promise<void> {
    await super.close();
    await this.#producer.disconnect().catch(() => {});
  }
}

/** Whether a path exists (a rotated file). */
function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The bytes of a letter's value: the message's own, or its record or row as JSON. */
function letterBytes(letter: DeadLetter): Uint8Array | null {
  if (letter.value === "message") return letter.message ?? null;
  const { data } = letter;
  if (data instanceof Uint8Array) return data;
  if (data === null || data === undefined) return null;
  if (typeof data === "string") return encoder.encode(data);
  return encoder.encode(JSON.stringify(data, jsonSafe));
}

/** Every dead-letter destination configured, as one. */
export class DeadLetters {
  readonly #to: readonly Destination[];
  /** Letters added so far (the pipeline checks {@link full} only after a message added some). */
  added = 0;

  /** @param destinations The file, the topic, or both. */
  constructor(destinations: readonly Destination[]) {
    this.#to = destinations;
  }

  /**
   * Sets one record aside in every destination.
   *
   * @param letter The record, why, and where it came from.
   */
  add(letter: DeadLetter): void {
    this.added++;
    for (const to of this.#to) to.add(letter);
  }

  /**
   * Waits until every letter added so far is stored everywhere: a commit
   * awaits this first.
   *
   * @param signal Gives up waiting.
   * @returns Resolves when they are.
   */
  async stored(signal?: AbortSignal): Promise<void> {
    for (const to of this.#to) await to.stored(signal);
  }

  /** Whether a destination has so many letters waiting that the source must wait. */
  get full(): boolean {
    return this.#to.some((to) => to.full);
  }

  /** @returns Resolves when no destination is full any more. */
  async room(): Promise<void> {
    for (const to of this.#to) await to.room();
  }

  /** @returns Resolves when every destination is closed. */
  async close(): Promise<void> {
    for (const to of this.#to) await to.close();
  }
}
