/**
 * The source of `--dry-run`: standard input, one message per line.
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
      const encoder = new TextEncoder();
      const lines = this.#input.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
      for await (const line of lines) {
        if (this.#draining) break;
        if (line.trim() === "") {
          offset++;
          continue;
        }
        const pending = handler({
          topic: "stdin",
          partition: 0,
          offset: String(offset++),
          value: encoder.encode(line),
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

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const part of parts) controller.enqueue(part.endsWith("\r") ? part.slice(0, -1) : part);
    },
    flush(controller) {
      if (rest !== "") controller.enqueue(rest);
    },
  });
}
