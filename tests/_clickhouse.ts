/**
 * Test helpers for the real ClickHouse servers of `scripts/services.sh`:
 * plain HTTP queries, so that what the tests read back does not go through
 * the code under test.
 *
 * Two servers: the Debian 18.16 (service `clickhouse`), the oldest sluice
 * supports, and a current one (service `clickhouse26`, 26.x from PyPI's
 * chdb-core unless a `clickhouse` binary is installed), which has the types
 * and settings 18.16 lacks. Tests that hold for both register once per
 * server in {@link CLICKHOUSE_SERVERS}, the label in their name. The
 * module-level {@link query}, {@link rows} and {@link scalar} talk to 18.16.
 *
 * Besides them, the four Debian 18.16 nodes of the local cluster (service
 * `clickhouse-cluster`: 2 shards x 2 replicas, replicated through ZooKeeper) in
 * {@link CLICKHOUSE_CLUSTER_NODES}.
 *
 * @module
 */

import { clickhouseClusterName, clickhouseClusterUrls, clickhouseUrl } from "./_services.ts";

/** One local ClickHouse server, and plain queries to it. */
export interface ClickHouseServer {
  /** For test names: `ClickHouse 18.16` or `ClickHouse 26.x`. */
  readonly label: string;
  /** The `scripts/services.sh` service that runs it. */
  readonly service: "clickhouse" | "clickhouse26";
  /** `true` for 18.16, which lacks IPv4/IPv6, DateTime64, Bool and deduplication tokens. */
  readonly legacy: boolean;
  /** Its HTTP URL, e.g. `http://127.0.0.1:18123`. */
  readonly url: string;
  /**
   * Runs a statement and returns the response text.
   *
   * @throws {Error} With the server's message when it fails.
   */
  query(sql: string, params?: Record<string, string>): Promise<string>;
  /** Runs a SELECT (without a FORMAT clause) and returns its rows as objects. */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** A single number from a SELECT (0 when the table does not exist yet). */
  scalar(sql: string): Promise<number>;
  /**
   * Fails unless the server is the one the label says: major 18 for 18.16,
   * 22 or newer (insert deduplication tokens) for the current one. Checked
   * once per test run.
   *
   * @returns The server's version, e.g. `26.9.2.1`.
   * @throws {Error} When the server is another or does not answer.
   */
  expectVersion(): Promise<string>;
}

/**
 * Where the current ClickHouse answers: `SLUICE_CLICKHOUSE26_URL`, else
 * loopback at `SLUICE_CLICKHOUSE26_HTTP_PORT` (default 28123), as
 * `scripts/services.sh start clickhouse26` prints them.
 *
 * @returns E.g. `http://127.0.0.1:28123`.
 */
export function clickhouse26Url(): string {
  return Deno.env.get("SLUICE_CLICKHOUSE26_URL") ??
    `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE26_HTTP_PORT") ?? "28123"}`;
}

/** A server of service `S`: the cluster's nodes have services of their own. */
type ServerOf<S extends string> = Omit<ClickHouseServer, "service"> & { readonly service: S };

function server<S extends string>(
  label: string,
  service: S,
  url: string,
  legacy: boolean,
): ServerOf<S> {
  let version: Promise<string> | undefined;
  const self: ServerOf<S> = {
    label,
    service,
    legacy,
    url,
    async query(sql, params = {}) {
      const search = new URLSearchParams(params).toString();
      const response = await fetch(`${url}/${search === "" ? "" : `?${search}`}`, {
        method: "POST",
        body: sql,
      });
      const text = await response.text();
      if (!response.ok) {
        throw new Error(
          `Cannot run ${JSON.stringify(sql.slice(0, 80))} on ${label}: ${text.trim()}`,
        );
      }
      return text;
    },
    async rows<T>(sql: string): Promise<T[]> {
      const text = await self.query(`${sql} FORMAT JSONEachRow`);
      return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as T);
    },
    async scalar(sql) {
      try {
        return Number((await self.query(sql)).trim());
      } catch (error) {
        if (/Code: 60[,.]|Code: 81[,.]/.test(String(error))) return 0;
        throw error;
      }
    },
    expectVersion() {
      version ??= self.query("SELECT version()").then((text) => {
        const found = text.trim();
        const major = Number.parseInt(found, 10);
        if (legacy ? major !== 18 : !(major >= 22)) {
          throw new Error(
            `Cannot test ${label}: the server at ${url} is ClickHouse ${found} ` +
              `(scripts/services.sh service ${service})`,
          );
        }
        return found;
      });
      return version;
    },
  };
  return self;
}

/** The Debian ClickHouse 18.16 (service `clickhouse`). */
export const CLICKHOUSE_18: ClickHouseServer = server(
  "ClickHouse 18.16",
  "clickhouse",
  clickhouseUrl(),
  true,
);

/** The current ClickHouse (service `clickhouse26`). */
export const CLICKHOUSE_26: ClickHouseServer = server(
  "ClickHouse 26.x",
  "clickhouse26",
  clickhouse26Url(),
  false,
);

/** Both servers, oldest first: the ClickHouse tests run against each. */
export const CLICKHOUSE_SERVERS: readonly ClickHouseServer[] = [CLICKHOUSE_18, CLICKHOUSE_26];

/**
 * Runs a statement on ClickHouse 18.16 and returns the response text.
 *
 * @param sql The statement.
 * @returns The body.
 * @throws {Error} With the server's message when it fails.
 */
export function query(sql: string): Promise<string> {
  return CLICKHOUSE_18.query(sql);
}

/**
 * Runs a SELECT on ClickHouse 18.16 and returns its rows.
 *
 * @param sql The SELECT, without a FORMAT clause.
 * @returns The rows as objects.
 */
export function rows<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  return CLICKHOUSE_18.rows<T>(sql);
}

/**
 * A single number from a SELECT on ClickHouse 18.16 (0 when the table does not exist yet).
 *
 * @param sql The SELECT returning one value.
 * @returns The number.
 */
export function scalar(sql: string): Promise<number> {
  return CLICKHOUSE_18.scalar(sql);
}

/** One node of the local ClickHouse cluster (`scripts/services.sh start clickhouse-cluster`). */
export interface ClickHouseClusterNode extends Omit<ClickHouseServer, "service"> {
  /** The `scripts/services.sh` service that runs it: `clickhouse-cluster-N`. */
  readonly service: `clickhouse-cluster-${number}`;
  /** Its number N: service `clickhouse-cluster-N`. */
  readonly node: number;
  /** Its shard, 1 or 2 (the `{shard}` macro is `01`, `02`). */
  readonly shard: number;
  /** Its replica name, the `{replica}` macro: `clickhouse-cluster-N`. */
  readonly replica: string;
}

/** The name of the local cluster in the nodes' `remote_servers`: `sluice` by default. */
export const CLICKHOUSE_CLUSTER: string = clickhouseClusterName();

/**
 * The four nodes of the local ClickHouse cluster, node 1 first: nodes 1 and 2 are
 * the replicas of shard 1, nodes 3 and 4 those of shard 2. Their label is the
 * service name (`clickhouse-cluster-3`); `expectVersion()` wants 18.16.
 */
export const CLICKHOUSE_CLUSTER_NODES: readonly ClickHouseClusterNode[] = clickhouseClusterUrls()
  .map((url, i) => {
    const node = i + 1;
    const replica = `clickhouse-cluster-${node}` as const;
    return {
      ...server(replica, replica, url, true),
      node,
      shard: Math.floor(i / 2) + 1,
      replica,
    };
  });
