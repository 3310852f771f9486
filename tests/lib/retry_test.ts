import { backoffDelay, MAX_RETRY_AFTER_MS, RetryPolicy, sleep } from "../../lib/retry.ts";
import { assert, assertEquals } from "../_assert.ts";

Deno.test("backoffDelay() doubles from the first delay up to the cap, jittered between half and all", () => {
  const options = { initialMs: 1000, maxMs: 30_000 };
  assertEquals([1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, options, () => 0.999999)), [
    1000,
    2000,
    4000,
    8000,
    16000,
    30000,
    30000,
  ]);
  assertEquals([1, 2, 6].map((a) => backoffDelay(a, options, () => 0)), [500, 1000, 15000]);
  // Attempt 0 or less counts as the first.
  assertEquals(backoffDelay(0, options, () => 0.999999), 1000);
});

Deno.test("RetryPolicy.delay() lets a longer Retry-After win, bounded by five minutes or the cap", () => {
  const policy = new RetryPolicy({ initialMs: 1000, maxMs: 30_000 }, () => 0.999999);
  assertEquals(policy.delay(1), 1000);
  assertEquals(policy.delay(1, 500), 1000);
  assertEquals(policy.delay(1, 12_000), 12_000);
  assertEquals(policy.delay(1, 3_600_000), MAX_RETRY_AFTER_MS);
  const long = new RetryPolicy({ initialMs: 1000, maxMs: 600_000 }, () => 0.999999);
  assertEquals(long.delay(1, 3_600_000), 600_000);
});

Deno.test("RetryPolicy.kafkaRetry() gives kafkajs the same first delay and cap", () => {
  const policy = new RetryPolicy({ initialMs: 250, maxMs: 8000 });
  assertEquals(policy.kafkaRetry(), { initialRetryTime: 250, maxRetryTime: 8000, retries: 8 });
});

Deno.test("RetryPolicy.wait() sends a heartbeat before each slice and ends early on abort", async () => {
  const policy = new RetryPolicy({ initialMs: 1, maxMs: 10 });
  let beats = 0;
  const started = performance.now();
  await policy.wait(30, { heartbeat: () => Promise.resolve(void beats++) });
  assertEquals(beats, 1);
  assert(performance.now() - started >= 25);

  const controller = new AbortController();
  const waiting = policy.wait(60_000, {
    signal: controller.signal,
    heartbeat: () => Promise.resolve(void beats++),
  });
  setTimeout(() => controller.abort(), 20);
  const before = performance.now();
  await waiting;
  assert(performance.now() - before < 5000, "the abort ends the wait");
  assertEquals(beats, 2);
});

Deno.test("sleep() resolves at once on an aborted signal", async () => {
  const controller = new AbortController();
  controller.abort();
  const before = performance.now();
  await sleep(60_000, controller.signal);
  assert(performance.now() - before < 1000);
});
