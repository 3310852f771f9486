/**
 * HTTP for the sinks that speak it with plain `fetch` (Elasticsearch,
 * VictoriaMetrics, InfluxDB): requests and answers, the transport that
 * sends them (and the client that creates it at first use), gzip,
 * `Retry-After`, Basic authentication, the server's text in a message, and
 * the classification of a request that got no answer.
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
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { RetryVerdict } from "./sink.ts";

/** A request, ready to send. */
export interface HttpRequest {
  /** The method. */
  method: "GET" | "HEAD" | "POST" | "PUT";
  /** The full URL (no credentials in it). */
  url: string;
  /** Request headers. */
  headers: Record<string, string>;
  /** The body, already compressed when `Content-Encoding` says so. */
  body?: Uint8Array | string;
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

const gzipAsync = promisify(zlib.gzip);

/**
 * Compresses bytes with gzip at level 1. On flow records that is about 5x
 * smaller at a fifth of the CPU of `CompressionStream` (level 6, 12x):
 * 1.3 against 6.1 µs a 540-byte record.
 *
 * @param data The bytes.
 * @returns The gzip stream's bytes.
 */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  return await gzipAsync(data, { level: 1 });
}

/** The longest server text kept in an error message. */
const MAX_BODY_IN_MESSAGE = 500;

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
export function classifyTransportError(error: unknown, tlsHint: string): RetryVerdict {
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
    /certificate|UnknownIssuer|self[- ]signed|handshake|SSL routines/i.test(text) ||
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
 * The server's text for a message: one line, bounded. When the body is a
 * JSON error answer, `pick` may choose the part that says what went wrong.
 *
 * @param body The response body.
 * @param pick Picks the message out of the parsed JSON body; `""` or
 *   `undefined` when it has none (the whole text is used then).
 * @returns At most 500 characters, whitespace collapsed, `...` when cut.
 */
export function bodyExcerpt(body: string, pick?: (json: unknown) => string | undefined): string {
  let text = body;
  if (pick !== undefined) {
    try {
      text = pick(JSON.parse(body)) || body;
    } catch {
      // Not JSON: a proxy's page or plain text.
    }
  }
  text = text.replace(/\s+/g, " ").trim();
  return text.length > MAX_BODY_IN_MESSAGE ? `${text.slice(0, MAX_BODY_IN_MESSAGE)}...` : text;
}

/**
 * A one-line description of an answer for an error message: the status,
 * the server's text (see {@link bodyExcerpt}), where a redirect points, and
 * what an operator can do about it.
 *
 * @param response The answer.
 * @param hint What to do about it, if known.
 * @param pick Picks the message out of a JSON error answer (see {@link bodyExcerpt}).
 * @returns E.g. `HTTP 401: Unauthorized; check VM_USERNAME/VM_PASSWORD`.
 */
export function statusText(
  response: Pick<HttpResponse, "status" | "headers" | "body">,
  hint?: string,
  pick?: (json: unknown) => string | undefined,
): string {
  const body = bodyExcerpt(response.body, pick);
  const location = response.headers.get("location");
  return `HTTP ${response.status}${body ? `: ${body}` : ""}${
    location === null ? "" : ` (Location: ${location})`
  }${hint ? `; ${hint}` : ""}`;
}

/** How a transport treats TLS. */
export interface TlsOptions {
  /** Verify server certificates (against the system CAs and `caPem`). */
  verify: boolean;
  /** Extra trusted CA certificates (PEM), e.g. the contents of a sink's CA file. */
  caPem?: string;
}

/**
 * The transport for a sink: `fetch` (with the CA added to the trusted
 * ones), or `node:https` without verification when verification is off.
 *
 * @param tls Whether certificates are verified, and the extra CA.
 * @returns The transport.
 */
export function createTransport(tls: TlsOptions): HttpTransport {
  if (!tls.verify) return insecureTransport(tls.caPem);
  return fetchTransport(tls.caPem === undefined ? undefined : [tls.caPem]);
}

/**
 * Sends requests with a transport made at first use: the CA file is read
 * then, so that building a sink does no I/O. A transport given by a test is
 * used as it is and not closed.
 */
export class HttpClient {
  readonly #options: { verify: boolean; caFile?: string };
  readonly #injected: HttpTransport | undefined;
  #transport: HttpTransport | undefined;
  #opening: Promise<HttpTransport> | undefined;

  /**
   * @param options Whether certificates are verified, the CA file, and for tests a transport.
   */
  constructor(options: { verify: boolean; caFile?: string; transport?: HttpTransport }) {
    this.#options = options;
    this.#injected = options.transport;
  }

  /**
   * Sends one request and reads the whole answer.
   *
   * @param request The request.
   * @returns The answer, whatever its status.
   * @throws {Error} On network failures and timeouts (see {@link classifyTransportError}).
   */
  async send(request: HttpRequest): Promise<HttpResponse> {
    return await (await this.#open()).send(request);
  }

  /** Releases connections; the next request opens new ones. */
  close(): void {
    const transport = this.#transport;
    this.#transport = undefined;
    if (transport !== this.#injected) transport?.close();
  }

  #open(): Promise<HttpTransport> {
    if (this.#transport !== undefined) return Promise.resolve(this.#transport);
    if (this.#injected !== undefined) return Promise.resolve(this.#transport = this.#injected);
    // Concurrent first uses (a health check during a write) share one transport.
    this.#opening ??= (async () => {
      const { verify, caFile } = this.#options;
      const caPem = caFile === undefined ? undefined : await Deno.readTextFile(caFile);
      return this.#transport = createTransport({ verify, caPem });
    })().finally(() => this.#opening = undefined);
    return this.#opening;
  }
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
        body: request.body as Uint8Array<ArrayBuffer> | string | undefined,
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
 * Sends with `node:https` and certificate verification off (and with
 * `fetch` to plain http URLs).
 *
 * @param caPem Extra trusted CA certificates (PEM); unused without verification.
 * @returns The transport.
 */
export function insecureTransport(caPem?: string): HttpTransport {
  const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false, ca: caPem });
  const plain = fetchTransport();
  return {
    send(request: HttpRequest): Promise<HttpResponse> {
      // Nothing to verify on plain http (several nodes may mix both).
      if (!request.url.startsWith("https:")) return plain.send(request);
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { ...request.headers };
        const body = typeof request.body === "string" ? encoder.encode(request.body) : request.body;
        if (body !== undefined) headers["Content-Length"] = String(body.length);
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
        req.end(body);
      });
    },
    close(): void {
      agent.destroy();
      plain.close();
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
