/**
 * Talking to ClickHouse over HTTP with `@clickhouse/client`: the client's
 * options, the deduplication token of an insert, and the classification of
 * a failed insert into "retry" or "split".
 *
 * How the client reports failures (recorded against ClickHouse 18.16 with
 * `@clickhouse/client` 1.23.1 under Deno):
 * - A server exception is a plain `Error` whose message is the server's text,
 *   `Code: 117, e.displayText() = DB::Exception: Unknown field found while
 *   parsing JSONEachRow format: zzz: (at row 1)\n, e.what() = DB::Exception\n`.
 *   Newer servers append `(TYPE_NAME) (version ...)`; the client then throws
 *   a `ClickHouseError` with `code: "117"` and `type: "INCORRECT_DATA"` and
 *   the message without the `Code:` prefix.
 * - A refused connection is an `Error` with `code: "ECONNREFUSED"`, `errno`,
 *   `syscall: "connect"`, `address`, `port`.
 * - A request timeout is `Error("Timeout error.")`.
 * The HTTP status is not kept on the error.
 *
 * @module
 */

import type { ClickHouseClientConfigOptions, Logger as ClientLogger } from "@clickhouse/client";
import { Buffer } from "node:buffer";
import https from "node:https";
import type { Logger } from "../../lib/log.ts";
import type { PreparedRow } from "../../lib/record.ts";
import type { ClickHouseConfig } from "./config.ts";

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
): ClickHouseClientConfigOptions {
  const options: ClickHouseClientConfigOptions = {
    url: config.url,
    pathname: config.pathname === "" ? undefined : config.pathname,
    username: config.username,
    password: config.password,
    // No `database`: the client would send it with every request, and the
    // server refuses even `SELECT version()` while that database does not
    // exist yet (Code 81). Every statement names `db`.`table` instead.
    request_timeout: config.requestTimeoutMs,
    compression: { request: config.compression, response: false },
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
 * The `insert_deduplication_token` of a batch: its first and last origins
 * and its size. A retried insert that did land carries the same token and is
 * dropped by the server; a bisected half has other ends, so another token.
 *
 * @param rows The batch.
 * @returns E.g. `sluice:flows/0/1234/0-flows/3/99/2:500`, or `undefined` for no rows.
 */
export function deduplicationToken(rows: readonly PreparedRow[]): string | undefined {
  const first = rows[0], last = rows[rows.length - 1];
  if (first === undefined || last === undefined) return undefined;
  const o = (r: PreparedRow) =>
    `${r.origin.topic}/${r.origin.partition}/${r.origin.offset}/${r.origin.index}`;
  return `sluice:${o(first)}-${o(last)}:${rows.length}`;
}

/**
 * ClickHouse exception codes that mean "the data is bad": splitting the batch
 * isolates the row, retrying it unchanged cannot help. Names and numbers from
 * https://github.com/ClickHouse/ClickHouse/blob/master/src/Common/ErrorCodes.cpp
 */
export const DATA_ERROR_CODES: ReadonlySet<number> = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND (Decimal with too many digits, on 18.16)
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE (FixedString overflow)
  190, // SIZES_OF_ARRAYS_DOESNT_MATCH
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  376, // CANNOT_PARSE_UUID
  395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
  407, // DECIMAL_OVERFLOW
  441, // CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
  467, // CANNOT_PARSE_BOOL
  469, // VIOLATED_CONSTRAINT
  676, // CANNOT_PARSE_IPV4
  677, // CANNOT_PARSE_IPV6
  691, // UNKNOWN_ELEMENT_OF_ENUM
]);

/** Node-style codes of network failures worth retrying. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
  "UND_ERR_SOCKET",
]);

/** What a failed write should lead to. */
export interface ClickHouseErrorClass {
  /** `split` for data errors, `retry` for everything else. */
  action: "retry" | "split";
  /** Bounded metric label: `code_N`, `network`, `timeout`, `http_N` or `unknown`. */
  errorType: string;
  /** The ClickHouse exception code or HTTP status, when known. */
  status?: number;
}

/**
 * Classifies an error from `@clickhouse/client`. Data errors (a ClickHouse
 * exception code in {@link DATA_ERROR_CODES}) split the batch so the bad row
 * is isolated; everything else (network, timeouts, memory limit 241, too
 * many parts 252, read-only tables, authentication 192/193/516, server
 * errors) is retried unchanged.
 *
 * @param error Anything the client threw.
 * @returns The action, the metric category and the code.
 */
export function classifyClickHouseError(error: unknown): ClickHouseErrorClass {
  const code = exceptionCode(error);
  if (code !== undefined) {
    return {
      action: DATA_ERROR_CODES.has(code) ? "split" : "retry",
      errorType: `code_${code}`,
      status: code,
    };
  }
  const props = (typeof error === "object" && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const message = typeof props.message === "string" ? props.message : String(error);
  const sysCode = typeof props.code === "string" ? props.code : undefined;
  if (sysCode === "ETIMEDOUT" || /^Timeout error/i.test(message) || /timed? ?out/i.test(message)) {
    return { action: "retry", errorType: "timeout" };
  }
  if (sysCode !== undefined && NETWORK_CODES.has(sysCode)) {
    return { action: "retry", errorType: "network" };
  }
  if (/socket hang up|ECONNRESET|ECONNREFUSED|network|EPIPE/i.test(message)) {
    return { action: "retry", errorType: "network" };
  }
  const status = typeof props.status === "number"
    ? props.status
    : typeof props.statusCode === "number"
    ? props.statusCode
    : undefined;
  if (status !== undefined) {
    // 413 from a proxy in front of ClickHouse: the body is too large, halves may pass.
    return { action: status === 413 ? "split" : "retry", errorType: `http_${status}`, status };
  }
  return { action: "retry", errorType: "unknown" };
}

/**
 * The ClickHouse exception code of an error: the `code` property when it is
 * numeric (newer servers, parsed by the client), else `Code: N` at the start
 * of the message (18.16 style, which the client leaves unparsed).
 *
 * @param error Anything thrown.
 * @returns The code, or `undefined` when the error is not a server exception.
 */
export function exceptionCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const props = error as Record<string, unknown>;
  if (typeof props.code === "string" && /^\d+$/.test(props.code)) return Number(props.code);
  if (typeof props.code === "number" && Number.isInteger(props.code)) return props.code;
  if (typeof props.message === "string") {
    const m = /^\s*Code: (\d+)[.,]/.exec(props.message);
    if (m) return Number(m[1]);
  }
  return undefined;
}
