/**
 * The Elasticsearch sink: pmacct flow records written with the bulk API
 * (`POST /_bulk`, NDJSON, default port 9200) into daily indexes
 * `<prefix>-YYYY-MM-DD`, over plain `fetch`. Works with Elasticsearch 7 and
 * 8 and OpenSearch 1 and 2. A drop-in replacement for pmacct-kafka-elastic.
 *
 * Reading order: `config.ts` (variables), `bulk.ts` (records to documents,
 * the bulk body, reading the answers), `server.ts` (version, template
 * request), `transport.ts` (HTTP, node rotation), then the class below.
 *
 * Delivery: each document has an `_id` from its Kafka origin and is written
 * with the `index` action, so sending a batch again (after a timeout, a
 * crash, a replay) overwrites instead of duplicating. Every item of the
 * answer is read: 429/5xx items are sent again, items refused for their
 * content are set aside, the rest is acknowledged.
 *
 * @module
 */

import { errorText, type Logger } from "../../lib/log.ts";
import type { TimeReader } from "../../lib/time.ts";
import type { SinkDeps, SinkModule } from "../../lib/sink.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type WriteResult,
} from "../../lib/record.ts";
import { type Sink, SinkWriteError } from "../../lib/sink.ts";
import {
  answerSummary,
  classifyResponse,
  compileDocumentBuilder,
  type ElasticRow,
  encodeBulk,
  readBulkItems,
} from "./bulk.ts";
import { ELASTIC_VARIABLES, type ElasticConfig, parseElasticConfig } from "./config.ts";
import {
  readServerInfo,
  type ServerInfo,
  serverProblem,
  templateRequest,
  UNKNOWN_SERVER,
} from "./server.ts";
import {
  authorizationHeader,
  classifyRequestError,
  createTransport,
  HostPool,
  type HttpAnswer,
  type Transport,
} from "./transport.ts";

export type { ElasticConfig } from "./config.ts";
export type { ElasticRow } from "./bulk.ts";
export type { ServerInfo } from "./server.ts";

/**
 * The bulk endpoint. `filter_path` keeps only what is read from the answer
 * (a successful item shrinks from ~200 to ~60 bytes).
 */
export const BULK_PATH =
  "/_bulk?filter_path=errors,items.*._index,items.*._id,items.*.status,items.*.error";

const AUTH_HINT =
  "check ELASTIC_USERNAME/ELASTIC_PASSWORD or ELASTIC_API_KEY and the user's privileges";

/** An answer and the node that gave it. */
interface NodeAnswer extends HttpAnswer {
  host: string;
}

/** Writes prepared documents to Elasticsearch or OpenSearch. */
export class ElasticSink implements Sink<ElasticRow> {
  /** Registry name and `sink` metric label. */
  readonly name = "elastic";
  readonly #config: ElasticConfig;
  readonly #log: Logger;
  readonly #build: (record: InputRecord, origin: RecordOrigin) => PrepareResult<ElasticRow>;
  readonly #pool: HostPool;
  readonly #headers: Record<string, string>;
  #transport: Transport | undefined;
  #server: ServerInfo | undefined;
  /** Indexes known to exist (`create_index` mode). */
  readonly #indexes = new Set<string>();

  /**
   * @param config The resolved configuration.
   * @param deps The time reader, the logger, and for tests a clock and the
   *   time a failed node is skipped (default 30 s).
   */
  constructor(
    config: ElasticConfig,
    deps: { time: TimeReader; log: Logger; clock?: () => number; nodeCooldownMs?: number },
  ) {
    this.#config = config;
    this.#log = deps.log;
    this.#build = compileDocumentBuilder({
      indexPrefix: config.indexPrefix,
      timestampFields: config.timestampFields,
      time: deps.time,
    });
    this.#pool = new HostPool(config.hosts, {
      clock: deps.clock,
      cooldownMs: deps.nodeCooldownMs,
    });
    this.#headers = { accept: "application/json", "user-agent": "sluice" };
    const authorization = authorizationHeader(config);
    if (authorization !== undefined) this.#headers.authorization = authorization;
  }

  /** The server read by {@link connect}; `undefined` before. */
  get server(): ServerInfo | undefined {
    return this.#server;
  }

  /**
   * Reads the server's product and version (`GET /`) and logs them, and in
   * `index_template` mode installs the index template `<prefix>` for
   * `<prefix>-*` (overwriting an earlier one: the file is the reference).
   *
   * @throws {SinkWriteError} With `retry` when no node answers or they answer 5xx/429.
   * @throws {Error} When the server refuses for a reason only an operator can
   *   fix: credentials, a certificate, an old version, a refused template.
   */
  async connect(): Promise<void> {
    await this.close();
    this.#indexes.clear();
    const config = this.#config;
    let answer: NodeAnswer;
    try {
      answer = await this.#request("GET", "/");
    } catch (error) {
      if (error instanceof SinkWriteError && error.errorType === "tls") {
        throw new Error(`${error.message}; set ELASTIC_CA_FILE, or ELASTIC_VERIFY_SSL=NO`, {
          cause: error,
        });
      }
      throw error;
    }
    if (answer.status === 200) {
      this.#server = readServerInfo(parseJson(answer.text));
    } else if (answer.status === 403) {
      // A user without the `monitor` privilege may still write.
      this.#server = UNKNOWN_SERVER;
      this.#log.warn("Cannot read the Elasticsearch version; assuming a current server", {
        host: answer.host,
        status: answer.status,
        error: answerSummary(answer.text),
      });
    } else {
      throw this.#refusal("Cannot connect to Elasticsearch", answer, true);
    }
    const problem = serverProblem(this.#server);
    if (problem) throw new Error(`Cannot use Elasticsearch at ${answer.host}: ${problem}`);

    if (config.templateMode === "index_template") await this.#installTemplate();
    this.#log.info("Connected to Elasticsearch", {
      host: answer.host,
      hosts: config.hosts,
      flavour: this.#server.flavour,
      version: this.#server.version,
      index: `${config.indexPrefix}-YYYY-MM-DD`,
      template_mode: config.templateMode,
      template: config.template.source,
    });
  }

  /**
   * Turns a record into a document for the index of its UTC day, with an
   * `_id` from its origin and `@timestamp` from its time.
   *
   * @param record The decoded record.
   * @param origin Where it came from (makes the `_id`).
   * @returns The document and its size in the bulk body, or a `convert` rejection.
   */
  prepare(record: InputRecord, origin: RecordOrigin): PrepareResult<ElasticRow> {
    return this.#build(record, origin);
  }

  /**
   * Encodes rows as the NDJSON lines of the bulk body.
   *
   * @param rows The rows.
   * @returns Action line and document line per row.
   */
  encode(rows: readonly PreparedRow<ElasticRow>[]): string[] {
    return encodeBulk(rows);
  }

  /**
   * Sends the rows in one bulk request and reads every item of the answer.
   *
   * @param rows The rows, in order.
   * @returns Items refused for good (`server`) and items to send again.
   * @throws {SinkWriteError} `split` when the body is too large (413);
   *   `retry` for everything else that kept the request from being read
   *   (network, timeout, 429, 5xx, 401/403, 400: see {@link classifyResponse}).
   */
  async write(rows: readonly PreparedRow<ElasticRow>[]): Promise<WriteResult> {
    if (rows.length === 0) return allWritten();
    if (this.#config.templateMode === "create_index") await this.#ensureIndexes(rows);
    const documents = `${rows.length} document${rows.length === 1 ? "" : "s"}`;
    const answer = await this.#request("POST", BULK_PATH, {
      body: encodeBulk(rows).join("\n") + "\n",
      contentType: "application/x-ndjson",
    });
    const kind = classifyResponse(answer.status);
    if (kind.action !== "items") {
      throw this.#refusal(`Cannot write ${documents} to Elasticsearch`, answer);
    }
    const reading = readBulkItems(parseJson(answer.text), rows);
    if (reading === undefined) {
      throw new SinkWriteError(
        `Cannot read the bulk answer of ${answer.host} for ${documents}: ` +
          `it does not hold one item per document, got ${answerSummary(answer.text)}`,
        { action: "retry", errorType: "bad_response", status: answer.status },
      );
    }
    for (const index of reading.missingIndexes) this.#indexes.delete(index);
    if (reading.firstRetry) {
      this.#log.limited("elastic_item_retry", "warn", "Elasticsearch asked to resend documents", {
        host: answer.host,
        documents: reading.result.retry.length,
        error_type: reading.firstRetry.errorType,
        error: reading.firstRetry.error,
      });
    }
    return reading.result;
  }

  /**
   * Asks the nodes for `GET /` until one answers 200.
   *
   * @returns `true` when a node answers.
   */
  async healthcheck(): Promise<boolean> {
    try {
      return (await this.#request("GET", "/")).status === 200;
    } catch {
      return false;
    }
  }

  /** Releases connections. */
  close(): Promise<void> {
    const transport = this.#transport;
    this.#transport = undefined;
    transport?.close();
    return Promise.resolve();
  }

  async #open(): Promise<Transport> {
    if (this.#transport) return this.#transport;
    const config = this.#config;
    const caPem = config.secure && config.caFile !== undefined
      ? await Deno.readTextFile(config.caFile)
      : undefined;
    this.#transport = createTransport({ verify: !config.secure || config.tlsVerify, caPem });
    return this.#transport;
  }

  /**
   * Sends one request to the first node that answers below 500, trying each
   * node once (see {@link HostPool.order}); a node that fails is skipped for
   * a while.
   *
   * @returns The answer (the last 5xx when every node gave one).
   * @throws {SinkWriteError} `retry` (`network`, `timeout`, `tls`) when no node answered.
   */
  async #request(
    method: string,
    path: string,
    options: { body?: string; contentType?: string } = {},
  ): Promise<NodeAnswer> {
    const transport = await this.#open();
    const headers = options.contentType === undefined
      ? this.#headers
      : { ...this.#headers, "content-type": options.contentType };
    let last: NodeAnswer | undefined;
    let lastError: unknown;
    let lastType: "network" | "timeout" | "tls" = "network";
    for (const host of this.#pool.order()) {
      let answer: HttpAnswer;
      try {
        answer = await transport.send({
          method,
          url: host + path,
          headers,
          body: options.body,
          timeoutMs: this.#config.requestTimeoutMs,
        });
      } catch (error) {
        lastError = error;
        lastType = classifyRequestError(error);
        this.#nodeFailed(host, errorText(error));
        continue;
      }
      if (classifyResponse(answer.status).failover) {
        last = { ...answer, host };
        this.#nodeFailed(host, `HTTP ${answer.status}: ${answerSummary(answer.text)}`);
        continue;
      }
      if (this.#pool.markOk(host)) this.#log.info("Elasticsearch node answers again", { host });
      return { ...answer, host };
    }
    if (last) return last;
    throw new SinkWriteError(
      `Cannot reach Elasticsearch at ${this.#config.hosts.join(", ")}: ${errorText(lastError)}`,
      { action: "retry", errorType: lastType, cause: lastError },
    );
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

  /**
   * The error for a refused request: a {@link SinkWriteError} whose action
   * the status gives, or when connecting a plain error for what only an
   * operator can fix (any 4xx but 429).
   */
  #refusal(what: string, answer: NodeAnswer, connecting = false): Error {
    const kind = classifyResponse(answer.status);
    const detail = answerSummary(answer.text);
    let message = `${what} at ${answer.host}: HTTP ${answer.status}${detail ? `: ${detail}` : ""}`;
    if (kind.auth) message += `; ${AUTH_HINT}`;
    if (connecting && answer.status < 500 && answer.status !== 429) return new Error(message);
    if (kind.auth) {
      this.#log.limited("elastic_auth", "error", "Elasticsearch refused the request, retrying", {
        host: answer.host,
        status: answer.status,
        error: detail,
        hint: AUTH_HINT,
      });
    }
    return new SinkWriteError(message, {
      action: kind.action === "split" ? "split" : "retry",
      errorType: kind.errorType,
      status: answer.status,
    });
  }

  async #installTemplate(): Promise<void> {
    const config = this.#config;
    const request = templateRequest(
      this.#server ?? UNKNOWN_SERVER,
      config.indexPrefix,
      config.template,
    );
    const answer = await this.#request("PUT", request.path, {
      body: JSON.stringify(request.body),
      contentType: "application/json",
    });
    if (answer.status < 200 || answer.status >= 300) {
      const error = this.#refusal(
        `Cannot install the index template (PUT ${request.path}) on Elasticsearch`,
        answer,
        true,
      );
      if (error instanceof SinkWriteError) throw error;
      throw new Error(
        `${error.message}; the user needs the manage_index_templates privilege, ` +
          "or set ELASTIC_TEMPLATE_MODE=create_index",
      );
    }
    this.#log.info("Installed Elasticsearch index template", {
      name: config.indexPrefix,
      index_patterns: [`${config.indexPrefix}-*`],
      api: request.api,
      template: config.template.source,
    });
  }

  /** Creates the daily indexes of a batch that do not exist yet (`create_index` mode). */
  async #ensureIndexes(rows: readonly PreparedRow<ElasticRow>[]): Promise<void> {
    const wanted = new Set<string>();
    for (const r of rows) if (!this.#indexes.has(r.row.index)) wanted.add(r.row.index);
    for (const index of wanted) await this.#createIndex(index);
  }

  async #createIndex(index: string): Promise<void> {
    // HEAD first, as the original script did: a user allowed to write to an
    // index that exists needs no right to create one.
    const head = await this.#request("HEAD", `/${index}`);
    if (head.status === 200) {
      this.#indexes.add(index);
      return;
    }
    if (head.status !== 404) {
      throw this.#retryable(`Cannot check Elasticsearch index ${index}`, head);
    }
    const { settings, mappings } = this.#config.template;
    const put = await this.#request("PUT", `/${index}`, {
      body: JSON.stringify({ settings, mappings }),
      contentType: "application/json",
    });
    if (put.status >= 200 && put.status < 300) {
      this.#log.info("Created Elasticsearch index", {
        index,
        template: this.#config.template.source,
      });
    } else if (!(put.status === 400 && put.text.includes("resource_already_exists_exception"))) {
      throw this.#retryable(`Cannot create Elasticsearch index ${index}`, put);
    }
    this.#indexes.add(index);
  }

  /** Failing to set an index up is never the documents' fault: always `retry`. */
  #retryable(what: string, answer: NodeAnswer): SinkWriteError {
    const error = this.#refusal(what, answer);
    return new SinkWriteError(error.message, {
      action: "retry",
      errorType: `http_${answer.status}`,
      status: answer.status,
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The Elasticsearch backend as the sink registry knows it. */
export const elasticSink: SinkModule<ElasticConfig> = {
  name: "elastic",
  title: "Elasticsearch / OpenSearch (bulk API into daily indexes)",
  variables: ELASTIC_VARIABLES,
  consumerGroupDefault: "kafka2elastic",
  parseConfig: parseElasticConfig,
  target: (config) => `${config.hosts.join(",")} indexes ${config.indexPrefix}-YYYY-MM-DD`,
  create(config: ElasticConfig, deps: SinkDeps): Sink {
    return new ElasticSink(config, deps);
  },
};
