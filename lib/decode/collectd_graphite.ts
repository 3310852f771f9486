/**
 * Decoder for collectd's Graphite plaintext output: `write_kafka` with
 * `Format Graphite`, or what `write_graphite` sends. It replaces
 * kafka-influxdb's `collectd_graphite_encoder`.
 *
 * A message holds one line per data source, `<path> <value> <timestamp>\r\n`
 * ([format_graphite.c](https://github.com/collectd/collectd/blob/collectd-5.12/src/utils/format_graphite/format_graphite.c)).
 * collectd builds the path as
 * `<prefix><host><postfix>.<plugin>[-<plugin_instance>].<type>[-<type_instance>][.<ds_name>]`:
 * the postfix follows the host, not the end of the path (kafka-influxdb cut
 * it from the end, which never matched). Each line becomes one point:
 *
 * - measurement: the path after the host (and postfix), each delimiter
 *   replaced by `_` (`load.load.shortterm` → `load_load_shortterm`);
 * - tags: `host`, plus the prefix and postfix under `GRAPHITE_PREFIX_TAG`
 *   and `GRAPHITE_POSTFIX_TAG` when those are set;
 * - field `value`, always a float, so InfluxDB never sees its type change;
 * - time: the timestamp in seconds, fractions kept to the microsecond.
 *
 * `nan` and `inf` values (collectd writes `nan` for a rate it cannot compute
 * yet) are skipped and counted. A value a float cannot stand for (`1e400`,
 * `1e-400`, or a counter from 2^53 up that a double would change) is an
 * error quoting its text; a float literal of any size (`2.5E+300`) is a
 * float. Every other bad line is an error of its own; the other lines of
 * the message are decoded.
 *
 * The host ends at the first delimiter: `write_graphite` escapes the dots of
 * host names with `_`. `write_kafka` does not by default (its
 * `GraphiteEscapeChar` is `.` in the code, `_` in the manual); set
 * `GraphiteEscapeChar "_"`, or a postfix, which marks where the host ends.
 *
 * @module
 */

import type { FieldValue, Point } from "../record.ts";
import { secondsToNanos } from "../record.ts";
import type { VarReader, VarSpec } from "../variables.ts";
import { floatOfText } from "../json.ts";
import { decodeLines, isBlank, preview } from "./_message.ts";
import type { Decoder, DecodeResult, DecoderModule } from "../decoder.ts";

/** How the Graphite paths are laid out, as collectd's write plugin is configured. */
export interface CollectdGraphiteOptions {
  /** What separates the parts of a path. @default "." */
  delimiter?: string;
  /** The text collectd puts before the host (`GraphitePrefix`); lines without it are errors. */
  prefix?: string;
  /** The tag that carries the prefix, without its trailing delimiter. */
  prefixTag?: string;
  /** The text collectd puts after the host (`GraphitePostfix`); lines without it are errors. */
  postfix?: string;
  /** The tag that carries the postfix, without leading and trailing delimiters. */
  postfixTag?: string;
}

const GROUP = "Decoder: collectd_graphite";

/** The variables of the collectd Graphite decoder. */
export const COLLECTD_GRAPHITE_VARIABLES: readonly VarSpec[] = [
  {
    name: "GRAPHITE_DELIMITER",
    type: "string",
    default: ".",
    group: GROUP,
    doc: "Separator of the parts of a collectd Graphite path; each one after the host " +
      "becomes _ in the measurement",
  },
  {
    name: "GRAPHITE_PREFIX",
    type: "string",
    group: GROUP,
    doc: 'Text collectd puts before the host (GraphitePrefix), e.g. "mydatacenter."; ' +
      "lines without it are errors; unset: no prefix",
  },
  {
    name: "GRAPHITE_PREFIX_TAG",
    type: "string",
    group: GROUP,
    doc: "Tag that carries GRAPHITE_PREFIX without its trailing delimiter, e.g. datacenter; " +
      "unset: no tag",
  },
  {
    name: "GRAPHITE_POSTFIX",
    type: "string",
    group: GROUP,
    doc: 'Text collectd puts right after the host (GraphitePostfix), e.g. ".prod"; also ' +
      "looked for at the end of the path; lines without it are errors; unset: no postfix",
  },
  {
    name: "GRAPHITE_POSTFIX_TAG",
    type: "string",
    group: GROUP,
    doc: "Tag that carries GRAPHITE_POSTFIX without delimiters around it, e.g. env; unset: no tag",
  },
];

/** Each tag variable and the variable whose text it carries. */
const TAGGED = [
  ["GRAPHITE_PREFIX_TAG", "GRAPHITE_PREFIX"],
  ["GRAPHITE_POSTFIX_TAG", "GRAPHITE_POSTFIX"],
] as const;

const WHAT = "Cannot decode collectd Graphite line";
/** A decimal number as printf writes it; `Number()` alone would take `0x10` and `Infinity`. */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SECONDS = /^(?:\d+\.?\d*|\.\d+)$/;
/** 2^53: from here on a double does not hold every integer. */
const TWO_53 = 9007199254740992;
/** What printf and Python write for values that are not numbers. */
const NOT_FINITE = new Set([
  "nan",
  "-nan",
  "+nan",
  "inf",
  "-inf",
  "+inf",
  "infinity",
  "-infinity",
  "+infinity",
]);

/**
 * Builds a collectd Graphite decoder for one path layout.
 *
 * @param options The layout; unset parts take kafka-influxdb's defaults
 *   (delimiter `.`, no prefix, no postfix).
 * @returns The decoder: one point per line, never throws.
 */
export function createCollectdGraphiteDecoder(options: CollectdGraphiteOptions = {}): Decoder {
  const delimiter = options.delimiter || ".";
  const prefix = options.prefix ?? "";
  const postfix = options.postfix ?? "";
  // A prefix given without its delimiter ("mydatacenter") also matches "mydatacenter.host".
  const prefixOpen = prefix !== "" && !prefix.endsWith(delimiter);
  // The host ends where the postfix and a delimiter begin.
  const postfixClosed = postfix.endsWith(delimiter);
  const postfixKey = postfix === "" || postfixClosed ? postfix : postfix + delimiter;
  const extraTags: Array<[string, string]> = [];
  if (options.prefixTag) {
    extraTags.push([options.prefixTag, trimDelimiter(prefix, delimiter, false)]);
  }
  if (options.postfixTag) {
    extraTags.push([options.postfixTag, trimDelimiter(postfix, delimiter, true)]);
  }
  const layout = JSON.stringify(`<host>${delimiter}<metric>`);
  const quotedPrefix = JSON.stringify(prefix);
  const quotedPostfix = JSON.stringify(postfix);

  /** One line's point, `null` for a nan value, or what is wrong with the line. */
  function parseLine(line: string, start: number): Point | null | string {
    // Three fields separated by runs of blanks, found without split() or a regex.
    const length = line.length;
    let i = start;
    while (i < length && !isBlank(line.charCodeAt(i))) i++;
    const pathEnd = i;
    while (i < length && isBlank(line.charCodeAt(i))) i++;
    const valueStart = i;
    while (i < length && !isBlank(line.charCodeAt(i))) i++;
    const valueEnd = i;
    while (i < length && isBlank(line.charCodeAt(i))) i++;
    const timeStart = i;
    while (i < length && !isBlank(line.charCodeAt(i))) i++;
    const timeEnd = i;
    while (i < length && isBlank(line.charCodeAt(i))) i++;
    if (timeStart === timeEnd || i < length) {
      return `expected "<path> <value> <timestamp>", got ${preview(line)}`;
    }

    const valueText = line.slice(valueStart, valueEnd);
    const value = Number(valueText);
    if (!NUMBER.test(valueText)) {
      if (NOT_FINITE.has(valueText.toLowerCase())) return null;
      return `expected a number as value, got ${preview(valueText)}`;
    }
    // A float field cannot stand for every number: refused rather than changed.
    if (!(value < TWO_53 && value > -TWO_53) || value === 0) {
      const float = floatOfText(valueText, value);
      if (!float.ok) {
        return `expected a number a float field holds, got ${
          preview(valueText)
        }, which ${float.why}`;
      }
    }
    const timeText = line.slice(timeStart, timeEnd);
    if (!SECONDS.test(timeText)) {
      return `expected the timestamp in seconds >= 0, got ${preview(timeText)}`;
    }

    const path = line.slice(start, pathEnd);
    let from = 0;
    if (prefix !== "") {
      if (!path.startsWith(prefix)) {
        return `expected the path to start with the prefix ${quotedPrefix}, got ${preview(path)}`;
      }
      from = prefix.length;
      if (prefixOpen && path.startsWith(delimiter, from)) from += delimiter.length;
    }
    let hostEnd: number;
    let metricStart: number;
    let metricEnd = path.length;
    if (postfix === "") {
      hostEnd = path.indexOf(delimiter, from);
      metricStart = hostEnd + delimiter.length;
    } else {
      hostEnd = path.indexOf(postfixKey, from + 1);
      metricStart = hostEnd + postfixKey.length;
      if (hostEnd >= 0 && postfixClosed && path.startsWith(delimiter, metricStart)) {
        metricStart += delimiter.length;
      } else if (hostEnd < 0) {
        // kafka-influxdb's position: the end of the path.
        if (!path.endsWith(postfix)) {
          return `expected the postfix ${quotedPostfix} after the host or at the end of the ` +
            `path, got ${preview(path)}`;
        }
        metricEnd = path.length - postfix.length;
        if (path.endsWith(delimiter, metricEnd)) metricEnd -= delimiter.length;
        hostEnd = path.indexOf(delimiter, from);
        metricStart = hostEnd + delimiter.length;
      }
    }
    if (hostEnd <= from || metricStart >= metricEnd) {
      return `expected ${layout} as path, got ${preview(path)}`;
    }

    const tags: Record<string, string> = { host: path.slice(from, hostEnd) };
    for (const [name, tagValue] of extraTags) tags[name] = tagValue;
    const metric = path.slice(metricStart, metricEnd);
    const fields: Record<string, FieldValue> = { value };
    return {
      measurement: metric.includes(delimiter) ? metric.replaceAll(delimiter, "_") : metric,
      tags,
      fields,
      time: secondsToNanos(Number(timeText)),
    };
  }

  function decodeLine(line: string, start: number, index: number, result: DecodeResult): void {
    const point = parseLine(line, start);
    if (point === null) result.skipped++;
    else if (typeof point === "string") {
      result.errors.push({ index, error: `${WHAT}: ${point}`, data: line });
    } else result.records.push({ index, record: point });
  }

  return (value) => decodeLines(value, decodeLine);
}

/** Decodes collectd Graphite lines with kafka-influxdb's defaults (delimiter `.`, no prefix or postfix). */
export const decodeCollectdGraphite: Decoder = createCollectdGraphiteDecoder();

/**
 * Reads the decoder's variables; combinations that cannot work are problems.
 *
 * @param reader The configuration reader.
 * @returns The path layout.
 */
export function readCollectdGraphiteOptions(reader: VarReader): CollectdGraphiteOptions {
  const options: CollectdGraphiteOptions = {
    delimiter: reader.string("GRAPHITE_DELIMITER"),
    prefix: reader.optional("GRAPHITE_PREFIX"),
    prefixTag: reader.optional("GRAPHITE_PREFIX_TAG"),
    postfix: reader.optional("GRAPHITE_POSTFIX"),
    postfixTag: reader.optional("GRAPHITE_POSTFIX_TAG"),
  };
  for (const name of ["GRAPHITE_DELIMITER", "GRAPHITE_PREFIX", "GRAPHITE_POSTFIX"]) {
    const text = reader.optional(name);
    if (text !== undefined && /\s/.test(text)) {
      reader.problem(name, text, "must not contain spaces or tabs (they separate a line's fields)");
    }
  }
  for (const [tag, part] of TAGGED) {
    const name = reader.optional(tag);
    if (name === undefined) continue;
    if (reader.optional(part) === undefined) {
      reader.problem(tag, name, `needs "${part}" to be set too`);
    } else if (name === "host") {
      reader.problem(tag, name, 'must not be "host" (the host tag)');
    }
  }
  if (options.prefixTag !== undefined && options.prefixTag === options.postfixTag) {
    reader.problem(
      "GRAPHITE_PREFIX_TAG/GRAPHITE_POSTFIX_TAG",
      options.prefixTag,
      "must be two different tags",
    );
  }
  return options;
}

/** collectd's Graphite output (`Format Graphite`), one point per line. */
export const collectdGraphiteDecoder: DecoderModule = {
  name: "collectd_graphite",
  aliases: ["collectd_graphite_encoder"],
  title: "collectd Graphite lines (write_kafka Format Graphite), one point per line",
  kind: "points",
  skipReason: "nan",
  variables: COLLECTD_GRAPHITE_VARIABLES,
  create: (reader) => createCollectdGraphiteDecoder(readCollectdGraphiteOptions(reader)),
};

function trimDelimiter(text: string, delimiter: string, leading: boolean): string {
  let from = 0;
  let to = text.length;
  if (leading && text.startsWith(delimiter)) from = delimiter.length;
  if (text.endsWith(delimiter) && to - delimiter.length >= from) to -= delimiter.length;
  return text.slice(from, to);
}
