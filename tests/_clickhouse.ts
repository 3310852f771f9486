/**
 * Test helpers for the real ClickHouse: plain HTTP queries, so that what the
 * tests read back does not go through the code under test.
 *
 * @module
 */

import { clickhouseUrl } from "./_services.ts";

/**
 * Runs a statement and returns the response text.
 *
 * @param sql The statement.
 * @returns The body.
 * @throws {Error} With the server's message when it fails.
 */
export async function query(sql: string): Promise<string> {
  const response = await fetch(clickhouseUrl() + "/", { method: "POST", body: sql });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`Cannot run ${JSON.stringify(sql.slice(0, 80))}: ${text.trim()}`);
  }
  return text;
}

/**
 * Runs a SELECT and returns its rows.
 *
 * @param sql The SELECT, without a FORMAT clause.
 * @returns The rows as objects.
 */
export async function rows<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const text = await query(`${sql} FORMAT JSONEachRow`);
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as T);
}

/**
 * A single number from a SELECT (0 when the table does not exist yet).
 *
 * @param sql The SELECT returning one value.
 * @returns The number.
 */
export async function scalar(sql: string): Promise<number> {
  try {
    return Number((await query(sql)).trim());
  } catch (error) {
    if (/Code: 60[,.]|Code: 81[,.]/.test(String(error))) return 0;
    throw error;
  }
}
