/**
 * The VictoriaMetrics sink's encoding, pure: pmacct records as JSON line import lines
 * (https://docs.victoriametrics.com/#how-to-import-data-in-json-line-format):
 * one line per metric field per record,
 *
 * ```json
 * {"metric":{"__name__":"bytes","job":"pmacct","instance":"nfacctd-1","ip_src":"10.0.0.1",...},"values":[402],"timestamps":[1795303667000]}
 * ```
 *
 * VictoriaMetrics answers 204 to a request even when it drops lines of it
 * (checked against 1.79.5: a string or `null` value, a fractional
 * millisecond timestamp, a timestamp outside the retention or more than 2
 * days ahead, mismatched array sizes: the line is dropped and only the
 * server logs it), and it changes some lines silently (a non-string label
 * value or an empty one is dropped, labels beyond `-maxLabelsPerTimeseries`
 * are dropped, values beyond `-maxLabelValueLen` truncated, a lone surrogate
 * stored as the six characters `\ud800`). So every line is checked here and
 * a line that would be dropped or changed is never sent. (Values are stored
 * as decimals: integers up to 2^53 exactly, fractions to about 12
 * significant digits, 3.141592653589793 comes back as 3.141592653589.)
 *
 * Sample values are floats by nature (float64 in the import format and the
 * query API, a decimal of about 15 digits on disk), so a value is sent as a
 * double: the digits of a fraction beyond a double's are rounded, as in
 * every float. What VictoriaMetrics would store as another number is set
 * aside instead, quoting the value as written: an integer literal (digits
 * only) beyond 2^53 (checked against 1.79.5: 9007199254740993 came back as
 * 9007199254740990, 18446744073709551615 as 18446744073709548000, even
 * 2^60 = 1152921504606846976, exactly a double, as 1152921504606846848,
 * while every integer up to 2^53 came back exact), `1e400` (stored as +Inf),
 * and `1e-400` (0). A float literal of any magnitude is a float and stored
 * as one (`2.5e300` and `1.5e308` came back as those doubles). Label values
 * are text and exact: a counter beyond 2^53 as a label keeps its digits.
 *
 * - Values: finite numbers; numeric strings are read as numbers. A metric
 *   field that is missing, null, not a number or not finite sets that line
 *   aside and the record keeps its other lines (the sink logs the fields
 *   left out once the record is written: the contract has one result per
 *   record, and one bad counter should not cost the good ones); a record
 *   with no valid metric line is rejected (`convert`).
 * - Timestamps: milliseconds from `VM_TIMESTAMP_FIELD` in any pmacct form,
 *   local times in `PMACCT_TIMEZONE`; a record outside the record-time
 *   window every sink has (`RECORD_TIME_MIN` .. `RECORD_TIME_MAX_FUTURE`) or
 *   outside this sink's own `VM_TIMESTAMP_MAX_AGE` .. `VM_TIMESTAMP_MAX_FUTURE`
 *   (the server's retention and its limit ahead) is rejected, in the name of
 *   the narrower bound on its side, the one to change (by default this
 *   sink's: 31 days back, 600 s ahead, within 1970 .. a day ahead).
 * - Label names: `[a-zA-Z_][a-zA-Z0-9_]*`; other characters become `_`, a
 *   leading digit gets a `_` in front. `job`, `instance`, `__name__` and
 *   other `__` names are sluice's, so a record field with such a name is
 *   kept as `exported_<name>`, as Prometheus does with `honor_labels: false`
 *   (also when a renamed field meets an existing name: `exported_` again).
 * - Label values: strings as they are, numbers as their decimal text,
 *   booleans `true`/`false`, objects as JSON; null and empty values give no
 *   label (VictoriaMetrics treats an empty value as no label). A value that
 *   is not valid Unicode (a lone surrogate) or longer than
 *   `VM_MAX_LABEL_VALUE_LENGTH` bytes, or more labels than `VM_MAX_LABELS`,
 *   rejects the record.
 *
 * @module
 */

import { utf8Length } from "../../lib/text.ts";
import type { TimeReader, Timestamp } from "../../lib/time.ts";
import type { InputRecord, PreparedRow, PrepareResult } from "../../lib/record.ts";
import { labelValueOf, matchesPattern } from "../../lib/fields.ts";
import { floatOf, floatOfText, isIntegerLiteral, JsonNumber } from "../../lib/json.ts";

/** One record's import lines. */
export interface VictoriaMetricsRow {
  /** One JSON line per valid metric field, in `VM_METRICS_NAMES` order. */
  lines: string[];
  /** The record's metric fields that were set aside, with the reason (e.g. `packets: null`). */
  setAside?: string[];
}

/** What the encoder needs. */
export interface EncoderOptions {
  /** The `job` label. */
  job: string;
  /** The `instance` label. */
  instance: string;
  /** Metric fields, each also the metric name. */
  metricNames: readonly string[];
  /** Field patterns left out of the labels (when `labels` is not set). */
  avoidLabels: readonly string[];
  /** Field patterns that alone become labels, when set. */
  labels?: readonly string[];
  /** Field holding the sample time. */
  timestampField: string;
  /** Oldest accepted sample, in milliseconds before now. */
  maxAgeMs: number;
  /** Furthest accepted sample, in milliseconds after now. */
  maxFutureMs: number;
  /** Most labels per series, `__name__`, `job` and `instance` included. */
  maxLabels: number;
  /** Longest label value in UTF-8 bytes. */
  maxLabelValueBytes: number;
  /** Reads pmacct timestamps in the configured zone. */
  time: TimeReader;
  /** Milliseconds clock for the timestamp window, injected by tests. */
  clock?: () => number;
}

/** Label names as Prometheus and VictoriaMetrics define them. */
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** A decimal number as text, e.g. `12`, `-1.5`, `3e6` (not `NaN`, `Infinity` or `0x10`). */
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Labels sluice sets itself. */
const OWN_LABELS = ["__name__", "job", "instance"];

/** How a record field becomes a label; `undefined` in the plan cache: it does not. */
interface FieldPlan {
  /** The label name before collision handling. */
  name: string;
  /** Whether the name differs from the field (sanitized or `exported_`). */
  renamed: boolean;
}

/**
 * The label name of a record field, before collisions: invalid characters
 * become `_`, a leading digit gets `_` in front, and sluice's own labels and
 * reserved `__` names get `exported_` in front.
 *
 * @param field The record field.
 * @returns The label name and whether it differs from the field.
 */
export function labelNameOf(field: string): FieldPlan {
  let name = field;
  if (!LABEL_NAME_RE.test(name)) {
    name = name.replace(/[^a-zA-Z0-9_]/g, "_");
    if (!/^[a-zA-Z_]/.test(name)) name = `_${name}`;
  }
  if (OWN_LABELS.includes(name) || name.startsWith("__")) name = `exported_${name}`;
  return { name, renamed: name !== field };
}

/** 2^53: VictoriaMetrics stores every integer up to it exactly, and not all beyond. */
const TWO_53 = 9007199254740992;

/**
 * Reads a metric value: a finite number, or a numeric string, that
 * VictoriaMetrics stores as that number (see the module documentation).
 *
 * @param value The field value (`undefined` when the field is missing).
 * @returns The number, or why it is not one (with the value as written).
 */
export function metricValueOf(value: unknown): { ok: true; value: number } | {
  ok: false;
  why: string;
} {
  // The common case first: a number VictoriaMetrics stores as it is.
  if (typeof value === "number" && value <= TWO_53 && value >= -TWO_53) return { ok: true, value };
  let n: number;
  let shown: string;
  let text: string | undefined;
  if (typeof value === "number") {
    n = value;
    shown = String(value);
  } else if (value instanceof JsonNumber) {
    n = value.value;
    shown = value.text;
  } else if (typeof value === "string") {
    text = value.trim();
    shown = JSON.stringify(value);
    if (!NUMBER_RE.test(text)) return { ok: false, why: `${shown} is not a number` };
    n = Number(text);
  } else if (value === undefined) return { ok: false, why: "is missing" };
  else if (value === null) return { ok: false, why: "is null" };
  else return { ok: false, why: `${JSON.stringify(value)} is not a number` };
  // A float literal (`2.5e300`) is stored as a float; an integer literal
  // beyond 2^53 is not stored as that integer, even one a double holds
  // (1.79.5 stored 2^60 = 1152921504606846976 as 1152921504606846848). A
  // plain number that big never comes from the decoders (lib/json.ts keeps
  // it as a JsonNumber), so it is taken for an integer.
  if (
    Number.isFinite(n) && Math.abs(n) > TWO_53 &&
    (typeof value === "number" || isIntegerLiteral(text ?? shown))
  ) {
    return {
      ok: false,
      why: `${shown} is beyond 2^53, where VictoriaMetrics does not store numbers exactly`,
    };
  }
  const read = text === undefined ? floatOf(value) : floatOfText(text, n);
  return read.ok ? read : { ok: false, why: `${shown} ${read.why}` };
}

/**
 * The sample time in milliseconds since the epoch (sub-millisecond digits cut).
 *
 * @param ts The instant.
 * @returns Integer milliseconds.
 */
export function timestampMillis(ts: Timestamp): number {
  return ts.seconds * 1000 + Math.floor(ts.micros / 1000);
}

/**
 * Compiles the conversion of records into import lines.
 *
 * @param options Labels, metrics, timestamps and limits.
 * @returns A function from a record to its row (with the byte size of its
 *   lines, newlines included) or a `convert` rejection.
 */
export function compileRecordEncoder(
  options: EncoderOptions,
): (record: InputRecord) => PrepareResult<VictoriaMetricsRow> {
  const clock = options.clock ?? Date.now;
  const metricNames = [...options.metricNames];
  const lineStarts = metricNames.map((n) => `{"metric":{"__name__":${JSON.stringify(n)},`);
  const ownLabels = `"job":${JSON.stringify(options.job)},"instance":${
    JSON.stringify(options.instance)
  }`;
  const timestampField = options.timestampField;
  const skipped = new Set([...metricNames, timestampField]);
  const allow = options.labels;
  const avoid = options.avoidLabels;
  const plans = new Map<string, FieldPlan | undefined>();
  const planOf = (field: string): FieldPlan | undefined => {
    if (plans.has(field)) return plans.get(field);
    const labelled = !skipped.has(field) &&
      (allow === undefined ? !matchesPattern(field, avoid) : matchesPattern(field, allow));
    const plan = labelled ? labelNameOf(field) : undefined;
    if (plans.size >= 10_000) plans.clear();
    plans.set(field, plan);
    return plan;
  };
  const maxValueBytes = options.maxLabelValueBytes;
  const maxOwnLabels = options.maxLabels - OWN_LABELS.length;
  const window = options.time.window;
  const reject = (error: string): PrepareResult<VictoriaMetricsRow> => ({
    ok: false,
    rejection: { reason: "convert", error: `Cannot convert record: ${error}` },
  });

  return (record) => {
    // Timestamp, and the window it must be in.
    if (!Object.hasOwn(record, timestampField)) {
      return reject(`it has no field "${timestampField}" (VM_TIMESTAMP_FIELD)`);
    }
    const rawTime = record[timestampField];
    let ms: number;
    let ts: Timestamp;
    try {
      ts = options.time.parse(rawTime);
      ms = timestampMillis(ts);
    } catch (error) {
      return reject(
        `field "${timestampField}" is not a timestamp: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    // Two bounds on each side: the record-time window every sink has and
    // VictoriaMetrics' own (its retention, its limit ahead). A time outside
    // both is refused in the name of the narrower one, the one to change.
    const now = clock();
    let own: string | undefined;
    let ownNarrower = true;
    if (ms < now - options.maxAgeMs) {
      own = `is ${Math.round((now - ms) / 1000)} s old, older than VM_TIMESTAMP_MAX_AGE (${
        options.maxAgeMs / 1000
      } s)`;
      if (window !== undefined) ownNarrower = now - options.maxAgeMs >= window.minSeconds * 1000;
    } else if (ms > now + options.maxFutureMs) {
      own = `is ${Math.round((ms - now) / 1000)} s in the future, more than ` +
        `VM_TIMESTAMP_MAX_FUTURE (${
          options.maxFutureMs / 1000
        } s); check PMACCT_TIMEZONE and the collector's clock`;
      if (window !== undefined) ownNarrower = options.maxFutureMs <= window.maxFutureMs;
    }
    const outside = own !== undefined && ownNarrower ? own : options.time.outsideWindow(ts) ?? own;
    if (outside !== undefined) {
      return reject(`field "${timestampField}" ${JSON.stringify(rawTime)} ${outside}`);
    }

    // Labels: fields keeping their name first, so renamed ones cannot take a name.
    const used = new Set<string>(OWN_LABELS);
    let labels = ownLabels;
    let count = 0;
    let renamed: Array<[string, string]> | undefined;
    for (const field of Object.keys(record)) {
      const plan = planOf(field);
      if (plan === undefined) continue;
      const value = labelValueOf(record[field]);
      if (value === undefined) continue;
      if (!value.isWellFormed()) {
        return reject(`field "${field}" is not valid Unicode (a lone surrogate)`);
      }
      if (value.length * 3 > maxValueBytes && utf8Length(value) > maxValueBytes) {
        return reject(
          `field "${field}" is ${utf8Length(value)} bytes long, ` +
            `longer than VM_MAX_LABEL_VALUE_LENGTH (${maxValueBytes})`,
        );
      }
      if (plan.renamed) {
        (renamed ??= []).push([plan.name, value]);
        continue;
      }
      used.add(plan.name);
      labels += `,${JSON.stringify(plan.name)}:${JSON.stringify(value)}`;
      count++;
    }
    if (renamed !== undefined) {
      for (const [first, value] of renamed) {
        let name = first;
        while (used.has(name)) name = `exported_${name}`;
        used.add(name);
        labels += `,${JSON.stringify(name)}:${JSON.stringify(value)}`;
        count++;
      }
    }
    if (count > maxOwnLabels) {
      return reject(
        `it gives ${count + OWN_LABELS.length} labels, more than VM_MAX_LABELS (${
          maxOwnLabels + OWN_LABELS.length
        }); leave fields out with VM_AVOID_LABELS or VM_LABELS`,
      );
    }

    // One line per valid metric.
    const tail = `},"values":[`;
    const stamp = `],"timestamps":[${ms}]}`;
    const lines: string[] = [];
    let setAside: string[] | undefined;
    let bytes = 0;
    for (let i = 0; i < metricNames.length; i++) {
      const name = metricNames[i]!;
      const read = metricValueOf(Object.hasOwn(record, name) ? record[name] : undefined);
      if (!read.ok) {
        (setAside ??= []).push(`${name}: ${read.why}`);
        continue;
      }
      const line = lineStarts[i]! + labels + tail + JSON.stringify(read.value) + stamp;
      lines.push(line);
      bytes += utf8Length(line) + 1;
    }
    if (lines.length === 0) {
      return reject(`no metric field has a number value (${setAside!.join("; ")})`);
    }
    const row: VictoriaMetricsRow = setAside === undefined ? { lines } : { lines, setAside };
    return { ok: true, row, bytes };
  };
}

/**
 * The body lines of an import of these rows, exactly as sent (before gzip):
 * every row's lines, in order.
 *
 * @param rows The rows.
 * @returns One JSON object per line.
 */
export function encodeLines(rows: readonly PreparedRow<VictoriaMetricsRow>[]): string[] {
  const lines: string[] = [];
  for (const r of rows) for (const line of r.row.lines) lines.push(line);
  return lines;
}
