/**
 * Error classification, on error objects shaped exactly as `@clickhouse/client`
 * 1.23.1 under Deno reported them against the real ClickHouse 18.16
 * (see the module doc of sinks/clickhouse/classify.ts), and as the client
 * parses the message format of newer servers.
 *
 * @module
 */

import { parseError } from "@clickhouse/client";
import { healsByItself } from "../../../lib/sink.ts";
import {
  answerError,
  classifyClickHouseError,
  exceptionCode,
  failureText,
} from "../../../sinks/clickhouse/classify.ts";
import { assertEquals, assertStrictEquals } from "../../_assert.ts";

/** A server exception as the client rejects with it for ClickHouse 18.16: a plain Error. */
function server18(text: string): Error {
  return new Error(text);
}

/** A refused connection as the client rejects with it (Node-style system error). */
function refused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    errno: -111,
    code: "ECONNREFUSED",
    syscall: "connect",
    address: "127.0.0.1",
    port: 1,
  });
}

Deno.test("classifyClickHouseError() splits on 18.16 data errors (Code 117, 27, 53, 26, 69, 72, 131, 376)", () => {
  const cases: Array<[string, number]> = [
    [
      "Code: 117, e.displayText() = DB::Exception: Unknown field found while parsing JSONEachRow format: zzz: (at row 1)\n, e.what() = DB::Exception\n",
      117,
    ],
    [
      'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected " before: abc"}\\n: (while read the value of key f): (at row 1)\n, e.what() = DB::Exception\n',
      27,
    ],
    [
      "Code: 53, e.displayText() = DB::Exception: Type mismatch in IN or VALUES section. Expected: String. Got: Array, e.what() = DB::Exception\n",
      53,
    ],
    [
      "Code: 26, e.displayText() = DB::Exception: Cannot parse JSON string: expected opening quote: (while read the value of key s): (at row 1)\n, e.what() = DB::Exception\n",
      26,
    ],
    [
      "Code: 69, e.displayText() = DB::Exception: Decimal value is too small: (while read the value of key dec), e.what() = DB::Exception\n",
      69,
    ],
    [
      "Code: 72, e.displayText() = DB::Exception: Unsigned type must not contain '-' symbol: (while read the value of key u8): (at row 1)\n, e.what() = DB::Exception\n",
      72,
    ],
    [
      "Code: 131, e.displayText() = DB::Exception: Too large value for FixedString(2): (while read the value of key fs): (at row 1)\n, e.what() = DB::Exception\n",
      131,
    ],
    [
      'Code: 376, e.displayText() = DB::Exception: Cannot parse uuid zz"}\n: (while read the value of key uu): (at row 1)\n, e.what() = DB::Exception\n',
      376,
    ],
  ];
  for (const [message, code] of cases) {
    assertEquals(classifyClickHouseError(server18(message)), {
      action: "split",
      errorType: `code_${code}`,
      status: code,
    }, message);
  }
});

Deno.test("classifyClickHouseError() reads the code the client parses from newer servers' messages", () => {
  const error = parseError(
    "Code: 117. DB::Exception: Unknown field found while parsing JSONEachRow format: zzz: (at row 1)\n" +
      ": While executing ParallelParsingBlockInputFormat. (INCORRECT_DATA) (version 23.8.2.7 (official build))\n",
  );
  assertStrictEquals((error as { code?: unknown }).code, "117");
  assertEquals(classifyClickHouseError(error), {
    action: "split",
    errorType: "code_117",
    status: 117,
  });
  const memory = parseError(
    "Code: 241. DB::Exception: Memory limit (total) exceeded: would use 3.50 GiB, maximum: 3.46 GiB. " +
      "(MEMORY_LIMIT_EXCEEDED) (version 23.8.2.7 (official build))",
  );
  assertEquals(classifyClickHouseError(memory), {
    action: "retry",
    errorType: "code_241",
    status: 241,
  });
});

Deno.test("classifyClickHouseError() retries server conditions that pass with time", () => {
  const cases: Array<[string, number]> = [
    [
      "Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded, e.what() = DB::Exception",
      241,
    ],
    [
      "Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts., e.what() = DB::Exception",
      252,
    ],
    [
      "Code: 192, e.displayText() = DB::Exception: Unknown user nobody, e.what() = DB::Exception\n",
      192,
    ],
    [
      "Code: 193, e.displayText() = DB::Exception: Wrong password for user default, e.what() = DB::Exception",
      193,
    ],
    [
      "Code: 516, e.displayText() = DB::Exception: default: Authentication failed, e.what() = DB::Exception",
      516,
    ],
    [
      "Code: 159, e.displayText() = DB::Exception: Timeout exceeded: elapsed 5.0 seconds, e.what() = DB::Exception",
      159,
    ],
    [
      "Code: 164, e.displayText() = DB::Exception: Cannot execute query in readonly mode, e.what() = DB::Exception",
      164,
    ],
    [
      "Code: 242, e.displayText() = DB::Exception: Table is in readonly mode, e.what() = DB::Exception",
      242,
    ],
    [
      "Code: 81, e.displayText() = DB::Exception: Database nosuchdb doesn't exist, e.what() = DB::Exception\n",
      81,
    ],
  ];
  for (const [message, code] of cases) {
    assertEquals(classifyClickHouseError(server18(message)), {
      action: "retry",
      errorType: `code_${code}`,
      status: code,
    }, message);
  }
});

Deno.test("classifyClickHouseError() retries network failures and timeouts", () => {
  assertEquals(classifyClickHouseError(refused()), { action: "retry", errorType: "network" });
  assertEquals(
    classifyClickHouseError(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })),
    { action: "retry", errorType: "network" },
  );
  assertEquals(classifyClickHouseError(new Error("Timeout error.")), {
    action: "retry",
    errorType: "timeout",
  });
  assertEquals(
    classifyClickHouseError(
      Object.assign(new Error("connect ETIMEDOUT 10.0.0.1:8123"), { code: "ETIMEDOUT" }),
    ),
    { action: "retry", errorType: "timeout" },
  );
});

Deno.test("classifyClickHouseError() retries a proxy's error page and unknown throws", () => {
  // A 502 page from a proxy: the client keeps only the body text.
  assertEquals(
    classifyClickHouseError(new Error("<html><body><h1>502 Bad Gateway</h1></body></html>")),
    { action: "retry", errorType: "unknown" },
  );
  assertEquals(classifyClickHouseError("boom"), { action: "retry", errorType: "unknown" });
  assertEquals(classifyClickHouseError(undefined), { action: "retry", errorType: "unknown" });
  assertEquals(classifyClickHouseError({ status: 503 }), {
    action: "retry",
    errorType: "http_503",
    status: 503,
  });
  assertEquals(classifyClickHouseError({ status: 413 }), {
    action: "split",
    errorType: "http_413",
    status: 413,
  });
});

Deno.test("exceptionCode() reads the code property or the Code: prefix only", () => {
  assertStrictEquals(exceptionCode(server18("Code: 27, e.displayText() = x")), 27);
  assertStrictEquals(exceptionCode({ code: "117", message: "Unknown field" }), 117);
  assertStrictEquals(exceptionCode(refused()), undefined);
  assertStrictEquals(exceptionCode(new Error("value contains Code: 27, but later")), undefined);
});

Deno.test("classifyClickHouseError() retries a certificate that does not verify, naming CLICKHOUSE_CA_FILE", () => {
  const error = Object.assign(new Error("self-signed certificate in certificate chain"), {
    code: "SELF_SIGNED_CERT_IN_CHAIN",
  });
  const verdict = classifyClickHouseError(error);
  assertEquals(verdict, {
    action: "retry",
    errorType: "tls",
    hint: "the TLS connection failed; check CLICKHOUSE_CA_FILE or CLICKHOUSE_TLS_VERIFY",
  });
  assertStrictEquals(
    failureText(error, verdict),
    "self-signed certificate in certificate chain; the TLS connection failed; " +
      "check CLICKHOUSE_CA_FILE or CLICKHOUSE_TLS_VERIFY",
  );
  assertStrictEquals(
    failureText(server18("Code: 27, e.displayText() =\n x"), {
      action: "split",
      errorType: "code_27",
    }),
    "Code: 27, e.displayText() = x",
  );
});

Deno.test("failureText() never leaves the reason empty: an answer without a body says what came", () => {
  const empty = new Error("");
  assertEquals(
    failureText(empty, classifyClickHouseError(empty)),
    "an error answer with an empty body (not an answer of ClickHouse: " +
      "a proxy or load balancer in front of it?)",
  );
});

Deno.test("answerError() carries the status of a proxy's answer: 502 and 503 are waited for, 401 is not", () => {
  const bad = answerError(502, new Error(""));
  assertEquals(
    bad.message,
    "HTTP 502 with an empty body (not an answer of ClickHouse: a proxy or load balancer in front of it?)",
  );
  assertEquals(classifyClickHouseError(bad), {
    action: "retry",
    errorType: "http_502",
    status: 502,
  });
  assertEquals(classifyClickHouseError(answerError(503, new Error(""))).errorType, "http_503");
  const page = answerError(401, new Error("<html>Authorization Required</html>"));
  assertEquals(
    failureText(page, classifyClickHouseError(page)),
    "HTTP 401: <html>Authorization Required</html> (not an answer of ClickHouse: a proxy or " +
      "load balancer in front of it?)",
  );
  assertEquals(healsByItself(classifyClickHouseError(page)), false);
});
