/**
 * Exponential backoff with full jitter, and a sleep that can be cut short.
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
