import dgram from "node:dgram";
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStrictEquals, assertThrows } from "./_assert.ts";
import {
  concatCaptures,
  expectedFlows,
  flowKey,
  type FlowSpec,
  formatIp,
  makeCapture,
  parseCapture,
  parseIp,
} from "./_pcap.ts";
import { replayCapture } from "./_pmacct.ts";

const START = 1_790_000_000;

const FLOWS: FlowSpec[] = [
  {
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 50000,
    dstPort: 443,
    proto: "tcp",
    packets: 3,
    bytesPerPacket: 1500,
    startSec: START,
    tos: 0x28,
  },
  {
    src: "2001:DB8:0:0:0:0:0:10",
    dst: "2001:db8:1::53",
    srcPort: 40000,
    dstPort: 53,
    proto: "udp",
    packets: 2,
    bytesPerPacket: 90,
    startSec: START + 0.0015,
    intervalMs: 250,
  },
  {
    src: "192.168.1.10",
    dst: "8.8.8.8",
    srcPort: 53535,
    dstPort: 53,
    proto: "udp",
    packets: 1,
    bytesPerPacket: 28,
    startSec: START + 1,
  },
  {
    src: "2001:db8::10",
    dst: "2001:db8:1::443",
    srcPort: 40001,
    dstPort: 443,
    proto: "tcp",
    packets: 4,
    bytesPerPacket: 60,
    startSec: START + 2,
    tcpFlags: 0x12,
  },
];

/** RFC 1071: a header with its checksum in place sums to 0xffff. */
function onesSum(bytes: Uint8Array, start = 0, end = bytes.length, acc = 0): number {
  let s = acc;
  for (let i = start; i + 1 < end; i += 2) s += (bytes[i]! << 8) | bytes[i + 1]!;
  if ((end - start) % 2 === 1) s += bytes[end - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

interface Decoded {
  time: number;
  v6: boolean;
  tos: number;
  ipLength: number;
  proto: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  tcpFlags?: number;
  ipChecksumOk: boolean;
  l4ChecksumOk: boolean;
}

/** Decodes the Ethernet/IP/TCP-UDP headers that makeCapture() writes. */
function decode(packet: { sec: number; usec: number; origLen: number; data: Uint8Array }): Decoded {
  const d = packet.data;
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  assertStrictEquals(packet.origLen, d.length);
  const etherType = view.getUint16(12);
  const v6 = etherType === 0x86dd;
  assert(v6 || etherType === 0x0800, `unexpected EtherType 0x${etherType.toString(16)}`);
  const ip = 14;
  let ipLength: number, proto: number, tos: number, src: Uint8Array, dst: Uint8Array, l4: number;
  let ipChecksumOk = true;
  if (v6) {
    assertStrictEquals(d[ip]! >> 4, 6);
    tos = (view.getUint32(ip) >> 20) & 0xff;
    ipLength = 40 + view.getUint16(ip + 4);
    proto = d[ip + 6]!;
    src = d.subarray(ip + 8, ip + 24);
    dst = d.subarray(ip + 24, ip + 40);
    l4 = ip + 40;
  } else {
    assertStrictEquals(d[ip], 0x45);
    tos = d[ip + 1]!;
    ipLength = view.getUint16(ip + 2);
    assertStrictEquals(view.getUint16(ip + 6), 0x4000, "DF set, not a fragment");
    proto = d[ip + 9]!;
    src = d.subarray(ip + 12, ip + 16);
    dst = d.subarray(ip + 16, ip + 20);
    ipChecksumOk = onesSum(d, ip, ip + 20) === 0xffff;
    l4 = ip + 20;
  }
  assertStrictEquals(d.length, 14 + ipLength, "frame is exactly Ethernet header + IP packet");
  const l4Length = d.length - l4;
  if (proto === 17) assertStrictEquals(view.getUint16(l4 + 4), l4Length, "UDP length");
  const pseudo = onesSum(src, 0, src.length, onesSum(dst, 0, dst.length)) + proto + l4Length;
  return {
    time: packet.sec + packet.usec / 1e6,
    v6,
    tos,
    ipLength,
    proto,
    src: formatIp(src),
    dst: formatIp(dst),
    srcPort: view.getUint16(l4),
    dstPort: view.getUint16(l4 + 2),
    tcpFlags: proto === 6 ? d[l4 + 13] : undefined,
    ipChecksumOk,
    l4ChecksumOk: onesSum(d, l4, d.length, pseudo) === 0xffff,
  };
}

Deno.test("makeCapture() writes a classic pcap header for Ethernet", () => {
  const bytes = makeCapture(FLOWS);
  const view = new DataView(bytes.buffer);
  assertStrictEquals(view.getUint32(0, true), 0xa1b2c3d4);
  assertStrictEquals(view.getUint16(4, true), 2);
  assertStrictEquals(view.getUint16(6, true), 4);
  assertStrictEquals(view.getUint32(20, true), 1);
  const capture = parseCapture(bytes);
  assertStrictEquals(capture.linkType, 1);
  assertStrictEquals(capture.packets.length, 3 + 2 + 1 + 4);
});

Deno.test("makeCapture() writes every packet with its flow's addresses, ports, lengths and TOS", () => {
  const packets = parseCapture(makeCapture(FLOWS)).packets.map(decode);
  for (const flow of FLOWS) {
    const mine = packets.filter((p) => p.srcPort === flow.srcPort && p.dstPort === flow.dstPort);
    assertStrictEquals(mine.length, flow.packets, `packets of ${flowKey(flow)}`);
    for (const p of mine) {
      assertStrictEquals(p.src, formatIp(parseIp(flow.src)));
      assertStrictEquals(p.dst, formatIp(parseIp(flow.dst)));
      assertStrictEquals(p.proto, flow.proto === "tcp" ? 6 : 17);
      assertStrictEquals(p.ipLength, flow.bytesPerPacket);
      assertStrictEquals(p.tos, flow.tos ?? 0);
      if (flow.proto === "tcp") assertStrictEquals(p.tcpFlags, flow.tcpFlags ?? 0x18);
    }
  }
});

Deno.test("makeCapture() sets correct IPv4 header and TCP/UDP checksums", () => {
  const packets = parseCapture(makeCapture(FLOWS)).packets.map(decode);
  assert(packets.every((p) => p.ipChecksumOk), "IPv4 header checksums");
  assert(packets.every((p) => p.l4ChecksumOk), "TCP/UDP checksums over the pseudo-header");
});

Deno.test("makeCapture() stamps packet k of a flow at startSec + k * intervalMs, in time order", () => {
  const packets = parseCapture(makeCapture(FLOWS, { intervalMs: 100 })).packets.map(decode);
  const times = packets.map((p) => p.time);
  assertEquals(times, [...times].sort((a, b) => a - b));
  const v6udp = packets.filter((p) => p.srcPort === 40000).map((p) => p.time);
  assertEquals(v6udp.map((t) => Math.round((t - START) * 1e6)), [1500, 251500]);
  const tcp = packets.filter((p) => p.srcPort === 50000).map((p) => p.time);
  assertEquals(tcp.map((t) => Math.round((t - START) * 1e3)), [0, 100, 200]);
});

Deno.test("makeCapture() lists every invalid field of every flow", () => {
  const bad = [
    { ...FLOWS[0]!, src: "10.0.0.256", packets: 0 },
    { ...FLOWS[1]!, bytesPerPacket: 47, proto: "udp" as const },
    { ...FLOWS[2]!, dst: "2001:db8::1" },
  ];
  let message = "";
  try {
    makeCapture(bad);
  } catch (error) {
    assert(error instanceof RangeError);
    message = error.message;
  }
  assertMatch(message, /^Cannot make capture: /);
  assertMatch(message, /flow 0: "src" must be an IP address, got "10.0.0.256"/);
  assertMatch(message, /flow 0: "packets" must be an integer from 1/);
  assertMatch(message, /flow 1: "bytesPerPacket" must be an integer from 48 to 65535, got 47/);
  assertMatch(message, /flow 2: "src" and "dst" must be of one address family/);
});

Deno.test("expectedFlows() gives packets and IP bytes per 5-tuple, canonical addresses, repeats summed", () => {
  const flows: FlowSpec[] = [...FLOWS, {
    ...FLOWS[0]!,
    packets: 2,
    bytesPerPacket: 40,
    startSec: START + 5,
  }];
  const expected = expectedFlows(flows);
  assertStrictEquals(expected.length, 4);
  assertEquals(expected[0], {
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 50000,
    dstPort: 443,
    proto: "tcp",
    tos: 0x28,
    packets: 5,
    bytes: 3 * 1500 + 2 * 40,
    firstSec: START,
    lastSec: START + 5.01,
  });
  assertStrictEquals(expected[1]!.src, "2001:db8::10");
  assertStrictEquals(expected[1]!.bytes, 180);
  const captured = parseCapture(makeCapture(flows)).packets.map(decode);
  const total = captured.reduce((n, p) => n + p.ipLength, 0);
  assertStrictEquals(total, expected.reduce((n, f) => n + f.bytes, 0));
});

Deno.test("formatIp() prints addresses as inet_ntop(3) does", () => {
  const cases: [string, string][] = [
    ["10.1.2.3", "10.1.2.3"],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["fe80::", "fe80::"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::192.0.2.1", "::192.0.2.1"],
  ];
  for (const [input, text] of cases) assertStrictEquals(formatIp(parseIp(input)), text, input);
  for (const bad of ["1.2.3", "1:2:3", "1::2::3", "12345::", "::g", "256.0.0.1"]) {
    assertThrows(() => parseIp(bad), SyntaxError, bad);
  }
});

Deno.test("concatCaptures() merges captures in timestamp order", () => {
  const a = makeCapture([FLOWS[0]!]);
  const b = makeCapture([{ ...FLOWS[2]!, startSec: START - 1 }, {
    ...FLOWS[2]!,
    srcPort: 1,
    startSec: START + 9,
  }]);
  const merged = parseCapture(concatCaptures(a, b)).packets.map(decode);
  assertEquals(merged.map((p) => p.srcPort), [53535, 50000, 50000, 50000, 1]);
});

Deno.test("parseCapture() rejects what is not a classic pcap file", () => {
  assertThrows(() => parseCapture(new Uint8Array(10)), SyntaxError);
  assertThrows(() => parseCapture(new Uint8Array(24)), SyntaxError);
  const truncated = makeCapture(FLOWS).slice(0, 24 + 16 + 10);
  assertThrows(() => parseCapture(truncated), SyntaxError);
});

Deno.test("tcpdump reads makeCapture()'s file: every packet, no bad checksum", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_pcap_test_" });
  try {
    const path = join(dir, "flows.pcap");
    await Deno.writeFile(path, makeCapture(FLOWS));
    const out = await new Deno.Command("tcpdump", {
      args: ["-r", path, "-nn", "-vv"],
      stderr: "piped",
    })
      .output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert(out.success, new TextDecoder().decode(out.stderr));
    const lines = stdout.split("\n").filter((l) => /^\d\d:\d\d:\d\d\.\d{6} IP6? /.test(l));
    assertStrictEquals(lines.length, 10);
    assert(!/bad cksum|incorrect/.test(stdout), stdout);
    assertStrictEquals(
      (stdout.match(/cksum 0x[0-9a-f]+ \(correct\)|udp sum ok/g) ?? []).length,
      10,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("softflowd reads makeCapture()'s file as the given flows", async () => {
  // A bound socket so softflowd's datagrams have somewhere to go.
  const socket = dgram.createSocket("udp4");
  let datagrams = 0;
  socket.on("message", () => datagrams++);
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const dir = await Deno.makeTempDir({ prefix: "sluice_pcap_test_" });
  try {
    const path = join(dir, "flows.pcap");
    await Deno.writeFile(path, makeCapture(FLOWS));
    const result = await replayCapture(path, socket.address().port, { version: 10, dir });
    assertStrictEquals(result.packetsProcessed, 10);
    assertStrictEquals(result.flowsExported, FLOWS.length);
    assertStrictEquals(result.records, FLOWS.length, "one direction per flow");
    const deadline = Date.now() + 5000;
    while (datagrams < result.datagrams && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertStrictEquals(datagrams, result.datagrams);
  } finally {
    socket.close();
    await Deno.remove(dir, { recursive: true });
  }
});
