/**
 * Reading verdicts in the classifier tests of every sink.
 *
 * @module
 */

import type { RequestVerdict } from "../lib/sink.ts";

/**
 * The fields of a failing verdict, for comparing with `assertEquals`.
 *
 * @param verdict A request's verdict.
 * @returns The verdict itself when it is a failure; `{}` for `ok`.
 */
export function failure(
  verdict: RequestVerdict,
): { errorType?: string; hint?: string; retryAfterMs?: number } {
  return verdict.action === "ok" ? {} : verdict;
}
