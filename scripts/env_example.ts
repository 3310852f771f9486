/**
 * Prints a fresh `.env.example` from the variable table: `deno run -A scripts/env_example.ts > .env.example`.
 * Hand edits are allowed afterwards; tests/lib/config_test.ts checks every variable is documented.
 *
 * @module
 */
import { allVariables } from "../lib/config.ts";
import { writeStdout } from "../lib/log.ts";
const out: string[] = [
  "## sluice configuration. Copy to .env and edit; variables set in the environment win over this file.",
  "## Required variables are uncommented with an example value; optional ones are commented out",
  "## and show their default. Variable names and defaults of pmacct-kafka-clickhouse are kept.",
];
let group = "";
for (const v of allVariables()) {
  if (v.group !== group) {
    group = v.group;
    out.push("", `## ---- ${group} ----`);
  }
  out.push("");
  const doc = v.doc.replace(/\.$/, "");
  out.push(`## ${doc}.`);
  if (v.type === "enum" && v.choices) out.push(`## One of: ${v.choices.join(", ")}.`);
  if (v.secret) out.push("## Secret: never logged, masked by --check-config.");
  if (v.required) out.push(`${v.name}=${v.example ?? ""}`);
  else out.push(`# ${v.name}=${v.default ?? ""}`);
}
writeStdout(out.join("\n") + "\n");
