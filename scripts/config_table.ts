/**
 * The configuration reference of docs/configuration.md, generated from the
 * variable table: `deno run -A scripts/config_table.ts` prints it, to be
 * pasted between the `config-table` markers of docs/configuration.md;
 * `--write` puts it there itself and runs `deno fmt` on the page.
 * tests/lib/config_test.ts fails when the page holds anything else.
 *
 * The shape reads in a terminal as well as rendered: one heading per group,
 * one list item per variable, `` `NAME` (default `x`): what it does ``.
 *
 * @module
 */
import { allVariables } from "../lib/config.ts";
import { writeStderr, writeStdout } from "../lib/log.ts";
import type { VarSpec } from "../lib/variables.ts";
import { REGISTRIES } from "../sinks/mod.ts";

/** The page that holds the reference. */
export const CONFIG_PAGE = new URL("../docs/configuration.md", import.meta.url);
/** The line before the generated part. */
export const START_MARKER = "<!-- config-table:start -->";
/** The line after the generated part. */
export const END_MARKER = "<!-- config-table:end -->";

/**
 * The reference as Markdown: a `###` heading per group (in `--help` order),
 * then one item per variable with its default, whether it is required or
 * secret, and its description.
 *
 * @param variables Every variable, in help order.
 * @returns The Markdown, without the markers.
 */
export function configReference(variables: readonly VarSpec[]): string {
  const out: string[] = [];
  let group: string | undefined;
  for (const v of variables) {
    if (v.group !== group) {
      group = v.group;
      out.push("", `### ${group}`, "");
    }
    const notes = [
      v.required ? "**required**" : v.default ? `default \`${v.default}\`` : undefined,
      v.secret ? "secret" : undefined,
    ].filter((note) => note !== undefined);
    const head = `\`${v.name}\`` + (notes.length > 0 ? ` (${notes.join(", ")})` : "");
    // `<prefix>` would be read as an HTML tag.
    out.push(`- ${head}: ${v.doc.replaceAll("<", "\\<")}`);
  }
  return out.join("\n").trim() + "\n";
}

/**
 * The part of a page between the markers.
 *
 * @param page The page's text.
 * @returns The text between the marker lines.
 * @throws {SyntaxError} When a marker is missing.
 */
export function generatedPart(page: string): string {
  const start = page.indexOf(START_MARKER);
  const end = page.indexOf(END_MARKER);
  if (start < 0 || end < start) {
    throw new SyntaxError(`Cannot find ${START_MARKER} ... ${END_MARKER} in the page`);
  }
  return page.slice(start + START_MARKER.length, end);
}

if (import.meta.main) {
  const reference = configReference(allVariables(REGISTRIES));
  if (Deno.args.includes("--write")) {
    const page = await Deno.readTextFile(CONFIG_PAGE);
    generatedPart(page);
    const before = page.slice(0, page.indexOf(START_MARKER) + START_MARKER.length);
    const after = page.slice(page.indexOf(END_MARKER));
    await Deno.writeTextFile(CONFIG_PAGE, `${before}\n\n${reference}\n${after}`);
    const fmt = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", CONFIG_PAGE.pathname],
      stdout: "null",
    }).output();
    if (!fmt.success) {
      writeStderr(`Cannot format ${CONFIG_PAGE.pathname}: deno fmt exited ${fmt.code}\n`);
      Deno.exit(1);
    }
  } else writeStdout(reference);
}
