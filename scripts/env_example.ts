/**
 * Prints a fresh `.env.example` from the variable table: `deno run -A scripts/env_example.ts > .env.example`.
 * Hand edits are allowed afterwards; tests/lib/config_test.ts checks every variable is documented.
 *
 * @module
 */
import { allVariables, commonSpecs } from "../lib/config.ts";
import { writeStdout } from "../lib/log.ts";
import { REGISTRIES, SINKS } from "../sinks/mod.ts";

/** The sink this example is set up for; the other sinks' required variables stay commented out. */
const ACTIVE_SINK = "clickhouse";
const common = new Set(commonSpecs(REGISTRIES).map((v) => v.name));
const sinkOf = new Map(
  Object.values(SINKS).flatMap((s) => s.variables.map((v) => [v.name, s.name] as const)),
);

const out: string[] = [
  "## sluice configuration. Copy to .env and edit; variables set in the environment win over this file.",
  `## Set up for SINK=${ACTIVE_SINK}: its required variables are uncommented with an example value.`,
  "## Optional variables are commented out and show their default; so are the other sinks'",
  "## variables (uncomment the required ones of the sink you choose). Variable names and defaults",
  "## of pmacct-kafka-clickhouse, pmacct-kafka-elastic and pmacct-kafka-vm are kept.",
];
let group = "";
for (const v of allVariables(REGISTRIES)) {
  if (v.group !== group) {
    group = v.group;
    out.push("", `## ---- ${group} ----`);
  }
  out.push("");
  const doc = v.doc.replace(/\.$/, "");
  out.push(`## ${doc}.`);
  if (v.type === "enum" && v.choices) out.push(`## One of: ${v.choices.join(", ")}.`);
  if (v.secret) out.push("## Secret: never logged, masked by --check-config.");
  const sink = sinkOf.get(v.name);
  if (v.name === "SINK") out.push(`SINK=${ACTIVE_SINK}`);
  else if (v.required && (common.has(v.name) || sink === ACTIVE_SINK)) {
    out.push(`${v.name}=${v.example ?? ""}`);
  } else if (v.required) {
    out.push(`## Required with SINK=${sink}.`, `# ${v.name}=${v.example ?? ""}`);
  } else out.push(`# ${v.name}=${v.default ?? ""}`);
}
writeStdout(out.join("\n") + "\n");
