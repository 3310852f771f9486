/**
 * Prints the README's configuration table from the variable table:
 * `deno run -A scripts/config_table.ts`, pasted between the markers in README.md.
 *
 * @module
 */
import { allVariables } from "../lib/config.ts";
import { writeStdout } from "../lib/log.ts";
import { REGISTRIES } from "../sinks/mod.ts";

const rows = ["| Variable | Default | Description |", "| --- | --- | --- |"];
for (const v of allVariables(REGISTRIES)) {
  const def = v.required
    ? "**required**"
    : v.default === undefined || v.default === ""
    ? ""
    : `\`${v.default}\``;
  const doc = v.doc.replaceAll("|", "\\|") + (v.secret ? " (secret)" : "");
  rows.push(`| \`${v.name}\` | ${def} | ${doc} |`);
}
writeStdout(rows.join("\n") + "\n");
