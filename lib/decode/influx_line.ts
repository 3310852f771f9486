/**
 * Decoder for InfluxDB line protocol, passed through unchanged: what
 * kafka-influxdb's `echo_encoder` did, for producers that already write
 * `<measurement>[,<tags>] <fields> [<timestamp>]`
 * ([line protocol](https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/)).
 *
 * Each line of a message is one record `{ line }`, without its `\n` and
 * trailing `\r`; blank lines and `#` comments are left out, as the server
 * does. A light check catches lines the server would refuse as a whole
 * batch: no measurement, no field set (no unescaped space outside quotes),
 * a field without `key=value`, an unterminated string, a timestamp that is
 * not an integer. Such a line is an error of its own; the others go on.
 * Field value types are the server's to check.
 *
 * @module
 */

import type { RawLine } from "../record.ts";
import { decodeLines, preview } from "./_message.ts";
import type { DecodeResult, DecoderModule } from "../decoder.ts";

const BACKSLASH = 92;
const COMMA = 44;
const SPACE = 32;
const EQUALS = 61;
const QUOTE = 34;
const MINUS = 45;
const ZERO = 48;
const NINE = 57;

/**
 * Decodes one Kafka message of InfluxDB line protocol into raw lines.
 *
 * @param value The message value (bytes or text); `null` is a tombstone.
 * @returns One record per line (numbered from 0, blank lines and comments
 *   left out) and one error per line that cannot be line protocol.
 */
export function decodeInfluxLine(value: Uint8Array | string | null): DecodeResult {
  return decodeLines(value, decodeLine, true);
}

function decodeLine(line: string, start: number, index: number, result: DecodeResult): void {
  const problem = checkLine(line, start);
  if (problem === undefined) {
    const record: RawLine = { line };
    result.records.push({ index, record });
  } else {
    result.errors.push({
      index,
      error: `Cannot decode InfluxDB line protocol: ${problem}, got ${preview(line)}`,
      data: line,
    });
  }
}

/**
 * Checks the shape of one line of line protocol, one pass over its characters.
 *
 * @param line The line.
 * @param start Where its first non-blank character is.
 * @returns What is wrong, or `undefined` when the server may take it.
 */
export function checkLine(line: string, start = 0): string | undefined {
  const scanned = scanLine(line, start);
  return typeof scanned === "string" ? scanned : undefined;
}

/**
 * The timestamp of a line of line protocol, as written (in the precision of
 * the write), found the way {@link checkLine} walks the line.
 *
 * @param line The line.
 * @returns The integer text (e.g. `1700000000`), or `undefined` when the line
 *   has none or is not line protocol.
 */
export function lineTimestamp(line: string): string | undefined {
  const scanned = scanLine(line, 0);
  return typeof scanned === "number" && scanned >= 0 ? line.slice(scanned).trim() : undefined;
}

/** What is wrong with a line, or where its timestamp starts (-1: it has none). */
function scanLine(line: string, start: number): string | number {
  const length = line.length;
  let i = start;
  // Measurement, then tags: up to the first unescaped space (quotes are plain characters here).
  let measured = false;
  for (; i < length; i++) {
    const c = line.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === SPACE) break;
    else if (c === COMMA && !measured) {
      if (i === start) return "expected a measurement before the tags";
      measured = true;
    }
  }
  if (i === start) return "expected a measurement";
  while (i < length && line.charCodeAt(i) === SPACE) i++;
  if (i >= length) return 'expected a field set ("<key>=<value>") after an unescaped space';
  // Fields: key=value pairs separated by commas; string values are quoted.
  for (;;) {
    const keyStart = i;
    for (; i < length; i++) {
      const c = line.charCodeAt(i);
      if (c === BACKSLASH) i++;
      else if (c === EQUALS || c === SPACE || c === COMMA) break;
    }
    if (i >= length || line.charCodeAt(i) !== EQUALS || i === keyStart) {
      return 'expected "<key>=<value>" in the field set';
    }
    i++;
    if (line.charCodeAt(i) === QUOTE) {
      for (i++; i < length; i++) {
        const c = line.charCodeAt(i);
        if (c === BACKSLASH) i++;
        else if (c === QUOTE) break;
      }
      if (i >= length) return "expected a closing quote after a string field";
      i++;
    } else {
      const valueStart = i;
      for (; i < length; i++) {
        const c = line.charCodeAt(i);
        if (c === COMMA || c === SPACE) break;
      }
      if (i === valueStart) return 'expected a value after "=" in the field set';
    }
    if (i >= length) return -1;
    const c = line.charCodeAt(i);
    if (c === SPACE) break;
    if (c !== COMMA) return 'expected "," or a space after a string field';
    i++;
  }
  // Optional timestamp: an integer, then nothing but spaces.
  while (i < length && line.charCodeAt(i) === SPACE) i++;
  if (i >= length) return -1;
  const stampStart = i;
  const timeStart = line.charCodeAt(i) === MINUS ? i + 1 : i;
  for (i = timeStart; i < length; i++) {
    const c = line.charCodeAt(i);
    if (c < ZERO || c > NINE) break;
  }
  const digits = i > timeStart;
  while (i < length && line.charCodeAt(i) === SPACE) i++;
  if (!digits || i < length) return "expected an integer timestamp after the field set";
  return stampStart;
}

/** InfluxDB line protocol, passed through line by line (kafka-influxdb's echo encoder). */
export const influxLineDecoder: DecoderModule = {
  name: "influx_line",
  aliases: ["echo", "echo_encoder", "line_protocol"],
  title: "InfluxDB line protocol, passed through unchanged, one record per line",
  kind: "lines",
  skipReason: "none",
  variables: [],
  create: () => decodeInfluxLine,
};
