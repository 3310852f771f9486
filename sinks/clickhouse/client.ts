/**
 * The ClickHouse sink's I/O, over the HTTP interface with
 * `@clickhouse/client` (not lib/http.ts: the client brings its own
 * connection pool, gzip and query parameters): the client's options, its
 * logger, the deduplication token of an insert, and the insert, query and
 * ping calls. Errors are thrown as the client threw them; `classify.ts`
 * reads them.
 *
 * TLS: `CLICKHOUSE_CA_FILE` is the CA the client trusts;
 * `CLICKHOUSE_TLS_VERIFY=NO` sends through an agent without verification.
 *
 * @module
 */

import {
  type ClickHouseClient as LibraryClient,
  type ClickHouseClientConfigOptions,
  type ClickHouseSettings,
  createClient,
  type Logger as ClientLogger,
} from "@clickhouse/client";
import { Buffer } from "node:buffer";
import https from "node:https";
import type { Logger } from "../../lib/log.ts";
import type { PreparedRow } from "../../lib/record.ts";
import type { ClickHouseConfig } from "./config.ts";
import type { ClickHouseRow } from "./encode.ts";

/**
 * Builds the options of `createClient` for a configuration.
 *
 * @param config The resolved configuration.
 * @param log Where the client's own warnings go.
 * @param caCert The CA certificate(s) read from `CLICKHOUSE_CA_FILE`.
 * @returns The options.
 */
export function clientOptions(
  config: ClickHouseConfig,
  log: Logger,
  caCert?: Uint8Array,
  url: string = config.url,
): ClickHouseClientConfigOptions {
  const options: ClickHouseClientConfigOptions = {
    url,
    pathname: config.pathname === "" ? undefined : config.pathname,
    username: config.username,
    password: config.password,
    // No `database`: the client would send it with every request, and the
    // server refuses even `SELECT version()` while that database does not
    // exist yet (Code 81). Every statement names `db`.`table` instead.
    request_timeout: config.requestTimeoutMs,
    compression: {
      request: config.compression ? { codec: "gzip", level: config.compressionLevel } : false,
      response: false,
    },
    // Rows arrive as their JSON lines (`encode.ts`): inserted as they are.
    json: { parse: JSON.parse, stringify: insertLine },
    application: "sluice",
    log: { LoggerClass: clientLoggerClass(log) },
  };
  if (config.secure) {
    const ca = caCert === undefined ? undefined : Buffer.from(caCert);
    if (!config.tlsVerify) {
      // The client's `tls` setting cannot turn verification off; its own
      // agent accepts a custom one (keep-alive as the client's default).
      options.http_agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false, ca });
    } else if (ca !== undefined) {
      options.tls = { ca_cert: ca };
    }
  }
  return options;
}

/**
 * What the client's `JSONEachRow` insert writes for one value: a row's line
 * as it is (`encode.ts` made it), anything else as JSON.
 *
 * @param value A row's JSON line, or a value to serialise.
 * @returns The JSON text.
 */
export function insertLine(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * A logger class for the client (it instantiates it itself) that sends the
 * client's warnings to sluice's log instead of the console. Its errors are
 * dropped to debug: sluice reports the same errors where it catches them.
 *
 * @param log sluice's logger.
 * @returns A class the client can instantiate.
 */
export function clientLoggerClass(log: Logger): new () => ClientLogger {
  return class implements ClientLogger {
    trace(): void {}
    debug(): void {}
    info(): void {}
    warn(params: { message: string; err?: Error }): void {
      log.limited("clickhouse_client_warn", "warn", "ClickHouse client warning", {
        detail: params.message,
        error: params.err,
      });
    }
    error(params: { message: string; err: Error }): void {
      log.debug("ClickHouse client error", { detail: params.message, error: params.err });
    }
  };
}

/**
 * Sends the sink's statements to one ClickHouse server. The underlying
 * client is made by {@link reopen} (or by the first {@link ping}), which
 * reads the CA file, so building it does no I/O.
 */
export class ClickHouseClient {
  readonly #config: ClickHouseConfig;
  readonly #log: Logger;
  #client: LibraryClient | undefined;
  /** Which of `CLICKHOUSE_HOST`'s servers the client talks to. */
  #server = 0;

  /**
   * @param config The resolved configuration.
   * @param log Where the client's own warnings go.
   */
  constructor(config: ClickHouseConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  /**
   * Closes the connections, if any, and makes a new client (no request is sent).
   *
   * @throws {Error} When `CLICKHOUSE_CA_FILE` cannot be read.
   */
  async reopen(): Promise<void> {
    await this.close();
    await this.#create();
  }

  /** The server the client talks to now (one of `CLICKHOUSE_HOST`'s). */
  get url(): string {
    return this.#config.urls[this.#server] ?? this.#config.url;
  }

  /**
   * Moves to the next server of `CLICKHOUSE_HOST`, when it lists several:
   * after a failure that a replica may not have (no answer, a timeout, a
   * 5xx), the next attempt goes to the next one, in turn.
   *
   * @throws {Error} When `CLICKHOUSE_CA_FILE` cannot be read.
   */
  async failover(): Promise<void> {
    if (this.#config.urls.length < 2) return;
    this.#server = (this.#server + 1) % this.#config.urls.length;
    this.#log.warn("Trying the next ClickHouse server", { url: this.url });
    await this.reopen();
  }

  /**
   * A client with the same settings for other servers of `CLICKHOUSE_HOST`
   * (one to probe, or a shard's), not opened yet.
   *
   * @param urls The servers, the first tried first.
   * @returns The new client.
   */
  forServers(urls: readonly string[]): ClickHouseClient {
    return new ClickHouseClient({ ...this.#config, url: urls[0]!, urls: [...urls] }, this.#log);
  }

  /**
   * Throws unless {@link reopen} made a client that was not closed since.
   *
   * @throws {Error} When there is no client.
   */
  requireOpen(): void {
    this.#require();
  }

  /**
   * Inserts rows in one `INSERT INTO table FORMAT JSONEachRow`.
   *
   * @param table The back-quoted `db`.`table`.
   * @param rows The rows, in order.
   * @param token The insert's `insert_deduplication_token` (servers >= 22.2), if any.
   * @throws {Error} As the client threw it (see `classifyClickHouseError`).
   */
  async insert(
    table: string,
    rows: readonly PreparedRow<ClickHouseRow>[],
    token?: string,
  ): Promise<void> {
    const settings: ClickHouseSettings = {};
    // Into a Distributed table, the acknowledgement must mean every shard
    // stored its rows, not that they wait on this node to be sent on.
    if (this.#config.cluster !== undefined) settings.insert_distributed_sync = 1;
    if (token !== undefined) {
      settings.insert_deduplication_token = token;
      // The acknowledgement must mean stored: no asynchronous insert
      // (some builds enable it by default), and deduplication on.
      settings.async_insert = 0;
      settings.insert_deduplicate = 1;
    }
    await this.#require().insert({
      table,
      values: rows.map((r) => r.row),
      format: "JSONEachRow",
      clickhouse_settings: settings,
    });
  }

  /**
   * Runs a `SELECT` and reads its rows.
   *
   * @param query The statement, without a `FORMAT` clause.
   * @returns The rows.
   * @throws {Error} As the client threw it.
   */
  async select<T>(query: string): Promise<T[]> {
    const result = await this.#require().query({ query, format: "JSONEachRow" });
    return await result.json<T>();
  }

  /**
   * Runs a statement that returns nothing (DDL).
   *
   * @param query The statement.
   * @param settings Settings for this statement only.
   * @throws {Error} As the client threw it.
   */
  async command(query: string, settings?: ClickHouseSettings): Promise<void> {
    await this.#require().command({ query, clickhouse_settings: settings });
  }

  /**
   * The HTTP status of a statement, whatever it is: the client keeps none
   * on the error of an answer that is not a ClickHouse exception (a
   * proxy's empty 502), so the sink asks again for it.
   *
   * @param query A statement without effects, e.g. `SELECT 1`.
   * @returns The status, if the answer had one.
   * @throws {Error} When no answer came.
   */
  async status(query: string): Promise<number | undefined> {
    const result = await this.#require().exec({ query, ignore_error_response: true });
    result.stream.destroy();
    return result.http_status_code;
  }

  /**
   * Pings the server (`GET /ping`), making a client first when there is none.
   *
   * @returns Whether it answered.
   * @throws {Error} When `CLICKHOUSE_CA_FILE` cannot be read.
   */
  async ping(): Promise<boolean> {
    const client = this.#client ?? await this.#create();
    return (await client.ping()).success;
  }

  /** Closes the connections; the next use needs {@link reopen}. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    await client?.close();
  }

  async #create(): Promise<LibraryClient> {
    const config = this.#config;
    const caCert = config.caFile === undefined ? undefined : await Deno.readFile(config.caFile);
    this.#client = createClient(clientOptions(config, this.#log, caCert, this.url));
    return this.#client;
  }

  #require(): LibraryClient {
    if (this.#client === undefined) {
      throw new Error("Cannot use the ClickHouse sink: connect() was not called");
    }
    return this.#client;
  }
}
