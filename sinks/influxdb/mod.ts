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
 * - `flows` (pmacct): converted to points, see `encode.ts`.
 *
 * Files, as in every sink: `config.ts` (variables), `encode.ts` (records to
 * lines, pmacct flows to points), `classify.ts` (answers to verdicts, and
 * the server's text for messages), `client.ts` (requests and sending), and
 * this file: the order of I/O. One more pure file, `line_protocol.ts`,
 * holds the protocol itself (escaping, value formats, and what is checked
 * before sending because the server would refuse or change it), whatever
 * the records are.
 *
 * Delivery is at least once, and writes are idempotent: a point with the
 * same measurement, tag set and time as a stored one replaces its fields. So
 * a batch written again (an answer lost, a crash before the commit, the good
 * points of a split batch that 1.x had already written alongside a refused
 * one) changes nothing. The same rule means two distinct records with the
 * same tags and time overwrite each other (last write wins); see `encode.ts`
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

import type { HttpResponse, HttpTransport } from "../../lib/http.ts";
import { errorLine, type Logger } from "../../lib/log.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type WriteResult,
} from "../../lib/record.ts";
import {
  type FailureVerdict,
  healsByItself,
  type Sink,
  type SinkDeps,
  type SinkModule,
  SinkWriteError,
  startupError,
} from "../../lib/sink.ts";
import {
  classifyInfluxDBError,
  classifyInfluxDBQuery,
  classifyInfluxDBResponse,
  databaseNames,
  isDatabaseNotFound,
  queryError,
  queryStatusText,
  statusText,
} from "./classify.ts";
import { createDatabaseStatement, InfluxDBClient } from "./client.ts";
import { INFLUXDB, type InfluxDBConfig, parseInfluxDBConfig } from "./config.ts";
import { compileRecordEncoder, encodeLines, overwrittenLines } from "./encode.ts";

export type { InfluxDBConfig } from "./config.ts";

/** What the sink needs besides its configuration. */
export interface InfluxDBDeps extends SinkDeps {
  /** The transport, injected by tests; by default one for the configuration. */
  transport?: HttpTransport;
}

/** Why the database could not be made ready. */
interface SetupFailure {
  /** What failed, with the value. */
  message: string;
  /** How the answer (or its absence) was classified. */
  verdict: FailureVerdict;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** Writes line protocol rows to InfluxDB. A row is one line. */
export class InfluxDBSink implements Sink<string> {
  /** Registry name and `sink` metric label. */
  readonly name = "influxdb";
  readonly #config: InfluxDBConfig;
  readonly #log: Logger;
  readonly #encode: (record: InputRecord) => PrepareResult<string>;
  readonly #client: InfluxDBClient;
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
    this.#client = new InfluxDBClient(config, deps.transport);
    this.#encode = compileRecordEncoder({
      input: deps.input ?? "flows",
      precision: config.precision,
      apiVersion: config.apiVersion,
      flows: config.flows,
      time: deps.time,
    });
  }

  /**
   * Pings the server (logging its version) and, for API 1 with
   * `INFLUXDB_CREATE_DATABASE`, creates the database (a no-op when it exists).
   *
   * @throws {SinkWriteError} From `startupError`: `retry` while the server
   *   cannot be reached or fails (5xx, 429), `fatal` when it refuses the
   *   credentials, the certificate or the database, or does not serve the API.
   */
  async connect(): Promise<void> {
    const config = this.#config;
    if (config.url.startsWith("https:") && !config.tlsVerify) {
      this.#log.warn("InfluxDB's TLS certificate is not verified", {
        url: config.url,
        hint: "set INFLUXDB_VERIFY_SSL=YES (with INFLUXDB_CA_FILE for a private CA)",
      });
    }
    const version = await this.#ping();
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
      if (failure !== undefined) {
        throw startupError(failure.message, failure.verdict, failure.cause);
      }
    }
  }

  /**
   * For `--check-config --connect`: the ping of {@link connect} (the
   * version and the API), then an empty write, which stores nothing but
   * needs the credentials and the database or bucket (InfluxDB 1.6 and
   * 2.7 answer 204, or 401, or 404 naming what is missing).
   *
   * @returns What was found.
   * @throws {SinkWriteError} As `connect()` throws it: `retry` while the server
   *   cannot be reached, `fatal` for credentials, the version, a missing database or bucket.
   */
  async check(): Promise<string> {
    const config = this.#config;
    const version = await this.#ping();
    const where = config.apiVersion === 2
      ? `bucket ${JSON.stringify(config.bucket)}`
      : `database ${JSON.stringify(config.database)}`;
    let response: HttpResponse;
    try {
      response = await this.#client.write([]);
    } catch (error) {
      const { message, verdict } = unanswered(`Cannot write to InfluxDB at ${config.url}`, error);
      throw startupError(message, verdict, error);
    }
    if (config.createDatabase && isDatabaseNotFound(response.status, response.body)) {
      return `InfluxDB ${version} at ${config.url}: ${where} does not exist and will be created`;
    }
    const verdict = classifyInfluxDBResponse(response.status, response.body);
    if (verdict.action !== "ok") {
      throw startupError(
        `InfluxDB ${version} at ${config.url} refuses an empty write to ${where}: ${
          statusText(response, verdict.hint)
        }`,
        verdict,
      );
    }
    return `InfluxDB ${version} at ${config.url}: ${where} takes writes with these credentials`;
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
    return this.#encode(record);
  }

  /**
   * The body lines of a write of these rows, exactly as sent (before gzip).
   *
   * @param rows The rows.
   * @returns One line per row.
   */
  encode(rows: readonly PreparedRow<string>[]): string[] {
    return encodeLines(rows);
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
        // Whatever refused it, the batch waits: the database may come back.
        const { errorType, status } = failure.verdict;
        throw new SinkWriteError(failure.message, {
          action: "retry",
          errorType,
          status,
          cause: failure.cause,
        });
      }
      this.#recreate = false;
    }
    const what = `${rows.length} ${
      rows.length === 1 ? "line" : "lines"
    } to InfluxDB at ${config.writeUrl}`;
    let response: HttpResponse;
    let lines: string[];
    try {
      lines = encodeLines(rows);
      response = await this.#client.write(lines);
    } catch (error) {
      const { message, verdict } = unanswered(`Cannot write ${what}`, error);
      throw new SinkWriteError(message, { ...verdict, cause: error });
    }
    const verdict = classifyInfluxDBResponse(
      response.status,
      response.body,
      response.headers.get("retry-after"),
    );
    if (verdict.action === "ok") {
      const overwritten = overwrittenLines(lines);
      if (overwritten === 0) return allWritten();
      this.#log.limited(
        "influxdb_overwritten",
        "warn",
        "Points of one write share series and time",
        {
          overwritten,
          points: lines.length,
          hint: "InfluxDB keeps one of them; add a tag that tells such records apart " +
            "(INFLUXDB_TAGS), or a finer INFLUXDB_TIMESTAMP_FIELD",
        },
      );
      return { ...allWritten(), overwritten };
    }
    let hint = verdict.hint;
    if (isDatabaseNotFound(response.status, response.body)) {
      if (config.createDatabase) {
        this.#recreate = true;
        hint = `${hint}; it is created again before the next write`;
      } else hint = `${hint}; create it, or set INFLUXDB_CREATE_DATABASE=YES`;
    }
    const message = `Cannot write ${what}: ${statusText(response, hint)}`;
    if (hint !== undefined) {
      // Only an operator can fix most of these; the pipeline's retry warning is not enough.
      this.#log.limited(`influxdb_${verdict.errorType}`, "error", "InfluxDB refuses writes", {
        status: response.status,
        url: config.writeUrl,
        error: message,
      });
    }
    throw new SinkWriteError(message, verdict);
  }

  /**
   * Pings the server.
   *
   * @returns `true` when `/ping` answers 2xx (204).
   */
  async healthcheck(): Promise<boolean> {
    try {
      const response = await this.#client.ping();
      return response.status >= 200 && response.status < 300;
    } catch {
      return false;
    }
  }

  /** Closes the connections (not those of an injected transport). */
  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
  }

  /**
   * Pings the server and checks that its version serves the configured API.
   *
   * @returns The version the server reports (`X-Influxdb-Version`).
   * @throws {SinkWriteError} From `startupError`.
   */
  async #ping(): Promise<string> {
    const config = this.#config;
    let response: HttpResponse;
    try {
      response = await this.#client.ping();
    } catch (error) {
      const { message, verdict } = unanswered(
        `Cannot connect to InfluxDB at ${config.pingUrl}`,
        error,
      );
      throw startupError(message, verdict, error);
    }
    const verdict = classifyInfluxDBResponse(response.status, response.body);
    if (verdict.action !== "ok") {
      const message = healsByItself(verdict)
        ? `Cannot connect to InfluxDB at ${config.pingUrl}: ${statusText(response)}`
        : `InfluxDB at ${config.pingUrl} answers the ping with ${
          statusText(response, verdict.hint)
        }`;
      throw startupError(message, verdict);
    }
    const version = response.headers.get("x-influxdb-version") ?? "unknown";
    if (config.apiVersion === 2 && /^v?1\.[0-7]\./.test(version)) {
      throw startupError(
        `InfluxDB ${version} at ${config.url} has no API version 2 ` +
          "(/api/v2/write came with 1.8); set INFLUXDB_API_VERSION=1 with INFLUXDB_DBNAME",
        { action: "fatal", errorType: "version" },
      );
    }
    if (config.apiVersion === 2 && config.org === "" && /^v?2\./.test(version)) {
      // 2.7.12 answers every write without one: 400 "Please provide either orgID or org".
      throw startupError(
        `InfluxDB ${version} at ${config.url} needs an organisation; ` +
          "set INFLUXDB_ORG (only InfluxDB 3 does without)",
        { action: "fatal", errorType: "version" },
      );
    }
    return version;
  }

  /**
   * `CREATE DATABASE`; a user without admin rights (403) passes when the
   * database exists already (`SHOW DATABASES` lists it).
   *
   * @returns `undefined` when the database is ready, else why not.
   */
  async #createDatabase(): Promise<SetupFailure | undefined> {
    const config = this.#config;
    const name = JSON.stringify(config.database);
    let response: HttpResponse;
    try {
      response = await this.#client.query(createDatabaseStatement(config.database));
    } catch (error) {
      return unanswered(`Cannot create InfluxDB database ${name} at ${config.queryUrl}`, error);
    }
    const verdict = classifyInfluxDBQuery(response.status, response.body);
    if (verdict.action === "ok") {
      this.#log.info("InfluxDB database is ready", { database: config.database });
      return undefined;
    }
    if (response.status === 403) {
      const shown = await this.#client.query("SHOW DATABASES").catch(() => undefined);
      if (shown?.status === 200 && databaseNames(shown.body).includes(config.database)) {
        this.#log.warn(
          "InfluxDB user may not create databases; the database exists, writing to it",
          {
            database: config.database,
            user: config.auth.kind === "basic" ? config.auth.username : undefined,
            error: queryError(response.body) ?? statusText(response),
          },
        );
        return undefined;
      }
    }
    const detail = queryStatusText(response, verdict.hint);
    return {
      message: healsByItself(verdict)
        ? `Cannot create InfluxDB database ${name} at ${config.queryUrl}: ${detail}`
        : `InfluxDB at ${config.queryUrl} refuses to create database ${name}: ${detail}`,
      verdict,
    };
  }
}

/** A request that got no answer: the message with its hint, and the verdict. */
function unanswered(what: string, error: unknown): SetupFailure & { cause: unknown } {
  const verdict = classifyInfluxDBError(error);
  const hint = verdict.hint === undefined ? "" : `; ${verdict.hint}`;
  return { message: `${what}: ${errorLine(error)}${hint}`, verdict, cause: error };
}

/** The InfluxDB backend as the sink registry knows it. */
export const influxDBSink: SinkModule<InfluxDBConfig> = {
  name: "influxdb",
  title: "InfluxDB (line protocol, /write for 1.x, /api/v2/write for 2.x and 3.x)",
  variables: INFLUXDB.specs,
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
