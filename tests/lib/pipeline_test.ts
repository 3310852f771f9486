/**
 * Unit tests of the delivery rules with an in-memory source and sink; the
 * same rules are tested end to end against real Kafka and ClickHouse in
 * tests/integration/.
 */
import { type DeadLetter, DeadLetterFile, DeadLetters } from "../../lib/dead_letter.ts";
import { decodePmacct } from "../../lib/decode/pmacct.ts";
import { Logger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { Pipeline } from "../../lib/pipeline/mod.ts";
import { partitionRows, rangeToken } from "../../lib/ranges.ts";
import { allWritten } from "../../lib/record.ts";
import { RetryPolicy } from "../../lib/retry.ts";
import type { BatchLimits } from "../../lib/sink.ts";
import type { SourceMessage } from "../../lib/source.ts";
import { assert, assertEquals } from "../_assert.ts";
import { MemorySink, MemorySource } from "../_memory.ts";

function setup(
  batch: Partial<BatchLimits> = {},
  clock?: () => number,
  deadLetters?: DeadLetters,
) {
  const source = new MemorySource();
  const sink = new MemorySink();
  const metrics = new Metrics();
  const pipeline = new Pipeline(source, {
    deadLetters,
    sink,
    decoder: decodePmacct,
    batch: { maxRows: 4, maxBytes: 1e9, maxAgeMs: 60_000, ...batch },
    retry: new RetryPolicy({ initialMs: 1, maxMs: 5 }),
    metrics,
    log: new Logger({ write: () => {} }),
    clock,
    tickMs: 60_000,
    shutdownTimeoutMs: 200,
  });
  return { source, sink, pipeline, metrics };
}

/** One series' value as a scrape shows it (`labels` as written there), or undefined without one. */
async function sample(metrics: Metrics, name: string, labels = ""): Promise<number | undefined> {
  const line = (await metrics.render()).split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

function messages(values: string[], partition = 0, first = 0): SourceMessage[] {
  return values.map((v, i) => ({
    topic: "flows",
    partition,
    offset: String(first + i),
    value: new TextEncoder().encode(v),
  }));
}

const good = (n: number) => JSON.stringify({ n });

Deno.test("Pipeline commits a batch's offsets only after the sink acknowledged it", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 4 });
  await pipeline.start();
  await source.push(messages([good(0), good(1), good(2)]));
  await pipeline.settled();
  assertEquals(sink.rows.length, 0);
  assertEquals(source.commits, []);
  await source.push(messages([good(3), good(4)], 0, 3));
  await pipeline.settled();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2, 3]);
  // Message 3 filled the batch and went out with it: its offset is committed with it.
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "4" }]]);
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2, 3, 4]);
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "5" }]);
  assert(source.closed);
});

Deno.test("Pipeline retries a failing sink with the source held, and loses nothing", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  sink.failures = 5;
  await pipeline.start();
  await source.push(messages([good(0), good(1), good(2)]));
  await pipeline.settled();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1]);
  assertEquals(sink.writes, 6);
  assertEquals(pipeline.stats.retries, 5);
  assert(source.heartbeats >= 5, "the group membership is kept alive while retrying");
  await pipeline.stop();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2]);
});

Deno.test("Pipeline waits as long as the sink's Retry-After asks when that exceeds the backoff", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  sink.failures = 1;
  sink.retryAfterMs = 300;
  await pipeline.start();
  const started = Date.now();
  await source.push(messages([good(0), good(1)]));
  await pipeline.settled();
  assert(Date.now() - started >= 300, "the 1 ms backoff gave way to Retry-After");
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1]);
  await pipeline.stop();
});

Deno.test("Pipeline splits a refused batch, writes the good rows and sets the bad one aside", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 10 });
  sink.bad = new Set([6]);
  await pipeline.start();
  await source.push(messages([...Array(10).keys()].map(good)));
  await pipeline.settled();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2, 3, 4, 5, 7, 8, 9]);
  assertEquals(pipeline.stats.rejected, { server: 1 });
  assertEquals(pipeline.stats.written, 9);
  await pipeline.stop();
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "10" }]);
});

Deno.test("Pipeline sets aside a poison message and an unconvertible record without losing neighbours", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 100 });
  await pipeline.start();
  await source.push(messages([good(0), "{not json", good(2), '{"n": "unconvertible"}', good(4)]));
  await pipeline.settled();
  await pipeline.stop();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 2, 4]);
  assertEquals(pipeline.stats.rejected, { decode: 1, convert: 1 });
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "5" }]);
});

Deno.test("Pipeline flushes by age on an idle topic", async () => {
  let now = 0;
  const { source, sink, pipeline } = setup({ maxRows: 100, maxAgeMs: 1000 }, () => now);
  await pipeline.start();
  await source.push(messages([good(0)]));
  await pipeline.settled();
  await pipeline.tick();
  assertEquals(sink.rows.length, 0);
  now = 1000;
  await pipeline.tick();
  assertEquals(sink.rows.length, 1);
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "1" }]]);
  await pipeline.stop();
});

Deno.test("Pipeline commits offsets of messages that produced no rows", async () => {
  let now = 0;
  const { source, sink, pipeline } = setup({ maxRows: 100, maxAgeMs: 1000 }, () => now);
  await pipeline.start();
  await source.push(messages(['{"event_type": "purge_init"}', '{"event_type": "purge_close"}']));
  await pipeline.settled();
  now = 1000;
  await pipeline.tick();
  assertEquals(sink.writes, 0);
  assertEquals(pipeline.stats.skipped, 2);
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "2" }]]);
  await pipeline.stop();
});

Deno.test("Pipeline stop gives up after the shutdown timeout without committing", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 100 });
  sink.failures = Infinity;
  await pipeline.start();
  await source.push(messages([good(0), good(1)]));
  await pipeline.settled();
  const result = await pipeline.stop();
  assertEquals(result, { clean: false, unwritten: 2 });
  assertEquals(source.commits, []);
  assertEquals(sink.rows, []);
});

Deno.test("Pipeline health turns bad when rows wait longer than the stall timeout", async () => {
  let now = 0;
  const { source, sink, pipeline } = setup({ maxRows: 1 }, () => now);
  sink.failures = Infinity;
  await pipeline.start();
  assertEquals(pipeline.health().ok, true);
  const pending = source.push(messages([good(0)]));
  now = 200_000;
  await new Promise((r) => setTimeout(r, 20));
  assertEquals(pipeline.health().ok, false);
  sink.failures = 0;
  await pending;
  await pipeline.settled();
  assertEquals(pipeline.health().ok, true);
  await pipeline.stop();
});

Deno.test("Pipeline fills the next batch during a write and holds the source only when it is full too", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  const gate = Promise.withResolvers<void>();
  const write = sink.write.bind(sink);
  sink.write = async (rows) => {
    await gate.promise;
    return write(rows);
  };
  await pipeline.start();
  await source.push(messages([good(0), good(1), good(2)]));
  let held = true;
  const pushing = source.push(messages([good(3), good(4)], 0, 3)).then(() => (held = false));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(held, true, "the second full batch waits for the first write");
  assertEquals(sink.rows, []);
  gate.resolve();
  await pushing;
  await pipeline.settled();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2, 3]);
  // A message is committed with the batch its last row went out in: 0 and 1, then 2 and 3.
  assertEquals(source.commits.map((c) => c[0]!.offset), ["2", "4"]);
  await pipeline.stop();
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2, 3, 4]);
});

Deno.test("Pipeline retries a failed offset commit with the next batch", async () => {
  const { source, pipeline } = setup({ maxRows: 2 });
  const commit = source.commit.bind(source);
  let fail = 1;
  source.commit = (offsets) =>
    fail-- > 0 ? Promise.reject(new Error("coordinator moved")) : commit(offsets);
  await pipeline.start();
  await source.push(messages([good(0), good(1)], 0));
  await pipeline.settled();
  assertEquals(source.commits, []);
  await source.push(messages([good(2), good(3)], 1));
  await pipeline.settled();
  // The failed commit (partition 0 at 2) goes out with the next batch's.
  assertEquals(source.commits, [[
    { topic: "flows", partition: 0, offset: "2" },
    { topic: "flows", partition: 1, offset: "2" },
  ]]);
  await pipeline.stop();
});

Deno.test("Pipeline holds commits for the sink's commit delay, and waits for them on stop", async () => {
  let now = 0;
  const { source, sink, pipeline } = setup({ maxRows: 2 }, () => now);
  Object.assign(sink, { commitDelayMs: 40 });
  await pipeline.start();
  await source.push(messages([good(0), good(1), good(2)]));
  await pipeline.settled();
  assertEquals(sink.rows.length, 2);
  assertEquals(source.commits, [], "acknowledged, but not yet durable");
  now = 39;
  await pipeline.tick();
  assertEquals(source.commits, []);
  now = 40;
  await pipeline.tick();
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "2" }]]);
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "3" }]);
});

Deno.test("Pipeline skips messages read again after a rejoin, and drops the rows of a partition it lost", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 10 });
  await pipeline.start();
  source.assign([{ topic: "flows", partition: 0 }, { topic: "flows", partition: 1 }]);
  await source.push(messages([good(0), good(1)], 0));
  await source.push(messages([good(10), good(11)], 1));
  // A rejoin: partition 1 moved to another member, partition 0 is read again from offset 0.
  source.assign([{ topic: "flows", partition: 0 }]);
  await source.push(messages([good(0), good(1), good(2)], 0));
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(sink.rows.map((r) => r["n"]), [0, 1, 2]);
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "3" }]]);
});

/** A sink that pins ranges and, like ClickHouse with tokens, stores a range written twice once. */
function pinningSink(sink: MemorySink, store: Set<string>, tokens: string[]) {
  Object.assign(sink, { pinsRanges: true });
  const write = sink.write.bind(sink);
  sink.write = async (rows) => {
    for (const range of partitionRows(rows)) {
      const token = rangeToken(range);
      tokens.push(token);
      if (store.has(token)) continue;
      await write(range.rows);
      store.add(token);
    }
    return allWritten();
  };
}

Deno.test("Pipeline pins each partition's range in the commit before the write, and the commit after clears it", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 4 });
  const tokens: string[] = [];
  pinningSink(sink, new Set(), tokens);
  await pipeline.start();
  await source.push(messages([good(0), good(1)], 0, 7));
  await source.push(messages([good(10), good(11)], 1));
  await pipeline.settled();
  assertEquals(source.commits, [
    [
      { topic: "flows", partition: 0, offset: "7", metadata: "sluice-range:7.0-8.0" },
      { topic: "flows", partition: 1, offset: "0", metadata: "sluice-range:0.0-1.0" },
    ],
    [
      { topic: "flows", partition: 0, offset: "9" },
      { topic: "flows", partition: 1, offset: "2" },
    ],
  ]);
  assertEquals(tokens, ["flows/0/7.0-8.0", "flows/1/0.0-1.0"]);
  await pipeline.stop();
});

Deno.test("Pipeline forms a pinned range again exactly after a restart, so a landed write is stored once", async () => {
  const store = new Set<string>();
  // The first run wrote rows 4.1 to 6.0 with this pin, then died before its commit.
  store.add("flows/0/4.1-6.0");
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  const tokens: string[] = [];
  pinningSink(sink, store, tokens);
  await pipeline.start();
  const [first, ...rest] = messages(
    [
      // Message 4 holds two records (kafka_multi_values); its first went out before the pin.
      `${good(40)}\n${good(41)}`,
      good(5),
      good(6),
      good(7),
      good(8),
    ],
    0,
    4,
  );
  await source.push([{ ...first!, resume: { offset: "4", metadata: "sluice-range:4.1-6.0" } }]);
  await source.push(rest);
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  // The pinned range went out whole despite maxRows 2, with the same token, and was dropped.
  assertEquals(tokens, ["flows/0/4.1-6.0", "flows/0/7.0-8.0"]);
  assertEquals(sink.rows.map((r) => r["n"]), [7, 8]);
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "9" }]);
});

Deno.test("Pipeline leaves a pinned range unwritten when it stops before the range is whole", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 100 });
  const tokens: string[] = [];
  pinningSink(sink, new Set(), tokens);
  await pipeline.start();
  // The range 4.0-6.0 was pinned by a run that died; only 4 and 5 are read before the stop.
  const [first, second] = messages([good(4), good(5)], 0, 4);
  await source.push([{ ...first!, resume: { offset: "4", metadata: "sluice-range:4.0-6.0" } }]);
  await source.push([second!]);
  await source.push(messages([good(10)], 1));
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  // Partition 1's row is written; partition 0's part of the range is not, nor committed past the pin.
  assertEquals(tokens, ["flows/1/0.0-0.0"]);
  assertEquals(sink.rows.map((r) => r["n"]), [10]);
  assert(source.commits.flat().every((c) => c.partition !== 0), JSON.stringify(source.commits));
});

Deno.test("Pipeline ignores a pin whose range does not start at the committed offset", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  const tokens: string[] = [];
  pinningSink(sink, new Set(), tokens);
  await pipeline.start();
  const [first, ...rest] = messages([good(4), good(5), good(6)], 0, 4);
  await source.push([{ ...first!, resume: { offset: "4", metadata: "sluice-range:3.0-6.0" } }]);
  await source.push(rest);
  await pipeline.stop();
  assertEquals(tokens, ["flows/0/4.0-5.0", "flows/0/6.0-6.0"]);
  assertEquals(sink.rows.map((r) => r["n"]), [4, 5, 6]);
});

Deno.test("Pipeline skips the messages before the committed offset when the client reads from an earlier one", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  await pipeline.start();
  const [first, ...rest] = messages([good(3), good(4), good(5), good(6)], 0, 3);
  // The client resolved offset 3 at its join (a pin of 3.0-4.0 was there);
  // the member that had the partition wrote that range and committed 5 after.
  await source.push([{ ...first!, resume: { offset: "5" } }, ...rest]);
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(sink.rows.map((r) => r["n"]), [5, 6]);
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "7" }]);
});

Deno.test("Pipeline commits where the next row is when a batch ends inside a message, and a restart skips the rows before it", async () => {
  const first = setup({ maxRows: 2 });
  await first.pipeline.start();
  // One message of three records (kafka_multi_values): the batch of 2 ends inside it.
  await first.source.push(messages([`${good(0)}\n${good(1)}\n${good(2)}`], 0, 7));
  await first.pipeline.settled();
  assertEquals(first.sink.rows.map((r) => r["n"]), [0, 1]);
  assertEquals(first.source.commits, [[
    { topic: "flows", partition: 0, offset: "7", metadata: "sluice-range:7.2-" },
  ]]);
  // A restart reads offset 7 again with that metadata: rows 0 and 1 are not written twice.
  const second = setup({ maxRows: 2 });
  await second.pipeline.start();
  const [again] = messages([`${good(0)}\n${good(1)}\n${good(2)}`], 0, 7);
  await second.source.push([{ ...again!, resume: { offset: "7", metadata: "sluice-range:7.2-" } }]);
  await second.pipeline.stop();
  assertEquals(second.sink.rows.map((r) => r["n"]), [2]);
  assertEquals(second.source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "8" }]);
});

Deno.test("Pipeline writes a pinned range alone when it completes while another partition's is still open", async () => {
  const store = new Set<string>(["flows/0/0.0-1.0", "flows/1/0.0-2.0"]);
  const { source, sink, pipeline } = setup({ maxRows: 10 });
  const tokens: string[] = [];
  pinningSink(sink, store, tokens);
  await pipeline.start();
  const p0 = messages([good(0), good(1), good(2)], 0);
  const p1 = messages([good(10), good(11), good(12), good(13)], 1);
  await source.push([{ ...p1[0]!, resume: { offset: "0", metadata: "sluice-range:0.0-2.0" } }]);
  await source.push([{ ...p0[0]!, resume: { offset: "0", metadata: "sluice-range:0.0-1.0" } }]);
  // Partition 0's range completes first; partition 1's is open with one row in the batch.
  await source.push([p0[1]!, p1[1]!, p1[2]!, p0[2]!, p1[3]!]);
  await pipeline.stop();
  // Both ranges went out exactly as pinned (and were dropped as written), the rest after.
  assertEquals(tokens.slice(0, 2), ["flows/0/0.0-1.0", "flows/1/0.0-2.0"]);
  assertEquals(sink.rows.map((r) => r["n"]).sort((a, b) => Number(a) - Number(b)), [2, 13]);
});

Deno.test("Pipeline sends a failed offset commit again on the timer when no next batch comes", async () => {
  const { source, pipeline } = setup({ maxRows: 2 });
  const commit = source.commit.bind(source);
  let fail = 1;
  source.commit = (offsets) =>
    fail-- > 0 ? Promise.reject(new Error("generation id is not valid")) : commit(offsets);
  await pipeline.start();
  await source.push(messages([good(0), good(1)], 3));
  await pipeline.settled();
  assertEquals(source.commits, []);
  await pipeline.tick();
  assertEquals(source.commits, [[{ topic: "flows", partition: 3, offset: "2" }]]);
  await pipeline.stop();
});

Deno.test("Pipeline stop sends a failed offset commit again, and is not clean when that fails too", async () => {
  for (const failures of [1, Infinity]) {
    const { source, pipeline } = setup({ maxRows: 2 });
    const commit = source.commit.bind(source);
    let fail = failures;
    source.commit = (offsets) =>
      fail-- > 0 ? Promise.reject(new Error("coordinator moved")) : commit(offsets);
    await pipeline.start();
    await source.push(messages([good(0), good(1)]));
    await pipeline.settled();
    assertEquals(source.commits, []);
    const result = await pipeline.stop();
    if (failures === 1) {
      assertEquals(result, { clean: true, unwritten: 0 });
      assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "2" }]]);
    } else {
      // Written, but read again at the next start: not a clean stop.
      assertEquals(result, { clean: false, unwritten: 0 });
      assertEquals(source.commits, []);
    }
  }
});

Deno.test("Pipeline stop is not clean when the sink's commit delay outlasts the shutdown timeout", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  // shutdownTimeoutMs is 200: the offsets are still held when it passes.
  Object.assign(sink, { commitDelayMs: 10_000 });
  await pipeline.start();
  await source.push(messages([good(0), good(1)]));
  await pipeline.settled();
  assertEquals(sink.rows.length, 2);
  const result = await pipeline.stop();
  assertEquals(result.clean, false);
  assertEquals(source.commits, []);
});

Deno.test("Pipeline commits a poison message's offset only once its dead letter is stored", async () => {
  const kept: DeadLetter[] = [];
  let store!: () => void;
  const gate = new Promise<void>((resolve) => (store = resolve));
  const place = {
    kind: "topic" as const,
    full: false,
    add: (letter: DeadLetter) => void kept.push(letter),
    stored: () => gate,
    room: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const { source, sink, pipeline } = setup({ maxRows: 2 }, undefined, new DeadLetters([place]));
  await pipeline.start();
  const pushed = source.push(messages([good(0), "{oops", good(2)], 0));
  await new Promise((resolve) => setTimeout(resolve, 20));
  // Written, but not committed: the letter of offset 1 is not stored yet.
  assertEquals(sink.rows.map((r) => r["n"]), [0, 2]);
  assertEquals(source.commits, []);
  assertEquals(kept.map((l) => [l.origin.offset, l.rejection.reason, l.value]), [
    ["1", "decode", "message"],
  ]);
  store();
  await pushed;
  await pipeline.settled();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "3" }]]);
  await pipeline.stop();
});

Deno.test("Pipeline drops what it read before it rejoined the group as a new member, even of a partition it got back", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 10 });
  const tokens: string[] = [];
  pinningSink(sink, new Set(), tokens);
  await pipeline.start();
  source.assign([{ topic: "flows", partition: 0 }]);
  await source.push(messages([good(0), good(1), good(2)], 0));
  // The session expired; another member wrote offsets 0-4 and committed 5; this one got partition 0 back.
  source.assign([{ topic: "flows", partition: 0 }], { rejoined: true });
  const [next, ...rest] = messages([good(5), good(6)], 0, 5);
  await source.push([{ ...next!, resume: { offset: "5" } }, ...rest]);
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  // Rows 0-2, batched before, are not written: the other member did.
  assertEquals(sink.rows.map((r) => r["n"]), [5, 6]);
  assertEquals(tokens, ["flows/0/5.0-6.0"]);
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "7" }]);
});

/**
 * Makes the source's first commit (a pin) hang until the returned function
 * is called, and then fail with `error`; later commits go through.
 */
function hangFirstCommit(source: MemorySource, error: string): () => void {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const commit = source.commit.bind(source);
  let first = true;
  source.commit = async (offsets) => {
    if (first) {
      first = false;
      await held;
      throw new Error(error);
    }
    await commit(offsets);
  };
  return release;
}

Deno.test("Pipeline neither writes nor commits a batch taken before it rejoined as a new member", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  const tokens: string[] = [];
  pinningSink(sink, new Set(), tokens);
  // The pin commit of the first batch hangs until the member rejoined.
  const release = hangFirstCommit(source, "The coordinator is not aware of this member");
  await pipeline.start();
  source.assign([{ topic: "flows", partition: 0 }]);
  await source.push(messages([good(0), good(1)], 0));
  source.assign([{ topic: "flows", partition: 0 }], { rejoined: true });
  release();
  await pipeline.settled();
  assertEquals(sink.rows, []);
  assertEquals(tokens, []);
  assertEquals(source.commits, []);
  await pipeline.stop();
});

/**
 * A batch is being written (its pin commit hangs) and message 3, two
 * records, fills the next one at its first record: the source gives up
 * waiting for it (the group was lost), the member joins again (as itself
 * or as a new member), and the client reads the partition again from 0.
 */
async function gaveUp(options: { rejoined: boolean }) {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  const tokens: string[] = [];
  pinningSink(sink, new Set(), tokens);
  const release = hangFirstCommit(source, "This is not the correct coordinator for this group");
  await pipeline.start();
  source.assign([{ topic: "flows", partition: 0 }]);
  const all = messages([good(0), good(1), good(2), `${good(3)}\n${good(30)}`, good(4)], 0);
  await source.push(all.slice(0, 3));
  const given = source.push(all.slice(3, 4));
  source.assign([{ topic: "flows", partition: 0 }], options);
  release();
  await given;
  await source.push(all);
  const result = await pipeline.stop();
  return { result, rows: sink.rows.map((r) => r["n"]), tokens };
}

Deno.test("Pipeline does not send again a failed commit of a partition the group moved meanwhile", async () => {
  const { source, sink, pipeline } = setup({ maxRows: 2 });
  // The commit after the first batch waits while the group moves partition
  // 1 to another member, then fails: its generation is gone.
  const release = hangFirstCommit(source, "Specified group generation id is not valid");
  await pipeline.start();
  source.assign([{ topic: "flows", partition: 0 }, { topic: "flows", partition: 1 }]);
  await source.push(messages([good(0)], 0));
  await source.push(messages([good(10)], 1));
  source.assign([{ topic: "flows", partition: 0 }]);
  release();
  await pipeline.settled();
  await source.push(messages([good(1), good(2)], 0, 1));
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(sink.rows.map((r) => r["n"]), [0, 10, 1, 2]);
  // Partition 1's offset 1 would overwrite what its new owner committed.
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "3" }]]);
});

Deno.test("Pipeline takes the message a source gave up waiting for once it joined again, and skips it when read again", async () => {
  const { result, rows } = await gaveUp({ rejoined: false });
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(rows, [0, 1, 2, 3, 30, 4]);
});

Deno.test("Pipeline drops the rest of a message a source gave up waiting for when it joined again as a new member", async () => {
  const { result, rows } = await gaveUp({ rejoined: true });
  assertEquals(result, { clean: true, unwritten: 0 });
  // Everything from before the join is read again from the committed offset (0), once.
  assertEquals(rows, [0, 1, 2, 3, 30, 4]);
});

Deno.test("Pipeline reports the sink down with the reason while writes fail, up once one succeeds, and never up before it answered", async () => {
  const source = new MemorySource();
  const sink = new MemorySink();
  const metrics = new Metrics();
  const pipeline = new Pipeline(source, {
    sink,
    decoder: decodePmacct,
    batch: { maxRows: 1, maxBytes: 1e9, maxAgeMs: 60_000 },
    retry: new RetryPolicy({ initialMs: 1, maxMs: 5 }),
    metrics,
    log: new Logger({ write: () => {} }),
    tickMs: 60_000,
    shutdownTimeoutMs: 200,
  });
  const up = async () => /sluice_sink_up\{sink="memory"\} (\d)/.exec(await metrics.render())?.[1];
  assertEquals(await up(), undefined);
  assertEquals(metrics.reachability().get("sink"), undefined);
  sink.failures = Infinity;
  await pipeline.start();
  const pushed = source.push(messages([good(0), good(1)]));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(await up(), "0");
  assertEquals(metrics.reachability().get("sink")?.reason, "Cannot connect");
  sink.failures = 0;
  await pushed;
  await pipeline.settled();
  assertEquals(sink.rows.length, 2);
  assertEquals(await up(), "1");
  assertEquals(metrics.reachability().get("sink")?.up, true);
  await pipeline.stop();
});

Deno.test("Pipeline with a dead-letter file on a full disk holds the source and commits nothing, without crashing, and says so", async () => {
  const lines: string[] = [];
  const metrics = new Metrics();
  const log = new Logger({ write: (line) => lines.push(line) });
  const policy = new RetryPolicy({ initialMs: 5, maxMs: 10 });
  const file = new DeadLetterFile("/dev/full", { log, metrics, policy });
  const source = new MemorySource();
  const sink = new MemorySink();
  const pipeline = new Pipeline(source, {
    sink,
    decoder: decodePmacct,
    deadLetters: new DeadLetters([file]),
    batch: { maxRows: 1, maxBytes: 1e9, maxAgeMs: 60_000 },
    retry: policy,
    metrics,
    log,
    tickMs: 60_000,
    shutdownTimeoutMs: 100,
  });
  await pipeline.start();
  let handled = 0;
  const all = messages([good(0), "{oops", good(2), good(3), good(4), good(5), good(6)]);
  const pushing = (async () => {
    for (const message of all) {
      await source.push([message]);
      handled++;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 100));
  // The letter of offset 1 cannot be stored: no commit, and the source waits
  // once the batch after the one whose commit waits is full.
  assertEquals(source.commits, []);
  assert(handled < all.length, `the source is held (handled ${handled})`);
  const text = await metrics.render();
  assert(/sluice_dead_letter_errors_total\{destination="file"\} [1-9]/.test(text), text);
  assertEquals(metrics.reachability().get("dead_letter_file")?.up, false);
  assert(
    lines.some((l) => l.includes("Cannot store dead letters in /dev/full; retrying, offsets wait")),
    lines.join("\n"),
  );
  const result = await pipeline.stop();
  assertEquals(result.clean, false);
  assertEquals(source.commits, []);
  await file.close();
  await pushing.catch(() => {});
});

Deno.test("Pipeline counts the bytes of the messages consumed and of the rows the sink acknowledged, not of rows set aside or sent again", async () => {
  const { source, sink, pipeline, metrics } = setup({ maxRows: 10 });
  const write = sink.write.bind(sink);
  let first = true;
  // The first write: row 2 refused in the answer, row 3 to send again (per-item 429).
  sink.write = (rows) => {
    if (!first) return write(rows);
    first = false;
    sink.writes++;
    sink.rows.push(...rows.filter((_, i) => i !== 2 && i !== 3).map((r) => r.row));
    return Promise.resolve({
      rejected: [{ index: 2, rejection: { reason: "server", error: "refused" } }],
      retry: [3],
    });
  };
  await pipeline.start();
  const all = messages([...Array(10).keys()].map(good));
  await source.push(all);
  await pipeline.settled();
  // The second batch: row 6 refused by splitting.
  sink.bad = new Set([6]);
  await source.push(messages([...Array(10).keys()].map(good), 0, 10));
  await pipeline.settled();
  const received = 2 * all.reduce((n, m) => n + m.value!.byteLength, 0);
  assertEquals(await sample(metrics, "sluice_bytes_received_total", '{topic="flows"}'), received);
  // MemorySink's rows are 10 bytes each: 20 rows, less row 2 of the first batch and row 6 of the second.
  assertEquals(pipeline.stats.written, 18);
  assertEquals(await sample(metrics, "sluice_bytes_written_total", '{sink="memory"}'), 180);
  await pipeline.stop();
});

Deno.test("Pipeline shows the rows of the batch being filled and of the batch being written when scraped", async () => {
  const { source, sink, pipeline, metrics } = setup({ maxRows: 2 });
  const gate = Promise.withResolvers<void>();
  const write = sink.write.bind(sink);
  sink.write = async (rows) => {
    await gate.promise;
    return write(rows);
  };
  const waiting = async () => [
    await sample(metrics, "sluice_rows_pending"),
    await sample(metrics, "sluice_rows_in_flight"),
  ];
  assertEquals(await waiting(), [0, 0]);
  await pipeline.start();
  await source.push(messages([good(0), good(1), good(2)]));
  assertEquals(await waiting(), [1, 2]);
  assertEquals(pipeline.health().detail["pending_rows"], 3);
  gate.resolve();
  await pipeline.settled();
  assertEquals(await waiting(), [1, 0]);
  await pipeline.stop();
  assertEquals(await waiting(), [0, 0]);
});

Deno.test("Pipeline sets the end-to-end lag of each topic from the Kafka timestamp of the newest message of an acknowledged batch", async () => {
  let now = 100_000;
  const { source, pipeline, metrics } = setup({ maxRows: 4 }, () => now);
  const lag = (topic: string) =>
    sample(metrics, "sluice_end_to_end_lag_seconds", `{topic="${topic}"}`);
  await pipeline.start();
  const stamped = (values: string[], partition: number, timestamps: number[]) =>
    messages(values, partition).map((m, i) => ({ ...m, timestamp: timestamps[i] }));
  // Producers' CreateTime is not always in offset order: the newest counts.
  await source.push(stamped([good(0), good(1)], 0, [90_000, 95_500]));
  await source.push(stamped([good(2)], 1, [94_000]));
  assertEquals(await lag("flows"), undefined, "no batch acknowledged yet");
  now = 101_000;
  await source.push([{ ...messages([good(3)], 0, 2)[0]!, topic: "other", timestamp: 99_000 }]);
  await pipeline.settled();
  assertEquals(await lag("flows"), 5.5);
  assertEquals(await lag("other"), 2);
  // A message without a timestamp (stdin) leaves the gauge as it was.
  await source.push(messages([good(4)], 0, 2));
  now = 200_000;
  await pipeline.stop();
  assertEquals(await lag("flows"), 5.5);
});
