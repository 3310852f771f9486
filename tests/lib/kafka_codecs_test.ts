/**
 * The snappy, lz4 and zstd codecs sluice gives kafkajs. The fixtures in
 * `tests/testdata/kafka_codecs/` were made by the reference tools from
 * {@link FLOWS} (`flowMessages(0, 1000)`, one per line):
 * `lz4 -B4 -BX --content-size` (64 KiB blocks, block and content checksums,
 * content size; lz4 1.9.4) and `zstd -19` (zstd 1.5).
 */
import { Buffer } from "node:buffer";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import {
  lz4Decompress,
  registerKafkaCodecs,
  snappyDecompress,
  zstdDecompress,
} from "../../lib/kafka_codecs.ts";
import { flowMessages } from "../_flows.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../_assert.ts";

const FLOWS = new TextEncoder().encode(flowMessages(0, 1000).join("\n") + "\n");
const TESTDATA = new URL("../testdata/kafka_codecs/", import.meta.url);
const fixture = (name: string) => Deno.readFileSync(new URL(name, TESTDATA));

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** The codec kafkajs looks up for a batch of this compression type. */
function codec(type: CompressionTypes): Codec {
  registerKafkaCodecs();
  return (CompressionCodecs as unknown as Record<number, () => Codec>)[type]!();
}

const compress = async (type: CompressionTypes, data: Uint8Array) =>
  new Uint8Array(await codec(type).compress({ buffer: Buffer.from(data) }));

/** Bytes that do not compress: a block of them is stored as it is. */
function noise(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 2463534242;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** xerial snappy-java's framing around raw blocks: magic, version 1, compatible 1, length-prefixed blocks. */
function xerial(blocks: Uint8Array[]): Uint8Array {
  const header = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1];
  const parts: Uint8Array[] = [new Uint8Array(header)];
  for (const block of blocks) {
    const size = new Uint8Array(4);
    new DataView(size.buffer).setUint32(0, block.length);
    parts.push(size, block);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Asserts that `data` cut short makes `decompress` throw its codec's error:
 * cut at every byte within 64 of either end and every `step` bytes between.
 *
 * @param codec The codec's name in the error.
 * @param data The whole compressed data.
 * @param decompress The function under test.
 * @param options The first cut, the step, and the lengths that are valid data.
 */
function assertEveryCutThrows(
  codec: string,
  data: Uint8Array,
  decompress: (data: Uint8Array) => Uint8Array,
  options: { from?: number; step?: number; valid?: ReadonlySet<number> } = {},
): void {
  const { from = 0, step = 1, valid = new Set() } = options;
  const error = new RegExp(`^Error: Cannot decompress ${codec} data: `);
  for (let cut = from; cut < data.length; cut += cut < 64 || data.length - cut < 64 ? 1 : step) {
    if (valid.has(cut)) continue;
    assertThrows(
      () => decompress(data.subarray(0, cut)),
      error,
      `${codec} data cut at ${cut} of ${data.length} bytes`,
    );
  }
}

Deno.test("registerKafkaCodecs() gives kafkajs codecs whose batches round-trip as Buffers", async () => {
  for (const type of [CompressionTypes.Snappy, CompressionTypes.LZ4]) {
    const packed = await compress(type, FLOWS);
    assert(packed.length < FLOWS.length / 4, `type ${type} compresses: ${packed.length} bytes`);
    const out = await codec(type).decompress(Buffer.from(packed));
    assert(Buffer.isBuffer(out), `type ${type} decompresses to a Buffer, as kafkajs reads it`);
    assertEquals(new Uint8Array(out), FLOWS);
  }
  const zstd = await codec(CompressionTypes.ZSTD).decompress(
    Buffer.from(fixture("flows.jsonl.zst")),
  );
  assert(Buffer.isBuffer(zstd));
  assertEquals(new Uint8Array(zstd), FLOWS);
});

Deno.test("registerKafkaCodecs() can run twice and leaves gzip as kafkajs has it", async () => {
  const gzip = (CompressionCodecs as unknown as Record<number, () => Codec>)[
    CompressionTypes.GZIP
  ]!();
  registerKafkaCodecs();
  registerKafkaCodecs();
  const packed = await gzip.compress({ buffer: Buffer.from(FLOWS) });
  assertEquals(new Uint8Array(await gzip.decompress(packed)), FLOWS);
  assertEquals(
    new Uint8Array(
      await codec(CompressionTypes.Snappy).decompress(
        Buffer.from(await compress(CompressionTypes.Snappy, FLOWS)),
      ),
    ),
    FLOWS,
  );
});

Deno.test("the zstd codec refuses to compress, with a clear error", async () => {
  await assertRejects(
    () => codec(CompressionTypes.ZSTD).compress({ buffer: Buffer.from(FLOWS) }),
    /Cannot compress with zstd: sluice only reads zstd batches/,
  );
});

Deno.test("the codecs reject bad data as a rejected promise, not a throw", async () => {
  for (const type of [CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]) {
    let promise: Promise<Buffer> | undefined;
    try {
      promise = codec(type).decompress(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]));
    } catch (error) {
      throw new Error(`type ${type} threw instead of rejecting`, { cause: error });
    }
    await assertRejects(() => promise!, /^Error: Cannot decompress (snappy|lz4|zstd) data: /);
  }
});

Deno.test("snappyDecompress() reads a raw block written by hand from the format description", () => {
  // Declared length 9; a 3-byte literal "abc"; a copy of 6 bytes from 3 back.
  const block = new Uint8Array([0x09, 0x08, 0x61, 0x62, 0x63, 0x09, 0x03]);
  assertEquals(new TextDecoder().decode(snappyDecompress(block)), "abcabcabc");
  // A literal longer than 60 bytes carries its length in a following byte.
  const long = new Uint8Array(100).fill(0x41);
  const literal = new Uint8Array([100, 60 << 2, 99, ...long]);
  assertEquals(snappyDecompress(literal), long);
});

Deno.test("snappyDecompress() reads xerial-framed blocks, as Java producers write them", async () => {
  const parts = [FLOWS.subarray(0, 32768), FLOWS.subarray(32768, 65536), FLOWS.subarray(65536)];
  const blocks = await Promise.all(parts.map((p) => compress(CompressionTypes.Snappy, p)));
  assertEquals(snappyDecompress(xerial(blocks)), FLOWS);
  assertEquals(snappyDecompress(xerial([blocks[0]!])), parts[0]);
  assertEquals(snappyDecompress(xerial([])).length, 0);
  // A block that did not compress is still a snappy block (of literals).
  const random = noise(5000);
  assertEquals(
    snappyDecompress(xerial([await compress(CompressionTypes.Snappy, random)])),
    random,
  );
});

Deno.test("snappyDecompress() says so when data is cut short, wherever it is cut", async () => {
  const block = await compress(CompressionTypes.Snappy, FLOWS.subarray(0, 3000));
  assertEveryCutThrows("snappy", block, snappyDecompress);
  const framed = xerial([block, block]);
  // From the magic on; a whole number of blocks is a valid stream.
  const valid = new Set([16, 20 + block.length]);
  assertEveryCutThrows("snappy", framed, snappyDecompress, { from: 8, valid });
  assertThrows(
    () => snappyDecompress(framed.subarray(0, 20 + 100)),
    /the xerial block of \d+ bytes at byte 20 is cut short \(100 bytes left\)/,
  );
  assertThrows(
    () => snappyDecompress(framed.subarray(0, 12)),
    /the xerial header needs 16 bytes, got 12/,
  );
  assertThrows(
    () => snappyDecompress(new Uint8Array([0x09, 0x08, 0x61, 0x62, 0x63])),
    /the block declares 9 bytes, its elements make 3/,
  );
});

Deno.test("lz4Decompress() reads a frame of the reference lz4 tool, with checksums and content size", () => {
  assertEquals(lz4Decompress(fixture("flows.jsonl.lz4")), FLOWS);
});

Deno.test("lz4Decompress() reads a stored block and frames one after the other", async () => {
  // magic, FLG (version 01, independent blocks), BD (64 KiB), header checksum (not read),
  // a block of 5 bytes stored uncompressed (high bit), the end mark.
  // deno-fmt-ignore
  const stored = new Uint8Array([
    0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82,
    0x05, 0x00, 0x00, 0x80, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    0x00, 0x00, 0x00, 0x00,
  ]);
  assertEquals(new TextDecoder().decode(lz4Decompress(stored)), "hello");
  // The same block in a frame that declares a content size (FLG 0x68) of 6 or 5 bytes.
  const sized = (size: number) =>
    new Uint8Array([
      ...stored.subarray(0, 4),
      0x68,
      0x40,
      size,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...stored.subarray(6),
    ]);
  assertThrows(
    () => lz4Decompress(sized(6)),
    /Cannot decompress lz4 data: the frame declares 6 bytes, its blocks make at most 5 \(the frame at byte 0\)/,
  );
  assertEquals(new TextDecoder().decode(lz4Decompress(sized(5))), "hello");
  const random = noise(70_000);
  const packed = await compress(CompressionTypes.LZ4, random);
  assertEquals(lz4Decompress(packed), random);
  assertEquals(
    new TextDecoder().decode(lz4Decompress(new Uint8Array(Buffer.concat([stored, stored])))),
    "hellohello",
  );
});

Deno.test("lz4Decompress() says so when data is cut short, wherever it is cut, or is not lz4", () => {
  const frame = fixture("flows.jsonl.lz4");
  assertEveryCutThrows("lz4", frame, lz4Decompress, { step: 97 });
  assertThrows(
    () => lz4Decompress(frame.subarray(0, frame.length - 2)),
    /Cannot decompress lz4 data: the content checksum is cut short \(the frame at byte 0\)/,
  );
  assertThrows(
    () => lz4Decompress(new TextEncoder().encode('{"json": true}')),
    /expected the frame magic 0x184d2204 at byte 0, got 0x736a227b/,
  );
});

Deno.test("zstdDecompress() reads a frame of the reference zstd tool, and frames one after the other", () => {
  const frame = fixture("flows.jsonl.zst");
  assertEquals(zstdDecompress(frame), FLOWS);
  const twice = new Uint8Array(Buffer.concat([frame, frame]));
  assertEquals(zstdDecompress(twice), new Uint8Array(Buffer.concat([FLOWS, FLOWS])));
});

Deno.test("zstdDecompress() says so when data is cut short, wherever it is cut, or is not zstd", () => {
  const frame = fixture("flows.jsonl.zst");
  assertEveryCutThrows("zstd", frame, zstdDecompress, { step: 37 });
  assertThrows(
    () => zstdDecompress(FLOWS),
    /Cannot decompress zstd data: expected the frame magic 0xfd2fb528 at byte 0, got 0x7665227b/,
  );
  assertThrows(
    () => zstdDecompress(frame.subarray(0, frame.length - 2)),
    /Cannot decompress zstd data: the content checksum is cut short \(the frame at byte 0\)/,
  );
});
