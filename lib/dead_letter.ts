/**
 * Where rejected records are set aside: a JSON-lines file, one object per
 * record with the reason, the error, where it came from and the data itself,
 * so an operator can inspect and replay them.
 *
 * @module
 */

import type { RecordOrigin, Rejection } from "./record.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Writes bigints (point times and integer fields) as decimal strings. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** Appends rejected records to a file. */
export class DeadLetters {
  readonly #file: Deno.FsFile;

  /**
   * @param path The file, created if missing and appended to.
   * @throws {Deno.errors.PermissionDenied} When it cannot be opened.
   */
  constructor(path: string) {
    this.#file = Deno.openSync(path, { append: true, create: true });
  }

  /**
   * Appends one rejected record.
   *
   * @param origin Where the record came from.
   * @param rejection Why it was set aside.
   * @param data The record, row, or raw message bytes.
   */
  add(origin: RecordOrigin, rejection: Rejection, data: unknown): void {
    const value = data instanceof Uint8Array ? decoder.decode(data) : data;
    const line = JSON.stringify({
      ts: new Date().toISOString(),
      ...rejection,
      ...origin,
      data: value,
    }, jsonSafe);
    const bytes = encoder.encode(line + "\n");
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
