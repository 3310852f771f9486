/**
 * Unit tests of the delivery rules with an in-memory source and sink; the
 * same rules are tested end to end against real Kafka and ClickHouse in
 * tests/integration/.
 */
import { decodePmacct } from "../../lib/decode/pmacct.ts";
import { Logger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { Pipeline } from "../../lib/pipeline/mod.ts";
import { RetryPolicy } from "../../lib/retry.ts";
import type { BatchLimits } from "../../lib/sink.ts";
import type { SourceMessage } from "../../lib/source.ts";
import { assert, assertEquals } from "../_assert.ts";
import { MemorySink, MemorySource } from "../_memory.ts";

function setup(batch: Partial<BatchLimits> = {}, clock?: () => number) {
  const source = new MemorySource();
  const sink = new MemorySink();
  const pipeline = new Pipeline(source, {
    sink,
    decoder: decodePmacct,
    batch: { maxRows: 4, maxBytes: 1e9, maxAgeMs: 60_000, ...batch },
    retry: new RetryPolicy({ initialMs: 1, maxMs: 5 }),
    metrics: new Metrics(),
    log: new Logger({ write: () => {} }),
    clock,
    tickMs: 60_000,
    shutdownTimeoutMs: 200,
  });
  return { source, sink, pipeline };
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
  // Message 3 filled the batch before it was marked consumed: offset 3 is committed, not 4.
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "3" }]]);
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
  // A message is committed once it is wholly in a written batch: 0 with the first, 1 and 2 with the second.
  assertEquals(source.commits.map((c) => c[0]!.offset), ["1", "3"]);
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
  // The failed commit (partition 0 at 1) is superseded by the later offset of its partition.
  assertEquals(source.commits, [[
    { topic: "flows", partition: 0, offset: "2" },
    { topic: "flows", partition: 1, offset: "1" },
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
  assertEquals(source.commits, [[{ topic: "flows", partition: 0, offset: "1" }]]);
  const result = await pipeline.stop();
  assertEquals(result, { clean: true, unwritten: 0 });
  assertEquals(source.commits.at(-1), [{ topic: "flows", partition: 0, offset: "3" }]);
});
