/**
 * HTTP to the Elasticsearch nodes: one request function over `fetch`, the
 * rotation over several nodes with failed ones skipped for a while, the
 * `Authorization` header, and the classification of failed requests.
 *
 * `fetch` in Deno 2 can add CA certificates (`Deno.createHttpClient`) but
 * cannot turn certificate verification off, so `ELASTIC_VERIFY_SSL=NO` (kept
 * from the original script) goes through `node:https` with
 * `rejectUnauthorized: false` instead; both are built into Deno.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import https from "node:https";

/** An HTTP request to one node. */
export interface HttpRequest {
  /** `GET`, `HEAD`, `PUT`, `POST`. */
  method: string;
  /** The full URL. */
  url: string;
  /** Request headers. */
  headers: Record<string, string>;
  /** The body, if any. */
  body?: string;
  /** Abort after this many milliseconds. */
  timeoutMs: number;
}

/** A node's answer, its body read. */
export interface HttpAnswer {
  /** HTTP status. */
  status: number;
  /** The body as text (`""` for `HEAD`). */
  text: string;
}

/** Sends one request; rejects on network errors and timeouts, never on an HTTP status. */
export type HttpSend = (request: HttpRequest) => Promise<HttpAnswer>;

/** A transport: the send function and how to release its connections. */
export interface Transport {
  /** Sends one request. */
  send: HttpSend;
  /** Releases connections. */
  close(): void;
}

/**
 * Builds the transport for a TLS setup.
 *
 * @param options Whether to verify certificates, and extra CA certificates (PEM).
 * @returns `fetch` (with a client holding the CA when given), or `node:https`
 *   without verification when `verify` is false.
 */
export function createTransport(options: { verify: boolean; caPem?: string }): Transport {
  if (!options.verify) return insecureTransport(options.caPem);
  const client = options.caPem === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: [options.caPem] });
  return {
    send: (request) => fetchSend(request, client),
    close: () => client?.close(),
  };
}

async function fetchSend(request: HttpRequest, client?: Deno.HttpClient): Promise<HttpAnswer> {
  const response = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    signal: AbortSignal.timeout(request.timeoutMs),
    client,
  });
  return { status: response.status, text: await response.text() };
}

/** `node:https` without certificate verification (and plain `fetch` for `http://` nodes). */
function insecureTransport(caPem?: string): Transport {
  const agent = new https.Agent({
    keepAlive: true,
    rejectUnauthorized: false,
    ca: caPem === undefined ? undefined : Buffer.from(caPem),
  });
  const send: HttpSend = (request) => {
    if (!request.url.startsWith("https:")) return fetchSend(request);
    return new Promise((resolve, reject) => {
      const req = https.request(request.url, {
        method: request.method,
        headers: request.body === undefined
          ? request.headers
          : { ...request.headers, "content-length": String(Buffer.byteLength(request.body)) },
        agent,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", fail);
      });
      const timer = setTimeout(
        () =>
          req.destroy(
            new DOMException(`Timed out after ${request.timeoutMs} ms`, "TimeoutError"),
          ),
        request.timeoutMs,
      );
      function fail(error: unknown) {
        clearTimeout(timer);
        reject(error);
      }
      req.on("error", fail);
      req.end(request.body);
    });
  };
  return { send, close: () => agent.destroy() };
}

/**
 * Classifies a rejected request (never an HTTP status, see {@link HttpSend}).
 *
 * @param error What `fetch` or `node:https` threw.
 * @returns `timeout`, `tls` (a certificate that does not verify: retrying
 *   cannot help until someone fixes it) or `network`.
 */
export function classifyRequestError(error: unknown): "timeout" | "tls" | "network" {
  const text = chainText(error);
  if (
    (error instanceof DOMException && error.name === "TimeoutError") ||
    /timed? ?out/i.test(text)
  ) {
    return "timeout";
  }
  if (/certificate|UnknownIssuer|CERT_|self.signed|SSL routines|handshake/i.test(text)) {
    return "tls";
  }
  return "network";
}

function chainText(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    if (e instanceof Error || e instanceof DOMException) {
      parts.push(e.message);
      const code = (e as { code?: unknown }).code;
      if (typeof code === "string") parts.push(code);
      e = (e as { cause?: unknown }).cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(": ");
}

/**
 * The `Authorization` header of a configuration, if any.
 *
 * @param auth Basic credentials or an API key.
 * @returns `Basic ...`, `ApiKey ...`, or `undefined`.
 */
export function authorizationHeader(
  auth: { username?: string; password?: string; apiKey?: string },
): string | undefined {
  if (auth.apiKey !== undefined) {
    // Elasticsearch hands out the key as id and secret, and as their base64
    // "encoded" form; base64 never holds ":", so id:secret is encoded here.
    return `ApiKey ${auth.apiKey.includes(":") ? base64(auth.apiKey) : auth.apiKey}`;
  }
  if (auth.username !== undefined) {
    return `Basic ${base64(`${auth.username}:${auth.password ?? ""}`)}`;
  }
  return undefined;
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/**
 * The nodes, in the order to try them: round-robin over the healthy ones,
 * then those that failed recently (soonest back first), so that a write is
 * only refused when every node failed.
 */
export class HostPool {
  readonly #hosts: readonly string[];
  readonly #cooldownMs: number;
  readonly #clock: () => number;
  readonly #failedUntil = new Map<string, number>();
  #next = 0;

  /**
   * @param hosts Base URLs of the nodes.
   * @param options How long a failed node is skipped, and the clock (injected by tests).
   */
  constructor(
    hosts: readonly string[],
    options: { cooldownMs?: number; clock?: () => number } = {},
  ) {
    if (hosts.length === 0) throw new RangeError("Cannot use Elasticsearch: no hosts");
    this.#hosts = hosts;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#clock = options.clock ?? Date.now;
  }

  /** How long a failed node is skipped, in milliseconds. */
  get cooldownMs(): number {
    return this.#cooldownMs;
  }

  /**
   * The nodes to try for the next request, each once; advances the rotation.
   *
   * @returns Healthy nodes from the rotation's position, then the failed ones.
   */
  order(): string[] {
    const now = this.#clock();
    const start = this.#next;
    this.#next = (this.#next + 1) % this.#hosts.length;
    const rotated = [...this.#hosts.slice(start), ...this.#hosts.slice(0, start)];
    const healthy = rotated.filter((h) => (this.#failedUntil.get(h) ?? 0) <= now);
    const failed = rotated.filter((h) => (this.#failedUntil.get(h) ?? 0) > now)
      .sort((a, b) => this.#failedUntil.get(a)! - this.#failedUntil.get(b)!);
    return [...healthy, ...failed];
  }

  /**
   * Marks a node failed: it is tried last until the cooldown passed.
   *
   * @param host The node.
   * @returns `true` when it was healthy until now.
   */
  markFailed(host: string): boolean {
    const wasHealthy = !this.#failedUntil.has(host);
    this.#failedUntil.set(host, this.#clock() + this.#cooldownMs);
    return wasHealthy;
  }

  /**
   * Marks a node healthy after it answered.
   *
   * @param host The node.
   * @returns `true` when it had failed before.
   */
  markOk(host: string): boolean {
    return this.#failedUntil.delete(host);
  }
}
