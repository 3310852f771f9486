/**
 * Checks the direction of the house (`deno task imports`, part of
 * `deno task ok` and CI): `main.ts` on top, `sinks/` in the middle, `lib/`
 * as the ground floor. It fails when
 *
 * - a file under `lib/` imports from `sinks/` (or from `main.ts`, `bench/`,
 *   `scripts/`, `tests/`);
 * - a file under `sinks/` imports from `main.ts`, `bench/`, `scripts/` or `tests/`;
 * - a sink imports another sink's folder (what they share belongs in `lib/`);
 * - the imports of `main.ts`, `lib/` and `sinks/` form a cycle.
 *
 * Imports are read from the source text (static `import`/`export ... from`,
 * `import "..."` and `import("...")` with a literal), comments left out.
 *
 * @module
 */

import { dirname, join, normalize, relative } from "node:path";
import { writeStderr, writeStdout } from "../lib/log.ts";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const SOURCE_DIRS = ["lib", "sinks"];

/** The files of the checked layers, relative to the repository root. */
function sourceFiles(): string[] {
  const files = ["main.ts"];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(join(ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.isFile && path.endsWith(".ts")) files.push(path);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return files.sort();
}

/** The relative imports of a file, resolved to repository paths. */
function importsOf(file: string): string[] {
  const text = Deno.readTextFileSync(join(ROOT, file))
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"/gms),
    ...text.matchAll(/^\s*import\s*"([^"]+)"/gm),
    ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1]!);
  // Data files (the built-in index template) are not layers.
  return specifiers
    .filter((s) => (s.startsWith("./") || s.startsWith("../")) && s.endsWith(".ts"))
    .map((s) => relative(ROOT, normalize(join(ROOT, dirname(file), s))));
}

/** Which layer a path belongs to. */
function layer(path: string): string {
  if (path === "main.ts") return "main";
  return path.split("/")[0] ?? path;
}

const files = sourceFiles();
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const problems: string[] = [];

for (const [file, imports] of graph) {
  for (const target of imports) {
    const from = layer(file);
    const to = layer(target);
    if (from === "lib" && to !== "lib") {
      problems.push(`${file} imports ${target}: lib/ is the ground floor and imports only lib/`);
    } else if (from === "sinks" && to !== "lib" && to !== "sinks") {
      problems.push(`${file} imports ${target}: sinks/ import only lib/ and sinks/`);
    } else if (from === "sinks" && to === "sinks") {
      const own = file.split("/")[1];
      const other = target.split("/")[1];
      if (file !== "sinks/mod.ts" && target.split("/").length > 2 && own !== other) {
        problems.push(
          `${file} imports ${target}: one sink does not import another; share it in lib/`,
        );
      }
    }
    if (!graph.has(target) && (to === "lib" || to === "sinks")) {
      problems.push(`${file} imports ${target}, which does not exist`);
    }
  }
}

// Cycles: Tarjan's strongly connected components.
let index = 0;
const indexes = new Map<string, number>();
const lows = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
function connect(node: string): void {
  indexes.set(node, index);
  lows.set(node, index);
  index++;
  stack.push(node);
  onStack.add(node);
  for (const next of graph.get(node) ?? []) {
    if (!graph.has(next)) continue;
    if (!indexes.has(next)) {
      connect(next);
      lows.set(node, Math.min(lows.get(node)!, lows.get(next)!));
    } else if (onStack.has(next)) {
      lows.set(node, Math.min(lows.get(node)!, indexes.get(next)!));
    }
  }
  if (lows.get(node) === indexes.get(node)) {
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    const selfLoop = (graph.get(node) ?? []).includes(node);
    if (component.length > 1 || selfLoop) {
      problems.push(`import cycle: ${component.reverse().join(" -> ")}`);
    }
  }
}
for (const file of files) if (!indexes.has(file)) connect(file);

if (problems.length > 0) {
  writeStderr(`Cannot accept the imports: ${problems.length} problem(s)\n`);
  for (const p of problems) writeStderr(`  - ${p}\n`);
  Deno.exit(1);
}
writeStdout(
  `Imports are layered: ${files.length} files of main.ts, lib/ and sinks/, ` +
    `${[...graph.values()].reduce((n, i) => n + i.length, 0)} relative imports, no cycle\n`,
);
