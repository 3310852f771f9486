/**
 * The VictoriaMetrics sink's I/O: the import and health requests (URL,
 * authentication, gzip) and sending them with `lib/http.ts`. Answers are
 * returned as they came; `classify.ts` reads them.
 *
 * TLS: `VM_CA_FILE` is added to the trusted CAs; `VM_SSL_VERIFY=NO` sends
 * without verification (see `createTransport` in lib/http.ts).
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
import type { VictoriaMetricsConfig } from "./config.ts";

const encoder = new TextEncoder();

/**
 * The value of the `Authorization` header, if any.
 *
 * @param auth The configured credentials.
 * @returns `Basic base64(user:password)`, `Bearer token`, or `undefined`.
 */
export function authorizationHeader(auth: VictoriaMetricsConfig["auth"]): string | undefined {
  if (auth.kind === "bearer") return `Bearer ${auth.token}`;
  if (auth.kind === "basic") return basicAuthorization(auth.username, auth.password);
  return undefined;
}

/**
 * Builds the import request of some lines: one line each, newline
 * terminated, gzip when configured.
 *
 * @param config The resolved configuration.
 * @param lines The JSON lines.
 * @returns The request.
 */
export async function importRequest(
  config: Pick<VictoriaMetricsConfig, "importUrl" | "auth" | "compression" | "requestTimeoutMs">,
  lines: readonly string[],
): Promise<HttpRequest> {
  const headers: Record<string, string> = {
    "Content-Type": "application/x-ndjson",
    "User-Agent": "sluice",
  };
  const authorization = authorizationHeader(config.auth);
  if (authorization !== undefined) headers["Authorization"] = authorization;
  let body: Uint8Array = encoder.encode(lines.length === 0 ? "" : lines.join("\n") + "\n");
  if (config.compression && body.length > 0) {
    body = await gzip(body);
    headers["Content-Encoding"] = "gzip";
  }
  return {
    method: "POST",
    url: config.importUrl,
    headers,
    body,
    timeoutMs: config.requestTimeoutMs,
  };
}

/**
 * Builds the health check request (`GET /health`).
 *
 * @param config The resolved configuration.
 * @returns The request.
 */
export function healthRequest(
  config: Pick<VictoriaMetricsConfig, "healthUrl" | "auth" | "requestTimeoutMs">,
): HttpRequest {
  const headers: Record<string, string> = { "User-Agent": "sluice" };
  const authorization = authorizationHeader(config.auth);
  if (authorization !== undefined) headers["Authorization"] = authorization;
  return { method: "GET", url: config.healthUrl, headers, timeoutMs: config.requestTimeoutMs };
}

/** Sends the sink's requests to one VictoriaMetrics server. */
export class VictoriaMetricsClient {
  readonly #config: VictoriaMetricsConfig;
  readonly #http: HttpClient;

  /**
   * @param config The resolved configuration.
   * @param transport A transport given by a test; by default one for the configuration.
   */
  constructor(config: VictoriaMetricsConfig, transport?: HttpTransport) {
    this.#config = config;
    this.#http = new HttpClient({ verify: config.tlsVerify, caFile: config.caFile, transport });
  }

  /**
   * Imports lines (none: a probe of the path and the credentials).
   *
   * @param lines The JSON lines.
   * @returns The answer.
   * @throws {Error} When no answer came (see `classifyVictoriaMetricsError`).
   */
  async import(lines: readonly string[]): Promise<HttpResponse> {
    return await this.#http.send(await importRequest(this.#config, lines));
  }

  /**
   * Asks `GET /health`.
   *
   * @returns The answer.
   * @throws {Error} When no answer came.
   */
  async health(): Promise<HttpResponse> {
    return await this.#http.send(healthRequest(this.#config));
  }

  /** Releases connections. */
  close(): void {
    this.#http.close();
  }
}
