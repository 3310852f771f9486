/**
 * The InfluxDB sink's variables, read once into a resolved configuration.
 *
 * Compatible with kafka-influxdb: its settings `influxdb.host`, `port`,
 * `user`, `password`, `dbname`, `use_ssl`, `verify_ssl`, `timeout`,
 * `use_udp`, `retention_policy`, `time_precision`, `buffer_size` and
 * `buffer_timeout` are the variables `INFLUXDB_HOST`, ..., `BUFFER_SIZE`,
 * `BUFFER_TIMEOUT` (what `-c config.yaml` and its `--influxdb_host` flags
 * set), with its defaults, and these differences:
 *
 * - `INFLUXDB_RETENTION_POLICY` is unset by default, where kafka-influxdb
 *   sent `autogen`: `autogen` exists only in databases created with it, and
 *   InfluxDB answers 500 `retention policy not found: autogen` for others;
 *   leaving it out writes to the database's default policy, which is what
 *   `autogen` stood for.
 * - `BUFFER_SIZE` counts points, where kafka-influxdb counted messages: the
 *   server's cost and its limits follow points.
 * - `BUFFER_TIMEOUT` is 10 seconds, where kafka-influxdb's `False` never wrote
 *   a partial buffer, so data waited for ever on a quiet topic.
 * - `INFLUXDB_USE_UDP=YES` is refused: UDP has no acknowledgement, so
 *   offsets could not be committed safely.
 * - `INFLUXDB_TIME_PRECISION` takes `s`, `ms`, `us`, `ns` (and 1.x's `u`,
 *   `n`), not `m` or `h`.
 *
 * InfluxDB 2 and 3 are written through `/api/v2/write` with a token
 * (`INFLUXDB_API_VERSION`, chosen automatically when `INFLUXDB_TOKEN`,
 * `INFLUXDB_ORG` or `INFLUXDB_BUCKET` is set); their bucket must exist, and
 * InfluxDB 2 needs the organisation (checked at start against the version
 * the server reports, since InfluxDB 3 has none).
 *
 * @module
 */

import type { BatchLimits } from "../../lib/sink.ts";
import { declareVariables, type VarReader } from "../../lib/variables.ts";
import { nameProblem, type Precision } from "./line_protocol.ts";

/** How requests authenticate. */
export type InfluxDBAuth =
  | { kind: "basic"; username: string; password: string }
  | { kind: "token"; token: string };

/** How flow records become points (`deps.input` "flows"); each field names its variable. */
export interface InfluxDBFlowConfig {
  /** The measurement of every point (`INFLUXDB_MEASUREMENT`). */
  measurement: string;
  /** Record fields written as point fields (`INFLUXDB_FIELDS`). */
  fields: string[];
  /** Field patterns that become tags (`INFLUXDB_TAGS`); `*` matches every field. */
  tags: string[];
  /** Field patterns that never become tags (`INFLUXDB_AVOID_TAGS`). */
  avoidTags: string[];
  /** Record field holding the point's time (`INFLUXDB_TIMESTAMP_FIELD`). */
  timestampField: string;
  /** The line protocol type of fields that are not integers (`INFLUXDB_FIELD_TYPES`). */
  fieldTypes?: Readonly<Record<string, FieldType>>;
}

/** The type of a point field: each field keeps one, whatever a record's JSON holds. */
export type FieldType = "integer" | "unsigned" | "float" | "string" | "boolean";

/** The field types `INFLUXDB_FIELD_TYPES` names. */
export const FIELD_TYPES: readonly FieldType[] = [
  "integer",
  "unsigned",
  "float",
  "string",
  "boolean",
];

/** The resolved InfluxDB configuration; each field names its variable. */
export interface InfluxDBConfig {
  /**
   * Which write API: 1 (`/write`, InfluxDB 1.x) or 2 (`/api/v2/write`, 2.x,
   * 3.x and 1.8+) (`INFLUXDB_API_VERSION`; `auto` picks 2 when a token, org
   * or bucket is set).
   */
  apiVersion: 1 | 2;
  /**
   * Base URL without credentials and trailing slash (`INFLUXDB_URL`, else
   * `INFLUXDB_USE_SSL`, `INFLUXDB_HOST` and `INFLUXDB_PORT`).
   */
  url: string;
  /** Where points are written, with the query string (db/rp or org/bucket, precision). */
  writeUrl: string;
  /** Where the health check and `connect()` ask: `${url}/ping`. */
  pingUrl: string;
  /** Where 1.x databases are created: `${url}/query`. */
  queryUrl: string;
  /** Verify the server's TLS certificate (`INFLUXDB_VERIFY_SSL`; off, a warning is logged). */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificate (`INFLUXDB_CA_FILE`). */
  caFile?: string;
  /** Credentials: 1.x user and password, or a 2.x/3.x token. */
  auth: InfluxDBAuth;
  /** The 1.x database (`INFLUXDB_DBNAME`). */
  database: string;
  /** The 1.x retention policy, when not the database's default (`INFLUXDB_RETENTION_POLICY`). */
  retentionPolicy?: string;
  /** The 2.x organisation (`INFLUXDB_ORG`); may be empty for InfluxDB 3. */
  org: string;
  /** The 2.x/3.x bucket or database (`INFLUXDB_BUCKET`). */
  bucket: string;
  /** The precision of the written timestamps (`INFLUXDB_TIME_PRECISION`). */
  precision: Precision;
  /** Create the 1.x database at start and after it was dropped (`INFLUXDB_CREATE_DATABASE`). */
  createDatabase: boolean;
  /** Request timeout in milliseconds (`INFLUXDB_TIMEOUT`). */
  requestTimeoutMs: number;
  /** Gzip request bodies (`INFLUXDB_GZIP`). */
  gzip: boolean;
  /** How flow records become points. */
  flows: InfluxDBFlowConfig;
}

/** The default of `INFLUXDB_AVOID_TAGS`: fields whose values change on every purge. */
export const DEFAULT_AVOID_TAGS = "stamp_inserted,stamp_updated,timestamp_*,writer_id,event_type";

/** Every variable the InfluxDB sink reads; each `INFLUXDB_*` one selects it when `SINK` is unset. */
export const INFLUXDB = declareVariables("InfluxDB", {
  INFLUXDB_URL: {
    type: "url",
    // Credentials in the URL would be printed; the variables for them are masked.
    urlCredentialsIn: "INFLUXDB_USER/INFLUXDB_PASSWORD or INFLUXDB_TOKEN",
    selects: true,
    example: "http://127.0.0.1:8086",
    doc: "Base http(s):// URL of InfluxDB, optionally with a path prefix; " +
      "instead of INFLUXDB_HOST, INFLUXDB_PORT and INFLUXDB_USE_SSL",
  },
  INFLUXDB_HOST: {
    type: "string",
    default: "localhost",
    selects: true,
    doc: "Host name or IP address of InfluxDB (when INFLUXDB_URL is unset)",
  },
  INFLUXDB_PORT: {
    type: "int",
    default: "8086",
    min: 1,
    max: 65535,
    selects: true,
    doc: "HTTP port of InfluxDB (when INFLUXDB_URL is unset)",
  },
  INFLUXDB_USE_SSL: {
    type: "bool",
    default: "NO",
    selects: true,
    doc: "Connect with https:// (when INFLUXDB_URL is unset)",
  },
  INFLUXDB_VERIFY_SSL: {
    type: "bool",
    default: "NO",
    selects: true,
    doc: "Verify the server's TLS certificate and host name; NO (kafka-influxdb's default) " +
      "accepts any certificate and logs a warning at start",
  },
  INFLUXDB_CA_FILE: {
    type: "file",
    pem: true,
    onlyWith: { name: "INFLUXDB_VERIFY_SSL", is: "YES" },
    selects: true,
    doc: "PEM file with the CA certificate(s) that signed the server certificate, " +
      "in addition to the system CAs (needs INFLUXDB_VERIFY_SSL=YES)",
  },
  INFLUXDB_USER: {
    type: "string",
    default: "root",
    selects: true,
    doc: "InfluxDB 1.x user, sent as HTTP basic authentication (a server without " +
      "auth-enabled ignores it)",
  },
  INFLUXDB_PASSWORD: {
    type: "string",
    default: "root",
    secret: true,
    selects: true,
    doc: "Password of INFLUXDB_USER",
  },
  INFLUXDB_DBNAME: {
    type: "string",
    default: "metrics",
    selects: true,
    doc: "InfluxDB 1.x database to write to",
  },
  INFLUXDB_RETENTION_POLICY: {
    type: "string",
    selects: true,
    doc: "InfluxDB 1.x retention policy to write to; unset: the database's default policy " +
      "(kafka-influxdb's autogen exists only in databases created with it)",
  },
  INFLUXDB_TIME_PRECISION: {
    // Not an enum: 1.x's u and n are read too, and m and h get their own reason.
    type: "string",
    default: "s",
    selects: true,
    doc: "Precision of the written timestamps: s, ms, us or ns (u and n as in 1.x); " +
      "times are rounded down to it, and raw lines (ENCODER=echo) must carry times in it",
  },
  INFLUXDB_TIMEOUT: {
    type: "seconds",
    default: "5",
    selects: true,
    doc: "Give up on one InfluxDB request after this many seconds (decimals allowed, > 0)",
  },
  INFLUXDB_USE_UDP: {
    type: "bool",
    default: "NO",
    selects: true,
    doc: "Not supported: UDP has no acknowledgement, so offsets could not be committed " +
      "safely; sluice writes over HTTP",
  },
  INFLUXDB_API_VERSION: {
    type: "enum",
    default: "auto",
    choices: ["auto", "1", "2"],
    selects: true,
    doc: "Write API: 1 (/write with INFLUXDB_DBNAME, InfluxDB 1.x), 2 (/api/v2/write with " +
      "INFLUXDB_BUCKET and INFLUXDB_TOKEN, InfluxDB 2, 3 and 1.8+); auto: 2 when " +
      "INFLUXDB_TOKEN, INFLUXDB_ORG or INFLUXDB_BUCKET is set, else 1",
  },
  INFLUXDB_ORG: {
    type: "string",
    selects: true,
    doc: "API 2: organisation name, required by InfluxDB 2 (InfluxDB 3 does without)",
  },
  INFLUXDB_BUCKET: {
    type: "string",
    selects: true,
    doc: "API 2: bucket (InfluxDB 3: database) to write to; it must exist",
  },
  INFLUXDB_TOKEN: {
    type: "string",
    secret: true,
    selects: true,
    doc: "API 2: token with write permission on the bucket, sent as Authorization: Token",
  },
  INFLUXDB_CREATE_DATABASE: {
    type: "bool",
    default: "YES",
    selects: true,
    doc: "API 1: create INFLUXDB_DBNAME at start (as kafka-influxdb did) and again when " +
      "a write finds it dropped; a user without admin rights needs an existing database",
  },
  INFLUXDB_GZIP: {
    type: "bool",
    default: "YES",
    selects: true,
    doc: "Gzip the bodies of write requests",
  },
  INFLUXDB_MEASUREMENT: {
    type: "string",
    default: "pmacct",
    selects: true,
    doc: "Flow records (ENCODER=pmacct): measurement of the points",
  },
  INFLUXDB_FIELDS: {
    type: "list",
    default: "bytes,packets,flows",
    selects: true,
    doc: "Flow records: comma-separated record fields written as point fields " +
      "(integers as integers); missing ones are left out, a record with none is set aside",
  },
  INFLUXDB_TAGS: {
    type: "list",
    default: "*",
    selects: true,
    doc: "Flow records: comma-separated fields that become tags (name* matches a prefix, * all); " +
      "points with the same tags and time overwrite each other, so keep every flow key",
  },
  INFLUXDB_AVOID_TAGS: {
    type: "list",
    default: DEFAULT_AVOID_TAGS,
    selects: true,
    doc: "Flow records: comma-separated fields that never become tags (name* matches a prefix), " +
      "since their values change on every purge",
  },
  INFLUXDB_FIELD_TYPES: {
    type: "list",
    selects: true,
    doc: "Flow records: comma-separated field:type for fields of INFLUXDB_FIELDS that are not " +
      "integers (type float, unsigned, string or boolean), e.g. rate:float; every other one is " +
      "an integer. A value that does not fit its field's type sets the record aside",
  },
  INFLUXDB_TIMESTAMP_FIELD: {
    type: "string",
    default: "stamp_updated",
    selects: true,
    doc: "Flow records: field holding the point's time, in any pmacct form " +
      "(local times in PMACCT_TIMEZONE)",
  },
  // kafka-influxdb's names for the batch limits: too generic to select the sink.
  BUFFER_SIZE: {
    type: "int",
    default: "1000",
    min: 1,
    doc: "Write a batch when it holds this many points (kafka-influxdb counted messages)",
  },
  BUFFER_TIMEOUT: {
    type: "seconds",
    default: "10",
    doc: "Write a batch when its oldest point has waited this many seconds (decimals allowed, " +
      "> 0; kafka-influxdb's False never wrote a partial batch)",
  },
  INFLUXDB_MAX_BATCH_BYTES: {
    type: "int",
    default: "10000000",
    min: 1,
    selects: true,
    doc: "Write a batch when its lines reach this many bytes (before compression); " +
      "InfluxDB 1.x refuses bodies over its max-body-size, 25000000 by default",
  },
});

/**
 * Reads a precision as `INFLUXDB_TIME_PRECISION` gives it.
 *
 * @param text The value.
 * @returns The precision, or why it is not one.
 */
export function parsePrecision(
  text: string,
): { ok: true; precision: Precision } | { ok: false; message: string } {
  switch (text) {
    case "s":
    case "ms":
    case "us":
    case "ns":
      return { ok: true, precision: text };
    case "u":
      return { ok: true, precision: "us" };
    case "n":
      return { ok: true, precision: "ns" };
    case "m":
    case "h":
      return {
        ok: false,
        message: "must be s, ms, us or ns: minutes and hours put every point of a series " +
          "within one minute or hour at the same time, where they overwrite each other " +
          "(and InfluxDB 2 does not take them)",
      };
    default:
      return { ok: false, message: "must be s, ms, us or ns (or u, n)" };
  }
}

/**
 * The 1.x spelling of a precision in `/write?precision=`: 1.6 reads `us` and
 * `ns` as nanoseconds without complaint (checked), so they are sent as `u`
 * and `n`.
 *
 * @param precision The precision.
 * @returns `s`, `ms`, `u` or `n`.
 */
export function v1Precision(precision: Precision): string {
  return precision === "us" ? "u" : precision === "ns" ? "n" : precision;
}

/**
 * Why a 1.x database or retention policy name is refused, if it is: empty,
 * `.`, `..`, or with `/`, `\` or a control character (1.6 answers `invalid name`).
 *
 * @param name The name.
 * @returns The problem, or `undefined`.
 */
export function databaseNameProblem(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (name === "." || name === ".." || /[/\\\p{Cc}]/u.test(name)) {
    return "must not be . or .. or contain /, \\ or control characters (InfluxDB: invalid name)";
  }
  return undefined;
}

/**
 * The base URL from kafka-influxdb's host, port and `use_ssl`.
 *
 * @param host A host name or IP address (IPv6 with or without brackets).
 * @param port The port.
 * @param ssl Whether to use https.
 * @returns E.g. `http://localhost:8086`, `http://[::1]:8086`.
 */
export function hostUrl(host: string, port: number, ssl: boolean): string {
  const name = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${ssl ? "https" : "http"}://${name}:${port}`;
}

/**
 * The write URL of a configuration.
 *
 * @param config Base URL, API version, database or bucket, precision.
 * @returns `${url}/write?db=...&precision=...` or `${url}/api/v2/write?org=...&bucket=...&precision=...`.
 */
export function writeUrlOf(
  config: Pick<
    InfluxDBConfig,
    "url" | "apiVersion" | "database" | "retentionPolicy" | "org" | "bucket" | "precision"
  >,
): string {
  const q = encodeURIComponent;
  if (config.apiVersion === 2) {
    const org = config.org === "" ? "" : `org=${q(config.org)}&`;
    return `${config.url}/api/v2/write?${org}bucket=${
      q(config.bucket)
    }&precision=${config.precision}`;
  }
  const rp = config.retentionPolicy === undefined ? "" : `&rp=${q(config.retentionPolicy)}`;
  return `${config.url}/write?db=${q(config.database)}${rp}&precision=${
    v1Precision(config.precision)
  }`;
}

/**
 * Reads and validates the InfluxDB variables; every problem goes to
 * `reader.problems`, nothing is thrown.
 *
 * @param reader The reader holding the environment.
 * @returns The resolved configuration and the batch limits.
 */
export function parseInfluxDBConfig(
  reader: VarReader,
): { config: InfluxDBConfig; batch: BatchLimits } {
  const v = INFLUXDB.read(reader);
  const apiVersion = v.INFLUXDB_API_VERSION === "1"
    ? 1
    : v.INFLUXDB_API_VERSION === "2"
    ? 2
    : ["INFLUXDB_TOKEN", "INFLUXDB_ORG", "INFLUXDB_BUCKET"].some((n) => reader.isSet(n))
    ? 2
    : 1;
  const { url, secure } = baseUrl(reader, v);

  if (v.INFLUXDB_USE_UDP) {
    reader.problem(
      "INFLUXDB_USE_UDP",
      reader.raw("INFLUXDB_USE_UDP"),
      "is not supported: UDP has no acknowledgement, so sluice could not commit offsets " +
        "safely; use HTTP",
    );
  }
  if (url !== "") {
    reader.requireTls(
      "INFLUXDB_CA_FILE",
      secure,
      "give an https:// INFLUXDB_URL or INFLUXDB_USE_SSL=YES",
    );
  }

  const precision = parsePrecision(v.INFLUXDB_TIME_PRECISION);
  if (!precision.ok) {
    reader.problem("INFLUXDB_TIME_PRECISION", v.INFLUXDB_TIME_PRECISION, precision.message);
  }

  const database = v.INFLUXDB_DBNAME;
  const retentionPolicy = v.INFLUXDB_RETENTION_POLICY;
  const token = v.INFLUXDB_TOKEN;
  if (apiVersion === 1) {
    for (
      const [name, value] of [
        ["INFLUXDB_DBNAME", database],
        ["INFLUXDB_RETENTION_POLICY", retentionPolicy],
      ] as const
    ) {
      const problem = value === undefined ? undefined : databaseNameProblem(value);
      if (problem !== undefined) reader.problem(name, value, problem);
    }
    unwanted(
      reader,
      ["INFLUXDB_TOKEN", "INFLUXDB_ORG", "INFLUXDB_BUCKET"],
      "is for API version 2, but INFLUXDB_API_VERSION is 1; set it to 2 or auto, or unset this",
    );
  } else {
    if (v.INFLUXDB_BUCKET === undefined) {
      reader.problem("INFLUXDB_BUCKET", undefined, "is required with API version 2");
    }
    if (token === undefined) {
      reader.problem("INFLUXDB_TOKEN", undefined, "is required with API version 2");
    }
    unwanted(
      reader,
      ["INFLUXDB_USER", "INFLUXDB_PASSWORD"],
      "is for API version 1; API version 2 authenticates with INFLUXDB_TOKEN only",
    );
    unwanted(
      reader,
      ["INFLUXDB_DBNAME", "INFLUXDB_RETENTION_POLICY"],
      "is for API version 1; with API version 2 name the bucket in INFLUXDB_BUCKET",
    );
    if (reader.isSet("INFLUXDB_CREATE_DATABASE") && v.INFLUXDB_CREATE_DATABASE) {
      reader.problem(
        "INFLUXDB_CREATE_DATABASE",
        reader.raw("INFLUXDB_CREATE_DATABASE"),
        "creates 1.x databases only; with API version 2 create the bucket beforehand",
      );
    }
  }

  const flows = checkFlows(reader, {
    measurement: v.INFLUXDB_MEASUREMENT,
    fields: v.INFLUXDB_FIELDS,
    tags: v.INFLUXDB_TAGS,
    avoidTags: v.INFLUXDB_AVOID_TAGS,
    timestampField: v.INFLUXDB_TIMESTAMP_FIELD,
    fieldTypes: readFieldTypes(reader, v.INFLUXDB_FIELD_TYPES ?? [], v.INFLUXDB_FIELDS),
  });
  const config: InfluxDBConfig = {
    apiVersion,
    url,
    writeUrl: "",
    pingUrl: url === "" ? "" : `${url}/ping`,
    queryUrl: url === "" ? "" : `${url}/query`,
    tlsVerify: v.INFLUXDB_VERIFY_SSL,
    caFile: v.INFLUXDB_CA_FILE,
    auth: apiVersion === 2
      ? { kind: "token", token: token ?? "" }
      : { kind: "basic", username: v.INFLUXDB_USER, password: v.INFLUXDB_PASSWORD },
    database,
    retentionPolicy,
    org: v.INFLUXDB_ORG ?? "",
    bucket: v.INFLUXDB_BUCKET ?? "",
    precision: precision.ok ? precision.precision : "s",
    createDatabase: apiVersion === 1 && v.INFLUXDB_CREATE_DATABASE,
    requestTimeoutMs: v.INFLUXDB_TIMEOUT,
    gzip: v.INFLUXDB_GZIP,
    flows,
  };
  if (url !== "") config.writeUrl = writeUrlOf(config);
  const batch: BatchLimits = {
    maxRows: v.BUFFER_SIZE,
    maxBytes: v.INFLUXDB_MAX_BATCH_BYTES,
    maxAgeMs: v.BUFFER_TIMEOUT,
  };
  return { config, batch };
}

/** Records `message` for each of `names` that the user set. */
function unwanted(reader: VarReader, names: readonly string[], message: string): void {
  for (const name of names) {
    if (reader.isSet(name)) reader.problem(name, reader.raw(name), message);
  }
}

/**
 * The base URL: `INFLUXDB_URL`, or kafka-influxdb's host, port and
 * `use_ssl`, but not both; `""` when it is invalid (the problem is recorded).
 */
function baseUrl(
  reader: VarReader,
  v: ReturnType<typeof INFLUXDB.read>,
): { url: string; secure: boolean } {
  if (v.INFLUXDB_URL !== undefined) {
    const parts = ["INFLUXDB_HOST", "INFLUXDB_PORT", "INFLUXDB_USE_SSL"].filter((n) =>
      reader.isSet(n)
    );
    if (parts.length > 0) {
      reader.problem(
        `INFLUXDB_URL/${parts.join("/")}`,
        undefined,
        "are exclusive: INFLUXDB_URL names the host, port and scheme; set one or the other",
      );
    }
    return { url: v.INFLUXDB_URL.url, secure: v.INFLUXDB_URL.secure };
  }
  const host = v.INFLUXDB_HOST;
  const ssl = v.INFLUXDB_USE_SSL;
  if (host === "" || /[\s/@?#]/.test(host) || (host.includes(":") && !isIpv6(host))) {
    reader.problem(
      "INFLUXDB_HOST",
      host,
      "must be a host name or IP address; give a URL in INFLUXDB_URL",
    );
    return { url: "", secure: ssl };
  }
  return { url: hostUrl(host, v.INFLUXDB_PORT, ssl), secure: ssl };
}

function isIpv6(host: string): boolean {
  try {
    const bare = host.replace(/^\[|\]$/g, "");
    return new URL(`http://[${bare}]/`).hostname !== "";
  } catch {
    return false;
  }
}

/** Checks what only line protocol refuses in the flow settings; returns them. */
function checkFlows(reader: VarReader, flows: InfluxDBFlowConfig): InfluxDBFlowConfig {
  const { measurement, fields, tags, avoidTags, timestampField } = flows;
  const measurementProblem = nameProblem("measurement", measurement);
  if (measurementProblem !== undefined) {
    reader.problem("INFLUXDB_MEASUREMENT", measurement, measurementProblem);
  }

  if (fields.length === 0) {
    reader.problem("INFLUXDB_FIELDS", reader.raw("INFLUXDB_FIELDS"), "must name a field");
  }
  for (const field of fields) {
    const problem = field.includes("*")
      ? "must name fields, not patterns"
      : nameProblem("field key", field);
    if (problem !== undefined) reader.problem("INFLUXDB_FIELDS", field, problem);
  }
  const duplicate = fields.find((f, i) => fields.indexOf(f) !== i);
  if (duplicate !== undefined) {
    reader.problem("INFLUXDB_FIELDS", duplicate, "must not name a field twice");
  }

  if (fields.includes(timestampField)) {
    reader.problem("INFLUXDB_TIMESTAMP_FIELD", timestampField, "must not be a field too");
  }

  if (tags.length === 0) {
    reader.problem("INFLUXDB_TAGS", reader.raw("INFLUXDB_TAGS"), "must name a field or be *");
  }
  for (
    const [name, patterns] of [["INFLUXDB_TAGS", tags], ["INFLUXDB_AVOID_TAGS", avoidTags]] as const
  ) {
    const bad = patterns.find((p) => p.includes("*") && p.indexOf("*") !== p.length - 1);
    if (bad !== undefined) {
      reader.problem(name, bad, "may use * only at the end of a name (a prefix)");
    }
  }
  if (tags.includes("time")) {
    reader.problem(
      "INFLUXDB_TAGS",
      "time",
      'must not name "time" (InfluxDB refuses it as a tag key)',
    );
  }
  return flows;
}

/** Reads `INFLUXDB_FIELD_TYPES`: `field:type` entries for fields of `INFLUXDB_FIELDS`. */
function readFieldTypes(
  reader: VarReader,
  entries: readonly string[],
  fields: readonly string[],
): Record<string, FieldType> {
  const types: Record<string, FieldType> = {};
  for (const entry of entries) {
    const colon = entry.lastIndexOf(":");
    const field = entry.slice(0, colon).trim();
    const type = entry.slice(colon + 1).trim().toLowerCase() as FieldType;
    if (colon < 0 || !FIELD_TYPES.includes(type)) {
      reader.problem(
        "INFLUXDB_FIELD_TYPES",
        entry,
        `must list field:type entries, type one of ${FIELD_TYPES.join(", ")}`,
      );
    } else if (!fields.includes(field)) {
      reader.problem("INFLUXDB_FIELD_TYPES", entry, "must name a field of INFLUXDB_FIELDS");
    } else if (Object.hasOwn(types, field)) {
      reader.problem("INFLUXDB_FIELD_TYPES", entry, "must not name a field twice");
    } else {
      types[field] = type;
    }
  }
  return types;
}
