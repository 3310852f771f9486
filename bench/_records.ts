/**
 * The benchmark's 20-column records: what nfacctd's kafka plugin writes with
 * the `aggregate` users of a flow collector actually configure (exporter,
 * interfaces, AS numbers, hosts and masks, ports, TCP flags, protocol, ToS,
 * sampling rate, the flow's start and end), `kafka_history: 5m`, `flows`
 * and the `writer_id` the plugin appends: 25 fields, about 536 bytes of JSON.
 *
 * The keys and their JSON types are pmacct's (`compose_json_*()` in
 * `src/plugin_cmn_json.c`, in that order): AS numbers, interfaces, masks,
 * ports, ToS, sampling rate and counters are JSON integers; `tcp_flags` is
 * the decimal value as a string (`"24"`), `ip_proto` the protocol's name;
 * `timestamp_start`/`timestamp_end` carry microseconds
 * (`2026-12-06 07:00:00.123456`) unless `timestamps_secs` is set; the
 * writer is `<plugin name>/<pid>`, and the pid is a new one each purge, since
 * pmacct forks a writer per purge.
 *
 * The traffic is the demo's (`flowRecord()` of `scripts/demo_feed.ts`: the
 * same hosts, services, counters and times), with the other fields derived
 * from it the way one network would show them: each address belongs to one
 * AS and one prefix length, each exporter has its own interfaces and
 * sampling rate. That keeps what a time series database makes series of
 * (everything but ports, times and the writer) to a few thousand
 * combinations, as in a real deployment, however many records there are.
 *
 * @module
 */

import { flowRecord, pmacctTime, random } from "../scripts/demo_feed.ts";

/** A flow record as nfacctd's kafka plugin writes it with a typical aggregate. */
export interface NfacctdRecord {
  /** Always `purge`: the record left pmacct's cache. */
  event_type: "purge";
  /** Source AS (`src_as`). */
  as_src: number;
  /** Destination AS (`dst_as`). */
  as_dst: number;
  /** The BGP next AS towards the destination, 0 when it is ours (`peer_dst_as`). */
  peer_as_dst: number;
  /** The NetFlow exporter's address (`peer_src_ip`). */
  peer_ip_src: string;
  /** Input interface index (`in_iface`). */
  iface_in: number;
  /** Output interface index (`out_iface`). */
  iface_out: number;
  /** Source address (`src_host`). */
  ip_src: string;
  /** Destination address (`dst_host`). */
  ip_dst: string;
  /** Source prefix length (`src_mask`). */
  mask_src: number;
  /** Destination prefix length (`dst_mask`). */
  mask_dst: number;
  /** Source port (`src_port`). */
  port_src: number;
  /** Destination port (`dst_port`). */
  port_dst: number;
  /** The TCP flags seen, ORed, as a decimal string (`tcpflags`). */
  tcp_flags: string;
  /** Protocol name (`proto`). */
  ip_proto: string;
  /** Type of service byte (`tos`). */
  tos: number;
  /** The exporter's sampling rate (`sampling_rate`). */
  sampling_rate: number;
  /** First packet, `YYYY-MM-DD HH:MM:SS.uuuuuu` UTC. */
  timestamp_start: string;
  /** Last packet, `YYYY-MM-DD HH:MM:SS.uuuuuu` UTC. */
  timestamp_end: string;
  /** Start of the 5-minute bin, `YYYY-MM-DD HH:MM:SS` UTC. */
  stamp_inserted: string;
  /** Time of the purge, `YYYY-MM-DD HH:MM:SS` UTC. */
  stamp_updated: string;
  /** NetFlow records aggregated into this one. */
  flows: number;
  /** Packets of the flow in this bin. */
  packets: number;
  /** Bytes of the flow in this bin. */
  bytes: number;
  /** The plugin's name and its writer's pid. */
  writer_id: string;
}

/** Our own AS (RFC 6996 private range, as every AS here). */
const OUR_AS = 64512;
/** The ASes behind the outside addresses, each with its prefix length. */
const REMOTE = [
  { as: 64600, mask: 24 },
  { as: 64700, mask: 22 },
  { as: 65001, mask: 20 },
  { as: 65100, mask: 24 },
  { as: 65200, mask: 19 },
  { as: 65432, mask: 23 },
] as const;
/** The transit ASes our two uplinks lead to: `peer_as_dst` of outbound traffic. */
const UPSTREAMS = [65010, 65020] as const;
/** Per exporter (by `peer_ip_src`): sampling rate, inside interfaces, uplink per upstream. */
const EXPORTERS: Readonly<Record<string, { rate: number; inside: number[]; uplinks: number[] }>> = {
  "198.51.100.1": { rate: 1000, inside: [11, 12, 13], uplinks: [1, 2] },
  "198.51.100.2": { rate: 512, inside: [524, 525], uplinks: [515, 516] },
};
const FALLBACK_EXPORTER = { rate: 1, inside: [1], uplinks: [2, 3] };
/** Cumulative TCP flags of flows with several packets: ACK|PSH, +SYN, +FIN, +RST. */
const TCP_FLAGS_LONG = ["24", "24", "26", "27", "27", "27", "31", "25"] as const;
/** Of one-packet TCP flows: SYN, ACK, RST|ACK. */
const TCP_FLAGS_SHORT = ["2", "16", "16", "20"] as const;

/** A stable small hash of a string (FNV-1a), to tie a value to an address. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Whether an address is one of the demo's inside hosts (RFC 1918, or 2001:db8:10::/48). */
function isInside(ip: string): boolean {
  return ip.startsWith("10.") || ip.startsWith("2001:db8:10:");
}

/** The AS and prefix length an address is routed by. */
function routeOf(ip: string): { as: number; mask: number } {
  const v6 = ip.includes(":");
  if (isInside(ip)) return { as: OUR_AS, mask: v6 ? 64 : 24 };
  const remote = REMOTE[hash(ip) % REMOTE.length]!;
  return { as: remote.as, mask: v6 ? 48 : remote.mask };
}

/**
 * Formats epoch microseconds as pmacct does for `timestamp_start`/`_end`.
 *
 * @param micros Epoch microseconds.
 * @returns E.g. `2026-12-06 07:00:00.123456` (UTC).
 */
function pmacctMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  return `${pmacctTime(ms)}.${String(micros - Math.floor(ms / 1000) * 1_000_000).padStart(6, "0")}`;
}

/** The TCP flags of a flow: `"0"` for other protocols, as pmacct writes them. */
function tcpFlags(proto: string, packets: number, r: number): string {
  if (proto !== "tcp") return "0";
  const list = packets === 1 ? TCP_FLAGS_SHORT : TCP_FLAGS_LONG;
  return list[Math.floor(r * list.length)]!;
}

/**
 * Generates record number `i`: the same `i` gives the same flow, apart from
 * its timestamps: the purge (`stamp_updated`) within the 10 minutes before
 * `now`, the flow's end within the minute before the purge but not before
 * its 5-minute bin, its start up to 2 minutes before its end.
 *
 * @param i The record number.
 * @param now The newest `stamp_updated`, epoch milliseconds.
 * @returns The record.
 */
export function nfacctdRecord(i: number, now: number): NfacctdRecord {
  const flow = flowRecord(i, now);
  const r = random(Math.imul(i ^ 0x5bd1e995, 0x85ebca6b));
  const exporter = EXPORTERS[flow.peer_ip_src] ?? FALLBACK_EXPORTER;
  const src = routeOf(flow.ip_src), dst = routeOf(flow.ip_dst);
  const outbound = isInside(flow.ip_src);
  const remote = outbound ? dst : src;
  // Each remote AS is reached over one upstream, so over one uplink.
  const upstream = remote.as % UPSTREAMS.length;
  const uplink = exporter.uplinks[upstream % exporter.uplinks.length]!;
  const inside = exporter
    .inside[hash(outbound ? flow.ip_src : flow.ip_dst) % exporter.inside.length]!;
  const updated = Date.parse(`${flow.stamp_updated.replace(" ", "T")}Z`);
  const bin = Date.parse(`${flow.stamp_inserted.replace(" ", "T")}Z`);
  // pmacct bins a flow by its time, so its end lies in the bin, before the purge
  // (stamp_updated is that second, its fraction cut); long flows started long before.
  const window = Math.min(60_000_000, (updated - bin) * 1000 + 1_000_000);
  const end = updated * 1000 + 999_999 - Math.floor(r() * window);
  const start = end - Math.floor(flow.packets > 1 ? r() ** 2 * 120_000_000 : r() * 1000);
  return {
    event_type: "purge",
    as_src: src.as,
    as_dst: dst.as,
    peer_as_dst: outbound ? UPSTREAMS[upstream]! : 0,
    peer_ip_src: flow.peer_ip_src,
    iface_in: outbound ? inside : uplink,
    iface_out: outbound ? uplink : inside,
    ip_src: flow.ip_src,
    ip_dst: flow.ip_dst,
    mask_src: src.mask,
    mask_dst: dst.mask,
    port_src: flow.port_src,
    port_dst: flow.port_dst,
    tcp_flags: tcpFlags(flow.ip_proto, flow.packets, r()),
    ip_proto: flow.ip_proto,
    tos: flow.tos,
    sampling_rate: exporter.rate,
    timestamp_start: pmacctMicros(start),
    timestamp_end: pmacctMicros(end),
    stamp_inserted: flow.stamp_inserted,
    stamp_updated: flow.stamp_updated,
    flows: 1 + Math.floor(r() ** 4 * 4),
    packets: flow.packets,
    bytes: flow.bytes,
    // A writer per purge (every 60 s, kafka_refresh_time), each a new pid.
    writer_id: `nfacctd_kafka/${2000 + Math.floor(updated / 60_000) % 30_000}`,
  };
}
