/**
 * `--dry-run`'s source: lines cut in linear time, handed on as the bytes
 * they were, so that `--dry-run` decodes exactly as the Kafka path does.
 */
import { type DeadLetter, DeadLetters } from "../../lib/dead_letter.ts";
import { decodePmacct } from "../../lib/decode/pmacct.ts";
import { printingSink } from "../../lib/dry_run.ts";
import { Logger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { Pipeline } from "../../lib/pipeline/mod.ts";
import { RetryPolicy } from "../../lib/retry.ts";
import type { MessageSource, SourceMessage } from "../../lib/source.ts";
import { splitLines, StdinSource } from "../../lib/stdin.ts";
import { TimeReader } from "../../lib/time.ts";
import { VarReader } from "../../lib/variables.ts";
import { CLICKHOUSE, parseClickHouseConfig } from "../../sinks/clickhouse/config.ts";
import { ClickHouseSink } from "../../sinks/clickhouse/mod.ts";
import { assert, assertEquals } from "../_assert.ts";
import { MemorySource } from "../_memory.ts";

const encoder = new TextEncoder();

/** A stream that hands out `bytes` in chunks of `size` (as standard input does). */
function chunked(bytes: Uint8Array, size = 65_536): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

/** Every message StdinSource hands out for an input. */
async function stdinMessages(input: Uint8Array, size?: number): Promise<SourceMessage[]> {
  const seen: SourceMessage[] = [];
  const source = new StdinSource(chunked(input, size));
  await source.start((message) => void seen.push(message));
  await source.finished;
  return seen;
}

Deno.test("StdinSource hands each line on as its own bytes, invalid UTF-8 included, skipping blank lines and a CR before the LF", async () => {
  const input = new Uint8Array([
    ...encoder.encode('{"a":1}\r\n'),
    ...encoder.encode("  \n"),
    ...encoder.encode('{"s":"'),
    0xff,
    0xfe,
    ...encoder.encode('"}\n'),
    ...encoder.encode('{"last":true}'),
  ]);
  // Chunks of 3 bytes: lines span chunks, and an invalid byte sits at a chunk's edge.
  const seen = await stdinMessages(input, 3);
  assertEquals(seen.map((m) => [m.topic, m.partition, m.offset]), [
    ["stdin", 0, "0"],
    ["stdin", 0, "2"],
    ["stdin", 0, "3"],
  ]);
  assertEquals(seen.map((m) => [...m.value!]), [
    [...encoder.encode('{"a":1}')],
    [...encoder.encode('{"s":"'), 0xff, 0xfe, ...encoder.encode('"}')],
    [...encoder.encode('{"last":true}')],
  ]);
});

Deno.test("splitLines() hands on a 50 MB line whole, byte for byte, from 64 KiB chunks", async () => {
  const size = 50 * 1024 * 1024;
  const big = new Uint8Array(size + 3);
  big.fill(0x61, 0, size);
  big.set(encoder.encode("\nb\n"), size);
  const lines: Uint8Array[] = [];
  for await (const line of chunked(big).pipeThrough(splitLines())) lines.push(line);
  assertEquals(lines.map((l) => l.length), [size, 1]);
  assert(new TextDecoder().decode(lines[0]) === "a".repeat(size), "the long line is its bytes");
  assertEquals(lines[1], encoder.encode("b"));
});

/** The ClickHouse sink, never connected: only its pure prepare and encode are used. */
function clickhouse() {
  const { config } = parseClickHouseConfig(
    new VarReader({
      CLICKHOUSE_HOST: "127.0.0.1",
      CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64,label:String",
    }, CLICKHOUSE.specs),
  );
  return new ClickHouseSink(config, {
    time: new TimeReader(),
    log: new Logger({ write: () => {} }),
  });
}

/** What a pipeline into the ClickHouse sink prints, and what it sets aside, for a source. */
async function run(source: MessageSource, feed: () => Promise<void>) {
  let printed = "";
  const letters: DeadLetter[] = [];
  const pipeline = new Pipeline(source, {
    sink: printingSink(clickhouse(), (text) => (printed += text)),
    decoder: decodePmacct,
    batch: { maxRows: 1000, maxBytes: 1e9, maxAgeMs: 60_000 },
    retry: new RetryPolicy({ initialMs: 1, maxMs: 5 }),
    metrics: new Metrics(),
    log: new Logger({ write: () => {} }),
    deadLetters: new DeadLetters([{
      kind: "file",
      full: false,
      add: (letter: DeadLetter) => void letters.push(letter),
      stored: () => Promise.resolve(),
      room: () => Promise.resolve(),
      close: () => Promise.resolve(),
    }]),
    tickMs: 60_000,
  });
  await pipeline.start();
  await feed();
  const result = await pipeline.stop();
  assert(result.clean);
  return {
    printed,
    setAside: letters.map((l) => `${l.rejection.reason}: ${l.rejection.error}`),
    stats: pipeline.stats,
  };
}

Deno.test("--dry-run prints byte for byte what the Kafka path writes, and sets aside the same records with the same reasons", async () => {
  const messages: Uint8Array[] = [
    encoder.encode('{"ip_src":"10.0.0.1","bytes":12,"label":"x"}'),
    // Not UTF-8: the Kafka path refuses it; --dry-run must too (it used to print U+FFFD).
    new Uint8Array([
      ...encoder.encode('{"ip_src":"10.0.0.2","bytes":1,"label":"'),
      0xc3,
      0x28,
      ...encoder.encode('"}'),
    ]),
    // A multi-record message (pmacct's kafka_multi_values): on standard input, one line each.
    encoder.encode(
      '{"ip_src":"10.0.0.3","bytes":3,"label":"é"}\n{"ip_src":"10.0.0.4","bytes":4,"label":"\\u00e9"}',
    ),
    encoder.encode('{"ip_src":"10.0.0.5","bytes":-1}'),
    encoder.encode("not json"),
    encoder.encode('{"ip_src":"10.0.0.6","bytes":6,"label":"\\ud800"}'),
  ];
  const memory = new MemorySource();
  const kafka = await run(memory, () =>
    memory.push(messages.map((value, i) => ({
      topic: "flows",
      partition: 0,
      offset: String(i),
      value,
    }))));
  const joined = new Uint8Array(messages.reduce((n, m) => n + m.length + 1, 0));
  let at = 0;
  for (const m of messages) {
    joined.set(m, at);
    joined[at + m.length] = 0x0a;
    at += m.length + 1;
  }
  const stdin = new StdinSource(chunked(joined, 7));
  const dryRun = await run(stdin, () => stdin.finished);
  assertEquals(dryRun.printed, kafka.printed);
  assertEquals(dryRun.setAside, kafka.setAside);
  assertEquals(dryRun.stats.records, kafka.stats.records);
  assert(kafka.setAside.includes("decode: Cannot decode message: it is not valid UTF-8"));
  assertEquals(kafka.printed.trimEnd().split("\n").length, 4);
});
