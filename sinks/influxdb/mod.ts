/**
 * The InfluxDB sink (`SINK=influxdb`): points written in batches as line
 * protocol over HTTP, to InfluxDB 1.x (`POST /write?db=...`, the default,
 * as kafka-influxdb did) or InfluxDB 2/3 (`POST /api/v2/write?bucket=...`
 * with a token), gzip bodies. A drop-in replacement for kafka-influxdb.
 *
 * It takes three kinds of record (`deps.input`, from the decoder):
 * - `points` (collectd decoders): encoded as line protocol;
 * - `lines` (kafka-influxdb's echo encoder): written unchanged, only a line
 *   that is empty or holds a newline is set aside; their timestamps are read
 *   by the server in `INFLUXDB_TIME_PRECISION`, which must match the
 *   producer's (`ns` for Telegraf; the default `s` is kafka-influxdb's);
 * - `flows` (pmacct): converted to points, see `flows.ts`.
 *
 * Reading order: `config.ts` (variables), `line_protocol.ts` (points to
 * lines, and what is checked before sending because the server would refuse
 * or change it), `flows.ts` (pmacct records to points), `client.ts`
 * (requests and the classification of answers), then the class below.
 *
 * Delivery is at least once, and writes are idempotent: a point with the
 * same measurement, tag set and time as a stored one replaces its fields. So
 * a batch written again (an answer lost, a crash before the commit, the good
 * points of a split batch that 1.x had already written alongside a refused
 * one) changes nothing. The same rule means two distinct records with the
 * same tags and time overwrite each other (last write wins); see `flows.ts`
 * for why the flow defaults keep every flow key as a tag.
 *
 * With every flow key as a tag, each address is a tag value: InfluxDB 1.x
 * refuses new values beyond `max-values-per-tag` (100000 per key by default)
 * and new series beyond `max-series-per-database` (1000000) with a 400
 * `partial write: max-values-per-tag limit exceeded ...`; such points are set
 * aside. Raise those limits (0 is unlimited), narrow `INFLUXDB_TAGS` with a
 * matching pmacct `aggregate`, or keep the data in ClickHouse.
 *
 * @module
 */

import { errorLine, type Logger } from "../../lib/log.ts";
import type { Point, RecordKind } from "../../lib/record.ts";
import { utf8Length } from "../../lib/text.ts";
import type { SinkDeps, SinkModule } from "../../lib/sink.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type WriteResult,
} from "../../lib/record.ts";
import { type Sink, SinkWriteError } from "../../lib/sink.ts";
import {
  classifyTransportError,
  createTransport,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
} from "../../lib/http.ts";
import {
  classifyInfluxDBResponse,
  createDatabaseStatement,
  databaseNames,
  pingRequest,
  queryError,
  queryRequest,
  statusText,
  writeRequest,
} from "./client.ts";
import { INFLUXDB_VARIABLES, type InfluxDBConfig, parseInfluxDBConfig } from "./config.ts";
import { compileFlowConverter } from "./flows.ts";
import { checkRawLine, encodePoint, type EncodeResult } from "./line_protocol.ts";

export type { InfluxDBConfig } from "./config.ts";

/** What the sink needs besides its configuration. */
export interface InfluxDBDeps extends SinkDeps {
  /** The transport, injected by tests; by default one for the configuration. */
  transport?: HttpTransport;
}

/** Why the database could not be made ready; `fatal` when waiting cannot help. */
interface SetupFailure {
  message: string;
  errorType: string;
  fatal: boolean;
  status?: number;
  cause?: unknown;
}

/** Writes line protocol rows to InfluxDB. A row is one line. */
export class InfluxDBSink implements Sink<string> {
  /** Registry name and `sink` metric label. */
  readonly name = "influxdb";
  readonly #config: InfluxDBConfig;
  readonly #log: Logger;
  readonly #encode: (record: InputRecord) => EncodeResult;
  readonly #injected: HttpTransport | undefined;
  #transport: HttpTransport | undefined;
  /** Set when a write found the database gone; the next write creates it first. */
  #recreate = false;

  /**
   * @param config The resolved configuration.
   * @param deps The record kind (`input`, default `flows`), the time reader
   *   for pmacct timestamps, the logger, and for tests a transport.
   */
  constructor(config: InfluxDBConfig, deps: InfluxDBDeps) {
    this.#config = config;
    this.#log = deps.log;
    this.#injected = deps.transport;
    this.#encode = compileEncoder(config, deps.input ?? "flows", deps);
  }

  /**
   * Pings the server (logging its version) and, for API 1 with
   * `INFLUXDB_CREATE_DATABASE`, creates the database (a no-op when it exists).
   *
   * @throws {SinkWriteError} With `retry` while the server cannot be reached or fails (5xx, 429).
   * @throws {Error} When it refuses the credentials or the database, or does not serve the API.
   */
  async connect(): Promise<void> {
    const config = this.#config;
    if (config.url.startsWith("https:") && !config.tlsVerify) {
      this.#log.warn("InfluxDB's TLS certificate is not verified", {
        url: config.url,
        hint: "set INFLUXDB_VERIFY_SSL=YES (with INFLUXDB_CA_FILE for a private CA)",
      });
    }
    let response: HttpResponse;
    try {
      response = await this.#send(pingRequest(config));
    } catch (error) {
      throw setupError(unreachable(`Cannot connect to InfluxDB at ${config.pingUrl}`, error));
    }
    if (response.status < 200 || response.status >= 300) {
      const retry = response.status === 429 || response.status >= 500;
      const { hint } = classifyInfluxDBResponse(response.status, response.body);
      throw setupError({
        message: retry
          ? `Cannot connect to InfluxDB at ${config.pingUrl}: ${statusText(response)}`
          : `Cannot start: InfluxDB at ${config.pingUrl} answers the ping with ${
            statusText(response, hint)
          }`,
        errorType: `http_${response.status}`,
        status: response.status,
        fatal: !retry,
      });
    }
    const version = response.headers.get("x-influxdb-version") ?? "unknown";
    if (config.apiVersion === 2 && /^v?1\.[0-7]\./.test(version)) {
      throw new Error(
        `Cannot start: InfluxDB ${version} at ${config.url} has no API version 2 ` +
          "(/api/v2/write came with 1.8); set INFLUXDB_API_VERSION=1 with INFLUXDB_DBNAME",
      );
    }
    if (config.apiVersion === 2 && config.org === "" && /^v?2\./.test(version)) {
      // 2.7.12 answers every write without one: 400 "Please provide either orgID or org".
      throw new Error(
        `Cannot start: InfluxDB ${version} at ${config.url} needs an organisation; ` +
          "set INFLUXDB_ORG (only InfluxDB 3 does without)",
      );
    }
    this.#log.info("Connected to InfluxDB", {
      url: config.url,
      version,
      api: config.apiVersion,
      ...(config.apiVersion === 2
        ? { bucket: config.bucket, org: config.org }
        : { database: config.database, retention_policy: config.retentionPolicy ?? "(default)" }),
      precision: config.precision,
    });
    if (config.createDatabase) {
      const failure = await this.#createDatabase();
      if (failure !== undefined) throw setupError(failure);
    }
  }

  /**
   * Converts one record into its line: a point encoded, a raw line checked,
   * or a flow record converted and encoded.
   *
   * @param record The decoded record.
   * @param _origin Where it came from (not needed to convert).
   * @returns The line and its size with the newline, or a `convert` rejection.
   */
  prepare(record: InputRecord, _origin: RecordOrigin): PrepareResult<string> {
    const result = this.#encode(record);
    if (!result.ok) return { ok: false, rejection: { reason: "convert", error: result.error } };
    return { ok: true, row: result.line, bytes: utf8Length(result.line) + 1 };
  }

  /**
   * The body lines of a write of these rows, exactly as sent (before gzip).
   *
   * @param rows The rows.
   * @returns One line per row.
   */
  encode(rows: readonly PreparedRow<string>[]): string[] {
    return rows.map((r) => r.row);
  }

  /**
   * Writes all rows in one request; first creates the database again when
   * the previous write found it dropped.
   *
   * @param rows The rows, in order.
   * @returns Everything written (the server accepts or refuses a whole request).
   * @throws {SinkWriteError} With `split` for 400, 413 and 422, `retry` for everything else.
   */
  async write(rows: readonly PreparedRow<string>[]): Promise<WriteResult> {
    const config = this.#config;
    if (this.#recreate) {
      const failure = await this.#createDatabase();
      if (failure !== undefined) {
        throw new SinkWriteError(failure.message, {
          action: "retry",
          errorType: failure.errorType,
          status: failure.status,
          cause: failure.cause,
        });
      }
      this.#recreate = false;
    }
    const what = `${rows.length} ${
      rows.length === 1 ? "line" : "lines"
    } to InfluxDB at ${config.writeUrl}`;
    let response: HttpResponse;
    try {
      response = await this.#send(await writeRequest(config, this.encode(rows)));
    } catch (error) {
      const failure = unreachable(`Cannot write ${what}`, error);
      throw new SinkWriteError(failure.message, {
        action: "retry",
        errorType: failure.errorType,
        cause: error,
      });
    }
    const outcome = classifyInfluxDBResponse(
      response.status,
      response.body,
      response.headers.get("retry-after"),
    );
    if (outcome.action === "ok") return allWritten();
    let hint = outcome.hint;
    if (outcome.databaseNotFound) {
      if (config.createDatabase) {
        this.#recreate = true;
        hint = `${hint}; it is created again before the next write`;
      } else hint = `${hint}; create it, or set INFLUXDB_CREATE_DATABASE=YES`;
    }
    const message = `Cannot write ${what}: ${statusText(response, hint)}`;
    if (hint !== undefined) {
      // Only an operator can fix most of these; the pipeline's retry warning is not enough.
      this.#log.limited(`influxdb_${outcome.errorType}`, "error", "InfluxDB refuses writes", {
        status: response.status,
        url: config.writeUrl,
        error: message,
      });
    }
    throw new SinkWriteError(message, {
      action: outcome.action,
      errorType: outcome.errorType,
      status: response.status,
      retryAfterMs: outcome.retryAfterMs,
    });
  }

  /**
   * Pings the server.
   *
   * @returns `true` when `/ping` answers 2xx (204).
   */
  healthcheck(): Promise<boolean> {
    return this.#send(pingRequest(this.#config)).then(
      (response) => response.status >= 200 && response.status < 300,
      () => false,
    );
  }

  /** Closes the transport's connections (not an injected one). */
  close(): Promise<void> {
    if (this.#transport !== this.#injected) this.#transport?.close();
    this.#transport = undefined;
    return Promise.resolve();
  }

  /**
   * `CREATE DATABASE`; a user without admin rights (403) passes when the
   * database exists already (`SHOW DATABASES` lists it).
   *
   * @returns `undefined` when the database is ready, else why not.
   */
  async #createDatabase(): Promise<SetupFailure | undefined> {
    const config = this.#config;
    const statement = createDatabaseStatement(config.database);
    const what = `InfluxDB database ${JSON.stringify(config.database)} at ${config.queryUrl}`;
    let response: HttpResponse;
    try {
      response = await this.#send(queryRequest(config, statement));
    } catch (error) {
      return unreachable(`Cannot create ${what}`, error);
    }
    const error = queryError(response.body);
    if (response.status === 200 && error === undefined) {
      this.#log.info("InfluxDB database is ready", { database: config.database });
      return undefined;
    }
    const status = response.status;
    const fatal = status !== 429 && status < 500;
    const failure = (detail: string): SetupFailure => ({
      message: fatal
        ? `Cannot start: InfluxDB at ${config.queryUrl} refuses to create database ${
          JSON.stringify(config.database)
        }: ${detail}`
        : `Cannot create ${what}: ${detail}`,
      errorType: `http_${status}`,
      status,
      fatal,
    });
    if (status === 403) {
      const shown = await this.#send(queryRequest(config, "SHOW DATABASES")).catch(() => undefined);
      if (shown?.status === 200 && databaseNames(shown.body).includes(config.database)) {
        this.#log.warn(
          "InfluxDB user may not create databases; the database exists, writing to it",
          {
            database: config.database,
            user: config.auth.kind === "basic" ? config.auth.username : undefined,
            error: error ?? statusText(response),
          },
        );
        return undefined;
      }
      return failure(
        `${statusText(response)}; the database does not exist or the user has no rights ` +
          "on it: create it as an admin and grant the user WRITE on it",
      );
    }
    if (status === 200) return failure(`${error}; check INFLUXDB_DBNAME`);
    return failure(
      statusText(
        response,
        status === 401 ? "check INFLUXDB_USER and INFLUXDB_PASSWORD" : undefined,
      ),
    );
  }

  /**
   * Sends with the transport, created at first use: `fetch` with
   * `INFLUXDB_CA_FILE` added to the trusted CAs, or `node:https` without
   * verification (`INFLUXDB_VERIFY_SSL=NO`).
   */
  async #send(request: HttpRequest): Promise<HttpResponse> {
    this.#transport ??= this.#injected ?? createTransport({
      verify: this.#config.tlsVerify,
      caPem: this.#config.caFile === undefined
        ? undefined
        : Deno.readTextFileSync(this.#config.caFile),
    });
    return await this.#transport.send(request);
  }
}

/** A request that got no answer: retried, except a certificate that does not verify. */
function unreachable(what: string, error: unknown): SetupFailure {
  const { errorType } = classifyTransportError(
    error,
    "check INFLUXDB_CA_FILE or INFLUXDB_VERIFY_SSL",
  );
  const hint = errorType === "tls"
    ? "; check INFLUXDB_CA_FILE and INFLUXDB_VERIFY_SSL"
    : errorType === "timeout"
    ? "; INFLUXDB_TIMEOUT sets the limit"
    : "";
  return {
    message: `${what}: ${errorLine(error)}${hint}`,
    errorType,
    fatal: errorType === "tls",
    cause: error,
  };
}

function setupError(failure: SetupFailure): Error {
  if (failure.fatal) return new Error(failure.message, { cause: failure.cause });
  return new SinkWriteError(failure.message, {
    action: "retry",
    errorType: failure.errorType,
    status: failure.status,
    cause: failure.cause,
  });
}

/** The conversion of one record into its line, for the configured record kind. */
function compileEncoder(
  config: InfluxDBConfig,
  input: RecordKind,
  deps: SinkDeps,
): (record: InputRecord) => EncodeResult {
  const { precision, apiVersion } = config;
  switch (input) {
    case "points":
      return (record) => encodePoint(record as Point, precision, apiVersion);
    case "lines":
      return (record) => checkRawLine(record.line);
    case "flows": {
      const convert = compileFlowConverter({ ...config.flows, time: deps.time });
      return (record) => {
        const converted = convert(record);
        return converted.ok ? encodePoint(converted.point, precision, apiVersion) : converted;
      };
    }
  }
}

/** The InfluxDB backend as the sink registry knows it. */
export const influxDBSink: SinkModule<InfluxDBConfig> = {
  name: "influxdb",
  title: "InfluxDB (line protocol, /write for 1.x, /api/v2/write for 2.x and 3.x)",
  variables: INFLUXDB_VARIABLES,
  consumerGroupDefault: "kafka-influxdb",
  inputs: ["points", "lines", "flows"],
  // kafka-influxdb's defaults: collectd Graphite from my_topic on localhost:9092.
  commonDefaults: {
    ENCODER: "collectd_graphite",
    KAFKA_TOPIC: "my_topic",
    KAFKA_HOST: "localhost",
  },
  parseConfig: parseInfluxDBConfig,
  target: (config) => config.writeUrl,
  create(config: InfluxDBConfig, deps: SinkDeps): Sink {
    return new InfluxDBSink(config, deps);
  },
};
