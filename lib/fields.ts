/**
 * Record fields as the metric sinks (VictoriaMetrics, InfluxDB) turn them
 * into labels and tags: which fields a pattern list selects, and the text of
 * a value.
 *
 * @module
 */

import { JsonNumber } from "./json.ts";

/**
 * Whether a field name matches one of the patterns (`name`, or `prefix*`).
 *
 * @param field The record field.
 * @param patterns The patterns.
 * @returns `true` on a match.
 */
export function matchesPattern(field: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p.endsWith("*") ? field.startsWith(p.slice(0, -1)) : field === p) return true;
  }
  return false;
}

/**
 * The text of a record field value, as a label or tag value: numbers exact
 * (a `JsonNumber` as the digits it was written with).
 *
 * @param value The field value.
 * @returns The text, or `undefined` when the field gives none (null, empty).
 */
export function labelValueOf(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return value === "" ? undefined : value;
    case "number":
    case "bigint":
      return String(value);
    case "boolean":
      return value ? "true" : "false";
    case "undefined":
      return undefined;
    default:
      if (value instanceof JsonNumber) return value.text;
      return value === null ? undefined : JSON.stringify(value);
  }
}
