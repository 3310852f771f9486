/**
 * What ClickHouse's refusals mean, read into the sink contract's verdict
 * (`lib/sink.ts`). Pure: the tests feed it errors shaped as the client
 * reported them against the real server.
 *
 * `@clickhouse/client` rejects on every answer that is not 2xx, so the
 * server's answer arrives as a thrown error (recorded against ClickHouse
 * 18.16 with `@clickhouse/client` 1.23.1 under Deno):
 * - A server exception is a plain `Error` whose message is the server's text,
 *   `Code: 117, e.displayText() = DB::Exception: Unknown field found while
 *   parsing JSONEachRow format: zzz: (at row 1)\n, e.what() = DB::Exception\n`.
 *   Newer servers append `(TYPE_NAME) (version ...)`; the client then throws
 *   a `ClickHouseError` with `code: "117"` and `type: "INCORRECT_DATA"` and
 *   the message without the `Code:` prefix.
 * - A refused connection is an `Error` with `code: "ECONNREFUSED"`, `errno`,
 *   `syscall: "connect"`, `address`, `port`.
 * - A request timeout is `Error("Timeout error.")`.
 * - An answer that is not ClickHouse's (a proxy or load balancer in front of
 *   it answering 502 or 503 while ClickHouse is away) is an `Error` whose
 *   message is the proxy's body, often empty.
 * The HTTP status is not kept on the error; the sink asks for it again
 * ({@link answerError}) when the error is none of the above.
 *
 * @module
 */

import { classifyTransportError } from "../../lib/http.ts";
import { errorLine } from "../../lib/log.ts";
import type { FailureVerdict, RetryVerdict, SplitVerdict } from "../../lib/sink.ts";

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

/**
 * Classifies an error from `@clickhouse/client`. Data errors (a ClickHouse
 * exception code in {@link DATA_ERROR_CODES}) split the batch so the bad row
 * is isolated; every other exception code (memory limit 241, too many parts
 * 252, read-only tables, authentication 192/193/516, ...) is retried
 * unchanged, and so is a request that got no answer (see
 * `classifyTransportError` in lib/http.ts) and an HTTP status a proxy in
 * front of ClickHouse answered, except 413 (the body is too large: halves
 * may pass).
 *
 * @param error Anything the client threw.
 * @returns `split` or `retry`, with the metric category (`code_N`, `timeout`,
 *   `tls`, `network`, `http_N` or `unknown`) and the code or status.
 */
export function classifyClickHouseError(error: unknown): RetryVerdict | SplitVerdict {
  const code = exceptionCode(error);
  if (code !== undefined) {
    return {
      action: DATA_ERROR_CODES.has(code) ? "split" : "retry",
      errorType: `code_${code}`,
      status: code,
    };
  }
  const transport = classifyTransportError(
    error,
    "check CLICKHOUSE_CA_FILE or CLICKHOUSE_TLS_VERIFY",
  );
  if (transport.errorType !== "unknown") return transport;
  const props = (typeof error === "object" && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const status = typeof props.status === "number"
    ? props.status
    : typeof props.statusCode === "number"
    ? props.statusCode
    : undefined;
  if (status !== undefined) {
    return { action: status === 413 ? "split" : "retry", errorType: `http_${status}`, status };
  }
  return transport;
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

/**
 * The error of an answer that was not a ClickHouse exception, with its HTTP
 * status, so that it is classified by the status (`http_502` waits like an
 * outage, `http_401` from an authenticating proxy does not) and says what
 * came back.
 *
 * @param status The HTTP status of the same request, asked again.
 * @param error What the client threw (its message is the answer's body).
 * @returns An error with `status`, whose message names the status and the body.
 */
export function answerError(status: number, error: unknown): Error & { status: number } {
  const body = errorLine(error);
  return Object.assign(
    new Error(
      `HTTP ${status}${body === "" ? " with an empty body" : `: ${body}`} ` +
        "(not an answer of ClickHouse: a proxy or load balancer in front of it?)",
      { cause: error },
    ),
    { status },
  );
}

/**
 * A one-line description of a failure for an error message: the client's
 * error (the server's text for an exception) and what to do about it;
 * never empty, even for an answer without a body.
 *
 * @param error What the client threw.
 * @param verdict How it was classified.
 * @returns E.g. `Code: 117, e.displayText() = ...` or
 *   `invalid peer certificate: UnknownIssuer; the TLS connection failed; check ...`.
 */
export function failureText(error: unknown, verdict: FailureVerdict): string {
  const text = errorLine(error) ||
    (verdict.status === undefined
      ? "an error answer with an empty body (not an answer of ClickHouse: " +
        "a proxy or load balancer in front of it?)"
      : `HTTP ${verdict.status} with an empty body`);
  return `${text}${verdict.hint ? `; ${verdict.hint}` : ""}`;
}
