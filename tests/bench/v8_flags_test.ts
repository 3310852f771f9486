/**
 * The V8 flags sluice runs with are the same everywhere: `deno task start`,
 * every `deno compile` task, the container build, and the benchmark's runs.
 */
import { START_V8_FLAGS } from "../../bench/_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task start, the compile tasks, the Dockerfile and the bench use the same V8 flags", async () => {
  const flag = `--v8-flags=${START_V8_FLAGS}`;
  const tasks: Record<string, string> = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", ROOT)),
  ).tasks;
  assert(tasks.start!.includes(flag), tasks.start);
  const compiles = Object.entries(tasks).filter(([name]) => name.startsWith("compile:"));
  assertEquals(compiles.length, 5);
  for (const [name, command] of compiles) assert(command.includes(flag), name);
  const dockerfile = await Deno.readTextFile(new URL("Dockerfile", ROOT));
  assert(dockerfile.includes(flag), "Dockerfile");
});
