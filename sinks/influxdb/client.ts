/**
 * The InfluxDB sink's I/O: the write, ping and query requests (URL,
 * authentication, gzip) and sending them with `lib/http.ts`. Answers are
 * returned as they came; `classify.ts` reads them.
 *
 * Requests:
 * - API 1: `POST /write?db=<db>[&rp=<rp>]&precision=<s|ms|u|n>`, basic
 *   authentication with `INFLUXDB_USER`/`INFLUXDB_PASSWORD` (a server without
 *   `auth-enabled` ignores it). 1.6 reads `precision=us` and `ns` as
 *   nanoseconds silently, so `u` and `n` are sent.
 * - API 2: `POST /api/v2/write?org=<org>&bucket=<bucket>&precision=<s|ms|us|ns>`,
 *   `Authorization: Token <token>`.
 * - `GET /ping` answers 204 with the version in `X-Influxdb-Version`.
 * - API 1: `POST /query` with `q=CREATE DATABASE "<db>"`: 200 also when it
 *   exists (see `classify.ts` for a statement the server refuses).
 *
 * TLS: `INFLUXDB_CA_FILE` is added to the trusted CAs;
 * `INFLUXDB_VERIFY_SSL=NO` sends without verification (see
 * `createTransport` in lib/http.ts).
 *
 * @module
 */

import {
  basicAuthorization,
  gzip,
  HttpClient,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
} from "../../lib/http.ts";
import type { InfluxDBAuth, InfluxDBConfig } from "./config.ts";

const encoder = new TextEncoder();

/**
 * The value of the `Authorization` header.
 *
 * @param auth The configured credentials.
 * @returns `Basic base64(user:password)` (1.x) or `Token <token>` (2.x, 3.x).
 */
export function authorizationHeader(auth: InfluxDBAuth): string {
  if (auth.kind === "token") return `Token ${auth.token}`;
  return basicAuthorization(auth.username, auth.password);
}

function headers(auth: InfluxDBAuth): Record<string, string> {
  return { "User-Agent": "sluice", "Authorization": authorizationHeader(auth) };
}

/**
 * Builds the write request of some lines, joined with newlines, gzipped when configured.
 *
 * @param config The resolved configuration.
 * @param lines Line protocol lines, without newlines.
 * @returns The request.
 */
export async function writeRequest(
  config: Pick<InfluxDBConfig, "writeUrl" | "auth" | "gzip" | "requestTimeoutMs">,
  lines: readonly string[],
): Promise<HttpRequest> {
  const head: Record<string, string> = {
    ...headers(config.auth),
    "Content-Type": "text/plain; charset=utf-8",
  };
  let body: Uint8Array = encoder.encode(lines.join("\n"));
  if (config.gzip && body.length > 0) {
    body = await gzip(body);
    head["Content-Encoding"] = "gzip";
  }
  return {
    method: "POST",
    url: config.writeUrl,
    headers: head,
    body,
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Builds the ping request (`GET /ping`), credentials included for servers
 * that require them there (`ping-auth-enabled`).
 *
 * @param config The resolved configuration.
 * @returns The request.
 */
export function pingRequest(
  config: Pick<InfluxDBConfig, "pingUrl" | "auth" | "requestTimeoutMs">,
): HttpRequest {
  return {
    method: "GET",
    url: config.pingUrl,
    headers: headers(config.auth),
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Builds an InfluxQL request (`POST /query`, form encoded).
 *
 * @param config The resolved configuration.
 * @param statement The statement, e.g. `CREATE DATABASE "metrics"`.
 * @returns The request.
 */
export function queryRequest(
  config: Pick<InfluxDBConfig, "queryUrl" | "auth" | "requestTimeoutMs">,
  statement: string,
): HttpRequest {
  return {
    method: "POST",
    url: config.queryUrl,
    headers: { ...headers(config.auth), "Content-Type": "application/x-www-form-urlencoded" },
    body: encoder.encode(new URLSearchParams({ q: statement }).toString()),
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Quotes an InfluxQL identifier: `"` and `\` get a backslash.
 *
 * @param name The name, e.g. a database.
 * @returns E.g. `"my \"db\""`.
 */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * The statement that creates a database (idempotent in 1.x).
 *
 * @param database The name.
 * @returns `CREATE DATABASE "<name>"`.
 */
export function createDatabaseStatement(database: string): string {
  return `CREATE DATABASE ${quoteIdentifier(database)}`;
}

/** Sends the sink's requests to one InfluxDB server. */
export class InfluxDBClient {
  readonly #config: InfluxDBConfig;
  readonly #http: HttpClient;

  /**
   * @param config The resolved configuration.
   * @param transport A transport given by a test; by default one for the configuration.
   */
  constructor(config: InfluxDBConfig, transport?: HttpTransport) {
    this.#config = config;
    this.#http = new HttpClient({ verify: config.tlsVerify, caFile: config.caFile, transport });
  }

  /**
   * Writes lines.
   *
   * @param lines Line protocol lines, without newlines.
   * @returns The answer.
   * @throws {Error} When no answer came (see `classifyInfluxDBError`).
   */
  async write(lines: readonly string[]): Promise<HttpResponse> {
    return await this.#http.send(await writeRequest(this.#config, lines));
  }

  /**
   * Asks `GET /ping`.
   *
   * @returns The answer.
   * @throws {Error} When no answer came.
   */
  async ping(): Promise<HttpResponse> {
    return await this.#http.send(pingRequest(this.#config));
  }

  /**
   * Sends an InfluxQL statement (API 1).
   *
   * @param statement The statement, e.g. `SHOW DATABASES`.
   * @returns The answer.
   * @throws {Error} When no answer came.
   */
  async query(statement: string): Promise<HttpResponse> {
    return await this.#http.send(queryRequest(this.#config, statement));
  }

  /** Releases connections. */
  close(): void {
    this.#http.close();
  }
}
