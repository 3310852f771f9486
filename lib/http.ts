/**
 * HTTP for the sinks that speak it with plain `fetch` (VictoriaMetrics,
 * InfluxDB): requests and answers, the transport that sends them, gzip,
 * `Retry-After`, Basic authentication, and the classification of a request
 * that got no answer.
 *
 * TLS: `fetch` verifies certificates, against the system CAs plus the
 * sink's CA file (`Deno.createHttpClient({ caCerts })`). Deno has no
 * per-client switch to turn verification off (`--unsafely-ignore-certificate-errors`
 * is process-wide), so an unverified https URL is sent with `node:https` and
 * `rejectUnauthorized: false` instead.
 *
 * @module
 */

import https from "node:https";

/** A request, ready to send. */
export interface HttpRequest {
  /** The method. */
  method: "GET" | "POST";
  /** The full URL (no credentials in it). */
  url: string;
  /** Request headers. */
  headers: Record<string, string>;
  /** The body, already compressed when `Content-Encoding` says so. */
  body?: Uint8Array;
  /** Give up after this many milliseconds. */
  timeoutMs: number;
}

/** What the server answered. */
export interface HttpResponse {
  /** HTTP status. */
  status: number;
  /** Response headers. */
  headers: Headers;
  /** The body as text. */
  body: string;
}

/** Sends requests; one per sink, closed with it. */
export interface HttpTransport {
  /**
   * Sends one request and reads the whole answer.
   *
   * @param request The request.
   * @returns The answer, whatever its status.
   * @throws {Error} On network failures and timeouts (a `TimeoutError`).
   */
  send(request: HttpRequest): Promise<HttpResponse>;
  /** Releases connections. */
  close(): void;
}

const encoder = new TextEncoder();

/**
 * The value of a Basic `Authorization` header (RFC 7617, UTF-8).
 *
 * @param username The user.
 * @param password The password.
 * @returns `Basic base64(user:password)`.
 */
export function basicAuthorization(username: string, password: string): string {
  const bytes = encoder.encode(`${username}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/**
 * Compresses bytes with gzip (`CompressionStream`).
 *
 * @param data The bytes.
 * @returns The gzip stream's bytes.
 */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return await new Response(stream).bytes();
}

/** The longest server text kept in an error message. */
const MAX_BODY_IN_MESSAGE = 500;

/** What an answer or a failure should lead to. */
export interface HttpOutcome {
  /** `ok`: written; `split`: halves may pass; `retry`: send the same again later. */
  action: "ok" | "retry" | "split";
  /** Bounded metric label: `http_N`, `network`, `timeout`, `tls` or `unknown`; `""` when ok. */
  errorType: string;
  /** The HTTP status, when there was an answer. */
  status?: number;
  /** How long the server asked to wait (`Retry-After`), in milliseconds. */
  retryAfterMs?: number;
  /** What an operator can do about it, when that is known. */
  hint?: string;
}

/**
 * Reads a `Retry-After` header (RFC 9110 10.2.3): delay seconds or an HTTP-date.
 *
 * @param value The header, if any.
 * @param now The current time in milliseconds.
 * @returns Milliseconds to wait (>= 0), or `undefined` when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, date - now);
}

/** Node-style codes of network failures (from `node:https`). */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
]);

/**
 * Classifies a request that got no answer. Every such failure is retried;
 * the category tells a timeout, a TLS failure (a certificate that does not
 * verify: the operator must act) and other network errors apart.
 *
 * @param error What the transport threw.
 * @param tlsHint Which settings to check after a TLS failure, e.g. `check VM_CA_FILE`.
 * @returns `retry` with `timeout`, `tls`, `network` or `unknown`.
 */
export function classifyTransportError(error: unknown, tlsHint: string): HttpOutcome {
  const chain: string[] = [];
  let code: string | undefined;
  let name: string | undefined;
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 4; depth++) {
    if (e instanceof Error || (typeof e === "object" && e !== null)) {
      const props = e as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
      if (typeof props.message === "string") chain.push(props.message);
      if (typeof props.code === "string") code ??= props.code;
      if (typeof props.name === "string" && name === undefined) name = props.name;
      e = props.cause;
    } else {
      chain.push(String(e));
      break;
    }
  }
  const text = chain.join(": ");
  if (name === "TimeoutError" || code === "ETIMEDOUT" || /timed? ?out/i.test(text)) {
    return { action: "retry", errorType: "timeout" };
  }
  if (
    /certificate|UnknownIssuer|self[- ]signed|handshake/i.test(text) ||
    (code !== undefined && /^(CERT_|ERR_TLS|DEPTH_ZERO|UNABLE_TO_VERIFY|SELF_SIGNED)/.test(code))
  ) {
    return {
      action: "retry",
      errorType: "tls",
      hint: `the TLS connection failed; ${tlsHint}`,
    };
  }
  if (
    (code !== undefined && NETWORK_CODES.has(code)) || error instanceof TypeError ||
    /connect|connection|network|socket|refused|reset|EPIPE|dns|lookup/i.test(text)
  ) {
    return { action: "retry", errorType: "network" };
  }
  return { action: "retry", errorType: "unknown" };
}

/**
 * The server's text for a message: one line, bounded.
 *
 * @param body The response body.
 * @returns At most 500 characters, whitespace collapsed.
 */
export function bodyExcerpt(body: string): string {
  const text = body.replace(/\s+/g, " ").trim();
  return text.length > MAX_BODY_IN_MESSAGE ? `${text.slice(0, MAX_BODY_IN_MESSAGE)}...` : text;
}

/**
 * The transport for a sink: `fetch` (with the sink's CA file added to the
 * trusted CAs), or `node:https` without verification for an https URL whose
 * verification is turned off.
 *
 * @param config The base URL and whether certificates are verified.
 * @param caPem The contents of the sink's CA file, if set.
 * @returns The transport.
 */
export function createTransport(
  config: { url: string; tlsVerify: boolean },
  caPem?: string,
): HttpTransport {
  if (config.url.startsWith("https:") && !config.tlsVerify) return insecureTransport(caPem);
  return fetchTransport(caPem === undefined ? undefined : [caPem]);
}

/**
 * Sends with `fetch`. Redirects are not followed: a POST redirected with 301
 * or 302 would become a GET without its body.
 *
 * @param caCerts Extra trusted CA certificates (PEM).
 * @returns The transport.
 */
export function fetchTransport(caCerts?: string[]): HttpTransport {
  const client = caCerts === undefined ? undefined : Deno.createHttpClient({ caCerts });
  return {
    async send(request: HttpRequest): Promise<HttpResponse> {
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body as Uint8Array<ArrayBuffer> | undefined,
        redirect: "manual",
        signal: AbortSignal.timeout(request.timeoutMs),
        client,
      });
      const body = await response.text();
      return { status: response.status, headers: response.headers, body };
    },
    close(): void {
      client?.close();
    },
  };
}

/**
 * Sends with `node:https` and certificate verification off.
 *
 * @param caPem Extra trusted CA certificates (PEM); unused without verification.
 * @returns The transport.
 */
export function insecureTransport(caPem?: string): HttpTransport {
  const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false, ca: caPem });
  return {
    send(request: HttpRequest): Promise<HttpResponse> {
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { ...request.headers };
        if (request.body !== undefined) headers["Content-Length"] = String(request.body.length);
        const req = https.request(
          request.url,
          { method: request.method, headers, agent },
          (res) => {
            const chunks: Uint8Array[] = [];
            res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
            res.on("error", reject);
            res.on("end", () => {
              clearTimeout(timer);
              const out = new Headers();
              for (const [name, value] of Object.entries(res.headers)) {
                if (value !== undefined) {
                  out.set(name, Array.isArray(value) ? value.join(", ") : value);
                }
              }
              const body = new TextDecoder().decode(concat(chunks));
              resolve({ status: res.statusCode ?? 0, headers: out, body });
            });
          },
        );
        const timer = setTimeout(() => {
          const error = new Error(`Request timed out after ${request.timeoutMs} ms`);
          error.name = "TimeoutError";
          req.destroy(error);
        }, request.timeoutMs);
        req.on("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
        req.end(request.body);
      });
    },
    close(): void {
      agent.destroy();
    },
  };
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Reads a sink's base URL: http(s), optionally with a path prefix and with
 * `user:password@` credentials, which are taken out. Pure: the problem is
 * returned, not recorded.
 *
 * @param text The URL as the user wrote it.
 * @param queryHint Said when the URL has a query or fragment, e.g. where the path goes.
 * @returns The base URL without credentials and the credentials, or the problem.
 */
export function parseBaseUrl(
  text: string,
  queryHint?: string,
):
  | { ok: true; url: string; secure: boolean; username?: string; password?: string }
  | { ok: false; message: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: "must be an http:// or https:// URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { ok: false, message: "must be an http:// or https:// URL" };
  }
  if (url.search !== "" || url.hash !== "") {
    return {
      ok: false,
      message: `must not contain a query or fragment${queryHint ? ` (${queryHint})` : ""}`,
    };
  }
  const username = url.username === "" ? undefined : percentDecoded(url.username);
  const password = url.password === "" ? undefined : percentDecoded(url.password);
  url.username = "";
  url.password = "";
  const base = url.href.replace(/\/+$/, "");
  return { ok: true, url: base, secure: url.protocol === "https:", username, password };
}

/** Percent-decodes URL credentials; a malformed escape is kept as written. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
