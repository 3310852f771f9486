/**
 * pmacct-like flow records for integration tests: each has a unique `seq`,
 * an address derived from it and counters that vary with it.
 *
 * @module
 */

/**
 * A pmacct kafka-plugin record (`kafka_output: json`, `kafka_history`).
 *
 * @param seq The record's unique number.
 * @param fields Fields to add or replace (e.g. another `stamp_updated`).
 * @returns The record.
 */
export function flowRecord(
  seq: number,
  fields: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    event_type: "purge",
    seq,
    ip_src: `10.0.${(seq >> 8) & 255}.${seq & 255}`,
    ip_dst: "192.0.2.1",
    port_src: 1024 + (seq % 60000),
    port_dst: 443,
    ip_proto: "tcp",
    stamp_inserted: "2026-11-21 23:25:00",
    stamp_updated: "2026-11-21 23:27:47",
    packets: seq % 100 + 1,
    bytes: (seq % 100 + 1) * 60,
    ...fields,
  };
}

/**
 * Kafka message values of records `from` to `to - 1`, one record each.
 *
 * @param from The first `seq`.
 * @param to One past the last `seq`.
 * @param record Builds each record; {@link flowRecord} by default.
 * @returns JSON texts.
 */
export function flowMessages(
  from: number,
  to: number,
  record: (seq: number) => Record<string, unknown> = flowRecord,
): string[] {
  return Array.from({ length: to - from }, (_, i) => JSON.stringify(record(from + i)));
}
