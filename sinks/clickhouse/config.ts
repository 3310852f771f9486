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

import { parseEndpoint } from "../../lib/address.ts";
import type { BatchLimits } from "../../lib/sink.ts";
import { declareVariables, type VarReader } from "../../lib/variables.ts";
import { compileTimestampTemplate, DEFAULT_TIMESTAMP_TEMPLATE } from "./encode.ts";
import {
  type ClusterTables,
  type ColumnSpec,
  keyExpressionProblem,
  parseSchema,
  quoteIdentifier,
} from "./schema.ts";

/** The resolved ClickHouse configuration; each field names its variable. */
export interface ClickHouseConfig {
  /**
   * Server URL, scheme host and port only, e.g. `http://127.0.0.1:8123`.
   * From `CLICKHOUSE_HOST`, `CLICKHOUSE_PORT` and `CLICKHOUSE_SECURE`.
   */
  url: string;
  /**
   * Every server of `CLICKHOUSE_HOST` (a comma-separated list), `url` first:
   * the replicas sluice fails over to, in turn, when one does not answer.
   */
  urls: string[];
  /**
   * Path prefix when ClickHouse sits behind a proxy path (from a URL in
   * `CLICKHOUSE_HOST`), `""` when none.
   */
  pathname: string;
  /**
   * The cluster of the servers' `remote_servers` (`CLICKHOUSE_CLUSTER`), and
   * the tables made on it; `undefined` for one server.
   */
  cluster?: ClusterTables;
  /** Database name (`CLICKHOUSE_DB`). */
  database: string;
  /** Table name (`CLICKHOUSE_TABLE`). */
  table: string;
  /** User name (`CLICKHOUSE_USER`). */
  username: string;
  /** Password (`CLICKHOUSE_PASSWORD`); never logged. */
  password: string;
  /** The table's columns, from `CLICKHOUSE_DATA_SCHEMA`. */
  columns: ColumnSpec[];
  /** Create the database and table at start (`CLICKHOUSE_CREATE_TABLE`). */
  createTable: boolean;
  /** ORDER BY expressions as written, empty for `ORDER BY tuple()` (`CLICKHOUSE_ORDER_BY`). */
  orderBy: string;
  /** PARTITION BY expression as written, empty for none (`CLICKHOUSE_PARTITION_BY`). */
  partitionBy: string;
  /** Speak HTTPS (`CLICKHOUSE_SECURE`, or an `https://` URL in `CLICKHOUSE_HOST`). */
  secure: boolean;
  /** Verify the server certificate (`CLICKHOUSE_TLS_VERIFY`). */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificate (`CLICKHOUSE_CA_FILE`). */
  caFile?: string;
  /** Request timeout in milliseconds (`CLICKHOUSE_REQUEST_TIMEOUT`). */
  requestTimeoutMs: number;
  /** Gzip request bodies (`CLICKHOUSE_COMPRESSION`). */
  compression: boolean;
  /** Gzip level of request bodies, 1 (fastest) to 9 (`CLICKHOUSE_COMPRESSION_LEVEL`). */
  compressionLevel: number;
  /**
   * strptime template for timestamps (`TIMESTAMP_TEMPLATE`); `undefined` when
   * it is the default, in which case every pmacct form is read.
   */
  timestampTemplate?: string;
}

/** Every variable the ClickHouse sink reads. */
export const CLICKHOUSE = declareVariables("ClickHouse", {
  CLICKHOUSE_HOST: {
    selects: true,
    type: "string",
    required: true,
    connection: true,
    example: "127.0.0.1",
    doc: "ClickHouse server for the HTTP interface: host name or IP, optionally host:port, or a " +
      "full http(s):// URL; several, comma-separated, are replicas sluice fails over to in turn",
  },
  CLICKHOUSE_PORT: {
    type: "int",
    min: 1,
    max: 65535,
    doc: "HTTP port of the ClickHouse server; default 8123, or 8443 with CLICKHOUSE_SECURE",
  },
  CLICKHOUSE_SECURE: {
    type: "bool",
    default: "NO",
    doc: "Connect with HTTPS (TLS) instead of plain HTTP",
  },
  CLICKHOUSE_TLS_VERIFY: {
    type: "bool",
    default: "YES",
    doc: "Verify the server's TLS certificate and host name (NO accepts any certificate)",
  },
  CLICKHOUSE_CA_FILE: {
    type: "file",
    pem: true,
    doc:
      "PEM file with the CA certificate(s) that signed the server certificate, instead of the system CAs",
  },
  CLICKHOUSE_DB: { type: "string", default: "pmacct", doc: "Database that holds the table" },
  CLICKHOUSE_TABLE: {
    type: "string",
    default: "sflowstat",
    doc: "Table the flow records are inserted into",
  },
  CLICKHOUSE_USER: { type: "string", default: "default", doc: "ClickHouse user name" },
  CLICKHOUSE_PASSWORD: {
    type: "string",
    default: "",
    secret: true,
    doc: "Password of CLICKHOUSE_USER (empty for none)",
  },
  CLICKHOUSE_DATA_SCHEMA: {
    selects: true,
    type: "string",
    required: true,
    example: "peer_ip_src:String,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16," +
      "ip_proto:String,tos:UInt8,stamp_inserted:DateTime,stamp_updated:DateTime," +
      "packets:UInt64,bytes:UInt64",
    doc: "Columns as field:Type entries separated by , ; or whitespace other than spaces; " +
      "the field is read from each pmacct record",
  },
  CLICKHOUSE_CREATE_TABLE: {
    type: "bool",
    default: "YES",
    doc:
      "Create the database and a MergeTree table from CLICKHOUSE_DATA_SCHEMA at start when missing",
  },
  CLICKHOUSE_ORDER_BY: {
    type: "string",
    default: "",
    doc: "ORDER BY expressions of a created table, as written (empty: ORDER BY tuple()); " +
      "checked by the server before the table is created, and refused when it holds ; " +
      "a comment, unpaired brackets, an open quote or SETTINGS/FORMAT",
  },
  CLICKHOUSE_PARTITION_BY: {
    type: "string",
    default: "",
    doc: "PARTITION BY expression of a created table, as written (empty: no partitioning); " +
      "checked like CLICKHOUSE_ORDER_BY",
  },
  CLICKHOUSE_CLUSTER: {
    type: "string",
    default: "",
    example: "sluice",
    doc: "Cluster (of the servers' remote_servers) to create the tables on: a " +
      "ReplicatedMergeTree CLICKHOUSE_LOCAL_TABLE on every shard and the Distributed " +
      "CLICKHOUSE_TABLE over it, which sluice inserts into; empty: one server",
  },
  CLICKHOUSE_LOCAL_TABLE: {
    type: "string",
    default: "",
    doc: "With CLICKHOUSE_CLUSTER: the table on each shard; empty: CLICKHOUSE_TABLE_local",
  },
  CLICKHOUSE_REPLICA_PATH: {
    type: "string",
    default: "",
    doc: "With CLICKHOUSE_CLUSTER: ZooKeeper path of the local table, macros such as {shard} " +
      "allowed; empty: /clickhouse/tables/{shard}/CLICKHOUSE_DB/CLICKHOUSE_LOCAL_TABLE",
  },
  CLICKHOUSE_REPLICA_NAME: {
    type: "string",
    default: "{replica}",
    doc: "With CLICKHOUSE_CLUSTER: the replica's name in the local table's ZooKeeper path",
  },
  CLICKHOUSE_SHARDING_KEY: {
    type: "string",
    default: "",
    doc: "With CLICKHOUSE_CLUSTER: the Distributed table's sharding key; empty: cityHash64 of " +
      "every schema column, so that a batch sent again splits into the same blocks per shard " +
      "and the replicas drop the blocks they already hold (rand() with direct writes)",
  },
  CLICKHOUSE_WRITE_PATH: {
    type: "enum",
    choices: ["distributed", "direct"],
    default: "distributed",
    doc: "With CLICKHOUSE_CLUSTER: insert into the Distributed table, which splits each batch " +
      "and waits for every shard, or direct: into each shard's local table, the rows spread " +
      "evenly by their Kafka position, each shard's part acknowledged on its own (CLICKHOUSE_HOST " +
      "must list servers of every shard)",
  },
  CLICKHOUSE_MAX_SAMPLES_PER_SEND: {
    type: "int",
    default: "1000",
    min: 1,
    doc: "Insert a batch when it holds this many rows",
  },
  CLICKHOUSE_MAX_BYTES_PER_SEND: {
    type: "int",
    default: "10485760",
    min: 1,
    doc: "Insert a batch when its JSONEachRow body reaches this many bytes (before compression)",
  },
  CLICKHOUSE_MAX_TIME_TO_SEND: {
    type: "seconds",
    default: "10",
    doc: "Insert a batch when its oldest row has waited this many seconds (decimals allowed, > 0)",
  },
  CLICKHOUSE_REQUEST_TIMEOUT: {
    type: "seconds",
    default: "30",
    doc: "Give up on one ClickHouse request after this many seconds (decimals allowed, > 0)",
  },
  CLICKHOUSE_COMPRESSION: {
    type: "bool",
    default: "YES",
    doc: "Gzip the bodies of INSERT requests",
  },
  CLICKHOUSE_COMPRESSION_LEVEL: {
    type: "int",
    default: "1",
    min: 1,
    max: 9,
    doc: "Gzip level of INSERT bodies, 1 (fastest) to 9 (smallest); on flow records level 1 " +
      "shrinks a body about 5x at a third of level 6's CPU",
  },
  TIMESTAMP_TEMPLATE: {
    type: "string",
    default: DEFAULT_TIMESTAMP_TEMPLATE,
    doc: "strptime format of pmacct timestamps (%Y %m %d %H %M %S %f %z %%); " +
      "with the default every pmacct form (also epoch and RFC 3339) is read",
  },
});

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
 * Resolves the server address: the entry as `lib/address.ts` reads it, then
 * what only ClickHouse has, a port and a scheme that may come from two
 * variables each (which must agree) and the default ports of its HTTP
 * interface. Pure: problems are returned, not recorded.
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
  const parsed = parseEndpoint(host.trim(), {
    credentialsIn: "CLICKHOUSE_USER and CLICKHOUSE_PASSWORD",
  });
  if (!parsed.ok) return { ok: false, name: "CLICKHOUSE_HOST", message: parsed.message };
  const { scheme, host: name, port: hostPort, path } = parsed.endpoint;
  const what = scheme === undefined ? "host" : "URL";
  if (scheme !== undefined && secure !== undefined && secure !== (scheme === "https")) {
    return {
      ok: false,
      name: "CLICKHOUSE_HOST/CLICKHOUSE_SECURE",
      message: `must agree: the URL uses ${scheme} but CLICKHOUSE_SECURE is ${
        secure ? "YES" : "NO"
      }`,
    };
  }
  if (hostPort !== undefined && port !== undefined && hostPort !== port) {
    return {
      ok: false,
      name: "CLICKHOUSE_HOST/CLICKHOUSE_PORT",
      message: `must agree: the ${what} has port ${hostPort} but CLICKHOUSE_PORT is ${port}`,
    };
  }
  const tls = scheme === undefined ? secure ?? false : scheme === "https";
  const finalPort = hostPort ?? port ?? (tls ? 8443 : 8123);
  return {
    ok: true,
    address: {
      url: `${tls ? "https" : "http"}://${name}:${finalPort}`,
      pathname: path,
      secure: tls,
    },
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
  const v = CLICKHOUSE.read(reader);
  let address: ServerAddress = { url: "", pathname: "", secure: v.CLICKHOUSE_SECURE };
  const urls: string[] = [];
  if (v.CLICKHOUSE_HOST !== "") {
    const secure = reader.isSet("CLICKHOUSE_SECURE") ? v.CLICKHOUSE_SECURE : undefined;
    const hosts = v.CLICKHOUSE_HOST.split(",").map((h) => h.trim());
    for (const [i, host] of hosts.entries()) {
      const resolved = resolveServerAddress(host, v.CLICKHOUSE_PORT, secure);
      if (!resolved.ok) {
        reader.problem(resolved.name, v.CLICKHOUSE_HOST, resolved.message);
        break;
      }
      if (i === 0) address = resolved.address;
      else if (
        resolved.address.secure !== address.secure ||
        resolved.address.pathname !== address.pathname
      ) {
        reader.problem(
          "CLICKHOUSE_HOST",
          v.CLICKHOUSE_HOST,
          "must list servers of one kind: the same scheme and path for each",
        );
        break;
      }
      urls.push(resolved.address.url);
    }
  }
  reader.requireTls(
    "CLICKHOUSE_CA_FILE",
    address.secure,
    "set CLICKHOUSE_SECURE=YES or an https:// URL",
  );

  let columns: ColumnSpec[] = [];
  if (v.CLICKHOUSE_DATA_SCHEMA !== "") {
    const parsed = parseSchema(v.CLICKHOUSE_DATA_SCHEMA);
    columns = parsed.columns;
    for (const p of parsed.problems) reader.problem("CLICKHOUSE_DATA_SCHEMA", p.entry, p.message);
  }

  // Pasted into the CREATE TABLE: refused when it could reshape it (the
  // server checks the rest before the table is created).
  const keys = {
    CLICKHOUSE_ORDER_BY: "",
    CLICKHOUSE_PARTITION_BY: "",
    CLICKHOUSE_SHARDING_KEY: "",
  };
  for (
    const name of [
      "CLICKHOUSE_ORDER_BY",
      "CLICKHOUSE_PARTITION_BY",
      "CLICKHOUSE_SHARDING_KEY",
    ] as const
  ) {
    const problem = keyExpressionProblem(v[name]);
    if (problem === undefined) keys[name] = v[name];
    else reader.problem(name, v[name], problem);
  }

  // The default template is not compiled: every pmacct form is read then.
  const template = v.TIMESTAMP_TEMPLATE;
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

  const localTable = v.CLICKHOUSE_LOCAL_TABLE || `${v.CLICKHOUSE_TABLE}_local`;
  const direct = v.CLICKHOUSE_WRITE_PATH === "direct";
  // Direct writes split the rows themselves, by Kafka position: a key the
  // Distributed table would split by differently would only mislead.
  if (direct && !/^(|rand\(\))$/i.test(keys.CLICKHOUSE_SHARDING_KEY.trim())) {
    reader.problem(
      "CLICKHOUSE_SHARDING_KEY",
      keys.CLICKHOUSE_SHARDING_KEY,
      "must be empty or rand() with CLICKHOUSE_WRITE_PATH=direct, which spreads the rows " +
        "evenly by their Kafka position; a key of your own needs the distributed path",
    );
  }
  const cluster: ClusterTables | undefined = v.CLICKHOUSE_CLUSTER === "" ? undefined : {
    name: v.CLICKHOUSE_CLUSTER,
    localTable,
    replicaPath: v.CLICKHOUSE_REPLICA_PATH ||
      `/clickhouse/tables/{shard}/${v.CLICKHOUSE_DB}/${localTable}`,
    replicaName: v.CLICKHOUSE_REPLICA_NAME,
    shardingKey: keys.CLICKHOUSE_SHARDING_KEY ||
      (direct ? "rand()" : `cityHash64(${columns.map((c) => quoteIdentifier(c.name)).join(", ")})`),
    direct,
  };
  if (cluster !== undefined && localTable === v.CLICKHOUSE_TABLE) {
    reader.problem(
      "CLICKHOUSE_LOCAL_TABLE",
      localTable,
      "must differ from CLICKHOUSE_TABLE, the Distributed table over it",
    );
  }
  const config: ClickHouseConfig = {
    url: address.url,
    urls,
    cluster,
    pathname: address.pathname,
    database: v.CLICKHOUSE_DB,
    table: v.CLICKHOUSE_TABLE,
    username: v.CLICKHOUSE_USER,
    password: v.CLICKHOUSE_PASSWORD,
    columns,
    createTable: v.CLICKHOUSE_CREATE_TABLE,
    orderBy: keys.CLICKHOUSE_ORDER_BY,
    partitionBy: keys.CLICKHOUSE_PARTITION_BY,
    secure: address.secure,
    tlsVerify: v.CLICKHOUSE_TLS_VERIFY,
    caFile: v.CLICKHOUSE_CA_FILE,
    requestTimeoutMs: v.CLICKHOUSE_REQUEST_TIMEOUT,
    compression: v.CLICKHOUSE_COMPRESSION,
    compressionLevel: v.CLICKHOUSE_COMPRESSION_LEVEL,
    timestampTemplate,
  };
  const batch: BatchLimits = {
    maxRows: v.CLICKHOUSE_MAX_SAMPLES_PER_SEND,
    maxBytes: v.CLICKHOUSE_MAX_BYTES_PER_SEND,
    maxAgeMs: v.CLICKHOUSE_MAX_TIME_TO_SEND,
  };
  return { config, batch };
}
