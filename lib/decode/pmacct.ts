/**
 * Decoder for pmacct's JSON output (`kafka_output: json`).
 *
 * A Kafka message holds one JSON object, or with `kafka_multi_values` several
 * objects separated by newlines. With `kafka_markers` pmacct also sends
 * `purge_init` / `purge_close` records around each purge; they carry no flow
 * and are skipped (and counted). Every line is decoded on its own, so one
 * broken line never costs the other records of its message.
 *
 * Numbers are read exactly (`lib/json.ts`): a counter beyond 2^53, such as
 * a UInt64 at its maximum `18446744073709551615`, or a literal a double
 * cannot hold (`1e400`), stays its text as a `JsonNumber`, which every sink
 * either writes with its digits or refuses with them in the reason.
 *
 * @module
 */

import type { InputRecord } from "../record.ts";
import type { DecodeResult, DecoderModule } from "../decoder.ts";
import { parseJson } from "../json.ts";
import { preview, utf8Text } from "./_message.ts";

const MARKERS = new Set(["purge_init", "purge_close"]);

/**
 * Decodes one Kafka message of pmacct JSON into flow records.
 *
 * @param value The message value (bytes or text); `null` is a tombstone.
 * @returns The records (with their position in the message), the number of
 *   marker records skipped, and one error per line that is not a JSON object.
 */
export function decodePmacct(value: Uint8Array | string | null): DecodeResult {
  const result: DecodeResult = { records: [], skipped: 0, errors: [] };
  if (value === null) {
    result.errors.push({ index: 0, error: "Cannot decode message: it has no value (tombstone)" });
    return result;
  }
  let text: string;
  try {
    text = typeof value === "string" ? value : utf8Text(value);
  } catch {
    result.errors.push({ index: 0, error: "Cannot decode message: it is not valid UTF-8" });
    return result;
  }
  // Fast path: one object per message, the common case.
  if (!text.includes("\n")) {
    decodeLine(text, 0, result);
    return result;
  }
  let index = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    decodeLine(line, index++, result);
  }
  if (index === 0) result.errors.push({ index: 0, error: "Cannot decode message: it is empty" });
  return result;
}

function decodeLine(line: string, index: number, result: DecodeResult): void {
  let parsed: unknown;
  try {
    parsed = parseJson(line);
  } catch (error) {
    result.errors.push({
      index,
      error: `Cannot decode pmacct JSON: ${(error as Error).message}, got ${preview(line)}`,
    });
    return;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    result.errors.push({
      index,
      error: `Cannot decode pmacct JSON: expected an object, got ${preview(line)}`,
    });
    return;
  }
  const record = parsed as InputRecord;
  const eventType = record["event_type"];
  if (typeof eventType === "string" && MARKERS.has(eventType)) {
    result.skipped++;
    return;
  }
  result.records.push({ index, record });
}

/** pmacct's JSON output (one object per line). */
export const pmacctDecoder: DecoderModule = {
  name: "pmacct",
  title: "pmacct JSON flow records (kafka_output: json), one object per line",
  kind: "flows",
  skipReason: "marker",
  variables: [],
  create: () => decodePmacct,
};
