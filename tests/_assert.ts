/**
 * The one place tests take their assertions from: Node's strict assert,
 * built into Deno (JSR's @std/assert is not reachable from here).
 *
 * @module
 */
export {
  deepEqual as assertEquals,
  equal as assertStrictEquals,
  match as assertMatch,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
export { default as assertStrict } from "node:assert/strict";
