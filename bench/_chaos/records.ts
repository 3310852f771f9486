/**
 * The chaos suite's messages: N realistic pmacct flow records (the demo's
 * generator, `scripts/demo_feed.ts`) with an identity every sink keeps, 1%
 * of them replaced by poison, written once per run as kcat input files
 * (`key<TAB>value` lines, `kcat -P -K '\t' -l FILE`), cut into chunks that
 * the scenarios produce one after the other.
 *
 * The identity: pmacct's `tag` primitive set to the record's number (a
 * unique integer, stored as a column, a document field, a point field), and
 * `timestamp_end` unique per record at millisecond resolution, written as
 * pmacct does with `timestamps_usecs: true` (`2026-12-06 07:00:00.123456`,
 * read by `lib/time.ts`): VictoriaMetrics and InfluxDB take it as the sample
 * time (`VM_TIMESTAMP_FIELD`, `INFLUXDB_TIMESTAMP_FIELD`), so that no two
 * records share a series and a time there.
 *
 * Poison: every record whose number ends in 50 (1%), with a key
 * `poison-<i>-<kind>`, the kinds in turn: `invalid-json` (a record cut
 * short), `not-utf8` (a Latin-1 byte inside a string), `json-array` (the
 * record inside `[...]`) and `refused` (a record whose counters are words,
 * which every sink refuses: ClickHouse's and VictoriaMetrics' conversion,
 * OpenSearch's `long` mapping, InfluxDB's integer field). Good records have
 * the key `flow-<i>`.
 *
 * @module
 */

import { flowRecord } from "../../scripts/demo_feed.ts";

/** The kinds of poison, in the order they take turns. */
export const POISON_KINDS = ["invalid-json", "not-utf8", "json-array", "refused"] as const;

/** A kind of poison. */
export type PoisonKind = (typeof POISON_KINDS)[number];

/** The messages of a run, as files for kcat. */
export interface Messages {
  /** All messages, good and poison. */
  records: number;
  /** The chunk files, in order; together they hold every message once. */
  chunks: string[];
  /** Messages per chunk file. */
  chunkSizes: number[];
  /** The poison messages' keys, with their kind. */
  poison: Map<string, PoisonKind>;
  /** The good records: what every sink must hold. */
  expected: number;
  /** Bytes of all the files. */
  bytes: number;
}

/**
 * Whether message number `i` is poison.
 *
 * @param i The message number, from 0.
 * @returns `true` for 1% of the numbers (those ending in 50).
 */
export function isPoison(i: number): boolean {
  return i % 100 === 50;
}

/**
 * The kind of poison message number `i` is.
 *
 * @param i A poison message's number.
 * @returns Its kind.
 */
export function poisonKind(i: number): PoisonKind {
  return POISON_KINDS[Math.floor(i / 100) % POISON_KINDS.length]!;
}

/**
 * Formats epoch milliseconds as pmacct does with `timestamps_usecs: true`.
 *
 * @param ms Epoch milliseconds.
 * @param micros The microseconds within that millisecond, 0 to 999.
 * @returns E.g. `2026-12-06 07:00:00.123456` (UTC).
 */
export function pmacctMicros(ms: number, micros: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(micros).padStart(3, "0")}`;
}

/**
 * Record number `i`: the demo's flow record plus `tag` and a `timestamp_end`
 * unique per record (`baseMs + i` milliseconds).
 *
 * @param i The record number.
 * @param nowMs The newest `stamp_updated`.
 * @param baseMs The `timestamp_end` of record 0.
 * @returns The record.
 */
export function chaosRecord(i: number, nowMs: number, baseMs: number): Record<string, unknown> {
  // Sub-millisecond digits as a real clock gives them; they never make two records equal.
  return { ...flowRecord(i, nowMs), tag: i, timestamp_end: pmacctMicros(baseMs + i, i * 7 % 1000) };
}

const encoder = new TextEncoder();

/** The value of poison message `i`, as bytes (one kind is not UTF-8). */
function poisonValue(i: number, record: Record<string, unknown>): Uint8Array {
  const json = JSON.stringify(record);
  switch (poisonKind(i)) {
    case "invalid-json":
      return encoder.encode(json.slice(0, 60));
    case "not-utf8": {
      // "Caf\xe9": a Latin-1 byte, which is not UTF-8 on its own.
      const [head, tail] = [`{"event_type":"purge","tag":${i},"label":"Caf`, `"}`];
      return new Uint8Array([...encoder.encode(head), 0xe9, ...encoder.encode(tail)]);
    }
    case "json-array":
      return encoder.encode(`[${json}]`);
    case "refused":
      return encoder.encode(JSON.stringify({ ...record, bytes: "lots", packets: "many" }));
  }
}

/**
 * Writes the messages as kcat input files, `chunks` files of about equal
 * size, into `dir`.
 *
 * @param dir An existing directory.
 * @param records How many messages.
 * @param chunks How many files.
 * @param nowMs The run's clock: the records' times fall before it.
 * @returns What was written.
 */
export async function writeMessages(
  dir: string,
  records: number,
  chunks: number,
  nowMs = Date.now(),
): Promise<Messages> {
  // timestamp_end runs from base to base + N ms, ending 10 minutes before now,
  // well inside VM_TIMESTAMP_MAX_AGE and never in the future.
  const baseMs = Math.floor(nowMs / 1000) * 1000 - records - 10 * 60_000;
  const poison = new Map<string, PoisonKind>();
  const files: string[] = [];
  const sizes: number[] = [];
  let bytes = 0;
  const count = Math.max(1, Math.min(chunks, records));
  for (let c = 0; c < count; c++) {
    const from = Math.floor(records * c / count), to = Math.floor(records * (c + 1) / count);
    const parts: Uint8Array[] = [];
    let text = "";
    for (let i = from; i < to; i++) {
      const record = chaosRecord(i, nowMs, baseMs);
      if (!isPoison(i)) {
        text += `flow-${i}\t${JSON.stringify(record)}\n`;
        continue;
      }
      const key = `poison-${i}-${poisonKind(i)}`;
      poison.set(key, poisonKind(i));
      parts.push(encoder.encode(`${text}${key}\t`), poisonValue(i, record));
      text = "\n";
    }
    parts.push(encoder.encode(text));
    const file = `${dir}/chunk-${String(c).padStart(3, "0")}.tsv`;
    const size = parts.reduce((n, p) => n + p.length, 0);
    const data = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      data.set(part, at);
      at += part.length;
    }
    await Deno.writeFile(file, data);
    files.push(file);
    sizes.push(to - from);
    bytes += size;
  }
  return {
    records,
    chunks: files,
    chunkSizes: sizes,
    poison,
    expected: records - poison.size,
    bytes,
  };
}
