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

import type { Env, VarReader, VarSpec } from "../../lib/variables.ts";
import type { BatchLimits } from "../../lib/sink.ts";
import { parseBaseUrl } from "../../lib/address.ts";
import { nameProblem, type Precision } from "./line_protocol.ts";

/** How requests authenticate. */
export type InfluxDBAuth =
  | { kind: "basic"; username: string; password: string }
  | { kind: "token"; token: string };

/** How flow records become points (`deps.input` "flows"). */
export interface InfluxDBFlowConfig {
  /**
   * The measurement of every point (`INFLUXDB_MEASUREMENT`).
   * @default "pmacct"
   */
  measurement: string;
  /**
   * Record fields written as point fields (`INFLUXDB_FIELDS`).
   * @default ["bytes", "packets", "flows"]
   */
  fields: string[];
  /**
   * Field patterns that become tags (`INFLUXDB_TAGS`); `*` matches every field.
   * @default ["*"]
   */
  tags: string[];
  /**
   * Field patterns that never become tags (`INFLUXDB_AVOID_TAGS`).
   * @default DEFAULT_AVOID_TAGS
   */
  avoidTags: string[];
  /**
   * Record field holding the point's time (`INFLUXDB_TIMESTAMP_FIELD`).
   * @default "stamp_updated"
   */
  timestampField: string;
}

/** The resolved InfluxDB configuration. */
export interface InfluxDBConfig {
  /**
   * Which write API: 1 (`/write`, InfluxDB 1.x) or 2 (`/api/v2/write`, 2.x,
   * 3.x and 1.8+) (`INFLUXDB_API_VERSION`).
   * @default 1, or 2 when a token, org or bucket is set
   */
  apiVersion: 1 | 2;
  /**
   * Base URL without credentials and trailing slash (`INFLUXDB_URL`, else
   * `INFLUXDB_USE_SSL`, `INFLUXDB_HOST` and `INFLUXDB_PORT`).
   * @default "http://localhost:8086"
   */
  url: string;
  /** Where points are written, with the query string (db/rp or org/bucket, precision). */
  writeUrl: string;
  /** Where the health check and `connect()` ask: `${url}/ping`. */
  pingUrl: string;
  /** Where 1.x databases are created: `${url}/query`. */
  queryUrl: string;
  /**
   * Verify the server's TLS certificate (`INFLUXDB_VERIFY_SSL`).
   * @default false (kafka-influxdb's default; a warning is logged)
   */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificate (`INFLUXDB_CA_FILE`). */
  caFile?: string;
  /** Credentials: 1.x user and password, or a 2.x/3.x token. */
  auth: InfluxDBAuth;
  /**
   * The 1.x database (`INFLUXDB_DBNAME`).
   * @default "metrics"
   */
  database: string;
  /** The 1.x retention policy, when not the database's default (`INFLUXDB_RETENTION_POLICY`). */
  retentionPolicy?: string;
  /** The 2.x organisation (`INFLUXDB_ORG`); may be empty for InfluxDB 3. */
  org: string;
  /** The 2.x/3.x bucket or database (`INFLUXDB_BUCKET`). */
  bucket: string;
  /**
   * The precision of the written timestamps (`INFLUXDB_TIME_PRECISION`).
   * @default "s"
   */
  precision: Precision;
  /**
   * Create the 1.x database at start and after it was dropped (`INFLUXDB_CREATE_DATABASE`).
   * @default true
   */
  createDatabase: boolean;
  /**
   * Request timeout in milliseconds (`INFLUXDB_TIMEOUT`).
   * @default 5000
   */
  requestTimeoutMs: number;
  /**
   * Gzip request bodies (`INFLUXDB_GZIP`).
   * @default true
   */
  gzip: boolean;
  /** How flow records become points. */
  flows: InfluxDBFlowConfig;
}

const GROUP = "InfluxDB";

/** The default of `INFLUXDB_AVOID_TAGS`: fields whose values change on every purge. */
export const DEFAULT_AVOID_TAGS = "stamp_inserted,stamp_updated,timestamp_*,writer_id,event_type";

/** The prefix of the variables that select this sink when `SINK` is unset. */
const PREFIX = "INFLUXDB_";

/** Every variable the InfluxDB sink reads. */
export const INFLUXDB_VARIABLES: readonly VarSpec[] = [
  {
    name: "INFLUXDB_URL",
    selects: true,
    type: "string",
    group: GROUP,
    example: "http://127.0.0.1:8086",
    doc: "Base http(s):// URL of InfluxDB, optionally with a path prefix; " +
      "instead of INFLUXDB_HOST, INFLUXDB_PORT and INFLUXDB_USE_SSL",
  },
  {
    name: "INFLUXDB_HOST",
    selects: true,
    type: "string",
    default: "localhost",
    group: GROUP,
    doc: "Host name or IP address of InfluxDB (when INFLUXDB_URL is unset)",
  },
  {
    name: "INFLUXDB_PORT",
    selects: true,
    type: "int",
    default: "8086",
    min: 1,
    max: 65535,
    group: GROUP,
    doc: "HTTP port of InfluxDB (when INFLUXDB_URL is unset)",
  },
  {
    name: "INFLUXDB_USE_SSL",
    selects: true,
    type: "bool",
    default: "NO",
    group: GROUP,
    doc: "Connect with https:// (when INFLUXDB_URL is unset)",
  },
  {
    name: "INFLUXDB_VERIFY_SSL",
    selects: true,
    type: "bool",
    default: "NO",
    group: GROUP,
    doc: "Verify the server's TLS certificate and host name; NO (kafka-influxdb's default) " +
      "accepts any certificate and logs a warning at start",
  },
  {
    name: "INFLUXDB_CA_FILE",
    selects: true,
    type: "string",
    group: GROUP,
    doc: "PEM file with the CA certificate(s) that signed the server certificate, " +
      "in addition to the system CAs (needs INFLUXDB_VERIFY_SSL=YES)",
  },
  {
    name: "INFLUXDB_USER",
    selects: true,
    type: "string",
    default: "root",
    group: GROUP,
    doc: "InfluxDB 1.x user, sent as HTTP basic authentication (a server without " +
      "auth-enabled ignores it)",
  },
  {
    name: "INFLUXDB_PASSWORD",
    selects: true,
    type: "string",
    default: "root",
    secret: true,
    group: GROUP,
    doc: "Password of INFLUXDB_USER",
  },
  {
    name: "INFLUXDB_DBNAME",
    selects: true,
    type: "string",
    default: "metrics",
    group: GROUP,
    doc: "InfluxDB 1.x database to write to",
  },
  {
    name: "INFLUXDB_RETENTION_POLICY",
    selects: true,
    type: "string",
    group: GROUP,
    doc: "InfluxDB 1.x retention policy to write to; unset: the database's default policy " +
      "(kafka-influxdb's autogen exists only in databases created with it)",
  },
  {
    name: "INFLUXDB_TIME_PRECISION",
    selects: true,
    type: "string",
    default: "s",
    group: GROUP,
    doc: "Precision of the written timestamps: s, ms, us or ns (u and n as in 1.x); " +
      "times are rounded down to it, and raw lines (ENCODER=echo) must carry times in it",
  },
  {
    name: "INFLUXDB_TIMEOUT",
    selects: true,
    type: "seconds",
    default: "5",
    group: GROUP,
    doc: "Give up on one InfluxDB request after this many seconds (decimals allowed, > 0)",
  },
  {
    name: "INFLUXDB_USE_UDP",
    selects: true,
    type: "bool",
    default: "NO",
    group: GROUP,
    doc: "Not supported: UDP has no acknowledgement, so offsets could not be committed " +
      "safely; sluice writes over HTTP",
  },
  {
    name: "INFLUXDB_API_VERSION",
    selects: true,
    type: "enum",
    default: "auto",
    choices: ["auto", "1", "2"],
    group: GROUP,
    doc: "Write API: 1 (/write with INFLUXDB_DBNAME, InfluxDB 1.x), 2 (/api/v2/write with " +
      "INFLUXDB_BUCKET and INFLUXDB_TOKEN, InfluxDB 2, 3 and 1.8+); auto: 2 when " +
      "INFLUXDB_TOKEN, INFLUXDB_ORG or INFLUXDB_BUCKET is set, else 1",
  },
  {
    name: "INFLUXDB_ORG",
    selects: true,
    type: "string",
    group: GROUP,
    doc: "API 2: organisation name, required by InfluxDB 2 (InfluxDB 3 does without)",
  },
  {
    name: "INFLUXDB_BUCKET",
    selects: true,
    type: "string",
    group: GROUP,
    doc: "API 2: bucket (InfluxDB 3: database) to write to; it must exist",
  },
  {
    name: "INFLUXDB_TOKEN",
    selects: true,
    type: "string",
    secret: true,
    group: GROUP,
    doc: "API 2: token with write permission on the bucket, sent as Authorization: Token",
  },
  {
    name: "INFLUXDB_CREATE_DATABASE",
    selects: true,
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "API 1: create INFLUXDB_DBNAME at start (as kafka-influxdb did) and again when " +
      "a write finds it dropped; a user without admin rights needs an existing database",
  },
  {
    name: "INFLUXDB_GZIP",
    selects: true,
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "Gzip the bodies of write requests",
  },
  {
    name: "INFLUXDB_MEASUREMENT",
    selects: true,
    type: "string",
    default: "pmacct",
    group: GROUP,
    doc: "Flow records (ENCODER=pmacct): measurement of the points",
  },
  {
    name: "INFLUXDB_FIELDS",
    selects: true,
    type: "list",
    default: "bytes,packets,flows",
    group: GROUP,
    doc: "Flow records: comma-separated record fields written as point fields " +
      "(integers as integers); missing ones are left out, a record with none is set aside",
  },
  {
    name: "INFLUXDB_TAGS",
    selects: true,
    type: "list",
    default: "*",
    group: GROUP,
    doc: "Flow records: comma-separated fields that become tags (name* matches a prefix, * all); " +
      "points with the same tags and time overwrite each other, so keep every flow key",
  },
  {
    name: "INFLUXDB_AVOID_TAGS",
    selects: true,
    type: "list",
    default: DEFAULT_AVOID_TAGS,
    group: GROUP,
    doc: "Flow records: comma-separated fields that never become tags (name* matches a prefix), " +
      "since their values change on every purge",
  },
  {
    name: "INFLUXDB_TIMESTAMP_FIELD",
    selects: true,
    type: "string",
    default: "stamp_updated",
    group: GROUP,
    doc: "Flow records: field holding the point's time, in any pmacct form " +
      "(local times in PMACCT_TIMEZONE)",
  },
  {
    name: "BUFFER_SIZE",
    type: "int",
    default: "1000",
    min: 1,
    group: GROUP,
    doc: "Write a batch when it holds this many points (kafka-influxdb counted messages)",
  },
  {
    name: "BUFFER_TIMEOUT",
    type: "seconds",
    default: "10",
    group: GROUP,
    doc: "Write a batch when its oldest point has waited this many seconds (decimals allowed, " +
      "> 0; kafka-influxdb's False never wrote a partial batch)",
  },
  {
    name: "INFLUXDB_MAX_BATCH_BYTES",
    selects: true,
    type: "int",
    default: "10000000",
    min: 1,
    group: GROUP,
    doc: "Write a batch when its lines reach this many bytes (before compression); " +
      "InfluxDB 1.x refuses bodies over its max-body-size, 25000000 by default",
  },
];

/**
 * Whether the environment configures the InfluxDB sink.
 *
 * @param env The environment.
 * @returns `true` when any `INFLUXDB_*` variable is set.
 */
export function isInfluxDBConfigured(env: Env): boolean {
  return Object.entries(env).some(([name, value]) =>
    name.startsWith(PREFIX) && value !== undefined && value.trim() !== ""
  );
}

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
 * Reads `INFLUXDB_URL` with the VictoriaMetrics sink's reader (http or
 * https, a path prefix, no query or fragment), refusing credentials in it:
 * they belong in `INFLUXDB_USER`/`INFLUXDB_PASSWORD` or `INFLUXDB_TOKEN`,
 * which are masked when printed. Pure: the problem is returned, not recorded.
 *
 * @param text The value of `INFLUXDB_URL`.
 * @returns The URL without a trailing slash, or the problem.
 */
export function parseInfluxDBUrl(
  text: string,
): { ok: true; url: string } | { ok: false; message: string } {
  const parsed = parseBaseUrl(text);
  if (!parsed.ok) {
    // Its message for a query names VM_IMPORT_PATH, which means nothing here.
    return /query/.test(parsed.message)
      ? { ok: false, message: "must not contain a query or fragment" }
      : parsed;
  }
  if (parsed.username !== undefined || parsed.password !== undefined) {
    return {
      ok: false,
      message:
        "must not contain credentials; set INFLUXDB_USER/INFLUXDB_PASSWORD or INFLUXDB_TOKEN",
    };
  }
  return { ok: true, url: parsed.url };
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
  const apiVersion = readApiVersion(reader);
  const { url, secure } = readBaseUrl(reader);

  if (reader.bool("INFLUXDB_USE_UDP")) {
    reader.problem(
      "INFLUXDB_USE_UDP",
      reader.raw("INFLUXDB_USE_UDP"),
      "is not supported: UDP has no acknowledgement, so sluice could not commit offsets " +
        "safely; use HTTP",
    );
  }

  const tlsVerify = reader.bool("INFLUXDB_VERIFY_SSL");
  const caFile = reader.optional("INFLUXDB_CA_FILE");
  if (caFile !== undefined) readCaFile(reader, caFile, url !== "" && !secure, tlsVerify);

  const precisionText = reader.string("INFLUXDB_TIME_PRECISION");
  const precision = parsePrecision(precisionText);
  if (!precision.ok) reader.problem("INFLUXDB_TIME_PRECISION", precisionText, precision.message);

  const database = reader.string("INFLUXDB_DBNAME");
  const retentionPolicy = reader.optional("INFLUXDB_RETENTION_POLICY");
  const org = reader.optional("INFLUXDB_ORG") ?? "";
  const bucket = reader.optional("INFLUXDB_BUCKET") ?? "";
  const token = reader.optional("INFLUXDB_TOKEN");
  const createDatabase = reader.bool("INFLUXDB_CREATE_DATABASE");
  if (apiVersion === 1) {
    for (
      const [name, value] of [["INFLUXDB_DBNAME", database], [
        "INFLUXDB_RETENTION_POLICY",
        retentionPolicy,
      ]] as const
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
    if (bucket === "") {
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
    if (reader.isSet("INFLUXDB_CREATE_DATABASE") && createDatabase) {
      reader.problem(
        "INFLUXDB_CREATE_DATABASE",
        reader.raw("INFLUXDB_CREATE_DATABASE"),
        "creates 1.x databases only; with API version 2 create the bucket beforehand",
      );
    }
  }

  const auth: InfluxDBAuth = apiVersion === 2 ? { kind: "token", token: token ?? "" } : {
    kind: "basic",
    username: reader.string("INFLUXDB_USER"),
    password: reader.string("INFLUXDB_PASSWORD"),
  };

  const flows = readFlows(reader);
  const resolved = precision.ok ? precision.precision : "s";
  const config: InfluxDBConfig = {
    apiVersion,
    url,
    writeUrl: "",
    pingUrl: url === "" ? "" : `${url}/ping`,
    queryUrl: url === "" ? "" : `${url}/query`,
    tlsVerify,
    caFile,
    auth,
    database,
    retentionPolicy,
    org,
    bucket,
    precision: resolved,
    createDatabase: apiVersion === 1 && createDatabase,
    requestTimeoutMs: reader.millis("INFLUXDB_TIMEOUT"),
    gzip: reader.bool("INFLUXDB_GZIP"),
    flows,
  };
  if (url !== "") config.writeUrl = writeUrlOf(config);
  const batch: BatchLimits = {
    maxRows: reader.int("BUFFER_SIZE"),
    maxBytes: reader.int("INFLUXDB_MAX_BATCH_BYTES"),
    maxAgeMs: reader.millis("BUFFER_TIMEOUT"),
  };
  return { config, batch };
}

/** Records `message` for each of `names` that the user set. */
function unwanted(reader: VarReader, names: readonly string[], message: string): void {
  for (const name of names) {
    if (reader.isSet(name)) reader.problem(name, reader.raw(name), message);
  }
}

function readApiVersion(reader: VarReader): 1 | 2 {
  const choice = reader.choice("INFLUXDB_API_VERSION");
  if (choice === "1") return 1;
  if (choice === "2") return 2;
  return ["INFLUXDB_TOKEN", "INFLUXDB_ORG", "INFLUXDB_BUCKET"].some((n) => reader.isSet(n)) ? 2 : 1;
}

function readBaseUrl(reader: VarReader): { url: string; secure: boolean } {
  const host = reader.string("INFLUXDB_HOST");
  const port = reader.int("INFLUXDB_PORT");
  const ssl = reader.bool("INFLUXDB_USE_SSL");
  const text = reader.optional("INFLUXDB_URL");
  if (text !== undefined) {
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
    const parsed = parseInfluxDBUrl(text);
    if (!parsed.ok) {
      reader.problem("INFLUXDB_URL", text.replace(/\/\/[^/@]*@/, "//***@"), parsed.message);
      return { url: "", secure: false };
    }
    return { url: parsed.url, secure: parsed.url.startsWith("https:") };
  }
  if (host === "" || /[\s/@?#]/.test(host) || (host.includes(":") && !isIpv6(host))) {
    reader.problem(
      "INFLUXDB_HOST",
      host,
      "must be a host name or IP address; give a URL in INFLUXDB_URL",
    );
    return { url: "", secure: ssl };
  }
  return { url: hostUrl(host, port, ssl), secure: ssl };
}

function isIpv6(host: string): boolean {
  try {
    const bare = host.replace(/^\[|\]$/g, "");
    return new URL(`http://[${bare}]/`).hostname !== "";
  } catch {
    return false;
  }
}

function readCaFile(reader: VarReader, path: string, plainHttp: boolean, verify: boolean): void {
  let why: string | undefined;
  if (plainHttp) {
    why = "is only used with TLS: give an https:// INFLUXDB_URL or INFLUXDB_USE_SSL=YES";
  } else if (!verify) {
    why = "is set but INFLUXDB_VERIFY_SSL is NO, so certificates are not verified; " +
      "set INFLUXDB_VERIFY_SSL=YES";
  } else {
    try {
      if (!Deno.readTextFileSync(path).includes("-----BEGIN CERTIFICATE-----")) {
        why = "must be a PEM file with at least one certificate";
      }
    } catch (error) {
      why = `must be a readable file (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  if (why !== undefined) reader.problem("INFLUXDB_CA_FILE", path, why);
}

function readFlows(reader: VarReader): InfluxDBFlowConfig {
  const measurement = reader.string("INFLUXDB_MEASUREMENT");
  const measurementProblem = nameProblem("measurement", measurement);
  if (measurementProblem !== undefined) {
    reader.problem("INFLUXDB_MEASUREMENT", measurement, measurementProblem);
  }

  const fields = reader.list("INFLUXDB_FIELDS");
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

  const timestampField = reader.string("INFLUXDB_TIMESTAMP_FIELD");
  if (fields.includes(timestampField)) {
    reader.problem("INFLUXDB_TIMESTAMP_FIELD", timestampField, "must not be a field too");
  }

  const tags = reader.list("INFLUXDB_TAGS");
  const avoidTags = reader.list("INFLUXDB_AVOID_TAGS");
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
  return { measurement, fields, tags, avoidTags, timestampField };
}

/**
 * Describes a configuration for `--check-config`, secrets masked.
 *
 * @param config The resolved configuration.
 * @returns Lines of text.
 */
export function describeInfluxDBConfig(config: InfluxDBConfig): string[] {
  const auth = config.auth.kind === "token"
    ? "token=***"
    : `basic user=${config.auth.username} password=${
      config.auth.password === "" ? "(none)" : "***"
    }`;
  const tls = config.url.startsWith("https:")
    ? `tls=on verify=${config.tlsVerify ? "yes" : "no"}${
      config.caFile ? ` ca=${config.caFile}` : ""
    }`
    : "tls=off";
  const target = config.apiVersion === 2
    ? `org=${JSON.stringify(config.org)} bucket=${JSON.stringify(config.bucket)}`
    : `db=${JSON.stringify(config.database)} rp=${
      config.retentionPolicy === undefined ? "(default)" : JSON.stringify(config.retentionPolicy)
    } create_database=${config.createDatabase ? "yes" : "no"}`;
  const flows = config.flows;
  return [
    `influxdb write=${config.writeUrl} api=${config.apiVersion} ${target}`,
    `influxdb auth=${auth} ${tls} gzip=${
      config.gzip ? "on" : "off"
    } precision=${config.precision} ` +
    `timeout=${config.requestTimeoutMs / 1000}s`,
    `influxdb flows: measurement=${JSON.stringify(flows.measurement)} fields=${
      flows.fields.join(",")
    } ` +
    `tags=${flows.tags.join(",")} avoid_tags=${flows.avoidTags.join(",")} ` +
    `timestamp_field=${flows.timestampField}`,
  ];
}
