/**
 * The Elasticsearch sink: pmacct flow records written with the bulk API
 * (`POST /_bulk`, NDJSON, default port 9200) into daily indexes
 * `<prefix>-YYYY-MM-DD`. Works with Elasticsearch 7 and 8 and OpenSearch 1
 * and 2. A drop-in replacement for pmacct-kafka-elastic.
 *
 * Files, as in every sink: `config.ts` (variables, the host list and the
 * template file), `encode.ts` (records to documents and bulk lines),
 * `classify.ts` (answers and bulk items to verdicts, what `GET /` tells),
 * `client.ts` (requests, and the rotation over several nodes), and this
 * file: the order of I/O.
 *
 * Delivery: each document has an `_id` from its Kafka origin and is written
 * with the `index` action, so sending a batch again (after a timeout, a
 * crash, a replay) overwrites instead of duplicating. Every item of the
 * answer is read: 429/5xx items are sent again, items refused for their
 * content are set aside, the rest is acknowledged.
 *
 * @module
 */

import type { HttpTransport } from "../../lib/http.ts";
import { errorLine, type Logger } from "../../lib/log.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type WriteResult,
} from "../../lib/record.ts";
import {
  type FailureVerdict,
  healsByItself,
  type Sink,
  type SinkDeps,
  type SinkModule,
  SinkWriteError,
  startupError,
} from "../../lib/sink.ts";
import {
  answerSummary,
  classifyElasticError,
  classifyElasticResponse,
  classifySetupResponse,
  readBulkItems,
  readServerInfo,
  type ServerInfo,
  serverProblem,
  statusText,
  UNKNOWN_SERVER,
} from "./classify.ts";
import { ElasticClient, type NodeResponse, templateRequest } from "./client.ts";
import { ELASTIC, type ElasticConfig, parseElasticConfig } from "./config.ts";
import { compileDocumentBuilder, type ElasticRow, encodeBulk } from "./encode.ts";

export { BULK_PATH } from "./client.ts";
export type { ElasticConfig } from "./config.ts";
export type { ElasticRow } from "./encode.ts";
export type { ServerInfo } from "./classify.ts";

/** What the sink needs besides its configuration. */
export interface ElasticDeps extends SinkDeps {
  /** Milliseconds clock of the node cooldown, injected by tests. */
  clock?: () => number;
  /** How long a failed node is skipped, in milliseconds (default 30 s). */
  nodeCooldownMs?: number;
  /** The transport, injected by tests; by default one for the configuration. */
  transport?: HttpTransport;
}

/** Writes prepared documents to Elasticsearch or OpenSearch. */
export class ElasticSink implements Sink<ElasticRow> {
  /** Registry name and `sink` metric label. */
  readonly name = "elastic";
  readonly #config: ElasticConfig;
  readonly #log: Logger;
  readonly #build: (record: InputRecord, origin: RecordOrigin) => PrepareResult<ElasticRow>;
  readonly #client: ElasticClient;
  #server: ServerInfo | undefined;
  /** Indexes known to exist (`create_index` mode). */
  readonly #indexes = new Set<string>();

  /**
   * @param config The resolved configuration.
   * @param deps The time reader, the logger, and for tests a clock, the
   *   time a failed node is skipped and a transport.
   */
  constructor(config: ElasticConfig, deps: ElasticDeps) {
    this.#config = config;
    this.#log = deps.log;
    this.#build = compileDocumentBuilder({
      indexPrefix: config.indexPrefix,
      timestampFields: config.timestampFields,
      time: deps.time,
    });
    this.#client = new ElasticClient(config, {
      log: deps.log,
      transport: deps.transport,
      clock: deps.clock,
      cooldownMs: deps.nodeCooldownMs,
    });
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
   * @throws {SinkWriteError} From `startupError`: `retry` while no node
   *   answers or they answer 5xx/429, `fatal` for what only an operator can
   *   fix: credentials, a certificate, an old version, a refused template.
   */
  async connect(): Promise<void> {
    this.#client.close();
    this.#indexes.clear();
    const config = this.#config;
    const { response, server } = await this.#readServer();
    this.#server = server ?? UNKNOWN_SERVER;
    if (server === undefined) {
      // A user without the `monitor` privilege may still write.
      this.#log.warn("Cannot read the Elasticsearch version; assuming a current server", {
        host: response.host,
        status: response.status,
        error: answerSummary(response.body),
      });
    }

    if (config.templateMode === "index_template") await this.#installTemplate();
    this.#log.info("Connected to Elasticsearch", {
      host: response.host,
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
   *   (network, timeout, 429, 5xx, 401/403, 400: see `classifyElasticResponse`).
   */
  async write(rows: readonly PreparedRow<ElasticRow>[]): Promise<WriteResult> {
    if (rows.length === 0) return allWritten();
    if (this.#config.templateMode === "create_index") await this.#ensureIndexes(rows);
    const documents = `${rows.length} document${rows.length === 1 ? "" : "s"}`;
    const response = await this.#writing(() => this.#client.bulk(encodeBulk(rows)));
    const verdict = classifyElasticResponse(response.status);
    if (verdict.action !== "ok") {
      throw this.#refused(`Cannot write ${documents} to Elasticsearch`, response, verdict);
    }
    const reading = readBulkItems(parseJson(response.body), rows);
    if (reading === undefined) {
      throw new SinkWriteError(
        `Cannot read the bulk answer of ${response.host} for ${documents}: ` +
          `it does not hold one item per document, got ${answerSummary(response.body)}`,
        { action: "retry", errorType: "bad_response", status: response.status },
      );
    }
    for (const index of reading.missingIndexes) this.#indexes.delete(index);
    if (reading.firstRetry) {
      this.#log.limited("elastic_item_retry", "warn", "Elasticsearch asked to resend documents", {
        host: response.host,
        documents: reading.result.retry.length,
        error_type: reading.firstRetry.errorType,
        error: reading.firstRetry.error,
      });
    }
    return reading.result;
  }

  /**
   * For `--check-config --connect`: `GET /` with the credentials, as
   * {@link connect} sends it, and the version read from it; the index
   * template is not installed.
   *
   * @returns What was found.
   * @throws {SinkWriteError} As `connect()` throws it: `retry` while no node
   *   answers, `fatal` for credentials, a certificate or an old version.
   */
  async check(): Promise<string> {
    this.#client.close();
    const config = this.#config;
    const { response, server } = await this.#readServer();
    const auth = config.apiKey !== undefined
      ? "with an API key"
      : config.username !== undefined
      ? `as user ${config.username}`
      : "without credentials";
    if (server === undefined) {
      return `${response.host} answers (${auth}); the user may not read the version (403)`;
    }
    return `${server.flavour} ${server.version} at ${response.host} (${auth}), ` +
      `template mode ${config.templateMode}`;
  }

  /**
   * `GET /` with the credentials, the first request of `connect()` and of
   * `check()`: the server's product and version.
   *
   * @returns The answer, and the server read from it; no server on a 403 (a
   *   user without the `monitor` privilege may still write).
   * @throws {SinkWriteError} By the connect rule: any other answer than 200
   *   or 403, or a version sluice cannot use.
   */
  async #readServer(): Promise<{ response: NodeResponse; server?: ServerInfo }> {
    const response = await this.#connecting(() => this.#client.root());
    if (response.status === 403) return { response };
    if (response.status !== 200) {
      const verdict = classifyElasticResponse(response.status);
      // Any other answer to `GET /`, 2xx included, is not a server sluice can use.
      const failure: FailureVerdict = verdict.action === "ok"
        ? { action: "fatal", errorType: `http_${response.status}`, status: response.status }
        : verdict;
      throw startupError(
        `Cannot connect to Elasticsearch at ${response.host}: ${
          statusText(response, failure.hint)
        }`,
        failure,
      );
    }
    const server = readServerInfo(parseJson(response.body));
    const problem = serverProblem(server);
    if (problem) {
      throw startupError(`Cannot use Elasticsearch at ${response.host}: ${problem}`, {
        action: "fatal",
        errorType: "version",
      });
    }
    return { response, server };
  }

  /**
   * Asks the nodes for `GET /` until one answers below 500.
   *
   * @returns `true` when a node answers 200.
   */
  async healthcheck(): Promise<boolean> {
    try {
      return (await this.#client.root()).status === 200;
    } catch {
      return false;
    }
  }

  /** Closes the connections (not those of an injected transport). */
  close(): Promise<void> {
    this.#client.close();
    return Promise.resolve();
  }

  /** Sends a request while connecting: no answer is a `startupError`. */
  async #connecting(send: () => Promise<NodeResponse>): Promise<NodeResponse> {
    try {
      return await send();
    } catch (error) {
      const { message, verdict } = this.#unreachable(error);
      throw startupError(message, verdict, error);
    }
  }

  /** Sends a request while writing: no answer is a `retry`. */
  async #writing(send: () => Promise<NodeResponse>): Promise<NodeResponse> {
    try {
      return await send();
    } catch (error) {
      const { message, verdict } = this.#unreachable(error);
      throw new SinkWriteError(message, { ...verdict, cause: error });
    }
  }

  /** What to say when no node answered. */
  #unreachable(error: unknown): { message: string; verdict: FailureVerdict } {
    const verdict = classifyElasticError(error);
    const hint = verdict.hint ? `; ${verdict.hint}` : "";
    return {
      message: `Cannot reach Elasticsearch at ${this.#config.hosts.join(", ")}: ${
        errorLine(error)
      }${hint}`,
      verdict,
    };
  }

  /**
   * The error for a refused request while writing; logged as well when only
   * an operator can fix it (the pipeline's retry warning is not enough).
   */
  #refused(what: string, response: NodeResponse, verdict: FailureVerdict): SinkWriteError {
    const message = `${what} at ${response.host}: ${statusText(response, verdict.hint)}`;
    if (verdict.hint !== undefined) {
      this.#log.limited(
        `elastic_${verdict.errorType}`,
        "error",
        "Elasticsearch refused the request, retrying",
        {
          host: response.host,
          status: response.status,
          error: answerSummary(response.body),
          hint: verdict.hint,
        },
      );
    }
    return new SinkWriteError(message, verdict);
  }

  async #installTemplate(): Promise<void> {
    const config = this.#config;
    const request = templateRequest(
      this.#server ?? UNKNOWN_SERVER,
      config.indexPrefix,
      config.template,
    );
    const response = await this.#connecting(() => this.#client.putTemplate(request));
    const verdict = classifyElasticResponse(response.status);
    if (verdict.action !== "ok") {
      const what = `Cannot install the index template (PUT ${request.path}) on Elasticsearch`;
      const fix = healsByItself(verdict) ? "" : "; the user needs the " +
        "manage_index_templates privilege, or set ELASTIC_TEMPLATE_MODE=create_index";
      throw startupError(
        `${what} at ${response.host}: ${statusText(response, verdict.hint)}${fix}`,
        verdict,
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
    const head = await this.#writing(() => this.#client.headIndex(index));
    if (head.status === 200) {
      this.#indexes.add(index);
      return;
    }
    if (head.status !== 404) {
      throw this.#refused(
        `Cannot check Elasticsearch index ${index}`,
        head,
        classifySetupResponse(head.status),
      );
    }
    const put = await this.#writing(() => this.#client.createIndex(index, this.#config.template));
    if (put.status >= 200 && put.status < 300) {
      this.#log.info("Created Elasticsearch index", {
        index,
        template: this.#config.template.source,
      });
    } else if (!(put.status === 400 && put.body.includes("resource_already_exists_exception"))) {
      throw this.#refused(
        `Cannot create Elasticsearch index ${index}`,
        put,
        classifySetupResponse(put.status),
      );
    }
    this.#indexes.add(index);
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
  variables: ELASTIC.specs,
  consumerGroupDefault: "kafka2elastic",
  parseConfig: parseElasticConfig,
  target: (config) => `${config.hosts.join(",")} indexes ${config.indexPrefix}-YYYY-MM-DD`,
  create(config: ElasticConfig, deps: SinkDeps): Sink {
    return new ElasticSink(config, deps);
  },
};
