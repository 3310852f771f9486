/**
 * Decode workers (`DECODE_WORKERS`): packing a chunk and its results, real
 * worker threads giving what the main thread would give, the look-ahead
 * keeping the order, and the fall back to the main thread when a worker
 * cannot help.
 */
import { parseConfig } from "../../lib/config.ts";
import type { Predecoded } from "../../lib/decoder.ts";
import { Logger } from "../../lib/log.ts";
import { TimeReader } from "../../lib/time.ts";
import {
  CHUNK_MESSAGES,
  DecodeWorkers,
  Lookahead,
  packChunk,
  type PackMessage,
  packResults,
  type Predecoder,
  unpackChunk,
  unpackResults,
} from "../../lib/workers.ts";
import { REGISTRIES } from "../../sinks/mod.ts";
import { decodeChunk } from "../../sinks/worker.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";

const WORKER = new URL("../../sinks/worker.ts", import.meta.url);
const encoder = new TextEncoder();

const ENV: Record<string, string> = {
  KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9092",
  KAFKA_TOPIC: "flows",
  CLICKHOUSE_HOST: "http://127.0.0.1:8123",
  CLICKHOUSE_DATA_SCHEMA: "ip_src:IPv4,port_src:UInt16,bytes:UInt64,stamp_updated:DateTime",
  PMACCT_TIMEZONE: "Europe/Berlin",
};

/** Good records, a line that is not JSON, a marker, a record the schema refuses, a tombstone, a two-line message. */
function sampleMessages(): PackMessage[] {
  const flow = (i: number) =>
    JSON.stringify({
      event_type: "purge",
      ip_src: `10.0.${i >> 8 & 255}.${i & 255}`,
      port_src: 1000 + i,
      bytes: i * 100,
      stamp_updated: "2026-11-21 23:25:00",
    });
  const values: Array<string | null> = [
    flow(1),
    "{not json",
    '{"event_type": "purge_init", "seq": 1}',
    JSON.stringify({ ip_src: "::1", port_src: 1, bytes: 1 }),
    null,
    `${flow(2)}\n${JSON.stringify({ ip_src: "10.0.0.3", port_src: 70000 })}\n${flow(3)}`,
  ];
  for (let i = 4; i < 600; i++) values.push(flow(i));
  return values.map((v, i) => ({
    offset: String(100 + i),
    value: v === null ? null : encoder.encode(v),
    key: i % 7 === 0 ? encoder.encode(`k${i}`) : null,
  }));
}

/** What the main thread makes of the messages: decode, then the sink's prepare(). */
function inline(messages: readonly PackMessage[]): Predecoded[] {
  const config = parseConfig(ENV, REGISTRIES, { offline: true });
  const sink = config.sink.module.create(config.sink.config, {
    time: new TimeReader(config.timeZone, { window: config.recordTime }),
    log: new Logger({ write: () => {} }),
    input: config.decoder.module.kind,
  });
  return decodeChunk(packChunk("flows", 2, messages), config.decoder.decode, sink);
}

Deno.test("packChunk() and unpackChunk() carry offsets, values, keys and tombstones in one buffer", () => {
  const messages = sampleMessages();
  const chunk = packChunk("flows", 2, messages);
  assertEquals(chunk.topic, "flows");
  assertEquals(chunk.partition, 2);
  const back = unpackChunk(chunk);
  assertEquals(back.length, messages.length);
  for (let i = 0; i < messages.length; i++) {
    assertEquals(back[i]!.offset, messages[i]!.offset);
    assertEquals(back[i]!.value, messages[i]!.value);
    assertEquals(back[i]!.key, messages[i]!.key ?? null);
  }
});

Deno.test("packResults() and unpackResults() give back every record, rejection, skip and error in order", () => {
  const results = inline(sampleMessages());
  // The sample has each kind of outcome.
  assert(results.some((r) => r.errors.length > 0));
  assert(results.some((r) => r.skipped > 0));
  assert(results.some((r) => r.records.some((x) => x.prepared?.ok === false)));
  const packed = structuredClone(packResults(results));
  assertEquals(unpackResults(packed), results);
});

Deno.test("decode workers give what the main thread gives, for every message, in order", async () => {
  const messages = sampleMessages();
  const expected = inline(messages);
  const workers = new DecodeWorkers(WORKER, ENV, 2, new Logger({ write: () => {} }));
  await workers.start();
  try {
    assertEquals(workers.size, 2);
    const got: Predecoded[] = [];
    for (let i = 0; i < messages.length; i += CHUNK_MESSAGES) {
      const results = await workers.decode("flows", 2, messages.slice(i, i + CHUNK_MESSAGES));
      assert(results !== undefined);
      got.push(...results);
    }
    assertEquals(got, expected);
    // A row the sink made: the JSON line, with 23:25 in Berlin as 22:25 UTC.
    const first = got[0]!.records[0]!;
    const row = `{"ip_src":"10.0.0.1","port_src":1001,"bytes":100,"stamp_updated":1795299900}`;
    assertEquals(first.prepared, { ok: true, row, bytes: row.length + 1 });
  } finally {
    workers.close();
  }
});

Deno.test("decode workers that cannot build the configuration fail to start with the reason", async () => {
  const workers = new DecodeWorkers(
    WORKER,
    { ...ENV, CLICKHOUSE_DATA_SCHEMA: "a:NoSuchType" },
    1,
    new Logger({ write: () => {} }),
  );
  await assertRejects(() => workers.start(), /NoSuchType/);
  assertEquals(workers.size, 0);
});

Deno.test("decode workers closed meanwhile give undefined: the main thread decodes", async () => {
  const workers = new DecodeWorkers(WORKER, ENV, 1, new Logger({ write: () => {} }));
  await workers.start();
  const pending = workers.decode("flows", 0, sampleMessages());
  workers.close();
  assertEquals(await pending, undefined);
  assertEquals(await workers.decode("flows", 0, sampleMessages()), undefined);
});

Deno.test("Lookahead hands out each message's result in order, asking for chunks ahead", async () => {
  const asked: number[] = [];
  const decoder: Predecoder = {
    depth: 2,
    decode(_topic, _partition, messages) {
      asked.push(Number(messages[0]!.offset));
      return Promise.resolve(messages.map((m) => ({
        records: [],
        skipped: Number(m.offset),
        errors: [],
      })));
    },
  };
  const messages = Array.from(
    { length: CHUNK_MESSAGES * 3 + 5 },
    (_, i) => ({ offset: String(i), value: null }),
  );
  const ahead = new Lookahead(decoder, "t", 0, messages);
  // Two chunks are asked for before the first message is read.
  assertEquals(asked, [0, CHUNK_MESSAGES]);
  for (let i = 0; i < messages.length; i++) {
    let got = ahead.get(i);
    // Only the first message of a chunk waits.
    assertEquals(got instanceof Promise, i % CHUNK_MESSAGES === 0);
    if (got instanceof Promise) got = await got;
    assertEquals(got?.skipped, i);
  }
  assertEquals(asked, [0, 1, 2, 3].map((c) => c * CHUNK_MESSAGES));
});

Deno.test("Lookahead gives undefined for a chunk no worker could decode", async () => {
  const decoder: Predecoder = { depth: 2, decode: () => Promise.resolve(undefined) };
  const ahead = new Lookahead(decoder, "t", 0, [{ offset: "0", value: null }]);
  assertEquals(await ahead.get(0), undefined);
});
