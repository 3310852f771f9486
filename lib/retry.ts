/**
 * The one retry policy of sluice: exponential backoff with jitter, capped,
 * honouring a backend's `Retry-After`, with waits that keep the consumer
 * group membership alive and end early when sluice stops.
 *
 * It is used for every wait sluice makes on something that failed: a sink
 * that cannot be reached at start (`lib/sink.ts`), a Kafka topic that does
 * not exist yet (`lib/kafka.ts`), a write that failed
 * (`lib/pipeline/deliver.ts`), and kafkajs's own request retries
 * ({@link RetryPolicy.kafkaRetry}). `RETRY_BACKOFF_INITIAL` and
 * `RETRY_BACKOFF_MAX` set it.
 *
 * @module
 */

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** The first delay. */
  initialMs: number;
  /** The cap. */
  maxMs: number;
}

/** The longest `Retry-After` honoured when it exceeds the cap, in milliseconds. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** How often a long wait sends a heartbeat, in milliseconds. */
export const HEARTBEAT_EVERY_MS = 2000;

/**
 * The delay before retry number `attempt` (1 for the first retry): the
 * exponential step capped at `maxMs`, with jitter between half and all of it
 * so that several sluice instances do not retry in lockstep.
 *
 * @param attempt Retry number, from 1.
 * @param options Initial delay and cap.
 * @param random Source of randomness in [0, 1), injected by tests.
 * @returns Milliseconds to wait.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(options.maxMs, options.initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * Waits, waking early when the signal aborts.
 *
 * @param ms How long.
 * @param signal Cuts the wait short when aborted.
 * @returns Resolves after the delay or on abort.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** What a wait may do meanwhile. */
export interface WaitOptions {
  /** Ends the wait early when aborted. */
  signal?: AbortSignal;
  /** Called before each slice of {@link HEARTBEAT_EVERY_MS}, e.g. the consumer group's heartbeat. */
  heartbeat?: () => Promise<void>;
}

/** Backoff, its cap, `Retry-After` and the waits, in one place. */
export class RetryPolicy {
  /** The first delay, in milliseconds. */
  readonly initialMs: number;
  /** The cap of the backoff, in milliseconds. */
  readonly maxMs: number;
  readonly #random: () => number;

  /**
   * @param options The first delay and the cap.
   * @param random Source of randomness in [0, 1), injected by tests.
   */
  constructor(options: BackoffOptions, random: () => number = Math.random) {
    this.initialMs = options.initialMs;
    this.maxMs = options.maxMs;
    this.#random = random;
  }

  /**
   * The delay before retry number `attempt`. A backend's `Retry-After` wins
   * over a shorter backoff, bounded so that a bogus header cannot hold the
   * pipeline for hours (RFC 9110 10.2.3).
   *
   * @param attempt Retry number, from 1.
   * @param retryAfterMs What the backend asked for, if it did.
   * @returns Milliseconds to wait.
   */
  delay(attempt: number, retryAfterMs?: number): number {
    const backoff = backoffDelay(attempt, this, this.#random);
    const asked = Math.min(retryAfterMs ?? 0, Math.max(this.maxMs, MAX_RETRY_AFTER_MS));
    return Math.max(backoff, asked);
  }

  /**
   * Waits `ms`, in slices that each start with a heartbeat, until the time
   * passed or the signal aborted.
   *
   * @param ms How long.
   * @param options The stop signal and the heartbeat.
   * @returns Resolves when the wait is over.
   */
  async wait(ms: number, options: WaitOptions = {}): Promise<void> {
    const { signal, heartbeat } = options;
    if (heartbeat === undefined) return await sleep(ms, signal);
    for (let left = ms; left > 0 && !signal?.aborted; left -= HEARTBEAT_EVERY_MS) {
      await heartbeat();
      await sleep(Math.min(left, HEARTBEAT_EVERY_MS), signal);
    }
  }

  /**
   * kafkajs's own retry of a failed request (a broker that does not answer,
   * a leader election), from the same settings: it starts at the first delay
   * and is capped at the same cap; after 8 retries the consumer restarts.
   *
   * @returns The `retry` option of kafkajs's client.
   */
  kafkaRetry(): { initialRetryTime: number; maxRetryTime: number; retries: number } {
    return { initialRetryTime: this.initialMs, maxRetryTime: this.maxMs, retries: 8 };
  }
}
