/**
 * Where the local test services answer (started by `scripts/services.sh`).
 * A test that needs a service and cannot reach it fails; it never skips.
 *
 * @module
 */

/** ClickHouse HTTP URL of the local test instance. */
export function clickhouseUrl(): string {
  return `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;
}

/** Kafka bootstrap address of the local test broker. */
export function kafkaBrokers(): string {
  return `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
}

/**
 * A name no other test run uses, for tables, topics and groups.
 *
 * @param prefix What the name is for.
 * @returns E.g. `t_clickhouse_1732233600000_ab12`.
 */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now()}_${Math.random().toString(36).slice(2, 6)}`;
}
