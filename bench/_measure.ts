/**
 * Measuring a process from the outside on Linux, for the benchmarks: CPU
 * time and peak memory from `/proc` (of sluice, of the local services, of
 * the whole machine), plus the small statistics and table helpers the
 * benchmark report needs.
 *
 * `/proc/<pid>/stat` counts the CPU time of all threads of a process (V8's
 * and tokio's workers included); children are added separately, the live
 * ones from `/proc/<pid>/task/<tid>/children` and the exited, reaped ones
 * from the `cutime`/`cstime` fields (proc(5)).
 *
 * @module
 */

import { writeStderr } from "../lib/log.ts";

/**
 * Reports benchmark progress on standard error (the results go to standard output).
 *
 * @param text One line, without the newline.
 */
export function progress(text: string): void {
  writeStderr(`bench: ${text}\n`);
}

/**
 * Waits.
 *
 * @param ms Milliseconds.
 * @returns Resolves after them.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CPU time and memory of a process tree at one moment. */
export interface ProcessSample {
  /** User + system CPU seconds of the process, its live descendants and its reaped children. */
  cpuSeconds: number;
  /** Peak resident set size (`VmHWM`) of the process, plus its live descendants', in bytes. */
  peakRssBytes: number;
  /** Current resident set size (`VmRSS`) of the process and its live descendants, in bytes. */
  rssBytes: number;
  /** Live descendant processes (0 when the process spawned none). */
  children: number;
}

let ticksPerSecond: number | undefined;

/**
 * The kernel's clock ticks per second (`getconf CLK_TCK`), the unit of the
 * CPU times in `/proc/<pid>/stat`.
 *
 * @returns Usually 100.
 */
export async function clockTicks(): Promise<number> {
  if (ticksPerSecond !== undefined) return ticksPerSecond;
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    ticksPerSecond = out.success && n > 0 ? n : 100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/**
 * The fields of `/proc/<pid>/stat` after the command name, so that field
 * N of proc(5) (1-based) is at index N - 3.
 */
function statFields(pid: number): string[] {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name is in parentheses and may itself hold spaces or ")".
  return text.slice(text.lastIndexOf(")") + 2).trim().split(" ");
}

function statusKb(pid: number, field: string): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * The live descendants of a process, depth first.
 *
 * @param pid The process.
 * @returns Their pids (not including `pid`).
 */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let tasks: Deno.DirEntry[];
    try {
      tasks = [...Deno.readDirSync(`/proc/${parent}/task`)];
    } catch {
      return;
    }
    for (const task of tasks) {
      let text = "";
      try {
        text = Deno.readTextFileSync(`/proc/${parent}/task/${task.name}/children`);
      } catch {
        continue;
      }
      for (const child of text.trim().split(/\s+/).filter((s) => s !== "")) {
        const id = Number(child);
        found.push(id);
        visit(id);
      }
    }
  };
  visit(pid);
  return found;
}

/**
 * Reads the CPU time and memory of a running process and its descendants.
 *
 * @param pid The process.
 * @returns The sample.
 * @throws {Deno.errors.NotFound} When the process is gone.
 */
export async function sampleProcess(pid: number): Promise<ProcessSample> {
  const hz = await clockTicks();
  const root = statFields(pid);
  // proc(5): utime 14, stime 15, cutime 16, cstime 17.
  let ticks = Number(root[11]) + Number(root[12]) + Number(root[13]) + Number(root[14]);
  let peakKb = statusKb(pid, "VmHWM");
  let rssKb = statusKb(pid, "VmRSS");
  const kids = descendants(pid);
  for (const kid of kids) {
    try {
      const f = statFields(kid);
      ticks += Number(f[11]) + Number(f[12]);
      peakKb += statusKb(kid, "VmHWM");
      rssKb += statusKb(kid, "VmRSS");
    } catch {
      // Exited between the listing and the read.
    }
  }
  return {
    cpuSeconds: ticks / hz,
    peakRssBytes: peakKb * 1024,
    rssBytes: rssKb * 1024,
    children: kids.length,
  };
}

/**
 * CPU seconds of a process (user + system, its threads included), or
 * `undefined` when it is not running.
 *
 * @param pid The process.
 * @returns The seconds.
 */
export async function cpuSecondsOf(pid: number): Promise<number | undefined> {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / await clockTicks();
  } catch {
    return undefined;
  }
}

/**
 * Busy CPU seconds of the whole machine so far (all cores), from `/proc/stat`.
 *
 * @returns User, nice, system, irq, softirq and steal time, in seconds.
 */
export async function machineBusySeconds(): Promise<number> {
  const hz = await clockTicks();
  // proc(5): user nice system idle iowait irq softirq steal (guest time is already in user).
  const first = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.trim().split(/\s+/)
    .slice(1, 9).map(Number);
  const total = first.reduce((a, b) => a + b, 0);
  const idle = (first[3] ?? 0) + (first[4] ?? 0);
  return (total - idle) / hz;
}

/**
 * The pid of a local service that `scripts/services.sh` started, from its
 * pid file `<dir>/<service>/<service>.pid`.
 *
 * @param servicesDir The services' state directory (`SLUICE_SERVICES_DIR`).
 * @param service `kafka`, `clickhouse`, `elasticsearch`, `clickhouse-cluster-2`, ...
 * @param folder Its folder in the state directory, when not its name
 *   (`clickhouse-cluster` for the cluster's nodes).
 * @returns The pid, or `undefined` without a readable pid file.
 */
export function servicePid(
  servicesDir: string,
  service: string,
  folder: string = service,
): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(`${servicesDir}/${folder}/${service}.pid`).trim());
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A measurement of something other than sluice, on the same records, for context. */
export interface Baseline {
  /** What was measured. */
  label: string;
  /** How long it took. */
  seconds: number;
  /** How many records it handled. */
  records: number;
  /** What the reader should know to compare it. */
  note?: string;
  /** The target (sink name) it is the ceiling of; unset: every target's (Kafka's). */
  target?: string;
}

/**
 * The median of some numbers.
 *
 * @param values The numbers (at least one).
 * @returns The middle value, or the mean of the two middle ones.
 */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Renders rows as a table with right-aligned columns (the first left-aligned):
 * plain text, or a Markdown (GitHub) table with `options.markdown`.
 *
 * @param header The column titles.
 * @param rows The cells, already formatted.
 * @param options `markdown: true` for `| a | b |` lines and an alignment row;
 *   `left`: how many leading columns are left-aligned (default 1).
 * @returns The table, one line per row, with a rule under the header.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: { markdown?: boolean; left?: number } = {},
): string {
  const left = options.left ?? 1;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const pad = (c: string, i: number) => i < left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!);
  if (options.markdown) {
    const line = (cells: readonly string[]) =>
      `| ${header.map((_, i) => pad(cells[i] ?? "", i)).join(" | ")} |`;
    // At least three characters per cell: "---" or "--:".
    const rule = widths.map((w, i) =>
      i < left ? "-".repeat(Math.max(3, w)) : "-".repeat(Math.max(2, w - 1)) + ":"
    );
    return [line(header), `| ${rule.join(" | ")} |`, ...rows.map(line)].join("\n") + "\n";
  }
  const line = (cells: readonly string[]) => cells.map(pad).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join(
    "\n",
  ) + "\n";
}

/**
 * Formats a number with a fixed number of decimals and thousands separators.
 *
 * @param n The number.
 * @param decimals Digits after the point.
 * @returns E.g. `12,345.6`.
 */
export function num(n: number, decimals = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

/**
 * The version of an installed Debian package, without its Debian suffix
 * (VictoriaMetrics 1.79.5 reports none itself).
 *
 * @param name The package.
 * @returns The version, or `?`.
 */
export async function debianVersion(name: string): Promise<string> {
  try {
    const out = await new Deno.Command("dpkg-query", {
      args: ["-W", "-f=${Version}", name],
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).replace(/\+.*/, "").trim();
    return out.success && text !== "" ? text : "?";
  } catch {
    return "?";
  }
}
