/**
 * The Elasticsearch sink's I/O: its requests (bulk, index check and
 * creation, index template, `GET /`), the `Authorization` header, and the
 * rotation over several nodes with failed ones skipped for a while, sent
 * with `lib/http.ts`. Answers are returned as they came; `classify.ts` reads
 * them.
 *
 * A request goes to the first node that answers below 500; a node that gave
 * no answer or a 5xx is tried last for a while (`HostPool`), so that a
 * write is only refused when every node failed.
 *
 * TLS: `ELASTIC_CA_FILE` is added to the trusted CAs; `ELASTIC_VERIFY_SSL=NO`
 * sends without verification (see `createTransport` in lib/http.ts).
 *
 * Composable index templates (`PUT /_index_template/<name>`) exist since
 * Elasticsearch 7.8 and in every OpenSearch; older Elasticsearch 7 releases
 * only have legacy templates (`PUT /_template/<name>`).
 * https://www.elastic.co/guide/en/elasticsearch/reference/current/index-templates.html
 *
 * @module
 */

import {
  basicAuthorization,
  HttpClient,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
} from "../../lib/http.ts";
import { errorLine, type Logger } from "../../lib/log.ts";
import { type ServerInfo, statusText } from "./classify.ts";
import type { ElasticConfig, IndexTemplate } from "./config.ts";

/**
 * The bulk endpoint. `filter_path` keeps only what is read from the answer
 * (a successful item shrinks from ~200 to ~60 bytes).
 */
export const BULK_PATH =
  "/_bulk?filter_path=errors,items.*._index,items.*._id,items.*.status,items.*.error";

/**
 * The `Authorization` header of a configuration, if any.
 *
 * @param auth Basic credentials or an API key.
 * @returns `Basic ...`, `ApiKey ...`, or `undefined`.
 */
export function authorizationHeader(
  auth: Pick<ElasticConfig, "username" | "password" | "apiKey">,
): string | undefined {
  if (auth.apiKey !== undefined) {
    // Elasticsearch hands out the key as id and secret, and as the base64 of
    // `id:secret` ("encoded"), Basic's encoding; base64 never holds ":".
    const colon = auth.apiKey.indexOf(":");
    if (colon === -1) return `ApiKey ${auth.apiKey}`;
    const encoded = basicAuthorization(auth.apiKey.slice(0, colon), auth.apiKey.slice(colon + 1));
    return encoded.replace(/^Basic /, "ApiKey ");
  }
  if (auth.username !== undefined) return basicAuthorization(auth.username, auth.password ?? "");
  return undefined;
}

/** The request that installs the index template. */
export interface TemplateRequest {
  /** The API used: `_index_template` (composable) or `_template` (legacy). */
  api: "_index_template" | "_template";
  /** Request path. */
  path: string;
  /** JSON body. */
  body: Record<string, unknown>;
}

/**
 * The `PUT` that installs an index template named after the prefix for the
 * indexes `<prefix>-*`, with the template file's settings and mappings.
 *
 * @param server The server (picks composable or legacy templates).
 * @param prefix `ELASTIC_INDEX_PREFIX`.
 * @param template The settings and mappings.
 * @returns The path and body.
 */
export function templateRequest(
  server: ServerInfo,
  prefix: string,
  template: IndexTemplate,
): TemplateRequest {
  const patterns = [`${prefix}-*`];
  const legacy = server.flavour === "elasticsearch" && server.major === 7 && server.minor < 8;
  if (legacy) {
    return {
      api: "_template",
      path: `/_template/${prefix}`,
      body: { index_patterns: patterns, settings: template.settings, mappings: template.mappings },
    };
  }
  return {
    api: "_index_template",
    path: `/_index_template/${prefix}`,
    body: {
      index_patterns: patterns,
      template: { settings: template.settings, mappings: template.mappings },
      _meta: { managed_by: "sluice", source: template.source },
    },
  };
}

/**
 * The nodes, in the order to try them: round-robin over the healthy ones,
 * then those that failed recently (soonest back first), so that a request is
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
   * @throws {RangeError} When there are no hosts.
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

/** An answer and the node that gave it. */
export interface NodeResponse extends HttpResponse {
  /** The node's base URL. */
  host: string;
}

/** What the client needs besides the configuration. */
export interface ElasticClientOptions {
  /** Logs nodes failing and answering again. */
  log: Logger;
  /** A transport given by a test; by default one for the configuration. */
  transport?: HttpTransport;
  /** Milliseconds clock of the node cooldown, injected by tests. */
  clock?: () => number;
  /** How long a failed node is skipped, in milliseconds (default 30 s). */
  cooldownMs?: number;
}

/** Sends the sink's requests to the Elasticsearch or OpenSearch nodes. */
export class ElasticClient {
  readonly #config: ElasticConfig;
  readonly #log: Logger;
  readonly #http: HttpClient;
  readonly #pool: HostPool;
  readonly #headers: Record<string, string>;

  /**
   * @param config The resolved configuration.
   * @param options The logger, and for tests a transport, a clock and the cooldown.
   */
  constructor(config: ElasticConfig, options: ElasticClientOptions) {
    this.#config = config;
    this.#log = options.log;
    this.#http = new HttpClient({
      verify: !config.secure || config.tlsVerify,
      caFile: config.secure ? config.caFile : undefined,
      transport: options.transport,
    });
    this.#pool = new HostPool(config.hosts, {
      clock: options.clock,
      cooldownMs: options.cooldownMs,
    });
    this.#headers = { accept: "application/json", "user-agent": "sluice" };
    const authorization = authorizationHeader(config);
    if (authorization !== undefined) this.#headers.authorization = authorization;
  }

  /**
   * Asks `GET /` (product and version; also the health check).
   *
   * @returns The answer.
   * @throws {Error} When no node answered (see `classifyElasticError`).
   */
  async root(): Promise<NodeResponse> {
    return await this.#send("GET", "/");
  }

  /**
   * Sends a bulk request.
   *
   * @param lines The NDJSON lines (see `encodeBulk`), each sent newline terminated.
   * @returns The answer.
   * @throws {Error} When no node answered.
   */
  async bulk(lines: readonly string[]): Promise<NodeResponse> {
    return await this.#send("POST", BULK_PATH, lines.join("\n") + "\n", "application/x-ndjson");
  }

  /**
   * Asks whether an index exists (`HEAD /<index>`: 200 or 404).
   *
   * @param index The index.
   * @returns The answer.
   * @throws {Error} When no node answered.
   */
  async headIndex(index: string): Promise<NodeResponse> {
    return await this.#send("HEAD", `/${index}`);
  }

  /**
   * Creates an index with the template's settings and mappings (`PUT /<index>`).
   *
   * @param index The index.
   * @param template The settings and mappings.
   * @returns The answer.
   * @throws {Error} When no node answered.
   */
  async createIndex(index: string, template: IndexTemplate): Promise<NodeResponse> {
    const { settings, mappings } = template;
    return await this.#send("PUT", `/${index}`, JSON.stringify({ settings, mappings }));
  }

  /**
   * Installs an index template.
   *
   * @param request The path and body (see {@link templateRequest}).
   * @returns The answer.
   * @throws {Error} When no node answered.
   */
  async putTemplate(request: TemplateRequest): Promise<NodeResponse> {
    return await this.#send("PUT", request.path, JSON.stringify(request.body));
  }

  /** Releases connections; the next request opens new ones. */
  close(): void {
    this.#http.close();
  }

  /**
   * Sends one request to the first node that answers below 500, trying each
   * node once in the pool's order; a node that fails is skipped for a while.
   *
   * @returns The answer (the last 5xx when every node gave one).
   * @throws {Error} What the transport threw for the last node, when no node answered.
   */
  async #send(
    method: HttpRequest["method"],
    path: string,
    body?: string,
    contentType = "application/json",
  ): Promise<NodeResponse> {
    const headers = body === undefined
      ? this.#headers
      : { ...this.#headers, "content-type": contentType };
    let last: NodeResponse | undefined;
    let lastError: unknown;
    for (const host of this.#pool.order()) {
      let response: HttpResponse;
      try {
        response = await this.#http.send({
          method,
          url: host + path,
          headers,
          body,
          timeoutMs: this.#config.requestTimeoutMs,
        });
      } catch (error) {
        lastError = error;
        this.#nodeFailed(host, errorLine(error));
        continue;
      }
      // Another node may do better than one that is overloaded or broken.
      if (response.status >= 500) {
        last = { ...response, host };
        this.#nodeFailed(host, statusText(response));
        continue;
      }
      if (this.#pool.markOk(host)) this.#log.info("Elasticsearch node answers again", { host });
      return { ...response, host };
    }
    if (last !== undefined) return last;
    throw lastError;
  }

  #nodeFailed(host: string, error: string): void {
    this.#pool.markFailed(host);
    // With one node the pipeline's retry log says it all.
    if (this.#config.hosts.length === 1) return;
    this.#log.limited(`elastic_node:${host}`, "warn", "Elasticsearch node failed, trying another", {
      host,
      error,
      skipped_for_seconds: this.#pool.cooldownMs / 1000,
    });
  }
}
