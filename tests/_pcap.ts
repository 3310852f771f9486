/**
 * Writes classic libpcap capture files of synthetic traffic, for feeding the
 * real NetFlow producer chain (softflowd → nfacctd) with flows whose packet
 * and byte counts the test knows in advance.
 *
 * The file is the classic format (magic `0xa1b2c3d4`, version 2.4,
 * microsecond timestamps, link type 1 = Ethernet), see
 * https://www.tcpdump.org/manpages/pcap-savefile.5.html. Each packet is an
 * Ethernet II frame carrying IPv4 (RFC 791, header checksum set) or IPv6
 * (RFC 8200) and TCP or UDP with correct lengths and checksums. Frames are
 * not padded to Ethernet's 60-byte minimum: softflowd counts
 * `frame length - 14` as the flow's bytes, so padding would inflate small
 * packets.
 *
 * NetFlow reports IP-level bytes (`IN_BYTES`, RFC 3954: "incoming counter ...
 * for the number of bytes associated with an IP flow"), which is why a flow's
 * size is given as the IP total length per packet.
 *
 * @module
 */

/** One unidirectional flow to put in a capture. */
export interface FlowSpec {
  /** Source IPv4 or IPv6 address (both ends must be of the same family). */
  src: string;
  /** Destination address. */
  dst: string;
  /** Source port, 0 to 65535. */
  srcPort: number;
  /** Destination port, 0 to 65535. */
  dstPort: number;
  /** Transport protocol. */
  proto: "tcp" | "udp";
  /** Number of packets, at least 1. */
  packets: number;
  /**
   * IP total length of every packet in bytes (IPv4 header 20 / IPv6 header 40
   * included, Ethernet header excluded), at least IP header + TCP 20 / UDP 8,
   * at most 65535.
   */
  bytesPerPacket: number;
  /** Unix time of the first packet in seconds; fractions are kept to the microsecond. */
  startSec: number;
  /**
   * Milliseconds between consecutive packets of this flow.
   * @default {CaptureOptions.intervalMs}
   */
  intervalMs?: number;
  /**
   * IPv4 TOS byte / IPv6 traffic class.
   * @default {0}
   */
  tos?: number;
  /**
   * TCP flags byte of every packet (ignored for UDP).
   * @default {0x18} (PSH|ACK: no SYN/FIN/RST, so softflowd applies no special timeout)
   */
  tcpFlags?: number;
}

/** Options of {@link makeCapture}. */
export interface CaptureOptions {
  /**
   * Default milliseconds between consecutive packets of one flow.
   * @default {10}
   */
  intervalMs?: number;
}

/** What a NetFlow exporter should report for one flow of a capture. */
export interface ExpectedFlow {
  /** Source address, in the canonical text form `inet_ntop(3)` (and so pmacct) prints. */
  src: string;
  /** Destination address, canonical form. */
  dst: string;
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Transport protocol, as pmacct's `ip_proto` prints it. */
  proto: "tcp" | "udp";
  /**
   * TOS / traffic class written in the packets. softflowd 1.1.0 exports it
   * for IPv4 only: IPv6 flows reach pmacct with `tos` 0.
   */
  tos: number;
  /** Packets of the flow. */
  packets: number;
  /** IP-level bytes of the flow (sum of IP total lengths). */
  bytes: number;
  /** Unix time of the first packet, seconds (may have a fraction). */
  firstSec: number;
  /** Unix time of the last packet, seconds (may have a fraction). */
  lastSec: number;
}

/** The 5-tuple of a flow, in any of the shapes the helpers use. */
export interface FlowTuple {
  /** Source address (any valid text form). */
  src: string;
  /** Destination address (any valid text form). */
  dst: string;
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Transport protocol name. */
  proto: string;
}

const PCAP_MAGIC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;
const ETH_HEADER = 14;
const SRC_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;
const L4_HEADER = { tcp: 20, udp: 8 } as const;

/**
 * Parses an IPv4 or IPv6 address.
 *
 * @param text Dotted quad, or IPv6 text (`::` compression and a trailing
 *   dotted quad allowed; no zone).
 * @returns 4 or 16 bytes.
 * @throws {SyntaxError} When the text is not an address.
 */
export function parseIp(text: string): Uint8Array {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const v6 = parseIpv6(text);
  if (v6) return v6;
  throw new SyntaxError(`Cannot parse IP address: got "${text}"`);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * Formats an address the way glibc's `inet_ntop(3)` does, which is what
 * pmacct prints: IPv6 lower case, the longest run (first on a tie) of two or
 * more zero groups as `::`, and `::ffff:a.b.c.d` / `::a.b.c.d` for
 * IPv4-mapped / -compatible addresses.
 *
 * @param bytes 4 or 16 bytes.
 * @returns The text form.
 * @throws {RangeError} When the length is neither 4 nor 16.
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) {
    throw new RangeError(`Cannot format IP address: expected 4 or 16 bytes, got ${bytes.length}`);
  }
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestBase = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [bestBase, bestLen] = [i, j - i];
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (
      i === 6 && bestBase === 0 &&
      (bestLen === 6 || bestLen === 7 && words[7] !== 0x0001 ||
        bestLen === 5 && words[5] === 0xffff)
    ) {
      out += Array.from(bytes.subarray(12)).join(".");
      break;
    }
    out += words[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ":";
  return out;
}

/**
 * A stable key for a flow's 5-tuple, with addresses canonicalised, so that
 * an {@link ExpectedFlow} and a pmacct record of the same flow compare equal.
 *
 * @param flow The 5-tuple.
 * @returns E.g. `udp 10.0.0.1:5000 > 2001:db8::1:53` (addresses canonical).
 * @throws {SyntaxError} When an address does not parse.
 */
export function flowKey(flow: FlowTuple): string {
  const src = formatIp(parseIp(flow.src));
  const dst = formatIp(parseIp(flow.dst));
  return `${flow.proto} ${src}:${flow.srcPort} > ${dst}:${flow.dstPort}`;
}

/** A flow spec after validation, with defaults applied. */
interface ResolvedFlow {
  spec: FlowSpec;
  src: Uint8Array;
  dst: Uint8Array;
  intervalMs: number;
  tos: number;
  tcpFlags: number;
}

function checkInt(
  problems: string[],
  where: string,
  name: string,
  v: unknown,
  min: number,
  max: number,
) {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    problems.push(
      `${where}: "${name}" must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  }
}

function resolveFlows(flows: readonly FlowSpec[], options: CaptureOptions): ResolvedFlow[] {
  const problems: string[] = [];
  const defaultInterval = options.intervalMs ?? 10;
  if (!(Number.isFinite(defaultInterval) && defaultInterval >= 0)) {
    problems.push(`"intervalMs" must be a number >= 0, got ${JSON.stringify(defaultInterval)}`);
  }
  const out: ResolvedFlow[] = [];
  const tosByTuple = new Map<string, number>();
  flows.forEach((spec, i) => {
    const where = `flow ${i}`;
    let src: Uint8Array | undefined, dst: Uint8Array | undefined;
    try {
      src = parseIp(spec.src);
    } catch {
      problems.push(`${where}: "src" must be an IP address, got ${JSON.stringify(spec.src)}`);
    }
    try {
      dst = parseIp(spec.dst);
    } catch {
      problems.push(`${where}: "dst" must be an IP address, got ${JSON.stringify(spec.dst)}`);
    }
    if (src && dst && src.length !== dst.length) {
      problems.push(
        `${where}: "src" and "dst" must be of one address family, got "${spec.src}" and "${spec.dst}"`,
      );
    }
    if (spec.proto !== "tcp" && spec.proto !== "udp") {
      problems.push(`${where}: "proto" must be "tcp" or "udp", got ${JSON.stringify(spec.proto)}`);
    }
    checkInt(problems, where, "srcPort", spec.srcPort, 0, 65535);
    checkInt(problems, where, "dstPort", spec.dstPort, 0, 65535);
    checkInt(problems, where, "packets", spec.packets, 1, 1_000_000);
    const minLen = (src?.length === 16 ? 40 : 20) + (L4_HEADER[spec.proto] ?? 20);
    checkInt(problems, where, "bytesPerPacket", spec.bytesPerPacket, minLen, 65535);
    checkInt(problems, where, "tos", spec.tos ?? 0, 0, 255);
    checkInt(problems, where, "tcpFlags", spec.tcpFlags ?? 0x18, 0, 255);
    if (!(Number.isFinite(spec.startSec) && spec.startSec >= 0 && spec.startSec < 2 ** 32)) {
      problems.push(
        `${where}: "startSec" must be Unix seconds, got ${JSON.stringify(spec.startSec)}`,
      );
    }
    const intervalMs = spec.intervalMs ?? defaultInterval;
    if (!(Number.isFinite(intervalMs) && intervalMs >= 0)) {
      problems.push(
        `${where}: "intervalMs" must be a number >= 0, got ${JSON.stringify(intervalMs)}`,
      );
    }
    if (src && dst) {
      // softflowd keeps one record per direction of a 5-tuple, with one TOS.
      const tuple = flowKey(spec);
      const tos = spec.tos ?? 0;
      const seen = tosByTuple.get(tuple);
      if (seen !== undefined && seen !== tos) {
        problems.push(
          `${where}: repeats flow ${tuple} with another "tos" (${tos}, earlier ${seen})`,
        );
      }
      tosByTuple.set(tuple, tos);
      out.push({ spec, src, dst, intervalMs, tos, tcpFlags: spec.tcpFlags ?? 0x18 });
    }
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join("; ");
    const more = problems.length > 10 ? `; and ${problems.length - 10} more` : "";
    throw new RangeError(`Cannot make capture: ${shown}${more}`);
  }
  return out;
}

/** One's complement sum of 16-bit big-endian words (RFC 1071), not yet folded. */
function sum16(bytes: Uint8Array, start: number, end: number, acc = 0): number {
  let s = acc;
  for (let i = start; i + 1 < end; i += 2) s += (bytes[i]! << 8) | bytes[i + 1]!;
  if ((end - start) % 2 === 1) s += bytes[end - 1]! << 8;
  return s;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/**
 * Builds one Ethernet frame.
 *
 * @returns The frame, exactly 14 + `bytesPerPacket` bytes.
 */
function buildFrame(flow: ResolvedFlow, seq: number): Uint8Array {
  const { spec, src, dst } = flow;
  const v6 = src.length === 16;
  const ipLen = spec.bytesPerPacket;
  const ipHeader = v6 ? 40 : 20;
  const l4Len = ipLen - ipHeader;
  const frame = new Uint8Array(ETH_HEADER + ipLen);
  const view = new DataView(frame.buffer);
  frame.set(DST_MAC, 0);
  frame.set(SRC_MAC, 6);
  view.setUint16(12, v6 ? 0x86dd : 0x0800);
  const ip = ETH_HEADER;
  const proto = PROTO_NUMBER[spec.proto];
  if (v6) {
    // Version 6, traffic class, flow label 0.
    view.setUint32(ip, (6 << 28) | (flow.tos << 20));
    view.setUint16(ip + 4, l4Len);
    frame[ip + 6] = proto;
    frame[ip + 7] = 64;
    frame.set(src, ip + 8);
    frame.set(dst, ip + 24);
  } else {
    frame[ip] = 0x45;
    frame[ip + 1] = flow.tos;
    view.setUint16(ip + 2, ipLen);
    view.setUint16(ip + 4, seq & 0xffff);
    view.setUint16(ip + 6, 0x4000); // DF, offset 0: never a fragment
    frame[ip + 8] = 64;
    frame[ip + 9] = proto;
    frame.set(src, ip + 12);
    frame.set(dst, ip + 16);
    view.setUint16(ip + 10, fold(sum16(frame, ip, ip + 20)));
  }
  const l4 = ip + ipHeader;
  view.setUint16(l4, spec.srcPort);
  view.setUint16(l4 + 2, spec.dstPort);
  let checksumAt: number;
  if (spec.proto === "tcp") {
    view.setUint32(l4 + 4, (seq * 1000) >>> 0); // sequence number
    view.setUint32(l4 + 8, 1); // acknowledgement number
    frame[l4 + 12] = 5 << 4; // data offset: 5 words, no options
    frame[l4 + 13] = flow.tcpFlags;
    view.setUint16(l4 + 14, 65535); // window
    checksumAt = l4 + 16;
  } else {
    view.setUint16(l4 + 4, l4Len);
    checksumAt = l4 + 6;
  }
  const payloadStart = l4 + L4_HEADER[spec.proto];
  for (let i = payloadStart; i < frame.length; i++) frame[i] = (i - payloadStart) & 0xff;
  // Pseudo-header (RFC 768 / RFC 793; RFC 8200 section 8.1) + segment.
  let s = sum16(src, 0, src.length) + sum16(dst, 0, dst.length) + proto + l4Len;
  s = sum16(frame, l4, frame.length, s);
  let checksum = fold(s);
  if (spec.proto === "udp" && checksum === 0) checksum = 0xffff;
  view.setUint16(checksumAt, checksum);
  return frame;
}

/** One packet of a capture file. */
export interface CapturedPacket {
  /** Whole seconds of the timestamp (Unix time). */
  sec: number;
  /** Microseconds past `sec`, 0 to 999999. */
  usec: number;
  /** Length of the packet on the wire (`orig_len`). */
  origLen: number;
  /** The captured bytes (`incl_len` of them). */
  data: Uint8Array;
}

/** A parsed classic libpcap file. */
export interface Capture {
  /** Link-layer header type (1 = Ethernet), https://www.tcpdump.org/linktypes.html. */
  linkType: number;
  /** Snapshot length from the file header. */
  snaplen: number;
  /** The packets, in file order. */
  packets: CapturedPacket[];
}

/**
 * Writes a classic libpcap file (little-endian, microsecond timestamps).
 *
 * @param capture Link type, snapshot length and packets.
 * @returns The bytes of the `.pcap` file.
 * @throws {RangeError} When a timestamp or length does not fit the format.
 */
export function writeCapture(capture: Capture): Uint8Array {
  const total = 24 + capture.packets.reduce((n, p) => n + 16 + p.data.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  // Global header; readers detect the byte order from the magic number.
  view.setUint32(0, PCAP_MAGIC, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setInt32(8, 0, true); // thiszone
  view.setUint32(12, 0, true); // sigfigs
  view.setUint32(16, capture.snaplen, true);
  view.setUint32(20, capture.linkType, true);
  let at = 24;
  for (const [i, p] of capture.packets.entries()) {
    if (
      !Number.isInteger(p.sec) || p.sec < 0 || p.sec >= 2 ** 32 ||
      !Number.isInteger(p.usec) || p.usec < 0 || p.usec > 999_999 ||
      !(p.origLen >= p.data.length && p.origLen < 2 ** 32)
    ) {
      throw new RangeError(
        `Cannot write capture: packet ${i} has timestamp ${p.sec}.${p.usec} and lengths ${p.data.length}/${p.origLen}`,
      );
    }
    view.setUint32(at, p.sec, true);
    view.setUint32(at + 4, p.usec, true);
    view.setUint32(at + 8, p.data.length, true); // incl_len
    view.setUint32(at + 12, p.origLen, true); // orig_len
    out.set(p.data, at + 16);
    at += 16 + p.data.length;
  }
  return out;
}

/**
 * Reads a classic libpcap file, either byte order, microsecond
 * (`0xa1b2c3d4`) or nanosecond (`0xa1b23c4d`) timestamps (nanoseconds are
 * truncated to microseconds). pcapng is not supported.
 *
 * @param bytes The file.
 * @returns Its link type, snapshot length and packets.
 * @throws {SyntaxError} When the file is not a classic pcap file or is truncated.
 */
export function parseCapture(bytes: Uint8Array): Capture {
  if (bytes.length < 24) {
    throw new SyntaxError(
      `Cannot parse capture: ${bytes.length} bytes is shorter than the 24-byte header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLe = view.getUint32(0, true);
  const magicBe = view.getUint32(0, false);
  let le: boolean, nanos: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    [le, nanos] = [true, magicLe === 0xa1b23c4d];
  } else if (magicBe === 0xa1b2c3d4 || magicBe === 0xa1b23c4d) {
    [le, nanos] = [false, magicBe === 0xa1b23c4d];
  } else {
    throw new SyntaxError(
      `Cannot parse capture: unknown magic number 0x${magicBe.toString(16).padStart(8, "0")}`,
    );
  }
  const snaplen = view.getUint32(16, le);
  const linkType = view.getUint32(20, le) & 0x0fffffff; // upper bits: FCS info
  const packets: CapturedPacket[] = [];
  let at = 24;
  while (at < bytes.length) {
    if (at + 16 > bytes.length) {
      throw new SyntaxError(`Cannot parse capture: truncated record header at byte ${at}`);
    }
    const sec = view.getUint32(at, le);
    const frac = view.getUint32(at + 4, le);
    const inclLen = view.getUint32(at + 8, le);
    const origLen = view.getUint32(at + 12, le);
    if (at + 16 + inclLen > bytes.length) {
      throw new SyntaxError(
        `Cannot parse capture: truncated packet ${packets.length} at byte ${at}`,
      );
    }
    packets.push({
      sec,
      usec: nanos ? Math.floor(frac / 1000) : frac,
      origLen,
      data: bytes.slice(at + 16, at + 16 + inclLen),
    });
    at += 16 + inclLen;
  }
  return { linkType, snaplen, packets };
}

/**
 * Merges captures of one link type into one file, packets in timestamp
 * order (ties keep the order of the arguments, then of the files).
 *
 * @param captures Classic pcap files.
 * @returns The merged file.
 * @throws {SyntaxError} When a file does not parse.
 * @throws {RangeError} When the link types differ or no capture is given.
 */
export function concatCaptures(...captures: Uint8Array[]): Uint8Array {
  const parsed = captures.map(parseCapture);
  const first = parsed[0];
  if (!first) throw new RangeError("Cannot merge captures: no capture given");
  const types = new Set(parsed.map((c) => c.linkType));
  if (types.size > 1) {
    throw new RangeError(`Cannot merge captures: link types differ, got ${[...types].join(", ")}`);
  }
  const packets = parsed.flatMap((c) => c.packets);
  const order = packets.map((_, i) => i);
  order.sort((a, b) => {
    const pa = packets[a]!, pb = packets[b]!;
    return pa.sec - pb.sec || pa.usec - pb.usec || a - b;
  });
  return writeCapture({
    linkType: first.linkType,
    snaplen: Math.max(...parsed.map((c) => c.snaplen)),
    packets: order.map((i) => packets[i]!),
  });
}

/**
 * Makes a libpcap capture file of the given flows: every packet of every
 * flow, all flows interleaved in timestamp order (ties keep flow order).
 * Packet `k` of a flow is stamped `startSec + k * intervalMs / 1000`.
 *
 * @param flows The flows; flows with the same 5-tuple add up (they must
 *   then share `tos`).
 * @param options Defaults for the flows.
 * @returns The bytes of the `.pcap` file (Ethernet link type).
 * @throws {RangeError} Listing the invalid fields of the flows.
 */
export function makeCapture(flows: readonly FlowSpec[], options: CaptureOptions = {}): Uint8Array {
  const resolved = resolveFlows(flows, options);
  const stamps: { micros: number; flow: number; seq: number }[] = [];
  resolved.forEach((flow, i) => {
    const start = Math.round(flow.spec.startSec * 1e6);
    for (let k = 0; k < flow.spec.packets; k++) {
      stamps.push({ micros: start + Math.round(k * flow.intervalMs * 1000), flow: i, seq: k });
    }
  });
  stamps.sort((a, b) => a.micros - b.micros || a.flow - b.flow || a.seq - b.seq);
  return writeCapture({
    linkType: LINKTYPE_ETHERNET,
    snaplen: SNAPLEN,
    packets: stamps.map((p) => {
      const data = buildFrame(resolved[p.flow]!, p.seq);
      return { sec: Math.floor(p.micros / 1e6), usec: p.micros % 1e6, origLen: data.length, data };
    }),
  });
}

/**
 * What a NetFlow exporter reading {@link makeCapture}'s file must report:
 * one entry per distinct 5-tuple (specs with the same 5-tuple summed), in
 * order of first appearance.
 *
 * @param flows The same flows given to {@link makeCapture}.
 * @param options The same options given to {@link makeCapture}.
 * @returns Packets and IP-level bytes per flow, addresses canonical.
 * @throws {RangeError} When a flow is invalid (as {@link makeCapture}).
 */
export function expectedFlows(
  flows: readonly FlowSpec[],
  options: CaptureOptions = {},
): ExpectedFlow[] {
  const byKey = new Map<string, ExpectedFlow>();
  for (const flow of resolveFlows(flows, options)) {
    const { spec } = flow;
    const key = flowKey(spec);
    const firstSec = spec.startSec;
    const lastSec = spec.startSec + (spec.packets - 1) * flow.intervalMs / 1000;
    const seen = byKey.get(key);
    if (seen) {
      seen.packets += spec.packets;
      seen.bytes += spec.packets * spec.bytesPerPacket;
      seen.firstSec = Math.min(seen.firstSec, firstSec);
      seen.lastSec = Math.max(seen.lastSec, lastSec);
      continue;
    }
    byKey.set(key, {
      src: formatIp(flow.src),
      dst: formatIp(flow.dst),
      srcPort: spec.srcPort,
      dstPort: spec.dstPort,
      proto: spec.proto,
      tos: flow.tos,
      packets: spec.packets,
      bytes: spec.packets * spec.bytesPerPacket,
      firstSec,
      lastSec,
    });
  }
  return [...byKey.values()];
}
