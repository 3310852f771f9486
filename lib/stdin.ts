/**
 * The source of `--dry-run`: standard input, one message per line.
 *
 * A line is handed to the decoder as the bytes it was, like a Kafka
 * message's value, so `--dry-run` decodes exactly as the Kafka path does:
 * the decoders read bytes with a fatal UTF-8 decoder (`lib/decode/`), and
 * a line that is not UTF-8 is set aside with the same reason. Lines are cut
 * in linear time: each chunk is searched once, and the pieces of a long
 * line are joined once, when its end comes.
 *
 * @module
 */

import type { MessageHandler, MessageSource } from "./source.ts";

/**
 * Reads messages from standard input, one per line (`--dry-run`), as
 * partition 0 of topic `stdin` with the line number as offset.
 */
export class StdinSource implements MessageSource {
  readonly #input: ReadableStream<Uint8Array>;
  #resolveFinished!: () => void;
  #draining = false;
  /** Resolves when the input is exhausted and every line was handled. */
  readonly finished: Promise<void>;

  /** @param input The stream to read; standard input by default. */
  constructor(input: ReadableStream<Uint8Array> = Deno.stdin.readable) {
    this.#input = input;
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
  }

  /** @inheritdoc */
  start(handler: MessageHandler): Promise<void> {
    const run = async () => {
      let offset = 0;
      for await (const line of this.#input.pipeThrough(splitLines())) {
        if (this.#draining) break;
        if (isBlank(line)) {
          offset++;
          continue;
        }
        const pending = handler({
          topic: "stdin",
          partition: 0,
          offset: String(offset++),
          value: line,
        });
        if (pending) await pending;
      }
      this.#resolveFinished();
    };
    this.#running = run();
    return Promise.resolve();
  }

  #running: Promise<void> | undefined;

  /** @inheritdoc */
  async drain(): Promise<void> {
    this.#draining = true;
    await this.#running;
  }

  /** Nothing to commit on standard input. */
  commit(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing to keep alive. */
  heartbeat(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing to close. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const LF = 10;
const CR = 13;

/**
 * Cuts a byte stream into lines, without the `\n` and a `\r` before it
 * (CRLF files), in time linear in the input: each chunk is searched once,
 * and the pieces of a line that spans chunks are joined once, at its end.
 * The last line needs no `\n`.
 *
 * @returns A stream of lines, each its own bytes (no UTF-8 decoding).
 */
export function splitLines(): TransformStream<Uint8Array, Uint8Array> {
  let pieces: Uint8Array[] = [];
  let length = 0;
  const take = (last: Uint8Array): Uint8Array => {
    let line = last;
    if (pieces.length > 0) {
      line = new Uint8Array(length + last.length);
      let at = 0;
      for (const piece of pieces) {
        line.set(piece, at);
        at += piece.length;
      }
      line.set(last, at);
      pieces = [];
      length = 0;
    }
    return line.at(-1) === CR ? line.subarray(0, -1) : line;
  };
  return new TransformStream({
    transform(chunk, controller) {
      let start = 0;
      for (let end = chunk.indexOf(LF); end !== -1; end = chunk.indexOf(LF, start)) {
        // A copy: the line outlives the chunk (batches, dead letters).
        controller.enqueue(take(chunk.slice(start, end)));
        start = end + 1;
      }
      if (start < chunk.length) {
        const rest = chunk.slice(start);
        pieces.push(rest);
        length += rest.length;
      }
    },
    flush(controller) {
      if (pieces.length > 0) controller.enqueue(take(new Uint8Array(0)));
    },
  });
}

/** Whether a line holds only spaces, tabs and line-break characters (skipped, like before). */
function isBlank(line: Uint8Array): boolean {
  for (const byte of line) {
    if (byte !== 32 && (byte < 9 || byte > 13)) return false;
  }
  return true;
}
