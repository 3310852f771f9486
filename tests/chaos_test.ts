/**
 * The short run of the chaos suite (`bench/chaos.ts --sink all`): every
 * scenario (SIGKILLs, the sink's server stopped twice, the broker restarted
 * and stopped, poison only, four processes in one group, the four codecs)
 * on 20,000 messages with `--quick` waits, into every sink, as one
 * subprocess against the local services (about 6 minutes: the sinks share
 * the broker outages and their servers' outages run side by side). One test
 * per sink reads that run's table: a row per scenario with nothing missing,
 * no duplicates (ClickHouse 18.16 excepted: it has no insert deduplication
 * token) and every poison message in the dead-letter topic.
 *
 * The suite stops and starts services (`scripts/services.sh`): run this
 * file alone, not beside other tests. Its progress goes to standard error.
 *
 * @module
 */

import { SCENARIOS } from "../bench/_chaos/scenarios.ts";
import { CHAOS_SINKS } from "../bench/_chaos/sinks.ts";
import { assert, assertEquals } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const RECORDS = 20_000;
/** Every message number ending in 50 is poison. */
const POISON = RECORDS / 100;

/** One row of the suite's Markdown table, by column title. */
type Row = Record<string, string>;

/**
 * The rows of the Markdown table in the suite's output.
 *
 * @param text Standard output.
 * @returns The rows, keyed by the header's titles.
 */
function tableRows(text: string): Row[] {
  const lines = text.split("\n").filter((l) => l.startsWith("| "));
  const cells = (line: string) => line.slice(1, -1).split("|").map((c) => c.trim());
  const [header, _rule, ...body] = lines;
  if (header === undefined) return [];
  const titles = cells(header);
  return body.map((line) => Object.fromEntries(cells(line).map((c, i) => [titles[i], c])));
}

let run: Promise<{ code: number; text: string }> | undefined;

/** The one run of the suite, started by the first test that needs it. */
function chaos(): Promise<{ code: number; text: string }> {
  run ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}bench/chaos.ts`,
        "--sink",
        "all",
        "--records",
        String(RECORDS),
        "--quick",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) };
  })();
  return run;
}

for (const sink of CHAOS_SINKS) {
  const duplicatesAllowed = sink === "clickhouse18";
  Deno.test(
    `deno task chaos --quick: ${sink} loses nothing, writes each record once` +
      `${duplicatesAllowed ? " (duplicates allowed)" : ""} and dead-letters every poison message`,
    async () => {
      const { text } = await chaos();
      const rows = tableRows(text);
      for (const scenario of SCENARIOS) {
        const row = rows.find((r) => r["sink"] === sink && r["scenario"] === scenario);
        assert(row, `a row for ${sink} ${scenario} in:\n${text}`);
        assertEquals(row["expected"], (RECORDS - POISON).toLocaleString("en-US"));
        assertEquals(row["missing"], "0", `${scenario}: nothing missing\n${text}`);
        if (!duplicatesAllowed) {
          assertEquals(row["duplicates"], "0", `${scenario}: no duplicates\n${text}`);
        }
        const dead = `${POISON} of ${POISON}`;
        assert(
          row["dead-lettered"]?.startsWith(dead),
          `${scenario}: dead-lettered ${dead}, got ${row["dead-lettered"]}\n${text}`,
        );
      }
      const failed = text.split("\n").filter((l) => l.startsWith(`- FAILED ${sink} `));
      assertEquals(failed, [], `no scenario of ${sink} failed:\n${text}`);
    },
  );
}
