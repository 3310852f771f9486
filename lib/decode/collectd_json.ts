/**
 * Decoder for collectd's JSON output: `write_kafka` with `Format JSON` (one
 * array per message) or `write_http` with `Format "JSON"` (one array per
 * request). It replaces kafka-influxdb's `collectd_json_encoder`.
 *
 * A message is a JSON array of value lists
 * ([collectd JSON format](https://github.com/collectd/collectd/blob/collectd-5.12/src/utils/format_json/format_json.c)),
 * or several such arrays on separate lines; a pretty-printed array spanning
 * lines (the collectd wiki's example) is read too. Each value list becomes
 * one point, with kafka-influxdb's names:
 *
 * - measurement: the non-empty ones of `plugin`, `plugin_instance`, `type`
 *   joined with `_` (`cpu`, `1`, `cpu` → `cpu_1_cpu`);
 * - tags: `host`, and `type_instance` when not empty;
 * - fields: a single value is `value`; several are named by `dsnames`
 *   (`load` → `shortterm`, `midterm`, `longterm`); all are floats;
 * - time: `time` in seconds, fractions kept (`1436372292.412`).
 *
 * collectd writes `null` for a value it has no number for (a rate on the
 * first interval); such values are skipped and counted, the others of the
 * list kept. Value lists are numbered across the message; a malformed one is
 * an error of its own and its neighbours are decoded.
 *
 * Values become float fields, so they are read as doubles, rounding the
 * digits of a fraction beyond a double's, but a value a double cannot stand
 * for is an error quoting its text (`lib/json.ts` `floatOf`): `1e400`,
 * `1e-400`, and a counter from 2^53 up that it would change
 * (`18446744073709551615`).
 *
 * @module
 */

import type { FieldValue, Point } from "../record.ts";
import { secondsToNanos } from "../record.ts";
import { floatOf, JsonNumber, parseJsonFloats } from "../json.ts";
import { forEachLine, messageText, preview, reportEmpty } from "./_message.ts";
import type { DecodeResult, DecoderModule } from "../decoder.ts";

const WHAT = "Cannot decode collectd JSON";
const WHAT_LIST = "Cannot decode collectd JSON value list";

/**
 * Decodes one Kafka message of collectd JSON into points.
 *
 * @param value The message value (bytes or text); `null` is a tombstone.
 * @returns One point per value list with a value left (with its position
 *   among the message's value lists), the number of `null` values skipped,
 *   and one error per malformed value list or line that is not JSON.
 */
export function decodeCollectdJson(value: Uint8Array | string | null): DecodeResult {
  const result: DecodeResult = { records: [], skipped: 0, errors: [] };
  const text = messageText(value, result);
  if (text === undefined) return result;
  let index = 0;
  let first = true;
  let whole = false;
  const lines = forEachLine(text, (line) => {
    if (whole) return;
    let parsed: unknown;
    try {
      parsed = parseJsonFloats(line);
    } catch (error) {
      if (first && line.length !== text.length) {
        // A pretty-printed array does not parse line by line: try the whole message, once.
        first = false;
        const all = tryParse(text);
        if (all !== undefined) {
          whole = true;
          index = decodeArray(all.value, text, index, result);
          return;
        }
      }
      const reason = (error as Error).message;
      result.errors.push({
        index: index++,
        error: `${WHAT}: ${reason}, got ${preview(line)}`,
        data: line,
      });
      return;
    }
    first = false;
    index = decodeArray(parsed, line, index, result);
  });
  if (lines === 0) reportEmpty(result);
  return result;
}

/** The parsed text, or `undefined` when it is not JSON. */
function tryParse(text: string): { value: unknown } | undefined {
  try {
    return { value: parseJsonFloats(text) };
  } catch {
    return undefined;
  }
}

/** Decodes the value lists of one parsed line; returns the index of the next one. */
function decodeArray(parsed: unknown, source: string, index: number, result: DecodeResult): number {
  if (!Array.isArray(parsed)) {
    result.errors.push({
      index,
      error: `${WHAT}: expected an array of value lists, got ${preview(source)}`,
      data: source,
    });
    return index + 1;
  }
  for (const list of parsed) {
    const error = decodeValueList(list, index, result);
    if (error !== undefined) {
      const data = JSON.stringify(list);
      result.errors.push({ index, error: `${WHAT_LIST}: ${error}`, data });
    }
    index++;
  }
  return index;
}

/** Adds the point of one value list to `result`; returns what is wrong with it instead. */
function decodeValueList(list: unknown, index: number, result: DecodeResult): string | undefined {
  if (list === null || typeof list !== "object" || Array.isArray(list)) {
    return `expected an object, got ${show(list)}`;
  }
  const vl = list as Record<string, unknown>;
  const { values, dsnames, time, host, plugin, type } = vl;
  const pluginInstance = vl["plugin_instance"] ?? "";
  const typeInstance = vl["type_instance"] ?? "";
  if (!Array.isArray(values) || values.length === 0) {
    return `expected "values" to be a non-empty array, got ${show(values)}`;
  }
  if (!Array.isArray(dsnames) || dsnames.length !== values.length) {
    return `expected "dsnames" to be an array naming each of the ${values.length} values, ` +
      `got ${show(dsnames)}`;
  }
  if (typeof time !== "number" || !Number.isFinite(time) || time < 0) {
    return `expected "time" to be a number of seconds >= 0, got ${show(time)}`;
  }
  if (typeof host !== "string") return `expected "host" to be a string, got ${show(host)}`;
  if (typeof plugin !== "string") return `expected "plugin" to be a string, got ${show(plugin)}`;
  if (typeof pluginInstance !== "string") {
    return `expected "plugin_instance" to be a string, got ${show(pluginInstance)}`;
  }
  if (typeof type !== "string") return `expected "type" to be a string, got ${show(type)}`;
  if (typeof typeInstance !== "string") {
    return `expected "type_instance" to be a string, got ${show(typeInstance)}`;
  }
  const measurement = join(plugin, pluginInstance, type);
  if (measurement === "") return `expected a "plugin" or "type", got none`;

  const fields: Record<string, FieldValue> = {};
  let kept = 0;
  let skipped = 0;
  for (let i = 0; i < values.length; i++) {
    const v: unknown = values[i];
    // kafka-influxdb's rule: one value is "value", several are named by dsnames.
    const name: unknown = values.length === 1 ? "value" : dsnames[i];
    if (typeof name !== "string" || name === "" || Object.hasOwn(fields, name)) {
      return `expected "dsnames" to be distinct non-empty strings, got ${show(dsnames)}`;
    }
    if (v === null) {
      skipped++;
    } else if (typeof v === "number" || v instanceof JsonNumber) {
      const float = floatOf(v);
      if (!float.ok) return `value ${show(v)} of "${name}" ${float.why}`;
      fields[name] = float.value;
      kept++;
    } else {
      return `expected "values" to hold numbers and nulls, got ${show(values)}`;
    }
  }
  result.skipped += skipped;
  if (kept === 0) return undefined;
  const tags: Record<string, string> = { host };
  if (typeInstance !== "") tags["type_instance"] = typeInstance;
  const point: Point = { measurement, tags, fields, time: secondsToNanos(time) };
  result.records.push({ index, record: point });
  return undefined;
}

function join(plugin: string, pluginInstance: string, type: string): string {
  let name = plugin;
  if (pluginInstance !== "") name = name === "" ? pluginInstance : `${name}_${pluginInstance}`;
  if (type !== "") name = name === "" ? type : `${name}_${type}`;
  return name;
}

/** A JSON excerpt of a bad value for error messages (JSON quotes strings already). */
function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const json = JSON.stringify(value);
  return json.length > 120 ? json.slice(0, 117) + "..." : json;
}

/** collectd's JSON output (`Format JSON`), one point per value list. */
export const collectdJsonDecoder: DecoderModule = {
  name: "collectd_json",
  aliases: ["collectd_json_encoder"],
  title: "collectd JSON value lists (write_kafka Format JSON), one point per value list",
  kind: "points",
  skipReason: "nan",
  variables: [],
  create: () => decodeCollectdJson,
};
