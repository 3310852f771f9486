/**
 * The ClickHouse sink's variables, read once into a resolved configuration.
 *
 * Compatible with pmacct-kafka-clickhouse: `CLICKHOUSE_HOST`, `CLICKHOUSE_DB`,
 * `CLICKHOUSE_TABLE`, `CLICKHOUSE_USER`, `CLICKHOUSE_PASSWORD`,
 * `CLICKHOUSE_DATA_SCHEMA`, `CLICKHOUSE_CREATE_TABLE`, `CLICKHOUSE_ORDER_BY`,
 * `CLICKHOUSE_PARTITION_BY`, `CLICKHOUSE_MAX_SAMPLES_PER_SEND`,
 * `CLICKHOUSE_MAX_TIME_TO_SEND` and `TIMESTAMP_TEMPLATE` mean what they
 * meant there. The original spoke the native protocol; sluice speaks HTTP, so
 * `CLICKHOUSE_HOST` is a host (optionally `host:port`, or a full URL) and the
 * port defaults to 8123 (8443 with TLS).
 *
 * @module
 */

import type { Env, VarReader, VarSpec } from "../../lib/variables.ts";
import type { BatchLimits } from "../../lib/sink.ts";
import { compileTimestampTemplate, DEFAULT_TIMESTAMP_TEMPLATE } from "./convert.ts";
import { type ColumnSpec, parseSchema } from "./schema.ts";

/** The resolved ClickHouse configuration. */
export interface ClickHouseConfig {
  /**
   * Server URL, scheme host and port only, e.g. `http://127.0.0.1:8123`.
   * From `CLICKHOUSE_HOST`, `CLICKHOUSE_PORT` and `CLICKHOUSE_SECURE`.
   */
  url: string;
  /**
   * Path prefix when ClickHouse sits behind a proxy path (from a URL in
   * `CLICKHOUSE_HOST`).
   * @default ""
   */
  pathname: string;
  /**
   * Database name (`CLICKHOUSE_DB`).
   * @default "pmacct"
   */
  database: string;
  /**
   * Table name (`CLICKHOUSE_TABLE`).
   * @default "sflowstat"
   */
  table: string;
  /**
   * User name (`CLICKHOUSE_USER`).
   * @default "default"
   */
  username: string;
  /**
   * Password (`CLICKHOUSE_PASSWORD`); never logged.
   * @default ""
   */
  password: string;
  /** The table's columns, from `CLICKHOUSE_DATA_SCHEMA`. */
  columns: ColumnSpec[];
  /**
   * Create the database and table at start (`CLICKHOUSE_CREATE_TABLE`).
   * @default true
   */
  createTable: boolean;
  /**
   * ORDER BY expression list as written; empty gives `ORDER BY tuple()`.
   * @default ""
   */
  orderBy: string;
  /**
   * PARTITION BY expression as written; empty gives no partitioning.
   * @default ""
   */
  partitionBy: string;
  /**
   * Speak HTTPS (`CLICKHOUSE_SECURE`, or an `https://` URL).
   * @default false
   */
  secure: boolean;
  /**
   * Verify the server certificate (`CLICKHOUSE_TLS_VERIFY`).
   * @default true
   */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificate (`CLICKHOUSE_CA_FILE`). */
  caFile?: string;
  /**
   * Request timeout in milliseconds (`CLICKHOUSE_REQUEST_TIMEOUT`).
   * @default 30000
   */
  requestTimeoutMs: number;
  /**
   * Gzip request bodies (`CLICKHOUSE_COMPRESSION`).
   * @default true
   */
  compression: boolean;
  /**
   * strptime template for timestamps (`TIMESTAMP_TEMPLATE`); `undefined` when
   * it is the default, in which case every pmacct form is read.
   */
  timestampTemplate?: string;
}

const GROUP = "ClickHouse";

/** Every variable the ClickHouse sink reads. */
export const CLICKHOUSE_VARIABLES: readonly VarSpec[] = [
  {
    name: "CLICKHOUSE_HOST",
    selects: true,
    type: "string",
    required: true,
    group: GROUP,
    example: "127.0.0.1",
    doc:
      "ClickHouse server for the HTTP interface: host name or IP, optionally host:port, or a full http(s):// URL",
  },
  {
    name: "CLICKHOUSE_PORT",
    type: "int",
    min: 1,
    max: 65535,
    group: GROUP,
    doc: "HTTP port of the ClickHouse server; default 8123, or 8443 with CLICKHOUSE_SECURE",
  },
  {
    name: "CLICKHOUSE_SECURE",
    type: "bool",
    default: "NO",
    group: GROUP,
    doc: "Connect with HTTPS (TLS) instead of plain HTTP",
  },
  {
    name: "CLICKHOUSE_TLS_VERIFY",
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "Verify the server's TLS certificate and host name (NO accepts any certificate)",
  },
  {
    name: "CLICKHOUSE_CA_FILE",
    type: "string",
    group: GROUP,
    doc:
      "PEM file with the CA certificate(s) that signed the server certificate, instead of the system CAs",
  },
  {
    name: "CLICKHOUSE_DB",
    type: "string",
    default: "pmacct",
    group: GROUP,
    doc: "Database that holds the table",
  },
  {
    name: "CLICKHOUSE_TABLE",
    type: "string",
    default: "sflowstat",
    group: GROUP,
    doc: "Table the flow records are inserted into",
  },
  {
    name: "CLICKHOUSE_USER",
    type: "string",
    default: "default",
    group: GROUP,
    doc: "ClickHouse user name",
  },
  {
    name: "CLICKHOUSE_PASSWORD",
    type: "string",
    default: "",
    secret: true,
    group: GROUP,
    doc: "Password of CLICKHOUSE_USER (empty for none)",
  },
  {
    name: "CLICKHOUSE_DATA_SCHEMA",
    selects: true,
    type: "string",
    required: true,
    group: GROUP,
    example: "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
      "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime," +
      "packets:UInt64,bytes:UInt64",
    doc: "Columns as field:Type entries separated by , ; or whitespace other than spaces; " +
      "the field is read from each pmacct record",
  },
  {
    name: "CLICKHOUSE_CREATE_TABLE",
    type: "bool",
    default: "YES",
    group: GROUP,
    doc:
      "Create the database and a MergeTree table from CLICKHOUSE_DATA_SCHEMA at start when missing",
  },
  {
    name: "CLICKHOUSE_ORDER_BY",
    type: "string",
    default: "",
    group: GROUP,
    doc: "ORDER BY expressions of a created table, as written (empty: ORDER BY tuple())",
  },
  {
    name: "CLICKHOUSE_PARTITION_BY",
    type: "string",
    default: "",
    group: GROUP,
    doc: "PARTITION BY expression of a created table, as written (empty: no partitioning)",
  },
  {
    name: "CLICKHOUSE_MAX_SAMPLES_PER_SEND",
    type: "int",
    default: "1000",
    min: 1,
    group: GROUP,
    doc: "Insert a batch when it holds this many rows",
  },
  {
    name: "CLICKHOUSE_MAX_BYTES_PER_SEND",
    type: "int",
    default: "10485760",
    min: 1,
    group: GROUP,
    doc: "Insert a batch when its JSONEachRow body reaches this many bytes (before compression)",
  },
  {
    name: "CLICKHOUSE_MAX_TIME_TO_SEND",
    type: "seconds",
    default: "10",
    group: GROUP,
    doc: "Insert a batch when its oldest row has waited this many seconds (decimals allowed, > 0)",
  },
  {
    name: "CLICKHOUSE_REQUEST_TIMEOUT",
    type: "seconds",
    default: "30",
    group: GROUP,
    doc: "Give up on one ClickHouse request after this many seconds (decimals allowed, > 0)",
  },
  {
    name: "CLICKHOUSE_COMPRESSION",
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "Gzip the bodies of INSERT requests",
  },
  {
    name: "TIMESTAMP_TEMPLATE",
    type: "string",
    default: DEFAULT_TIMESTAMP_TEMPLATE,
    group: GROUP,
    doc: "strptime format of pmacct timestamps (%Y %m %d %H %M %S %f %z %%); " +
      "with the default every pmacct form (also epoch and RFC 3339) is read",
  },
];

/**
 * Whether the environment configures the ClickHouse sink.
 *
 * @param env The environment.
 * @returns `true` when `CLICKHOUSE_HOST` or `CLICKHOUSE_DATA_SCHEMA` is set.
 */
export function isClickHouseConfigured(env: Env): boolean {
  return [env.CLICKHOUSE_HOST, env.CLICKHOUSE_DATA_SCHEMA].some((v) =>
    v !== undefined && v.trim() !== ""
  );
}

/** The server address, resolved from `CLICKHOUSE_HOST`, `CLICKHOUSE_PORT` and `CLICKHOUSE_SECURE`. */
export interface ServerAddress {
  /** `http(s)://host:port`. */
  url: string;
  /** Path prefix from a URL, `""` when none. */
  pathname: string;
  /** Whether TLS is used. */
  secure: boolean;
}

/**
 * Resolves the server address. Pure: problems are returned, not recorded.
 *
 * @param host `CLICKHOUSE_HOST`: `host`, `host:port`, `[v6]:port`, or an `http(s)://` URL.
 * @param port `CLICKHOUSE_PORT` when set.
 * @param secure `CLICKHOUSE_SECURE` when set.
 * @returns The address, or the problem with the variable named.
 */
export function resolveServerAddress(
  host: string,
  port: number | undefined,
  secure: boolean | undefined,
): { ok: true; address: ServerAddress } | { ok: false; name: string; message: string } {
  const text = host.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return {
        ok: false,
        name: "CLICKHOUSE_HOST",
        message: "must be a host, host:port or an http(s):// URL",
      };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return {
        ok: false,
        name: "CLICKHOUSE_HOST",
        message: "must use http:// or https:// when it is a URL",
      };
    }
    if (url.username !== "" || url.password !== "") {
      return {
        ok: false,
        name: "CLICKHOUSE_HOST",
        message: "must not contain credentials (use CLICKHOUSE_USER and CLICKHOUSE_PASSWORD)",
      };
    }
    if (url.search !== "" || url.hash !== "") {
      return {
        ok: false,
        name: "CLICKHOUSE_HOST",
        message: "must not contain a query or fragment",
      };
    }
    const urlSecure = url.protocol === "https:";
    if (secure !== undefined && secure !== urlSecure) {
      return {
        ok: false,
        name: "CLICKHOUSE_HOST/CLICKHOUSE_SECURE",
        message: `must agree: the URL uses ${url.protocol.slice(0, -1)} but CLICKHOUSE_SECURE is ${
          secure ? "YES" : "NO"
        }`,
      };
    }
    const urlPort = url.port === "" ? undefined : Number(url.port);
    if (urlPort !== undefined && port !== undefined && urlPort !== port) {
      return {
        ok: false,
        name: "CLICKHOUSE_HOST/CLICKHOUSE_PORT",
        message: `must agree: the URL has port ${urlPort} but CLICKHOUSE_PORT is ${port}`,
      };
    }
    const finalPort = urlPort ?? port ?? (urlSecure ? 8443 : 8123);
    const pathname = url.pathname === "/" ? "" : url.pathname.replace(/\/+$/, "");
    return {
      ok: true,
      address: {
        url: `${url.protocol}//${url.hostname}:${finalPort}`,
        pathname,
        secure: urlSecure,
      },
    };
  }
  let name: string;
  let hostPort: number | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([A-Za-z0-9._-]+)(?::(\d+))?$/.exec(text);
  if (bracketed) {
    name = `[${bracketed[1]}]`;
    hostPort = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
  } else if (/^[0-9A-Fa-f:.]+$/.test(text) && text.split(":").length > 2) {
    name = `[${text}]`; // a bare IPv6 address: no port possible
  } else if (plain) {
    name = plain[1]!;
    hostPort = plain[2] === undefined ? undefined : Number(plain[2]);
  } else {
    return {
      ok: false,
      name: "CLICKHOUSE_HOST",
      message: "must be a host name or IP, optionally with :port, or an http(s):// URL",
    };
  }
  if (hostPort !== undefined && (hostPort < 1 || hostPort > 65535)) {
    return { ok: false, name: "CLICKHOUSE_HOST", message: "must have a port between 1 and 65535" };
  }
  if (hostPort !== undefined && port !== undefined && hostPort !== port) {
    return {
      ok: false,
      name: "CLICKHOUSE_HOST/CLICKHOUSE_PORT",
      message: `must agree: the host has port ${hostPort} but CLICKHOUSE_PORT is ${port}`,
    };
  }
  const tls = secure ?? false;
  const finalPort = hostPort ?? port ?? (tls ? 8443 : 8123);
  return {
    ok: true,
    address: { url: `${tls ? "https" : "http"}://${name}:${finalPort}`, pathname: "", secure: tls },
  };
}

/**
 * Reads and validates the ClickHouse variables; every problem goes to
 * `reader.problems`, nothing is thrown.
 *
 * @param reader The reader holding the environment.
 * @returns The resolved configuration and the batch limits.
 */
export function parseClickHouseConfig(
  reader: VarReader,
): { config: ClickHouseConfig; batch: BatchLimits } {
  const host = reader.string("CLICKHOUSE_HOST");
  const port = reader.isSet("CLICKHOUSE_PORT") ? reader.int("CLICKHOUSE_PORT") : undefined;
  const secureSet = reader.isSet("CLICKHOUSE_SECURE");
  const secureValue = reader.bool("CLICKHOUSE_SECURE");
  let address: ServerAddress = { url: "", pathname: "", secure: secureValue };
  if (host !== "") {
    const resolved = resolveServerAddress(host, port, secureSet ? secureValue : undefined);
    if (resolved.ok) address = resolved.address;
    else reader.problem(resolved.name, host, resolved.message);
  }

  const tlsVerify = reader.bool("CLICKHOUSE_TLS_VERIFY");
  const caFile = reader.optional("CLICKHOUSE_CA_FILE");
  if (caFile !== undefined) {
    if (!address.secure) {
      reader.problem(
        "CLICKHOUSE_CA_FILE",
        caFile,
        "is only used with TLS: set CLICKHOUSE_SECURE=YES or an https:// URL",
      );
    } else {
      try {
        const text = new TextDecoder().decode(Deno.readFileSync(caFile));
        if (!text.includes("-----BEGIN CERTIFICATE-----")) {
          reader.problem(
            "CLICKHOUSE_CA_FILE",
            caFile,
            "must be a PEM file with at least one certificate",
          );
        }
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        reader.problem("CLICKHOUSE_CA_FILE", caFile, `must be a readable file (${why})`);
      }
    }
  }

  const database = nonEmptyName(reader, "CLICKHOUSE_DB");
  const table = nonEmptyName(reader, "CLICKHOUSE_TABLE");

  const schemaText = reader.string("CLICKHOUSE_DATA_SCHEMA");
  let columns: ColumnSpec[] = [];
  if (schemaText !== "") {
    const parsed = parseSchema(schemaText);
    columns = parsed.columns;
    for (const p of parsed.problems) reader.problem("CLICKHOUSE_DATA_SCHEMA", p.entry, p.message);
  }

  const template = reader.string("TIMESTAMP_TEMPLATE");
  let timestampTemplate: string | undefined;
  if (template !== DEFAULT_TIMESTAMP_TEMPLATE) {
    try {
      compileTimestampTemplate(template);
      timestampTemplate = template;
    } catch {
      reader.problem(
        "TIMESTAMP_TEMPLATE",
        template,
        "must use only %Y %m %d %H %M %S %f %z %% (each once) and literals",
      );
    }
  }

  const batch: BatchLimits = {
    maxRows: reader.int("CLICKHOUSE_MAX_SAMPLES_PER_SEND"),
    maxBytes: reader.int("CLICKHOUSE_MAX_BYTES_PER_SEND"),
    maxAgeMs: reader.millis("CLICKHOUSE_MAX_TIME_TO_SEND"),
  };

  const config: ClickHouseConfig = {
    url: address.url,
    pathname: address.pathname,
    database,
    table,
    username: reader.string("CLICKHOUSE_USER"),
    password: reader.raw("CLICKHOUSE_PASSWORD") ?? "",
    columns,
    createTable: reader.bool("CLICKHOUSE_CREATE_TABLE"),
    orderBy: reader.string("CLICKHOUSE_ORDER_BY"),
    partitionBy: reader.string("CLICKHOUSE_PARTITION_BY"),
    secure: address.secure,
    tlsVerify,
    caFile,
    requestTimeoutMs: reader.millis("CLICKHOUSE_REQUEST_TIMEOUT"),
    compression: reader.bool("CLICKHOUSE_COMPRESSION"),
    timestampTemplate,
  };
  return { config, batch };
}

function nonEmptyName(reader: VarReader, name: string): string {
  const value = reader.string(name);
  if (value === "") reader.problem(name, value, "must not be empty");
  return value;
}

/**
 * Describes a configuration for `--check-config`, the password masked.
 *
 * @param config The resolved configuration.
 * @returns Lines of text.
 */
export function describeClickHouseConfig(config: ClickHouseConfig): string[] {
  const tls = config.secure
    ? `tls=on verify=${config.tlsVerify ? "yes" : "no"}${
      config.caFile ? ` ca=${config.caFile}` : ""
    }`
    : "tls=off";
  return [
    `clickhouse url=${config.url}${config.pathname} table=${config.database}.${config.table} ` +
    `columns=${config.columns.length} user=${config.username} password=${
      config.password === "" ? "(none)" : "***"
    }`,
    `clickhouse schema=${config.columns.map((c) => `${c.name}:${c.typeText}`).join(",")}`,
    `clickhouse create_table=${config.createTable ? "yes" : "no"} order_by=${
      config.orderBy || "tuple()"
    } ` +
    `partition_by=${config.partitionBy || "(none)"} ${tls} compression=${
      config.compression ? "gzip" : "none"
    } ` +
    `request_timeout=${config.requestTimeoutMs / 1000}s` +
    (config.timestampTemplate === undefined
      ? ""
      : ` timestamp_template=${JSON.stringify(config.timestampTemplate)}`),
  ];
}
