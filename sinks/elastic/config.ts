/**
 * The Elasticsearch sink's variables, read once into a resolved configuration.
 *
 * Compatible with pmacct-kafka-elastic: `ELASTIC_HOSTS`, `ELASTIC_USE_SSL`,
 * `ELASTIC_VERIFY_SSL`, `ELASTIC_INDEX_PREFIX`, `ELASTIC_INDEX_TEMPLATE`,
 * `ELASTIC_MAX_SAMPLES_PER_SEND` and `ELASTIC_MAX_TIME_TO_SEND` mean what they
 * meant there, with the same defaults. The script read the time limit from a
 * misspelt `ELASTC_MAX_TIME_TO_SEND` while its README documented
 * `ELASTIC_MAX_TIME_TO_SEND`; both are read, the correct spelling wins.
 *
 * The mappings file (`ELASTIC_INDEX_TEMPLATE`) is resolved against the
 * working directory. When it has the default name and is not there, the copy
 * shipped with sluice (`new-index-template.json` at the repository root,
 * imported statically so that `deno compile` embeds it) is used.
 *
 * @module
 */

import { parseEndpoint } from "../../lib/address.ts";
import type { BatchLimits } from "../../lib/sink.ts";
import { declareVariables, type VarReader } from "../../lib/variables.ts";
import BUILT_IN_TEMPLATE from "../../new-index-template.json" with { type: "json" };

/** How index settings and mappings reach the server. */
export type TemplateMode = "index_template" | "create_index" | "none";

/** The mappings and settings every daily index gets. */
export interface IndexTemplate {
  /** Where they were read from, for logs and `--check-config`. */
  source: string;
  /** The `mappings` object of the file. */
  mappings: Record<string, unknown>;
  /** Index settings: the file's `settings`, plus 1 shard and 0 replicas unless it sets them. */
  settings: Record<string, unknown>;
}

/** The resolved Elasticsearch configuration; each field names its variable. */
export interface ElasticConfig {
  /**
   * Base URLs of the nodes, e.g. `http://127.0.0.1:9200`, from `ELASTIC_HOSTS`
   * and `ELASTIC_USE_SSL`.
   */
  hosts: string[];
  /** Whether any host is reached over HTTPS (`ELASTIC_USE_SSL`, or `https://` URLs). */
  secure: boolean;
  /** Verify the server certificates (`ELASTIC_VERIFY_SSL`). */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificates (`ELASTIC_CA_FILE`). */
  caFile?: string;
  /** Basic authentication user (`ELASTIC_USERNAME`). */
  username?: string;
  /** Basic authentication password (`ELASTIC_PASSWORD`); never logged. */
  password?: string;
  /** API key, base64 `id:key` as Elasticsearch encodes it, or `id:key` (`ELASTIC_API_KEY`); never logged. */
  apiKey?: string;
  /** Daily indexes are named `<indexPrefix>-YYYY-MM-DD` (`ELASTIC_INDEX_PREFIX`). */
  indexPrefix: string;
  /** Mappings and settings, from `ELASTIC_INDEX_TEMPLATE`. */
  template: IndexTemplate;
  /** How the mappings reach the server (`ELASTIC_TEMPLATE_MODE`). */
  templateMode: TemplateMode;
  /** Record fields holding the record time, tried in order (`ELASTIC_TIMESTAMP_FIELD`). */
  timestampFields: string[];
  /** Request timeout in milliseconds (`ELASTIC_REQUEST_TIMEOUT`). */
  requestTimeoutMs: number;
}

/** The default of `ELASTIC_INDEX_TEMPLATE`, also the name of the built-in copy. */
export const DEFAULT_TEMPLATE_FILE = "new-index-template.json";

/** Settings the original script gave every index it created. */
export const DEFAULT_INDEX_SETTINGS: Readonly<Record<string, number>> = {
  number_of_shards: 1,
  number_of_replicas: 0,
};

/** Where credentials go instead of a URL in `ELASTIC_HOSTS`. */
const CREDENTIALS_IN = "ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY";

/** Every variable the Elasticsearch sink reads. */
export const ELASTIC = declareVariables("Elasticsearch", {
  ELASTIC_HOSTS: {
    type: "list",
    selects: true,
    default: "127.0.0.1:9200",
    doc: "Comma-separated Elasticsearch or OpenSearch nodes as host[:port] (port 9200) " +
      "or http(s):// URLs; requests go round-robin and skip a failed node for a while",
  },
  ELASTIC_USE_SSL: {
    type: "bool",
    default: "NO",
    doc: "Connect to host[:port] entries of ELASTIC_HOSTS with HTTPS",
  },
  ELASTIC_VERIFY_SSL: {
    type: "bool",
    default: "YES",
    doc: "Verify the nodes' TLS certificates and host names (NO accepts any certificate)",
  },
  ELASTIC_CA_FILE: {
    type: "file",
    pem: true,
    doc: "PEM file with the CA certificate(s) that signed the nodes' certificates, " +
      "in addition to the system CAs",
  },
  ELASTIC_USERNAME: {
    type: "string",
    doc: "User name for HTTP basic authentication (with ELASTIC_PASSWORD)",
  },
  ELASTIC_PASSWORD: { type: "string", secret: true, doc: "Password of ELASTIC_USERNAME" },
  ELASTIC_API_KEY: {
    type: "string",
    secret: true,
    doc: "API key sent as 'Authorization: ApiKey ...': the encoded value, or id:api_key " +
      "(instead of ELASTIC_USERNAME/ELASTIC_PASSWORD)",
  },
  ELASTIC_INDEX_PREFIX: {
    type: "string",
    default: "sflow",
    doc: "Documents go to daily indexes named <prefix>-YYYY-MM-DD (the UTC day of the record time)",
  },
  ELASTIC_INDEX_TEMPLATE: {
    type: "string",
    default: DEFAULT_TEMPLATE_FILE,
    doc: "JSON file whose 'mappings' (and optional 'settings') every daily index gets; " +
      "relative to the working directory; the default falls back to the copy built into sluice",
  },
  ELASTIC_TEMPLATE_MODE: {
    type: "enum",
    choices: ["create_index", "index_template", "none"],
    default: "create_index",
    doc: "create_index: create each daily index with the mappings before writing to it " +
      "(as pmacct-kafka-elastic); index_template: install an index template <prefix> for " +
      "<prefix>-* at start; none: leave indexes to the server",
  },
  ELASTIC_TIMESTAMP_FIELD: {
    type: "list",
    default: "stamp_updated",
    doc: "Record field holding the record time, which sets @timestamp and the daily index " +
      "(several: comma-separated, the first present is used); records without it are rejected",
  },
  ELASTIC_MAX_SAMPLES_PER_SEND: {
    type: "int",
    default: "1000",
    min: 1,
    doc: "Send a bulk request when the batch holds this many documents",
  },
  ELASTIC_MAX_BYTES_PER_SEND: {
    type: "int",
    default: "10485760",
    min: 1,
    doc: "Send a bulk request when its NDJSON body reaches this many bytes",
  },
  ELASTIC_MAX_TIME_TO_SEND: {
    type: "seconds",
    default: "10",
    doc: "Send a bulk request when its oldest document has waited this many seconds " +
      "(decimals allowed, > 0)",
  },
  ELASTC_MAX_TIME_TO_SEND: {
    type: "seconds",
    supersededBy: "ELASTIC_MAX_TIME_TO_SEND",
    doc: "The misspelt name pmacct-kafka-elastic read for ELASTIC_MAX_TIME_TO_SEND; " +
      "still read, ELASTIC_MAX_TIME_TO_SEND wins when both are set",
  },
  ELASTIC_REQUEST_TIMEOUT: {
    type: "seconds",
    default: "30",
    doc: "Give up on one Elasticsearch request after this many seconds (decimals allowed, > 0)",
  },
});

/** A problem found while reading a value, for the caller to report against its variable. */
export interface ValueProblem {
  /** The offending part of the value. */
  value: string;
  /** What is wrong. */
  message: string;
}

/**
 * Reads `ELASTIC_HOSTS` into base URLs. Pure: problems are returned.
 *
 * Entries are `host`, `host:port`, `[v6]:port`, a bare IPv6 address, or an
 * `http(s)://host[:port][/path]` URL (see `parseEndpoint` in lib/address.ts);
 * the port defaults to 9200 as in the original script. `useSsl` picks the
 * scheme of entries without one; a URL whose scheme contradicts an
 * explicitly set `ELASTIC_USE_SSL` is refused.
 *
 * @param entries The comma-separated entries, already split and trimmed.
 * @param useSsl `ELASTIC_USE_SSL`.
 * @param useSslSet Whether `ELASTIC_USE_SSL` was set explicitly.
 * @returns The URLs (without trailing slash, duplicates dropped) and any problems.
 */
export function parseHosts(
  entries: readonly string[],
  useSsl: boolean,
  useSslSet = false,
): { hosts: string[]; problems: ValueProblem[] } {
  const hosts: string[] = [];
  const problems: ValueProblem[] = [];
  for (const entry of entries) {
    const parsed = parseEndpoint(entry, { credentialsIn: CREDENTIALS_IN });
    if (!parsed.ok) {
      problems.push({ value: entry, message: parsed.message });
      continue;
    }
    const { scheme, host, port, path } = parsed.endpoint;
    if (scheme !== undefined && useSslSet && (scheme === "https") !== useSsl) {
      problems.push({
        value: entry,
        message: `must agree with ELASTIC_USE_SSL: the URL uses ${scheme} but ELASTIC_USE_SSL is ${
          useSsl ? "YES" : "NO"
        }`,
      });
      continue;
    }
    hosts.push(`${scheme ?? (useSsl ? "https" : "http")}://${host}:${port ?? 9200}${path}`);
  }
  if (entries.length === 0) problems.push({ value: "", message: "must list at least one host" });
  return { hosts: [...new Set(hosts)], problems };
}

/**
 * Checks an index prefix against Elasticsearch's index name rules, leaving
 * room for the `-YYYY-MM-DD` suffix.
 * https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-create-index.html#indices-create-api-path-params
 *
 * @param prefix The prefix.
 * @returns What is wrong, or `undefined` when it is usable.
 */
export function indexPrefixProblem(prefix: string): string | undefined {
  if (prefix === "") return "must not be empty";
  if (prefix !== prefix.toLowerCase()) return "must be lowercase (index names are)";
  if (/[\\/*?"<>| ,#:]/.test(prefix)) {
    return 'must not contain \\ / * ? " < > | , # : or spaces (index name rules)';
  }
  if (/^[-_+.]/.test(prefix)) return "must not start with - _ + or . (index name rules)";
  if (new TextEncoder().encode(prefix).length > 244) {
    return "must be at most 244 bytes (index names are at most 255 with -YYYY-MM-DD)";
  }
  return undefined;
}

/**
 * Reads a mappings file as the original script did (`json.load(f)['mappings']`),
 * plus an optional `settings` object. Pure: the file's text is given.
 *
 * @param text The file's contents.
 * @param source Where it came from, kept for logs.
 * @returns The template, or what is wrong with it.
 */
export function parseTemplate(
  text: string,
  source: string,
): { ok: true; template: IndexTemplate } | { ok: false; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `must be a JSON file (${(error as Error).message})` };
  }
  if (!isObject(parsed) || !isObject(parsed.mappings)) {
    return { ok: false, message: 'must hold a JSON object with a "mappings" object' };
  }
  if (parsed.settings !== undefined && !isObject(parsed.settings)) {
    return { ok: false, message: 'must have an object as "settings" when it has one' };
  }
  return {
    ok: true,
    template: {
      source,
      mappings: parsed.mappings,
      settings: withDefaultSettings(parsed.settings ?? {}),
    },
  };
}

/**
 * Adds the original script's 1 shard and 0 replicas to index settings that
 * do not set them (in any of the spellings Elasticsearch accepts).
 *
 * @param settings The file's settings.
 * @returns The settings to send.
 */
export function withDefaultSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const result = { ...settings };
  const nested = isObject(settings.index) ? settings.index : {};
  for (const [key, value] of Object.entries(DEFAULT_INDEX_SETTINGS)) {
    if (key in settings || `index.${key}` in settings || key in nested) continue;
    result[key] = value;
  }
  return result;
}

/**
 * Resolves `ELASTIC_INDEX_TEMPLATE`: the named file relative to the working
 * directory, or the built-in copy when the default name is not found there.
 *
 * @param path The variable's value.
 * @param read Reads a file as text (injected by tests).
 * @returns The template, or what is wrong with the file.
 */
export function loadTemplate(
  path: string,
  read: (path: string) => string = Deno.readTextFileSync,
): { ok: true; template: IndexTemplate } | { ok: false; message: string } {
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && path === DEFAULT_TEMPLATE_FILE) {
      return {
        ok: true,
        template: {
          source: `${DEFAULT_TEMPLATE_FILE} (built in)`,
          mappings: structuredClone(BUILT_IN_TEMPLATE.mappings),
          settings: withDefaultSettings({}),
        },
      };
    }
    return { ok: false, message: `must be a readable file (${(error as Error).message})` };
  }
  return parseTemplate(text, path);
}

/**
 * Reads and validates the Elasticsearch variables; every problem goes to
 * `reader.problems`, nothing is thrown.
 *
 * @param reader The reader holding the environment.
 * @returns The resolved configuration and the batch limits.
 */
export function parseElasticConfig(
  reader: VarReader,
): { config: ElasticConfig; batch: BatchLimits } {
  const v = ELASTIC.read(reader);
  const { hosts, problems } = parseHosts(
    v.ELASTIC_HOSTS,
    v.ELASTIC_USE_SSL,
    reader.isSet("ELASTIC_USE_SSL"),
  );
  for (const p of problems) reader.problem("ELASTIC_HOSTS", p.value, p.message);
  const secure = hosts.some((h) => h.startsWith("https:"));
  reader.requireTls("ELASTIC_CA_FILE", secure, "set ELASTIC_USE_SSL=YES or use https:// hosts");

  const username = v.ELASTIC_USERNAME;
  const password = v.ELASTIC_PASSWORD;
  const apiKey = v.ELASTIC_API_KEY;
  if ((username === undefined) !== (password === undefined)) {
    reader.problem("ELASTIC_USERNAME/ELASTIC_PASSWORD", undefined, "must be set together");
  }
  if (apiKey !== undefined && (username !== undefined || password !== undefined)) {
    reader.problem(
      "ELASTIC_API_KEY",
      undefined,
      "cannot be combined with ELASTIC_USERNAME/ELASTIC_PASSWORD; choose one",
    );
  }

  const indexPrefix = v.ELASTIC_INDEX_PREFIX;
  const prefixProblem = indexPrefixProblem(indexPrefix);
  if (prefixProblem) reader.problem("ELASTIC_INDEX_PREFIX", indexPrefix, prefixProblem);

  const templatePath = v.ELASTIC_INDEX_TEMPLATE;
  const loaded = loadTemplate(templatePath);
  let template: IndexTemplate = { source: templatePath, mappings: {}, settings: {} };
  if (loaded.ok) template = loaded.template;
  else reader.problem("ELASTIC_INDEX_TEMPLATE", templatePath, loaded.message);

  const timestampFields = v.ELASTIC_TIMESTAMP_FIELD;
  if (timestampFields.length === 0) {
    reader.problem(
      "ELASTIC_TIMESTAMP_FIELD",
      reader.raw("ELASTIC_TIMESTAMP_FIELD"),
      "must name a field",
    );
  }

  const config: ElasticConfig = {
    hosts,
    secure,
    tlsVerify: v.ELASTIC_VERIFY_SSL,
    caFile: v.ELASTIC_CA_FILE,
    username,
    password,
    apiKey,
    indexPrefix,
    template,
    templateMode: v.ELASTIC_TEMPLATE_MODE,
    timestampFields,
    requestTimeoutMs: v.ELASTIC_REQUEST_TIMEOUT,
  };
  const batch: BatchLimits = {
    maxRows: v.ELASTIC_MAX_SAMPLES_PER_SEND,
    maxBytes: v.ELASTIC_MAX_BYTES_PER_SEND,
    // The misspelt name the original read counts only while the right one is unset.
    maxAgeMs: v.ELASTC_MAX_TIME_TO_SEND ?? v.ELASTIC_MAX_TIME_TO_SEND,
  };
  return { config, batch };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
