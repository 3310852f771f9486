/**
 * The ClickHouse sink: pmacct flow records inserted in batches into a
 * MergeTree table over the HTTP interface (`INSERT INTO `db`.`table` FORMAT
 * JSONEachRow`, default port 8123, 8443 with TLS), with
 * `@clickhouse/client`. A drop-in replacement for the ClickHouse side of
 * pmacct-kafka-clickhouse (`SINK=clickhouse`).
 *
 * Files, as in every sink: `config.ts` (variables), `encode.ts` (records to
 * rows and rows to `JSONEachRow` lines), `classify.ts` (the client's errors
 * to verdicts), `client.ts` (the client's options and its calls), and this
 * file: the order of I/O. One more, genuinely ClickHouse's: `schema.ts`
 * (`CLICKHOUSE_DATA_SCHEMA` parsed into typed columns, types compared with
 * the server's, and the DDL that creates the table).
 *
 * On ClickHouse >= 22.2 a created table remembers the last
 * {@link DEDUPLICATION_WINDOW} inserts, and a batch is inserted one
 * partition's range at a time, each insert carrying an
 * `insert_deduplication_token` made from that range (`rangeToken` in
 * lib/ranges.ts). The sink says so with `pinsRanges`, so the pipeline pins
 * the ranges before the write and forms them again exactly after a crash
 * or a rebalance: a range whose insert had landed is not stored twice.
 * Into a Replicated table on an older server (a cluster of 18.16 nodes),
 * ranges are pinned and inserted one by one too, without tokens: a range
 * formed again is the same block, which the replicas drop by its checksum.
 *
 * With `CLICKHOUSE_CLUSTER`, rows go through the Distributed table, or,
 * with `CLICKHOUSE_WRITE_PATH=direct`, straight to each shard's local
 * table, split by `shards.ts`; a shard that fails hands its rows back to be
 * sent again while the others' count as written.
 *
 * @module
 */

import type { ClickHouseSettings } from "@clickhouse/client";
import type { Logger } from "../../lib/log.ts";
import type { Metrics } from "../../lib/metrics.ts";
import { partitionRows, rangeToken } from "../../lib/ranges.ts";
import {
  allWritten,
  type InputRecord,
  type PreparedRow,
  type PrepareResult,
  type RecordOrigin,
  type WriteResult,
} from "../../lib/record.ts";
import {
  healsByItself,
  type Sink,
  type SinkDeps,
  type SinkModule,
  SinkWriteError,
  startupError,
} from "../../lib/sink.ts";
import { answerError, classifyClickHouseError, failureText } from "./classify.ts";
import { ClickHouseClient } from "./client.ts";
import { CLICKHOUSE, type ClickHouseConfig, parseClickHouseConfig } from "./config.ts";
import { type ClickHouseRow, compileRowConverter, encodeLines } from "./encode.ts";
import { placeServers, type ShardMap, shardSlots, splitByShard } from "./shards.ts";
import {
  createDatabaseSql,
  createDistributedSql,
  createTableSettings,
  createTableSql,
  DEDUPLICATION_SINCE,
  DEDUPLICATION_WINDOW,
  keyCheckSql,
  parseServerVersion,
  quoteIdentifier,
  quoteString,
  renderType,
  sameType,
  typeFamilies,
  versionAtLeast,
} from "./schema.ts";

export type { ClickHouseConfig } from "./config.ts";
export type { ClickHouseRow } from "./encode.ts";

/** A column as `system.columns` describes it. */
interface TableColumn {
  name: string;
  type: string;
  default_kind: string;
}

/** A shard written directly (`CLICKHOUSE_WRITE_PATH=direct`): its number and its servers. */
interface ShardWriter {
  /** `shard_num`, the metric label. */
  label: string;
  /** Its servers, failed over in turn. */
  client: ClickHouseClient;
}

/** Writes prepared rows into one ClickHouse table. */
export class ClickHouseSink implements Sink<ClickHouseRow> {
  /** Registry name and `sink` metric label. */
  readonly name = "clickhouse";
  readonly #config: ClickHouseConfig;
  readonly #log: Logger;
  readonly #convert: (record: InputRecord) => PrepareResult<ClickHouseRow>;
  readonly #table: string;
  readonly #client: ClickHouseClient;
  readonly #metrics: Metrics | undefined;
  #version = "";
  #deduplicate = false;
  /**
   * The rows land in a Replicated table on a server without tokens: an
   * identical block sent again is dropped by its checksum, so ranges are
   * pinned and inserted one by one all the same.
   */
  #replicatedBlocks = false;
  /** With a cluster: its shards and the servers of each, found by {@link connect}. */
  #shardMap: ShardMap | undefined;
  /** With direct writes: one writer per shard, and the split's slot table. */
  #shards: ShardWriter[] = [];
  #slots: Uint16Array = new Uint16Array(0);

  /**
   * @param config The resolved configuration.
   * @param deps The time reader (zone of pmacct's local timestamps) and the logger.
   */
  constructor(config: ClickHouseConfig, deps: SinkDeps) {
    this.#config = config;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#client = new ClickHouseClient(config, deps.log);
    this.#convert = compileRowConverter(config.columns, {
      time: deps.time,
      timestampTemplate: config.timestampTemplate,
    });
    this.#table = `${quoteIdentifier(config.database)}.${quoteIdentifier(config.table)}`;
  }

  /** The server version read by {@link connect}, e.g. `18.16.1`; empty before. */
  get serverVersion(): string {
    return this.#version;
  }

  /** Whether inserts carry a deduplication token (server >= 22.2). */
  get deduplicates(): boolean {
    return this.#deduplicate;
  }

  /** Each partition's range is inserted with its own token: see the module documentation. */
  get pinsRanges(): boolean {
    return this.#deduplicate || this.#replicatedBlocks;
  }

  /**
   * Reads the server version, checks that it knows every schema type,
   * creates the database and table when configured to, and checks that the
   * table has every schema column.
   *
   * @throws {SinkWriteError} From `startupError` when a statement fails:
   *   `retry` while the server is down or overloaded, `fatal` for a refusal
   *   (credentials, a certificate, a statement the server cannot run).
   * @throws {Error} When the server lacks a type, the table does not fit the
   *   schema, or `CLICKHOUSE_CA_FILE` cannot be read.
   */
  async connect(): Promise<void> {
    const config = this.#config;
    const versionText = await this.#readVersion();
    const version = parseServerVersion(versionText);
    this.#deduplicate = versionAtLeast(version, DEDUPLICATION_SINCE);
    await this.#checkTypesExist();

    // The server checks the keys before anything is created (--check-config --connect too).
    const cluster = config.cluster;
    const missing = (await this.#tableColumns()).length === 0;
    if (config.createTable && missing) await this.#checkKeyExpressions();
    // On a cluster, DDL runs on every node (ON CLUSTER) and waits for each:
    // only when the table is missing, so that a node down does not hold a start.
    if (config.createTable && (cluster === undefined || missing)) {
      await this.#command(createDatabaseSql(config.database, cluster?.name));
    }
    let columns = await this.#tableColumns();
    if (columns.length === 0) {
      if (!config.createTable) {
        throw new Error(
          `Cannot use ClickHouse table ${this.#table}: it does not exist and "CLICKHOUSE_CREATE_TABLE" is NO`,
        );
      }
      // LowCardinality needs a setting on some versions (see createTableSettings).
      const settings = createTableSettings(config.columns, version) as
        | ClickHouseSettings
        | undefined;
      await this.#command(
        createTableSql({
          database: config.database,
          table: config.table,
          columns: config.columns,
          orderBy: config.orderBy,
          partitionBy: config.partitionBy,
          deduplication: this.#deduplicate,
          cluster,
        }),
        settings,
      );
      if (cluster !== undefined) {
        await this.#command(createDistributedSql(config.database, config.table, cluster));
      }
      this.#log.info("Created ClickHouse table", {
        table: `${config.database}.${config.table}`,
        ...(cluster === undefined
          ? { deduplication_window: this.#deduplicate ? DEDUPLICATION_WINDOW : 0 }
          : {
            cluster: cluster.name,
            local_table: `${config.database}.${cluster.localTable}`,
            engine: "Distributed over ReplicatedMergeTree",
            sharding_key: cluster.shardingKey,
          }),
      });
      columns = await this.#tableColumns();
    }
    this.#compareColumns(columns);
    if (this.#deduplicate) this.#deduplicate = await this.#tableDeduplicates();
    else {
      const engine = (await this.#tableEngine())?.engine ?? "";
      this.#replicatedBlocks = engine.startsWith("Replicated");
    }
    if (cluster !== undefined) await this.#placeShards();
    this.#log.info("Connected to ClickHouse", {
      url: this.#client.url,
      version: versionText,
      table: `${config.database}.${config.table}`,
      columns: config.columns.length,
      deduplication: this.#deduplicate
        ? "token"
        : this.#replicatedBlocks
        ? "checksum of identical blocks"
        : false,
      ...(cluster === undefined ? {} : {
        write_path: cluster.direct ? "direct" : "distributed",
        shards: this.#shardMap?.shards.map((s) => `${s.num}: ${s.urls.join(" ")}`).join(", "),
      }),
    });
  }

  /**
   * Asks the servers of `CLICKHOUSE_HOST` which shard each is in; with
   * direct writes, makes one writer per shard, failing over between that
   * shard's servers.
   *
   * @throws {SinkWriteError} `retry` when, with direct writes, a shard has
   *   no server that answers (one may come back).
   * @throws {Error} When a server knows no such cluster, or, with direct
   *   writes, `CLICKHOUSE_HOST` lists no server of a shard.
   */
  async #placeShards(): Promise<void> {
    const config = this.#config;
    const cluster = config.cluster!;
    const map = await placeServers(this.#client, cluster.name, config.urls);
    this.#shardMap = map;
    for (const { url, error } of map.unplaced) {
      this.#log.warn("A ClickHouse server does not answer; its shard is not known", {
        url,
        error,
      });
    }
    for (const shard of map.shards) {
      const labels = { shard: String(shard.num) };
      this.#metrics?.clickhouseShardUp.set(labels, shard.urls.length > 0 ? 1 : 0);
      this.#metrics?.clickhouseShardErrors.inc(labels, 0);
      if (cluster.direct) this.#metrics?.clickhouseShardRows.inc(labels, 0);
    }
    if (!cluster.direct) return;
    const missing = map.shards.filter((s) => s.urls.length === 0).map((s) => s.num);
    if (map.shards.length === 0 || missing.length > 0) {
      const which = missing.length === 0 ? "any shard" : `shard ${missing.join(", ")}`;
      const text = `Cannot write directly to ClickHouse cluster "${cluster.name}": no server of ` +
        `${which} among CLICKHOUSE_HOST`;
      if (map.unplaced.length === 0) {
        throw new Error(`${text}; list servers of every shard (direct writes need them all)`);
      }
      throw new SinkWriteError(
        `${text} answers (not answering: ${map.unplaced.map((u) => u.url).join(", ")})`,
        { action: "retry", errorType: "network" },
      );
    }
    await this.#closeShards();
    for (const shard of map.shards) {
      const client = this.#client.forServers(shard.urls);
      await client.reopen();
      this.#shards.push({ label: String(shard.num), client });
    }
    this.#slots = shardSlots(map.shards);
  }

  /**
   * Converts one pmacct record into a row holding only schema columns.
   *
   * @param record The decoded record.
   * @param _origin Where it came from (not needed to convert).
   * @returns The row and the size of its JSON line, or a `convert` rejection.
   */
  prepare(record: InputRecord, _origin: RecordOrigin): PrepareResult<ClickHouseRow> {
    return this.#convert(record);
  }

  /**
   * Encodes rows as the `JSONEachRow` lines the insert sends.
   *
   * @param rows The rows.
   * @returns One JSON object per line.
   */
  encode(rows: readonly PreparedRow<ClickHouseRow>[]): string[] {
    return encodeLines(rows);
  }

  /**
   * Inserts all rows in one `INSERT ... FORMAT JSONEachRow`.
   *
   * @param rows The rows, in order.
   * @returns Everything written (ClickHouse accepts or refuses a whole insert).
   * @throws {SinkWriteError} With `split` for data errors, `retry` for everything else.
   * @throws {Error} When `connect()` was not called.
   */
  async write(rows: readonly PreparedRow<ClickHouseRow>[]): Promise<WriteResult> {
    if (rows.length === 0) return allWritten();
    this.#client.requireOpen();
    if (this.#shards.length > 0) return await this.#writeDirect(rows);
    try {
      await this.#insertRows(this.#client, this.#table, rows);
      this.#shardsAnswer();
    } catch (error) {
      const verdict = classifyClickHouseError(error);
      // Another replica may answer: the retry goes there.
      if (verdict.action === "retry" && healsByItself(verdict)) await this.#nextServer();
      if (verdict.action === "retry") await this.#probeShards();
      throw new SinkWriteError(
        `Cannot insert ${rows.length} row${
          rows.length === 1 ? "" : "s"
        } into ClickHouse table ${this.#table}: ${failureText(error, verdict)}`,
        { ...verdict, cause: error },
      );
    }
    return allWritten();
  }

  /**
   * Inserts rows into a table: in one insert, or, where the server takes
   * deduplication tokens, one insert per partition's range, each with the
   * range's token; a retry of the batch sends the same ranges, so the landed
   * ones are dropped.
   *
   * @param client The server (or shard) to insert through.
   * @param table The back-quoted `db`.`table`.
   * @param rows The rows, in order.
   * @param shard The shard's label, added to each token.
   * @throws {Error} As the client threw it.
   */
  async #insertRows(
    client: ClickHouseClient,
    table: string,
    rows: readonly PreparedRow<ClickHouseRow>[],
    shard?: string,
  ): Promise<void> {
    if (!this.pinsRanges) return await client.insert(table, rows);
    const suffix = shard === undefined ? "" : `@shard${shard}`;
    for (const range of partitionRows(rows)) {
      const token = this.#deduplicate ? rangeToken(range) + suffix : undefined;
      await client.insert(table, range.rows, token);
    }
  }

  /**
   * Direct writes: splits the rows over the shards ({@link splitByShard})
   * and inserts each part into its shard's local table, side by side. A
   * shard that fails keeps its rows: they are handed back to be sent again
   * (so their offsets are not committed) while the other shards' parts count
   * as written.
   *
   * @param rows The rows, in order.
   * @returns The rows of the shards that failed, to send again.
   * @throws {SinkWriteError} When no shard took its part: the failure of one
   *   of them (one asking to split the batch first).
   */
  async #writeDirect(rows: readonly PreparedRow<ClickHouseRow>[]): Promise<WriteResult> {
    const cluster = this.#config.cluster!;
    const table = `${quoteIdentifier(this.#config.database)}.${
      quoteIdentifier(cluster.localTable)
    }`;
    const parts = splitByShard(rows.map((r) => r.origin), this.#slots, this.#shards.length);
    const failures = await Promise.all(parts.map(async (indexes, i) => {
      if (indexes.length === 0) return undefined;
      const shard = this.#shards[i]!;
      const labels = { shard: shard.label };
      const url = shard.client.url;
      try {
        await this.#insertRows(shard.client, table, indexes.map((j) => rows[j]!), shard.label);
        this.#metrics?.clickhouseShardUp.set(labels, 1);
        this.#metrics?.clickhouseShardRows.inc(labels, indexes.length);
        return undefined;
      } catch (error) {
        const verdict = classifyClickHouseError(error);
        this.#metrics?.clickhouseShardErrors.inc(labels);
        if (verdict.action === "retry") this.#metrics?.clickhouseShardUp.set(labels, 0);
        if (verdict.action === "retry" && healsByItself(verdict)) {
          await shard.client.failover().catch((e) =>
            this.#log.warn("Cannot switch to the next ClickHouse server", { error: e })
          );
        }
        return new SinkWriteError(
          `Cannot insert ${indexes.length} row${indexes.length === 1 ? "" : "s"} into shard ` +
            `${shard.label} of ClickHouse cluster "${cluster.name}" (${url}, table ${table}): ` +
            failureText(error, verdict),
          { ...verdict, cause: error },
        );
      }
    }));
    const failed = failures.flatMap((error, i) => error === undefined ? [] : [{ error, i }]);
    if (failed.length === 0) return allWritten();
    const someWritten = parts.some((p, i) => p.length > 0 && failures[i] === undefined);
    if (!someWritten) throw (failed.find((f) => f.error.action === "split") ?? failed[0]!).error;
    for (const { error, i } of failed) {
      const label = this.#shards[i]!.label;
      this.#log.limited(
        `clickhouse_shard:${label}`,
        "warn",
        "A ClickHouse shard failed; its rows wait",
        {
          shard: label,
          rows: parts[i]!.length,
          error,
        },
      );
    }
    return { rejected: [], retry: failed.flatMap(({ i }) => parts[i]!).sort((a, b) => a - b) };
  }

  /** Through the Distributed table: every shard took its part. */
  #shardsAnswer(): void {
    for (const shard of this.#shardMap?.shards ?? []) {
      this.#metrics?.clickhouseShardUp.set({ shard: String(shard.num) }, 1);
    }
  }

  /**
   * After a failed write through the Distributed table: pings each shard's
   * servers, so that `sluice_clickhouse_shard_up` tells which shard has
   * none answering.
   */
  async #probeShards(): Promise<void> {
    const ping = async (url: string): Promise<boolean> => {
      const probe = this.#client.forServers([url]);
      try {
        return await probe.ping();
      } catch {
        return false;
      } finally {
        await probe.close();
      }
    };
    // Every server at once: a shard is up when one of its servers answers.
    await Promise.all((this.#shardMap?.shards ?? []).map(async (shard) => {
      const up = (await Promise.all(shard.urls.map(ping))).some(Boolean);
      const labels = { shard: String(shard.num) };
      this.#metrics?.clickhouseShardUp.set(labels, up ? 1 : 0);
      if (!up) this.#metrics?.clickhouseShardErrors.inc(labels);
    }));
  }

  async #closeShards(): Promise<void> {
    const shards = this.#shards;
    this.#shards = [];
    await Promise.all(shards.map((s) => s.client.close()));
  }

  /**
   * Opens the client and asks the server's version with the credentials: the
   * first request of `connect()` and of `check()`.
   *
   * @returns The version, also kept for the write path.
   * @throws {SinkWriteError} By the connect rule, naming the URL.
   */
  async #readVersion(): Promise<string> {
    const config = this.#config;
    await this.#client.reopen();
    try {
      this.#version = (await this.#client.select<{ v: string }>("SELECT version() AS v"))[0]?.v ??
        "";
      return this.#version;
    } catch (thrown) {
      const error = await this.#withStatus(thrown);
      const verdict = classifyClickHouseError(error);
      const url = this.#client.url;
      if (healsByItself(verdict)) await this.#nextServer();
      throw startupError(
        `Cannot connect to ClickHouse at ${url}${config.pathname}: ${failureText(error, verdict)}`,
        verdict,
        error,
      );
    }
  }

  /**
   * For `--check-config --connect`: what {@link connect} checks, without
   * creating anything: an authenticated query (the version), the schema's
   * types against the server's, and the table's columns against the
   * schema, or, when the table is missing and would be created, the ORDER
   * BY and PARTITION BY expressions checked by the server ({@link keyCheckSql}).
   *
   * @returns What was found.
   * @throws {SinkWriteError} As `connect()` throws it (`retry` for an
   *   unreachable server, `fatal` for credentials or a refused expression).
   * @throws {Error} When a type or the table does not fit.
   */
  async check(): Promise<string> {
    const config = this.#config;
    await this.#readVersion();
    await this.#checkTypesExist();
    const server = `ClickHouse ${this.#version} at ${config.url}${config.pathname}, ` +
      `user ${config.username}`;
    const columns = await this.#tableColumns();
    if (columns.length > 0) {
      this.#compareColumns(columns);
      return `${server}: table ${this.#table} has every schema column`;
    }
    if (!config.createTable) {
      throw new Error(
        `Cannot use ClickHouse table ${this.#table}: it does not exist and "CLICKHOUSE_CREATE_TABLE" is NO`,
      );
    }
    await this.#checkKeyExpressions();
    const keys = config.orderBy !== "" || config.partitionBy !== ""
      ? ", with ORDER BY and PARTITION BY checked by the server"
      : "";
    return `${server}: table ${this.#table} does not exist and will be created${keys}`;
  }

  /**
   * Pings the server (`/ping`).
   *
   * @returns `true` when it answers.
   */
  async healthcheck(): Promise<boolean> {
    try {
      if (this.#shards.length > 0) {
        // Direct writes need every shard.
        const answers = await Promise.all(this.#shards.map((s) => s.client.ping()));
        return answers.every(Boolean);
      }
      return await this.#client.ping();
    } catch {
      return false;
    }
  }

  /** After a failure another replica may not have, the next attempt goes to the next server. */
  async #nextServer(): Promise<void> {
    try {
      await this.#client.failover();
    } catch (error) {
      this.#log.warn("Cannot switch to the next ClickHouse server", { error });
    }
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    await this.#closeShards();
    await this.#client.close();
  }

  /**
   * Runs a statement of `connect()`; a failure follows the connect rule.
   *
   * @throws {SinkWriteError} From `startupError`, naming the statement.
   */
  async #run<T>(query: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (thrown) {
      const error = await this.#withStatus(thrown);
      const verdict = classifyClickHouseError(error);
      throw startupError(
        `Cannot run on ClickHouse ${this.#version}: ${query}: ${failureText(error, verdict)}`,
        verdict,
        error,
      );
    }
  }

  /**
   * The client's error, or, when it is no ClickHouse exception and no
   * failed connection (a proxy's answer: the client keeps no status), an
   * error carrying the HTTP status of `SELECT 1` asked again: a 502 or 503
   * of a proxy while ClickHouse is away is then waited for like an outage,
   * and a 401 of an authenticating proxy ends the start.
   */
  async #withStatus(error: unknown): Promise<unknown> {
    if (classifyClickHouseError(error).errorType !== "unknown") return error;
    const status = await this.#client.status("SELECT 1").catch(() => undefined);
    return status === undefined || status < 300 ? error : answerError(status, error);
  }

  async #select<T>(query: string): Promise<T[]> {
    return await this.#run(query, () => this.#client.select<T>(query));
  }

  async #command(query: string, settings?: ClickHouseSettings): Promise<void> {
    await this.#run(query, () => this.#client.command(query, settings));
  }

  /**
   * Has the server check `CLICKHOUSE_ORDER_BY` and `CLICKHOUSE_PARTITION_BY`
   * against the schema's columns, without side effects ({@link keyCheckSql}).
   *
   * @throws {SinkWriteError} From `startupError`, naming the variable: `fatal`
   *   when the server refuses the expression, `retry` when it cannot be reached.
   */
  async #checkKeyExpressions(): Promise<void> {
    const config = this.#config;
    for (
      const [name, expression] of [
        ["CLICKHOUSE_ORDER_BY", config.orderBy],
        ["CLICKHOUSE_PARTITION_BY", config.partitionBy],
      ] as const
    ) {
      if (expression.trim() === "") continue;
      try {
        await this.#client.select(keyCheckSql(config.columns, expression));
      } catch (error) {
        const verdict = classifyClickHouseError(error);
        throw startupError(
          `Cannot use "${name}" ${JSON.stringify(expression)}: ClickHouse ${this.#version} ` +
            `refuses it as an expression of the schema's columns: ${failureText(error, verdict)}`,
          verdict,
          error,
        );
      }
    }
  }

  async #checkTypesExist(): Promise<void> {
    const families = await this.#select<{ name: string; case_insensitive: number | string }>(
      "SELECT name, case_insensitive FROM system.data_type_families",
    );
    const exact = new Set(families.map((f) => f.name));
    const folded = new Set(
      families.filter((f) => Number(f.case_insensitive) === 1).map((f) => f.name.toLowerCase()),
    );
    for (const column of this.#config.columns) {
      for (const family of typeFamilies(column.type)) {
        if (exact.has(family) || folded.has(family.toLowerCase())) continue;
        throw new Error(
          `Cannot use ClickHouse ${this.#version} at ${this.#config.url}: column "${column.name}" has type ` +
            `${renderType(column.type)}, and this server has no type ${family} ` +
            `(see system.data_type_families); change "CLICKHOUSE_DATA_SCHEMA" or upgrade the server`,
        );
      }
    }
  }

  /**
   * Whether the table drops an insert whose token it has seen: a Replicated
   * engine does by default; a plain MergeTree only with a
   * `non_replicated_deduplication_window` (sluice sets it on the tables it
   * creates). Otherwise tokens are ignored, which is said once at start.
   */
  async #tableDeduplicates(): Promise<boolean> {
    const table = await this.#tableEngine();
    if (table === undefined || table.engine.startsWith("Replicated")) return true;
    const window = /non_replicated_deduplication_window\s*=\s*(\d+)/.exec(table.engine_full);
    if (window !== null && Number(window[1]) > 0) return true;
    this.#log.warn(
      "The ClickHouse table does not deduplicate inserts: a record may be stored twice after a crash",
      {
        table: this.#table,
        engine: table.engine,
        fix: `ALTER TABLE ${this.#table} MODIFY SETTING non_replicated_deduplication_window = ` +
          String(DEDUPLICATION_WINDOW),
      },
    );
    return false;
  }

  /** The engine of the table the rows land in: on a cluster, the local table. */
  async #tableEngine(): Promise<{ engine: string; engine_full: string } | undefined> {
    const name = this.#config.cluster?.localTable ?? this.#config.table;
    const [table] = await this.#select<{ engine: string; engine_full: string }>(
      `SELECT engine, engine_full FROM system.tables WHERE database = ${
        quoteString(this.#config.database)
      } AND name = ${quoteString(name)}`,
    );
    return table;
  }

  async #tableColumns(): Promise<TableColumn[]> {
    return await this.#select<TableColumn>(
      `SELECT name, type, default_kind FROM system.columns WHERE database = ${
        quoteString(this.#config.database)
      } AND table = ${quoteString(this.#config.table)}`,
    );
  }

  #compareColumns(columns: readonly TableColumn[]): void {
    const byName = new Map(columns.map((c) => [c.name, c]));
    for (const column of this.#config.columns) {
      const found = byName.get(column.name);
      if (found === undefined) {
        throw new Error(
          `Cannot use ClickHouse table ${this.#table}: it has no column "${column.name}" ` +
            `that "CLICKHOUSE_DATA_SCHEMA" declares as ${column.typeText}`,
        );
      }
      if (found.default_kind === "MATERIALIZED" || found.default_kind === "ALIAS") {
        throw new Error(
          `Cannot use ClickHouse table ${this.#table}: column "${column.name}" is ${found.default_kind} ` +
            `and cannot be inserted into; remove it from "CLICKHOUSE_DATA_SCHEMA"`,
        );
      }
      if (!sameType(column.type, found.type)) {
        this.#log.warn("ClickHouse column type differs from CLICKHOUSE_DATA_SCHEMA", {
          table: `${this.#config.database}.${this.#config.table}`,
          column: column.name,
          table_type: found.type,
          schema_type: column.typeText,
        });
      }
    }
  }
}

/** The ClickHouse backend as the sink registry knows it. */
export const clickhouseSink: SinkModule<ClickHouseConfig> = {
  name: "clickhouse",
  title: "ClickHouse (HTTP, JSONEachRow into a MergeTree table)",
  variables: CLICKHOUSE.specs,
  consumerGroupDefault: "kafka2clickhouse",
  parseConfig: parseClickHouseConfig,
  target: (config) => `${config.url}${config.pathname} table ${config.database}.${config.table}`,
  create(config: ClickHouseConfig, deps: SinkDeps): Sink {
    return new ClickHouseSink(config, deps);
  },
};
