/**
 * The YAML that configuration files are written in, and no more: nested
 * block mappings, scalars (plain, 'single' and "double" quoted), lists of
 * scalars (block `- item` or flow `[a, b]`), comments, `---`. That covers
 * kafka-influxdb's `config.yaml`. Anything else (anchors, multi-line
 * scalars, flow mappings, tags) is refused with its line number rather than
 * misread, since no YAML library is among sluice's dependencies.
 *
 * Scalars are kept as text, as an environment variable would hold them;
 * `null`, `~` and empty values are `null` (unset).
 *
 * @module
 */

/** A parsed value: text, a list of texts, a nested mapping, or null. */
export type YamlValue = string | null | string[] | YamlMapping;

/** A mapping of keys to values. */
export interface YamlMapping {
  [key: string]: YamlValue;
}

interface Line {
  number: number;
  indent: number;
  text: string;
}

/**
 * Parses a configuration file's text.
 *
 * @param text The file's content.
 * @param source The file name, for error messages.
 * @returns The top-level mapping (empty for an empty file).
 * @throws {SyntaxError} Naming the file, the line and what is not understood.
 */
export function parseYaml(text: string, source = "config"): YamlMapping {
  const lines: Line[] = [];
  text.replace(/^\uFEFF/, "").split(/\r?\n/).forEach((raw, i) => {
    const number = i + 1;
    if (raw.includes("\t") && /^\s*\t/.test(raw)) {
      throw new SyntaxError(`Cannot read ${source} line ${number}: tabs cannot indent YAML`);
    }
    const text = stripComment(raw, source, number).trimEnd();
    if (text.trim() === "" || (i === 0 || lines.length === 0) && text.trim() === "---") return;
    if (text.trim() === "..." || text.trim() === "---") {
      throw new SyntaxError(`Cannot read ${source} line ${number}: one YAML document only`);
    }
    lines.push({ number, indent: text.length - text.trimStart().length, text: text.trim() });
  });
  const state = { lines, at: 0, source };
  const result = parseMapping(state, lines[0]?.indent ?? 0);
  if (state.at < lines.length) {
    const line = lines[state.at]!;
    throw new SyntaxError(`Cannot read ${source} line ${line.number}: unexpected indentation`);
  }
  return result;
}

/**
 * Flattens nested keys with `_` and upper-cases them, the way kafka-influxdb
 * flattened its file (`kafka: {host: x}` is `kafka_host`) and sluice names
 * variables (`KAFKA_HOST`). Lists become comma-separated text.
 *
 * @param mapping A parsed file.
 * @returns Variable names to values; `null` values are left out.
 */
export function flattenYaml(mapping: YamlMapping): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (value: YamlMapping, prefix: string) => {
    for (const [key, child] of Object.entries(value)) {
      const name = (prefix ? `${prefix}_${key}` : key).toUpperCase().replace(/[.-]/g, "_");
      if (child === null) continue;
      if (typeof child === "string") out.set(name, child);
      else if (Array.isArray(child)) out.set(name, child.join(","));
      else walk(child, name);
    }
  };
  walk(mapping, "");
  return out;
}

interface State {
  lines: Line[];
  at: number;
  source: string;
}

function fail(state: State, line: Line, message: string): never {
  throw new SyntaxError(`Cannot read ${state.source} line ${line.number}: ${message}`);
}

function parseMapping(state: State, indent: number): YamlMapping {
  const mapping: YamlMapping = {};
  while (state.at < state.lines.length) {
    const line = state.lines[state.at]!;
    if (line.indent < indent) break;
    if (line.indent > indent) fail(state, line, "unexpected indentation");
    if (line.text.startsWith("- ") || line.text === "-") {
      fail(state, line, "expected `key: value`, got a list item");
    }
    const match = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:#'"{[][^:]*?)\s*:(?:\s+(.*))?$/.exec(
      line.text,
    );
    if (match === null) fail(state, line, `expected \`key: value\`, got ${quote(line.text)}`);
    const key = scalar(state, line, match[1]!) ?? "";
    if (key in mapping) fail(state, line, `key ${quote(key)} appears twice`);
    state.at++;
    const rest = match[2]?.trim() ?? "";
    if (rest !== "") {
      mapping[key] = inlineValue(state, line, rest);
      continue;
    }
    const next = state.lines[state.at];
    if (next !== undefined && next.indent > indent) {
      mapping[key] = next.text.startsWith("- ") || next.text === "-"
        ? parseList(state, next.indent)
        : parseMapping(state, next.indent);
    } else if (next !== undefined && next.indent === indent && next.text.startsWith("- ")) {
      mapping[key] = parseList(state, indent);
    } else mapping[key] = null;
  }
  return mapping;
}

function parseList(state: State, indent: number): string[] {
  const items: string[] = [];
  while (state.at < state.lines.length) {
    const line = state.lines[state.at]!;
    if (line.indent !== indent || !(line.text.startsWith("- ") || line.text === "-")) break;
    const value = line.text.slice(1).trim();
    if (/^[^'"[{]*:(\s|$)/.test(value)) fail(state, line, "lists of mappings are not supported");
    const item = scalar(state, line, value);
    if (item !== null) items.push(item);
    state.at++;
  }
  return items;
}

function inlineValue(state: State, line: Line, text: string): YamlValue {
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) fail(state, line, "a flow list must end on its line");
    const inner = text.slice(1, -1).trim();
    if (inner === "") return [];
    return splitFlow(inner).map((part) => scalar(state, line, part.trim()) ?? "");
  }
  if (text.startsWith("{")) fail(state, line, "flow mappings are not supported; nest the keys");
  if (/^[|>]/.test(text)) fail(state, line, "multi-line scalars are not supported");
  if (/^[&*!]/.test(text)) fail(state, line, "anchors, aliases and tags are not supported");
  return scalar(state, line, text);
}

function splitFlow(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoteChar = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoteChar) {
      if (c === "\\" && quoteChar === '"') i++;
      else if (c === quoteChar) quoteChar = "";
    } else if (c === '"' || c === "'") quoteChar = c;
    else if (c === ",") {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  '"': '"',
  "\\": "\\",
  "/": "/",
  "0": "\0",
  " ": " ",
};

function scalar(state: State, line: Line, text: string): string | null {
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) fail(state, line, "unterminated double quote");
    return text.slice(1, -1).replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, e: string) => {
      if (e.length === 5) return String.fromCharCode(parseInt(e.slice(1), 16));
      const out = ESCAPES[e];
      if (out === undefined) fail(state, line, `unknown escape \\${e}`);
      return out;
    });
  }
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) fail(state, line, "unterminated single quote");
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (text === "" || text === "~" || /^null$/i.test(text)) return null;
  return text;
}

/** Removes a `#` comment that is outside quotes and after whitespace (or at the start). */
function stripComment(raw: string, source: string, number: number): string {
  let quoteChar = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quoteChar) {
      if (c === "\\" && quoteChar === '"') i++;
      else if (c === quoteChar) {
        if (quoteChar === "'" && raw[i + 1] === "'") i++;
        else quoteChar = "";
      }
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s:,[\-]/.test(raw[i - 1]!))) {
      quoteChar = c;
    } else if (c === "#" && (i === 0 || /\s/.test(raw[i - 1]!))) return raw.slice(0, i);
  }
  if (quoteChar === '"' || quoteChar === "'") {
    throw new SyntaxError(`Cannot read ${source} line ${number}: unterminated quote`);
  }
  return raw;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? text.slice(0, 57) + "..." : text);
}
