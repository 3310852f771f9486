/**
 * Decode and prepare in worker threads (`DECODE_WORKERS`): the per-record
 * work of sluice (the decoder, then the sink's pure `prepare()`) runs on
 * other cores while the main thread fetches, batches, writes and commits.
 *
 * The source hands over each fetched batch of a partition in chunks
 * ({@link Lookahead}); a chunk's values travel as one transferred buffer, and
 * its results come back as `Predecoded` results whose records carry the row
 * `prepare()` made (`DecodedRecord.prepared`). The pipeline takes the
 * messages in their order as before: the workers change where the work is
 * done, never what is batched, written or committed. A worker that fails
 * (it cannot start, it throws) costs nothing but speed: its chunk and the
 * rest are decoded on the main thread, and the reason is logged.
 *
 * Each worker builds its own decoder and sink from the same variables as
 * the main thread (`sinks/worker.ts`); `lib/` does not import `sinks/`, so
 * `main.ts` passes the worker module's URL.
 *
 * @module
 */

import type { DecodedRecord, DecodeResult, Predecoded } from "./decoder.ts";
import type { Logger } from "./log.ts";

/** Messages handed to the workers at a time. */
export const CHUNK_MESSAGES = 256;

/** One chunk of a partition's messages, packed for a worker. */
export interface Chunk {
  /** Topic. */
  topic: string;
  /** Partition. */
  partition: number;
  /** Offsets, as decimal strings. */
  offsets: string[];
  /** Every value, then every key, one after the other. */
  bytes: Uint8Array;
  /** Per message: where its value ends in `bytes`; -1 for no value (a tombstone). */
  valueEnds: Int32Array;
  /** Per message: where its key ends in `bytes`; -1 for no key. */
  keyEnds: Int32Array;
}

/** What the main thread asks of a worker. */
export type WorkerRequest =
  | { type: "init"; env: Record<string, string> }
  | { type: "chunk"; id: number; chunk: Chunk };

/** What a worker answers. */
export type WorkerReply =
  | { type: "ready" }
  | { type: "failed"; error: string; id?: number }
  | { type: "done"; id: number; results: PackedResults };

/**
 * The results of a chunk in few objects, so that crossing back costs little:
 * prepared rows that are strings (ClickHouse's JSON lines, line protocol) go
 * as one text and numbers; anything else (object rows, rejections with their
 * record, skips and errors) as it is.
 */
export interface PackedResults {
  /** How many messages. */
  messages: number;
  /** The string rows, one after the other. */
  text: string;
  /** Per string row: its message, its index in the message, its size, its length in `text`. */
  rows: Int32Array;
  /** The records that are not string rows: their message and what the worker made. */
  others: Array<{ message: number; record: DecodedRecord }>;
  /** Messages with skipped records or errors. */
  notes: Array<{ message: number; skipped: number; errors: DecodeResult["errors"] }>;
}

/**
 * Packs a chunk's results (in the worker).
 *
 * @param results One result per message.
 * @returns The packed results.
 */
export function packResults(results: readonly Predecoded[]): PackedResults {
  const texts: string[] = [];
  const numbers: number[] = [];
  const others: PackedResults["others"] = [];
  const notes: PackedResults["notes"] = [];
  for (let m = 0; m < results.length; m++) {
    const result = results[m]!;
    if (result.skipped > 0 || result.errors.length > 0) {
      notes.push({ message: m, skipped: result.skipped, errors: result.errors });
    }
    for (const record of result.records) {
      const prepared = record.prepared;
      if (prepared?.ok && typeof prepared.row === "string") {
        texts.push(prepared.row);
        numbers.push(m, record.index, prepared.bytes, prepared.row.length);
      } else others.push({ message: m, record });
    }
  }
  return {
    messages: results.length,
    text: texts.join(""),
    rows: Int32Array.from(numbers),
    others,
    notes,
  };
}

const NO_ERRORS: DecodeResult["errors"] = Object.freeze([]) as unknown as DecodeResult["errors"];

/**
 * Unpacks a chunk's results (on the main thread), records in their order.
 *
 * @param packed What {@link packResults} made.
 * @returns One result per message.
 */
export function unpackResults(packed: PackedResults): Predecoded[] {
  const results: Predecoded[] = new Array(packed.messages);
  for (let m = 0; m < packed.messages; m++) {
    results[m] = { records: [], skipped: 0, errors: NO_ERRORS };
  }
  const { text, rows } = packed;
  let at = 0;
  for (let i = 0; i < rows.length; i += 4) {
    const length = rows[i + 3]!;
    results[rows[i]!]!.records.push({
      index: rows[i + 1]!,
      prepared: { ok: true, row: text.slice(at, at + length), bytes: rows[i + 2]! },
    });
    at += length;
  }
  for (const { message, record } of packed.others) results[message]!.records.push(record);
  for (const { message, skipped, errors } of packed.notes) {
    results[message]!.skipped = skipped;
    results[message]!.errors = errors;
  }
  // Other records were put after the string rows: back into the message's order.
  if (packed.others.length > 0) {
    for (const result of results) result.records.sort((a, b) => a.index - b.index);
  }
  return results;
}

/** A message as the packer reads it (kafkajs's, or the tests'). */
export interface PackMessage {
  /** Offset. */
  offset: string;
  /** Value, `null` for a tombstone. */
  value: Uint8Array | null;
  /** Key. */
  key?: Uint8Array | null;
}

/**
 * Packs messages into one buffer, so that a chunk crosses to a worker as
 * one transfer and not as views of the whole fetch response.
 *
 * @param topic Topic.
 * @param partition Partition.
 * @param messages The messages.
 * @returns The chunk.
 */
export function packChunk(
  topic: string,
  partition: number,
  messages: readonly PackMessage[],
): Chunk {
  let total = 0;
  for (const m of messages) total += (m.value?.length ?? 0) + (m.key?.length ?? 0);
  const bytes = new Uint8Array(total);
  const valueEnds = new Int32Array(messages.length);
  const keyEnds = new Int32Array(messages.length);
  const offsets = new Array<string>(messages.length);
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    offsets[i] = m.offset;
    if (m.value === null) valueEnds[i] = -1;
    else {
      bytes.set(m.value, at);
      at += m.value.length;
      valueEnds[i] = at;
    }
  }
  for (let i = 0; i < messages.length; i++) {
    const key = messages[i]!.key;
    if (key === null || key === undefined) keyEnds[i] = -1;
    else {
      bytes.set(key, at);
      at += key.length;
      keyEnds[i] = at;
    }
  }
  return { topic, partition, offsets, bytes, valueEnds, keyEnds };
}

/**
 * The messages of a packed chunk, as views into its buffer.
 *
 * @param chunk The chunk.
 * @returns Offset, value and key of each message, in order.
 */
export function unpackChunk(chunk: Chunk): Array<Required<PackMessage>> {
  const out: Array<Required<PackMessage>> = [];
  let at = 0;
  for (let i = 0; i < chunk.offsets.length; i++) {
    const end = chunk.valueEnds[i]!;
    const value = end < 0 ? null : chunk.bytes.subarray(at, end);
    if (end >= 0) at = end;
    out.push({ offset: chunk.offsets[i]!, value, key: null });
  }
  for (let i = 0; i < chunk.offsets.length; i++) {
    const end = chunk.keyEnds[i]!;
    if (end < 0) continue;
    out[i]!.key = chunk.bytes.subarray(at, end);
    at = end;
  }
  return out;
}

/** Decodes and prepares chunks of messages; `undefined` results mean "do it yourself". */
export interface Predecoder {
  /** Chunks worth having in flight at a time (one per worker, at least 2). */
  readonly depth: number;
  /**
   * Decodes and prepares the messages of one partition.
   *
   * @param topic Topic.
   * @param partition Partition.
   * @param messages The messages, in order.
   * @returns One result per message, or `undefined` when no worker could.
   */
  decode(
    topic: string,
    partition: number,
    messages: readonly PackMessage[],
  ): Promise<Predecoded[] | undefined>;
}

/** A pool of decode workers, used in turn. */
export class DecodeWorkers implements Predecoder {
  readonly #url: URL;
  readonly #env: Record<string, string>;
  readonly #count: number;
  readonly #log: Logger;
  readonly #workers: Worker[] = [];
  /** The chunks out, by id: what resolves each. */
  readonly #pending = new Map<number, (results: Predecoded[] | undefined) => void>();
  #next = 0;
  #id = 0;
  #broken = false;

  /**
   * @param url The worker module (`sinks/worker.ts`).
   * @param env The variables the main thread's configuration was read from.
   * @param count How many workers.
   * @param log Where a worker's failure is reported.
   */
  constructor(url: URL, env: Record<string, string>, count: number, log: Logger) {
    this.#url = url;
    this.#env = env;
    this.#count = count;
    this.#log = log;
  }

  /** How many workers run. */
  get size(): number {
    return this.#workers.length;
  }

  /** @inheritdoc */
  get depth(): number {
    return Math.max(2, this.#count);
  }

  /**
   * Starts the workers and waits until each built its decoder and sink.
   *
   * @throws {Error} When a worker cannot start (the reason it gave).
   */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.#count; i++) {
      const worker = new Worker(this.#url, { type: "module", name: `sluice-decode-${i + 1}` });
      this.#workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (event: MessageEvent<WorkerReply>) => {
            const reply = event.data;
            if (reply.type === "ready") {
              worker.onmessage = (e: MessageEvent<WorkerReply>) => this.#reply(e.data);
              resolve();
            } else if (reply.type === "failed") reject(new Error(reply.error));
          };
          worker.onerror = (event) => {
            event.preventDefault();
            reject(new Error(event.message));
          };
        }),
      );
      worker.postMessage({ type: "init", env: this.#env } satisfies WorkerRequest);
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      this.close();
      throw error;
    }
    for (const worker of this.#workers) {
      worker.onerror = (event) => {
        event.preventDefault();
        this.#fail(event.message);
      };
    }
  }

  /** @inheritdoc */
  decode(
    topic: string,
    partition: number,
    messages: readonly PackMessage[],
  ): Promise<Predecoded[] | undefined> {
    if (this.#broken || this.#workers.length === 0) return Promise.resolve(undefined);
    const worker = this.#workers[this.#next]!;
    this.#next = (this.#next + 1) % this.#workers.length;
    const id = ++this.#id;
    const chunk = packChunk(topic, partition, messages);
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      // The three buffers were made by packChunk(): plain ArrayBuffers, moved, not copied.
      const moved = [chunk.bytes.buffer, chunk.valueEnds.buffer, chunk.keyEnds.buffer];
      worker.postMessage(
        { type: "chunk", id, chunk } satisfies WorkerRequest,
        moved as ArrayBuffer[],
      );
    });
  }

  /** Stops the workers; chunks still out resolve to `undefined`. */
  close(): void {
    for (const worker of this.#workers) worker.terminate();
    this.#workers.length = 0;
    this.#giveBack();
  }

  #reply(reply: WorkerReply): void {
    if (reply.type === "done") {
      const resolve = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      resolve?.(unpackResults(reply.results));
    } else if (reply.type === "failed") this.#fail(reply.error);
  }

  /** A worker failed: from now on the main thread decodes everything. */
  #fail(error: string): void {
    if (!this.#broken) {
      this.#broken = true;
      this.#log.error("A decode worker failed: decoding on the main thread from now on", {
        error,
      });
    }
    this.#giveBack();
  }

  /** Every chunk still out resolves to `undefined`: the main thread decodes it. */
  #giveBack(): void {
    for (const resolve of this.#pending.values()) resolve(undefined);
    this.#pending.clear();
  }
}

/**
 * The decoded messages of one fetched batch, asked for ahead: while the
 * pipeline takes the messages of one chunk, the next ones are decoded.
 */
export class Lookahead {
  readonly #decoder: Predecoder;
  readonly #topic: string;
  readonly #partition: number;
  readonly #messages: readonly PackMessage[];
  readonly #depth: number;
  readonly #chunks: Promise<Predecoded[] | undefined>[] = [];
  #current: Predecoded[] | undefined;
  #currentChunk = -1;

  /**
   * @param decoder The workers.
   * @param topic Topic of the batch.
   * @param partition Partition of the batch.
   * @param messages The batch's messages.
   */
  constructor(
    decoder: Predecoder,
    topic: string,
    partition: number,
    messages: readonly PackMessage[],
  ) {
    this.#decoder = decoder;
    this.#topic = topic;
    this.#partition = partition;
    this.#messages = messages;
    this.#depth = decoder.depth;
    this.#ask(0);
  }

  /**
   * The decoded message `i`, or `undefined` to decode it on the main thread.
   * Only the first message of a chunk waits; ask in order.
   *
   * @param i The message's position in the batch.
   * @returns Its result, when a worker made it.
   */
  get(i: number): Predecoded | undefined | Promise<Predecoded | undefined> {
    const chunk = Math.floor(i / CHUNK_MESSAGES);
    if (chunk === this.#currentChunk) return this.#current?.[i - chunk * CHUNK_MESSAGES];
    this.#ask(chunk + 1);
    return this.#chunks[chunk]!.then((results) => {
      this.#current = results;
      this.#currentChunk = chunk;
      return results?.[i - chunk * CHUNK_MESSAGES];
    });
  }

  /** Asks for every chunk up to `depth` past `from` not asked for yet. */
  #ask(from: number): void {
    const total = Math.ceil(this.#messages.length / CHUNK_MESSAGES);
    const until = Math.min(total, from + this.#depth);
    for (let c = this.#chunks.length; c < until; c++) {
      const start = c * CHUNK_MESSAGES;
      this.#chunks.push(
        this.#decoder.decode(
          this.#topic,
          this.#partition,
          this.#messages.slice(start, start + CHUNK_MESSAGES),
        ),
      );
    }
  }
}
