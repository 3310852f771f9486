/**
 * A ClickHouse cluster's shards as sluice sees them: which of
 * `CLICKHOUSE_HOST`'s servers belongs to which shard (each server says so
 * itself, from `system.clusters`), the split of a batch's rows over the
 * shards for direct writes (`CLICKHOUSE_WRITE_PATH=direct`), and whether
 * each shard answers (`sluice_clickhouse_shard_up`).
 *
 * The split is sluice's own, not the sharding key's: a row goes to the shard
 * that a hash of its Kafka position (partition, offset, index in the
 * message) picks, in proportion to the shards' weights. The same rows
 * always split into the same parts, so a part sent again is the same block
 * and the shard's replicas drop it when they hold it already (by checksum,
 * or by its deduplication token on servers >= 22.2).
 *
 * @module
 */

import type { RecordOrigin } from "../../lib/record.ts";
import type { ClickHouseClient } from "./client.ts";
import { quoteString } from "./schema.ts";

/** A shard of the cluster, as `system.clusters` lists it. */
export interface ShardInfo {
  /** `shard_num`, from 1. */
  num: number;
  /** `shard_weight`: its share of the rows. */
  weight: number;
}

/** A shard with the servers of `CLICKHOUSE_HOST` that belong to it. */
export interface PlacedShard extends ShardInfo {
  /** Its servers' URLs, in `CLICKHOUSE_HOST`'s order. */
  urls: string[];
}

/** Where each server of `CLICKHOUSE_HOST` belongs, as the servers said. */
export interface ShardMap {
  /** Every shard of the cluster, by `shard_num`, with its servers (maybe none). */
  shards: PlacedShard[];
  /** Servers that did not answer, with why: their shard is not known. */
  unplaced: Array<{ url: string; error: string }>;
}

/**
 * The statement that lists a cluster's shards and weights.
 *
 * @param cluster The cluster's name.
 * @returns `SELECT shard_num, shard_weight ...`, one row per shard.
 */
export function shardsSql(cluster: string): string {
  return `SELECT shard_num AS num, any(shard_weight) AS weight FROM system.clusters ` +
    `WHERE cluster = ${quoteString(cluster)} GROUP BY shard_num ORDER BY shard_num`;
}

/**
 * The statement that asks a server which shard of a cluster it is in.
 *
 * @param cluster The cluster's name.
 * @returns `SELECT DISTINCT shard_num ... WHERE is_local`.
 */
export function ownShardSql(cluster: string): string {
  return `SELECT DISTINCT shard_num AS num FROM system.clusters ` +
    `WHERE cluster = ${quoteString(cluster)} AND is_local = 1`;
}

/**
 * Slot table of a weighted split: shard `i` holds `weight` consecutive
 * slots, as a Distributed table lays its weights out.
 *
 * @param shards The shards, in order.
 * @returns For each slot, the index of its shard.
 */
export function shardSlots(shards: readonly ShardInfo[]): Uint16Array {
  const total = shards.reduce((sum, s) => sum + Math.max(0, s.weight), 0);
  const slots = new Uint16Array(total);
  let at = 0;
  for (const [i, shard] of shards.entries()) {
    for (let w = 0; w < shard.weight; w++) slots[at++] = i;
  }
  return slots;
}

/**
 * A 32-bit hash of a row's Kafka position: FNV-1a over the offset's digits,
 * the partition and the index, then MurmurHash3's finaliser, so that
 * consecutive offsets spread evenly.
 *
 * @param origin Where the row came from.
 * @returns An unsigned 32-bit hash.
 */
export function positionHash(origin: RecordOrigin): number {
  let h = 0x811c9dc5;
  const offset = origin.offset;
  for (let i = 0; i < offset.length; i++) {
    h = Math.imul(h ^ offset.charCodeAt(i), 0x01000193);
  }
  h = Math.imul(h ^ origin.partition, 0x01000193);
  h = Math.imul(h ^ origin.index, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Splits rows over the shards by {@link positionHash} and the slot table.
 *
 * @param origins The rows' positions, in order.
 * @param slots The slot table ({@link shardSlots}); not empty.
 * @param count How many shards there are.
 * @returns For each shard, the indexes of its rows, in order.
 */
export function splitByShard(
  origins: readonly RecordOrigin[],
  slots: Uint16Array,
  count: number,
): number[][] {
  const parts: number[][] = Array.from({ length: count }, () => []);
  for (let i = 0; i < origins.length; i++) {
    parts[slots[positionHash(origins[i]!) % slots.length]!]!.push(i);
  }
  return parts;
}

/**
 * Asks each server of `CLICKHOUSE_HOST` which shard of the cluster it is
 * in, and one of them for the cluster's shards.
 *
 * @param client The sink's client: its settings and servers (`CLICKHOUSE_HOST`).
 * @param name The cluster's name (`CLICKHOUSE_CLUSTER`).
 * @param urls The servers to place.
 * @returns The shards with their servers, and the servers that did not answer.
 * @throws {Error} When a server knows no such cluster, or cannot tell its shard.
 */
export async function placeServers(
  client: ClickHouseClient,
  name: string,
  urls: readonly string[],
): Promise<ShardMap> {
  let shards: PlacedShard[] | undefined;
  const unplaced: ShardMap["unplaced"] = [];
  const placed: Array<{ url: string; num: number }> = [];
  for (const url of urls) {
    const probe = client.forServers([url]);
    try {
      await probe.reopen();
      let own: Array<{ num: number | string }>;
      try {
        shards ??= (await probe.select<{ num: number | string; weight: number | string }>(
          shardsSql(name),
        )).map((r) => ({ num: Number(r.num), weight: Number(r.weight), urls: [] }));
        own = await probe.select<{ num: number | string }>(ownShardSql(name));
      } catch (error) {
        unplaced.push({ url, error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      if (shards.length === 0) {
        throw new Error(
          `Cannot write to ClickHouse cluster "${name}": the server at ${url} has no such ` +
            `cluster in system.clusters (its remote_servers)`,
        );
      }
      if (own.length !== 1) {
        throw new Error(
          `Cannot tell which shard of ClickHouse cluster "${name}" the server at ${url} is in: ` +
            `system.clusters marks ${own.length} shards as local (is_local)`,
        );
      }
      placed.push({ url, num: Number(own[0]!.num) });
    } finally {
      await probe.close();
    }
  }
  const all = shards ?? [];
  for (const { url, num } of placed) {
    const shard = all.find((s) => s.num === num);
    if (shard === undefined) {
      throw new Error(
        `Cannot place the ClickHouse server at ${url}: it says it is in shard ${num} of ` +
          `cluster "${name}", which the other servers do not list`,
      );
    }
    shard.urls.push(url);
  }
  return { shards: all, unplaced };
}
