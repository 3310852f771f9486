/**
 * What the text decoders (collectd Graphite and JSON, line protocol) share:
 * turning a message value into text, and walking its lines without building
 * an array of them. A one-line message (write_kafka sends one value list per
 * message) is handed over as it is, without a copy.
 *
 * @module
 */

import type { DecodeResult } from "../decoder.ts";

const lax = new TextDecoder("utf-8");
const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * UTF-8 bytes as text, refusing bytes that are not UTF-8. The replacing
 * decoder is three times faster than the strict one; only text in which it
 * put a U+FFFD (a bad sequence, or a real U+FFFD) is decoded again strictly.
 *
 * @param bytes The bytes.
 * @returns The text.
 * @throws {TypeError} When the bytes are not UTF-8.
 */
export function utf8Text(bytes: Uint8Array): string {
  const text = lax.decode(bytes);
  return text.includes("\uFFFD") ? strict.decode(bytes) : text;
}

const TAB = 9;
const CR = 13;
const SPACE = 32;
const HASH = 35;

/**
 * Whether a character code is a space, a tab or a stray line break
 * character: what separates the fields of a collectd Graphite line.
 *
 * @param code A UTF-16 code unit.
 * @returns `true` for space, tab, CR, LF, VT and FF.
 */
export function isBlank(code: number): boolean {
  // TAB (9) to CR (13): tab, LF, VT, FF, CR.
  return code === SPACE || (code >= TAB && code <= CR);
}

/**
 * The text of a message. A tombstone (`null`) or bytes that are not UTF-8
 * add one error to `result` and give `undefined`.
 *
 * @param value The message value.
 * @param result Where the error goes.
 * @returns The text, or `undefined`.
 */
export function messageText(
  value: Uint8Array | string | null,
  result: DecodeResult,
): string | undefined {
  if (value === null) {
    result.errors.push({ index: 0, error: "Cannot decode message: it has no value (tombstone)" });
    return undefined;
  }
  if (typeof value === "string") return value;
  try {
    return utf8Text(value);
  } catch {
    result.errors.push({ index: 0, error: "Cannot decode message: it is not valid UTF-8" });
    return undefined;
  }
}

/**
 * Calls `each` for every line of `text` that is not blank, split on `\n`,
 * without the `\n` and a trailing `\r` (collectd ends Graphite lines with `\r\n`).
 *
 * @param text The message text.
 * @param each Called with the line and the position of its first non-blank character.
 * @param comments Whether lines whose first non-blank character is `#` are
 *   comments: they count as lines but are not handed to `each`.
 * @returns How many lines were not blank.
 */
export function forEachLine(
  text: string,
  each: (line: string, start: number) => void,
  comments = false,
): number {
  let count = 0;
  let from = 0;
  const length = text.length;
  while (from < length) {
    let end = text.indexOf("\n", from);
    if (end < 0) end = length;
    const next = end + 1;
    if (end > from && text.charCodeAt(end - 1) === CR) end--;
    let start = from;
    while (start < end && isBlank(text.charCodeAt(start))) start++;
    if (start < end) {
      count++;
      if (!comments || text.charCodeAt(start) !== HASH) {
        // slice() of the whole text returns it unchanged: no copy for one-line messages.
        each(text.slice(from, end), start - from);
      }
    }
    from = next;
  }
  return count;
}

/**
 * Adds the error for a message with nothing in it.
 *
 * @param result Where the error goes.
 */
export function reportEmpty(result: DecodeResult): void {
  result.errors.push({ index: 0, error: "Cannot decode message: it is empty" });
}

/**
 * Decodes a message line by line: the frame of the line-based decoders.
 * Lines are numbered from 0 in the order they come, blank lines (and
 * comments, when `comments` is set) left out.
 *
 * @param value The message value; `null` is a tombstone.
 * @param decodeLine Decodes one line into `result`; never throws.
 * @param comments Whether `#` lines are comments.
 * @returns The records, skips and errors of every line, or the one error of
 *   a tombstone, of bytes that are not UTF-8 or of an empty message.
 */
export function decodeLines(
  value: Uint8Array | string | null,
  decodeLine: (line: string, start: number, index: number, result: DecodeResult) => void,
  comments = false,
): DecodeResult {
  const result: DecodeResult = { records: [], skipped: 0, errors: [] };
  const text = messageText(value, result);
  if (text === undefined) return result;
  let index = 0;
  const lines = forEachLine(
    text,
    (line, start) => decodeLine(line, start, index++, result),
    comments,
  );
  if (lines === 0) reportEmpty(result);
  return result;
}

/**
 * A short, printable excerpt of a bad input for error messages.
 *
 * @param text The input.
 * @returns At most 120 characters, JSON-quoted.
 */
export function preview(text: string): string {
  const trimmed = text.trim();
  return JSON.stringify(trimmed.length > 120 ? trimmed.slice(0, 117) + "..." : trimmed);
}
