/**
 * The compression codecs of Kafka record batches that kafkajs leaves out:
 * snappy, lz4 and zstd (gzip is built in). Producers built on librdkafka,
 * pmacct's and collectd's Kafka plugins among them, are often set to these,
 * and a broker's or a topic's `compression.type` can recompress any topic;
 * without a codec kafkajs stops at the first such batch ("Snappy compression
 * not implemented").
 *
 * All three are pure JavaScript, so a `deno compile` binary stays
 * self-contained: `snappyjs` (MIT), `lz4js` (ISC), `fzstd` (MIT,
 * decompression only: sluice's own producer never uses zstd). Kafka's
 * formats, and what is checked here because the libraries do not:
 *
 * - snappy: Java producers write xerial snappy-java's framing (the 8-byte
 *   magic `\x82SNAPPY\0`, two version ints, then blocks each prefixed by its
 *   big-endian length); librdkafka writes one raw snappy block
 *   (librdkafka `rdkafka_msgset_reader.c`, `rd_kafka_snappy_java_uncompress`).
 *   Both are read. snappyjs leaves the end of a block cut at an element
 *   boundary as zeros, so each block's elements are counted first.
 * - lz4: the LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md),
 *   one frame per batch since KIP-57. The frame is read here and only its
 *   blocks by lz4js, whose frame reader misplaces block checksums and takes
 *   a missing end mark for one.
 * - zstd: a zstd frame (KIP-110).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { decompress as fzstdDecompress } from "fzstd";
import { CompressionCodecs, CompressionTypes } from "kafkajs";
import lz4js from "lz4js";
import snappyjs from "snappyjs";

/**
 * What sluice uses of `snappyjs`, which ships no types. Under Deno's npm
 * interop the default import of this CommonJS package is its
 * `module.exports`: `{ compress, uncompress }`.
 */
interface SnappyJs {
  compress(data: Uint8Array): Uint8Array;
  uncompress(data: Uint8Array): Uint8Array;
}

/** What sluice uses of `lz4js` (no types either; the default import is `module.exports`). */
interface Lz4Js {
  /** Compresses to one LZ4 frame (4 MiB blocks, no checksums). */
  compress(data: Uint8Array): Uint8Array;
  /**
   * Decodes the sequences of `src[sIndex, sIndex + sLength)` into `dst` from
   * `dIndex`; returns the index after the last byte written. Writes past the
   * end of `dst` are dropped (a typed array), the returned index still counts them.
   */
  decompressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    sIndex: number,
    sLength: number,
    dIndex: number,
  ): number;
}

const snappy = snappyjs as SnappyJs;
const lz4 = lz4js as Lz4Js;

/** A kafkajs codec: what `CompressionCodecs[type]()` returns (kafkajs `compression/gzip.js`). */
interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** xerial snappy-java's stream magic. */
const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
/** The magic and the two version ints before the first block. */
const XERIAL_HEADER_BYTES = 16;

/** The LZ4 frame magic, little-endian. */
const LZ4_MAGIC = 0x184d2204;
/** LZ4 frame descriptor (FLG) bits. */
const LZ4_VERSION_MASK = 0xc0;
const LZ4_VERSION = 0x40;
const LZ4_BLOCK_CHECKSUM = 0x10;
const LZ4_CONTENT_SIZE = 0x08;
const LZ4_CONTENT_CHECKSUM = 0x04;
const LZ4_DICT_ID = 0x01;
/** A block size without its high bit, which marks a block stored uncompressed. */
const LZ4_BLOCK_SIZE_MASK = 0x7fffffff;
/** The largest block of each block size id of the descriptor (BD) byte. */
const LZ4_BLOCK_MAX: Record<number, number> = { 4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22 };
/** The zstd frame magic, and that of skippable frames (the low 4 bits vary), little-endian. */
const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_SKIPPABLE_MAGIC = 0x184d2a50;

/** The bytes as a Node Buffer (what kafkajs's decoder reads), without a copy. */
function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The little-endian unsigned 32-bit integer at `at` (the caller checked the bounds). */
function u32le(data: Uint8Array, at: number): number {
  return (data[at]! | data[at + 1]! << 8 | data[at + 2]! << 16 | data[at + 3]! << 24) >>> 0;
}

/** Concatenates parts, without a copy when there is only one. */
function concat(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Counts what a raw snappy block's elements make, so that a block cut short
 * is an error rather than zeros (https://github.com/google/snappy/blob/main/format_description.txt).
 *
 * @param data One raw block.
 * @throws {Error} When the elements run past the end or do not make the declared length.
 */
function checkSnappyBlock(data: Uint8Array): void {
  let declared = 0;
  let at = 0;
  for (let shift = 0;; shift += 7) {
    const byte = data[at++];
    if (byte === undefined || shift > 28) {
      throw new Error(
        `Cannot decompress snappy data: the length at the start of the ${data.length}-byte block is cut short or invalid`,
      );
    }
    declared += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
  }
  const end = data.length;
  let made = 0;
  while (at < end) {
    const tag = data[at]!;
    switch (tag & 3) {
      case 0: {
        // A literal; lengths above 60 follow in 1 to 4 little-endian bytes.
        let length = (tag >>> 2) + 1;
        at += 1;
        if (length > 60) {
          const bytes = length - 60;
          length = 1;
          for (let i = 0; i < bytes; i++) length += (data[at + i] ?? 0) * 2 ** (8 * i);
          at += bytes;
        }
        at += length;
        made += length;
        break;
      }
      case 1:
        at += 2;
        made += ((tag >>> 2) & 7) + 4;
        break;
      case 2:
        at += 3;
        made += (tag >>> 2) + 1;
        break;
      default:
        at += 5;
        made += (tag >>> 2) + 1;
    }
  }
  if (at > data.length) {
    throw new Error(
      `Cannot decompress snappy data: the ${data.length}-byte block is cut short ` +
        `(its last element needs ${at - data.length} more bytes)`,
    );
  }
  if (made !== declared) {
    throw new Error(
      `Cannot decompress snappy data: the block declares ${declared} bytes, its elements make ${made}`,
    );
  }
}

/** One raw snappy block, checked, then decompressed. */
function snappyBlock(data: Uint8Array): Uint8Array {
  checkSnappyBlock(data);
  try {
    return snappy.uncompress(data);
  } catch (error) {
    throw new Error(`Cannot decompress snappy data: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Decompresses a snappy payload as Kafka producers write it: xerial-framed
 * blocks (Java clients), or one raw block (librdkafka, kafkajs codecs).
 *
 * @param data The compressed bytes.
 * @returns The uncompressed bytes.
 * @throws {Error} When the data is cut short or is not snappy data.
 */
export function snappyDecompress(data: Uint8Array): Uint8Array {
  if (!XERIAL_MAGIC.every((b, i) => data[i] === b)) return snappyBlock(data);
  if (data.length < XERIAL_HEADER_BYTES) {
    throw new Error(
      `Cannot decompress snappy data: the xerial header needs ${XERIAL_HEADER_BYTES} bytes, got ${data.length}`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const blocks: Uint8Array[] = [];
  for (let at = XERIAL_HEADER_BYTES; at < data.length;) {
    if (at + 4 > data.length) {
      throw new Error(
        `Cannot decompress snappy data: the xerial block length at byte ${at} is cut short ` +
          `(${data.length - at} of 4 bytes)`,
      );
    }
    const size = view.getUint32(at);
    at += 4;
    if (at + size > data.length) {
      throw new Error(
        `Cannot decompress snappy data: the xerial block of ${size} bytes at byte ${at} is cut short ` +
          `(${data.length - at} bytes left)`,
      );
    }
    blocks.push(snappyBlock(data.subarray(at, at + size)));
    at += size;
  }
  return blocks.length === 0 ? new Uint8Array(0) : concat(blocks);
}

/**
 * Decompresses one LZ4 frame: the header and block sizes are read here,
 * each block's sequences by lz4js. lz4js's own frame reader is not used: it
 * reads a block checksum before the block instead of after it, and takes a
 * missing end mark for one. Checksums are skipped, as lz4js does.
 *
 * @param data The bytes.
 * @param start Where the frame starts.
 * @returns Where the frame ends, and its content.
 * @throws {Error} When the frame is cut short, uses what is not supported
 *   here (a dictionary), or its blocks do not fit its sizes.
 */
function lz4Frame(data: Uint8Array, start: number): { end: number; content: Uint8Array } {
  const fail = (what: string) =>
    new Error(`Cannot decompress lz4 data: ${what} (the frame at byte ${start})`);
  if (start + 7 > data.length) throw fail("the header is cut short");
  const magic = u32le(data, start);
  if (magic !== LZ4_MAGIC) {
    throw new Error(
      `Cannot decompress lz4 data: expected the frame magic 0x184d2204 at byte ${start}, ` +
        `got 0x${magic.toString(16).padStart(8, "0")}`,
    );
  }
  const flags = data[start + 4]!;
  if ((flags & LZ4_VERSION_MASK) !== LZ4_VERSION) {
    throw fail(`unknown frame version in the flags 0x${flags.toString(16)}`);
  }
  if (flags & LZ4_DICT_ID) throw fail("frames with a dictionary are not supported");
  const blockMax = LZ4_BLOCK_MAX[(data[start + 5]! >> 4) & 7];
  if (blockMax === undefined) {
    throw fail(`unknown block size in the descriptor 0x${data[start + 5]!.toString(16)}`);
  }
  let at = start + 6;
  let contentSize: number | undefined;
  if (flags & LZ4_CONTENT_SIZE) {
    if (at + 9 > data.length) throw fail("the header is cut short");
    contentSize = u32le(data, at) + u32le(data, at + 4) * 2 ** 32;
    at += 8;
  }
  at += 1; // the header checksum
  // First the block table: the frame must be whole before anything is allocated.
  const blocks: Array<{ at: number; size: number; stored: boolean }> = [];
  let bound = 0;
  for (;;) {
    if (at + 4 > data.length) throw fail(`a block size or the end mark at byte ${at} is cut short`);
    const word = u32le(data, at);
    at += 4;
    if (word === 0) break;
    const size = word & LZ4_BLOCK_SIZE_MASK;
    const stored = word !== size;
    if (at + size > data.length) {
      throw fail(`the block of ${size} bytes at byte ${at} is cut short`);
    }
    blocks.push({ at, size, stored });
    bound += stored ? size : blockMax;
    at += size + (flags & LZ4_BLOCK_CHECKSUM ? 4 : 0);
  }
  if (flags & LZ4_CONTENT_CHECKSUM) {
    at += 4;
    if (at > data.length) throw fail("the content checksum is cut short");
  }
  if (contentSize !== undefined && contentSize > bound) {
    throw fail(`the frame declares ${contentSize} bytes, its blocks make at most ${bound}`);
  }
  const content = new Uint8Array(contentSize ?? bound);
  let made = 0;
  for (const block of blocks) {
    const next = block.stored ? made + block.size : lz4.decompressBlock(
      data,
      content,
      block.at,
      block.size,
      made,
    );
    if (next - made > blockMax || next > content.length) {
      throw fail(`a block makes more than its ${blockMax} bytes or the frame's content size`);
    }
    if (block.stored) content.set(data.subarray(block.at, block.at + block.size), made);
    made = next;
  }
  if (contentSize !== undefined && made !== contentSize) {
    throw fail(`the frame declares ${contentSize} bytes, its blocks make ${made}`);
  }
  return { end: at, content: content.subarray(0, made) };
}

/**
 * Decompresses LZ4 frames (one per record batch; several are read one after
 * the other).
 *
 * @param data The compressed bytes.
 * @returns The uncompressed bytes.
 * @throws {Error} When a frame is cut short, is not an LZ4 frame, or its
 *   blocks do not fit its sizes.
 */
export function lz4Decompress(data: Uint8Array): Uint8Array {
  const frames: Uint8Array[] = [];
  let at = 0;
  do {
    const frame = lz4Frame(data, at);
    frames.push(frame.content);
    at = frame.end;
  } while (at < data.length);
  return concat(frames);
}

/**
 * Walks zstd frames by their headers and block headers, without decoding
 * (https://github.com/facebook/zstd/blob/dev/doc/zstd_compression_format.md):
 * fzstd reads a frame cut inside its checksum, or no bytes at all, without a
 * word.
 *
 * @param data The bytes.
 * @throws {Error} When a frame is cut short or is not a zstd frame.
 */
function checkZstdFrames(data: Uint8Array): void {
  if (data.length === 0) throw new Error("Cannot decompress zstd data: there are no bytes");
  for (let start = 0, at = 0; at < data.length; start = at) {
    const fail = (what: string) =>
      new Error(`Cannot decompress zstd data: ${what} (the frame at byte ${start})`);
    if (at + 5 > data.length) throw fail("the header is cut short");
    const magic = u32le(data, at);
    if ((magic & 0xfffffff0) === ZSTD_SKIPPABLE_MAGIC) {
      at += 8 + u32le(data, at + 4);
      if (at > data.length) throw fail("the skippable frame is cut short");
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      throw new Error(
        `Cannot decompress zstd data: expected the frame magic 0xfd2fb528 at byte ${at}, ` +
          `got 0x${magic.toString(16).padStart(8, "0")}`,
      );
    }
    const descriptor = data[at + 4]!;
    const singleSegment = (descriptor >> 5) & 1;
    at += 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]! +
      [singleSegment, 2, 4, 8][descriptor >> 6]!;
    for (let last = 0; !last;) {
      if (at + 3 > data.length) throw fail(`a block header at byte ${at} is cut short`);
      const header = data[at]! | data[at + 1]! << 8 | data[at + 2]! << 16;
      last = header & 1;
      const type = (header >> 1) & 3;
      if (type === 3) throw fail(`the block at byte ${at} has the reserved type`);
      // An RLE block holds one byte, repeated `size` times.
      at += 3 + (type === 1 ? 1 : header >>> 3);
      if (at > data.length) throw fail("a block is cut short");
    }
    if (descriptor & 0x04) {
      at += 4;
      if (at > data.length) throw fail("the content checksum is cut short");
    }
  }
}

/**
 * Decompresses zstd frames.
 *
 * @param data The compressed bytes.
 * @returns The uncompressed bytes.
 * @throws {Error} When the data is cut short or is not zstd data.
 */
export function zstdDecompress(data: Uint8Array): Uint8Array {
  checkZstdFrames(data);
  try {
    return fzstdDecompress(data);
  } catch (error) {
    throw new Error(`Cannot decompress zstd data: ${(error as Error).message}`, { cause: error });
  }
}

/** Runs a synchronous codec function for kafkajs: a Buffer, a throw becoming a rejection. */
function settle(run: () => Uint8Array): Promise<Buffer> {
  try {
    return Promise.resolve(toBuffer(run()));
  } catch (error) {
    return Promise.reject(error);
  }
}

// kafkajs calls the factory for every batch: each returns one shared object.
const SNAPPY: Codec = {
  compress: (encoder) => settle(() => snappy.compress(encoder.buffer)),
  decompress: (buffer) => settle(() => snappyDecompress(buffer)),
};
const LZ4: Codec = {
  compress: (encoder) => settle(() => lz4.compress(encoder.buffer)),
  decompress: (buffer) => settle(() => lz4Decompress(buffer)),
};
const ZSTD: Codec = {
  compress: () =>
    Promise.reject(new Error("Cannot compress with zstd: sluice only reads zstd batches")),
  decompress: (buffer) => settle(() => zstdDecompress(buffer)),
};

/**
 * Registers the snappy, lz4 and zstd codecs in kafkajs's codec table, which
 * every kafkajs client of the process shares; call it before a consumer
 * runs. Safe to call more than once.
 */
export function registerKafkaCodecs(): void {
  CompressionCodecs[CompressionTypes.Snappy] = () => SNAPPY;
  CompressionCodecs[CompressionTypes.LZ4] = () => LZ4;
  CompressionCodecs[CompressionTypes.ZSTD] = () => ZSTD;
}
