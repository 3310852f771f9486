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

import type { Env, VarReader, VarSpec } from "../../lib/variables.ts";
import type { BatchLimits } from "../../lib/sink.ts";
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

/** The resolved Elasticsearch configuration. */
export interface ElasticConfig {
  /**
   * Base URLs of the nodes, e.g. `http://127.0.0.1:9200`, from `ELASTIC_HOSTS`
   * and `ELASTIC_USE_SSL`.
   * @default ["http://127.0.0.1:9200"]
   */
  hosts: string[];
  /**
   * Whether any host is reached over HTTPS (`ELASTIC_USE_SSL`, or `https://` URLs).
   * @default false
   */
  secure: boolean;
  /**
   * Verify the server certificates (`ELASTIC_VERIFY_SSL`).
   * @default true
   */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificates (`ELASTIC_CA_FILE`). */
  caFile?: string;
  /** Basic authentication user (`ELASTIC_USERNAME`). */
  username?: string;
  /** Basic authentication password (`ELASTIC_PASSWORD`); never logged. */
  password?: string;
  /** API key, base64 `id:key` as Elasticsearch encodes it (`ELASTIC_API_KEY`); never logged. */
  apiKey?: string;
  /**
   * Daily indexes are named `<indexPrefix>-YYYY-MM-DD` (`ELASTIC_INDEX_PREFIX`).
   * @default "sflow"
   */
  indexPrefix: string;
  /** Mappings and settings, from `ELASTIC_INDEX_TEMPLATE`. */
  template: IndexTemplate;
  /**
   * How the mappings reach the server (`ELASTIC_TEMPLATE_MODE`).
   * @default "create_index"
   */
  templateMode: TemplateMode;
  /**
   * Record fields holding the record time, tried in order (`ELASTIC_TIMESTAMP_FIELD`).
   * @default ["stamp_updated"]
   */
  timestampFields: string[];
  /**
   * Request timeout in milliseconds (`ELASTIC_REQUEST_TIMEOUT`).
   * @default 30000
   */
  requestTimeoutMs: number;
}

const GROUP = "Elasticsearch";

/** The default of `ELASTIC_INDEX_TEMPLATE`, also the name of the built-in copy. */
export const DEFAULT_TEMPLATE_FILE = "new-index-template.json";

/** Settings the original script gave every index it created. */
export const DEFAULT_INDEX_SETTINGS: Readonly<Record<string, number>> = {
  number_of_shards: 1,
  number_of_replicas: 0,
};

/** Every variable the Elasticsearch sink reads. */
export const ELASTIC_VARIABLES: readonly VarSpec[] = [
  {
    name: "ELASTIC_HOSTS",
    selects: true,
    type: "list",
    default: "127.0.0.1:9200",
    group: GROUP,
    doc: "Comma-separated Elasticsearch or OpenSearch nodes as host[:port] (port 9200) " +
      "or http(s):// URLs; requests go round-robin and skip a failed node for a while",
  },
  {
    name: "ELASTIC_USE_SSL",
    type: "bool",
    default: "NO",
    group: GROUP,
    doc: "Connect to host[:port] entries of ELASTIC_HOSTS with HTTPS",
  },
  {
    name: "ELASTIC_VERIFY_SSL",
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "Verify the nodes' TLS certificates and host names (NO accepts any certificate)",
  },
  {
    name: "ELASTIC_CA_FILE",
    type: "string",
    group: GROUP,
    doc: "PEM file with the CA certificate(s) that signed the nodes' certificates, " +
      "in addition to the system CAs",
  },
  {
    name: "ELASTIC_USERNAME",
    type: "string",
    group: GROUP,
    doc: "User name for HTTP basic authentication (with ELASTIC_PASSWORD)",
  },
  {
    name: "ELASTIC_PASSWORD",
    type: "string",
    secret: true,
    group: GROUP,
    doc: "Password of ELASTIC_USERNAME",
  },
  {
    name: "ELASTIC_API_KEY",
    type: "string",
    secret: true,
    group: GROUP,
    doc: "API key sent as 'Authorization: ApiKey ...': the encoded value, or id:api_key " +
      "(instead of ELASTIC_USERNAME/ELASTIC_PASSWORD)",
  },
  {
    name: "ELASTIC_INDEX_PREFIX",
    type: "string",
    default: "sflow",
    group: GROUP,
    doc: "Documents go to daily indexes named <prefix>-YYYY-MM-DD (the UTC day of the record time)",
  },
  {
    name: "ELASTIC_INDEX_TEMPLATE",
    type: "string",
    default: DEFAULT_TEMPLATE_FILE,
    group: GROUP,
    doc: "JSON file whose 'mappings' (and optional 'settings') every daily index gets; " +
      "relative to the working directory; the default falls back to the copy built into sluice",
  },
  {
    name: "ELASTIC_TEMPLATE_MODE",
    type: "enum",
    choices: ["create_index", "index_template", "none"],
    default: "create_index",
    group: GROUP,
    doc: "create_index: create each daily index with the mappings before writing to it " +
      "(as pmacct-kafka-elastic); index_template: install an index template <prefix> for " +
      "<prefix>-* at start; none: leave indexes to the server",
  },
  {
    name: "ELASTIC_TIMESTAMP_FIELD",
    type: "list",
    default: "stamp_updated",
    group: GROUP,
    doc: "Record field holding the record time, which sets @timestamp and the daily index " +
      "(several: comma-separated, the first present is used); records without it are rejected",
  },
  {
    name: "ELASTIC_MAX_SAMPLES_PER_SEND",
    type: "int",
    default: "1000",
    min: 1,
    group: GROUP,
    doc: "Send a bulk request when the batch holds this many documents",
  },
  {
    name: "ELASTIC_MAX_BYTES_PER_SEND",
    type: "int",
    default: "10485760",
    min: 1,
    group: GROUP,
    doc: "Send a bulk request when its NDJSON body reaches this many bytes",
  },
  {
    name: "ELASTIC_MAX_TIME_TO_SEND",
    type: "seconds",
    default: "10",
    group: GROUP,
    doc: "Send a bulk request when its oldest document has waited this many seconds " +
      "(decimals allowed, > 0)",
  },
  {
    name: "ELASTC_MAX_TIME_TO_SEND",
    type: "seconds",
    group: GROUP,
    doc: "The misspelt name pmacct-kafka-elastic read for ELASTIC_MAX_TIME_TO_SEND; " +
      "still read, ELASTIC_MAX_TIME_TO_SEND wins when both are set",
  },
  {
    name: "ELASTIC_REQUEST_TIMEOUT",
    type: "seconds",
    default: "30",
    group: GROUP,
    doc: "Give up on one Elasticsearch request after this many seconds (decimals allowed, > 0)",
  },
];

/**
 * Whether the environment configures the Elasticsearch sink.
 *
 * @param env The environment.
 * @returns `true` when `ELASTIC_HOSTS` is set.
 */
export function isElasticConfigured(env: Env): boolean {
  const hosts = env.ELASTIC_HOSTS;
  return hosts !== undefined && hosts.trim() !== "";
}

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
 * `http(s)://host[:port][/path]` URL; the port defaults to 9200 as in the
 * original script. `useSsl` picks the scheme of entries without one; a URL
 * whose scheme contradicts an explicitly set `ELASTIC_USE_SSL` is refused.
 *
 * @param entries The comma-separated entries, already split and trimmed.
 * @param useSsl `ELASTIC_USE_SSL`.
 * @param useSslSet Whether `ELASTIC_USE_SSL` was set explicitly.
 * @returns The URLs (without trailing slash) and any problems.
 */
export function parseHosts(
  entries: readonly string[],
  useSsl: boolean,
  useSslSet = false,
): { hosts: string[]; problems: ValueProblem[] } {
  const hosts: string[] = [];
  const problems: ValueProblem[] = [];
  for (const entry of entries) {
    const parsed = parseHost(entry, useSsl, useSslSet);
    if (typeof parsed === "string") hosts.push(parsed);
    else problems.push({ value: entry, message: parsed.message });
  }
  if (entries.length === 0) problems.push({ value: "", message: "must list at least one host" });
  return { hosts: [...new Set(hosts)], problems };
}

function parseHost(
  entry: string,
  useSsl: boolean,
  useSslSet: boolean,
): string | { message: string } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      return { message: "must list host[:port] entries or http(s):// URLs" };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return { message: "must use http:// or https:// URLs" };
    }
    if (url.username !== "" || url.password !== "") {
      return {
        message:
          "must not contain credentials (use ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY)",
      };
    }
    if (url.search !== "" || url.hash !== "") {
      return { message: "must not contain a query or fragment" };
    }
    const https = url.protocol === "https:";
    if (useSslSet && https !== useSsl) {
      return {
        message: `must agree with ELASTIC_USE_SSL: the URL uses ${
          url.protocol.slice(0, -1)
        } but ELASTIC_USE_SSL is ${useSsl ? "YES" : "NO"}`,
      };
    }
    // URL drops a scheme's default port (http://es:80): read it from the text.
    const written = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:?#]*)(?::(\d+))?/i.exec(entry)?.[1];
    const path = url.pathname.replace(/\/+$/, "");
    return `${url.protocol}//${url.hostname}:${written ? Number(written) : 9200}${path}`;
  }
  let name: string;
  let port: string | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(entry);
  const plain = /^([A-Za-z0-9._-]+)(?::(\d+))?$/.exec(entry);
  if (bracketed) {
    name = `[${bracketed[1]}]`;
    port = bracketed[2];
  } else if (/^[0-9A-Fa-f:.]+$/.test(entry) && entry.split(":").length > 2) {
    name = `[${entry}]`; // a bare IPv6 address: no port possible
  } else if (plain) {
    name = plain[1]!;
    port = plain[2];
  } else {
    return { message: "must list host[:port] entries or http(s):// URLs" };
  }
  const number = port === undefined ? 9200 : Number(port);
  if (number < 1 || number > 65535) return { message: "must have ports between 1 and 65535" };
  return `${useSsl ? "https" : "http"}://${name}:${number}`;
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
  const useSsl = reader.bool("ELASTIC_USE_SSL");
  const { hosts, problems } = parseHosts(
    reader.list("ELASTIC_HOSTS"),
    useSsl,
    reader.isSet("ELASTIC_USE_SSL"),
  );
  for (const p of problems) reader.problem("ELASTIC_HOSTS", p.value, p.message);
  const secure = hosts.some((h) => h.startsWith("https:"));
  const tlsVerify = reader.bool("ELASTIC_VERIFY_SSL");

  const caFile = reader.optional("ELASTIC_CA_FILE");
  if (caFile !== undefined) {
    if (!secure) {
      reader.problem(
        "ELASTIC_CA_FILE",
        caFile,
        "is only used with TLS: set ELASTIC_USE_SSL=YES or use https:// hosts",
      );
    } else {
      try {
        if (!Deno.readTextFileSync(caFile).includes("-----BEGIN CERTIFICATE-----")) {
          reader.problem("ELASTIC_CA_FILE", caFile, "must be a PEM file with a certificate");
        }
      } catch (error) {
        reader.problem(
          "ELASTIC_CA_FILE",
          caFile,
          `must be a readable file (${(error as Error).message})`,
        );
      }
    }
  }

  const username = reader.optional("ELASTIC_USERNAME");
  const password = reader.raw("ELASTIC_PASSWORD");
  const apiKey = reader.optional("ELASTIC_API_KEY");
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

  const indexPrefix = reader.string("ELASTIC_INDEX_PREFIX");
  const prefixProblem = indexPrefixProblem(indexPrefix);
  if (prefixProblem) reader.problem("ELASTIC_INDEX_PREFIX", indexPrefix, prefixProblem);

  const templatePath = reader.string("ELASTIC_INDEX_TEMPLATE");
  const loaded = loadTemplate(templatePath);
  let template: IndexTemplate = { source: templatePath, mappings: {}, settings: {} };
  if (loaded.ok) template = loaded.template;
  else reader.problem("ELASTIC_INDEX_TEMPLATE", templatePath, loaded.message);
  const templateMode = reader.choice("ELASTIC_TEMPLATE_MODE") as TemplateMode;

  const timestampFields = reader.list("ELASTIC_TIMESTAMP_FIELD");
  if (timestampFields.length === 0) {
    reader.problem(
      "ELASTIC_TIMESTAMP_FIELD",
      reader.raw("ELASTIC_TIMESTAMP_FIELD"),
      "must name a field",
    );
  }

  // The original read only the misspelt name; its README documented the right one.
  const timeVariable = !reader.isSet("ELASTIC_MAX_TIME_TO_SEND") &&
      reader.isSet("ELASTC_MAX_TIME_TO_SEND")
    ? "ELASTC_MAX_TIME_TO_SEND"
    : "ELASTIC_MAX_TIME_TO_SEND";
  const batch: BatchLimits = {
    maxRows: reader.int("ELASTIC_MAX_SAMPLES_PER_SEND"),
    maxBytes: reader.int("ELASTIC_MAX_BYTES_PER_SEND"),
    maxAgeMs: reader.millis(timeVariable),
  };
  const requestTimeoutMs = reader.millis("ELASTIC_REQUEST_TIMEOUT");

  const config: ElasticConfig = {
    hosts,
    secure,
    tlsVerify,
    caFile,
    username,
    password,
    apiKey,
    indexPrefix,
    template,
    templateMode,
    timestampFields,
    requestTimeoutMs,
  };
  return { config, batch };
}

/**
 * Describes a configuration for `--check-config`, secrets masked.
 *
 * @param config The resolved configuration.
 * @returns Lines of text.
 */
export function describeElasticConfig(config: ElasticConfig): string[] {
  const auth = config.apiKey !== undefined
    ? "api_key=***"
    : config.username !== undefined
    ? `user=${config.username} password=***`
    : "auth=none";
  const tls = config.secure
    ? `tls=on verify=${config.tlsVerify ? "yes" : "no"}${
      config.caFile ? ` ca=${config.caFile}` : ""
    }`
    : "tls=off";
  return [
    `elastic hosts=${config.hosts.join(",")} ${tls} ${auth}`,
    `elastic index=${config.indexPrefix}-YYYY-MM-DD template_mode=${config.templateMode} ` +
    `template=${config.template.source} timestamp_field=${config.timestampFields.join(",")} ` +
    `request_timeout=${config.requestTimeoutMs / 1000}s`,
  ];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
