import { installCrashHandlers, Logger } from "../../lib/log.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const clock = () => Date.UTC(2026, 0, 2, 3, 4, 5);

function logger(format?: "json" | "text") {
  const lines: string[] = [];
  const log = new Logger({ format, clock, write: (line) => lines.push(line) });
  return { log, lines };
}

Deno.test("Logger with format text writes time, level, message and key=value fields on one line", () => {
  const { log, lines } = logger("text");
  log.warn("Cannot reach the sink, retrying", {
    sink: "clickhouse",
    attempt: 3,
    up: false,
    error: new Error("connect ECONNREFUSED 127.0.0.1:8123"),
    topics: ["a", "b"],
    offset: 9007199254740993n,
    empty: "",
    skipped: undefined,
  });
  assertEquals(lines, [
    "2026-01-02T03:04:05.000Z WARN  Cannot reach the sink, retrying sink=clickhouse attempt=3 " +
    'up=false error="connect ECONNREFUSED 127.0.0.1:8123" topics=["a","b"] ' +
    'offset=9007199254740993 empty=""',
  ]);
});

Deno.test("Logger with format text quotes values with line breaks, quotes, = or escape characters, so a line stays one line", () => {
  const { log, lines } = logger("text");
  log.error("Cannot go on", { stack: "a\nb", quote: 'say "x"', eq: "a=b", ansi: "\x1b[31mred" });
  assertEquals(lines.length, 1);
  assert(!lines[0]!.includes("\n") && !lines[0]!.includes("\x1b"), lines[0]);
  assertEquals(
    lines[0],
    '2026-01-02T03:04:05.000Z ERROR Cannot go on stack="a\\nb" quote="say \\"x\\"" eq="a=b" ' +
      'ansi="\\u001b[31mred"',
  );
});

Deno.test("Logger with format json writes one object with ts, level and msg first, bigints as text, and never lets a field replace them", () => {
  const { log, lines } = logger("json");
  log.info("Started", { ts: "fake", level: "fake", msg: "fake", n: 12n, error: new Error("x") });
  assertEquals(JSON.parse(lines[0]!), {
    ts: "2026-01-02T03:04:05.000Z",
    level: "info",
    msg: "Started",
    n: "12",
    error: "x",
  });
});

Deno.test("Logger.setFormat() switches the format of the lines written after it", () => {
  const { log, lines } = logger();
  log.info("One");
  log.setFormat("text");
  log.info("Two");
  assertEquals(JSON.parse(lines[0]!).msg, "One");
  assertEquals(lines[1], "2026-01-02T03:04:05.000Z INFO  Two");
});

Deno.test("Logger.silence() drops every line written after it", () => {
  const { log, lines } = logger();
  log.info("Stopped");
  log.silence();
  log.error("Kafka client: Connection error");
  log.limited("k", "error", "Late");
  assertEquals(lines.map((l) => JSON.parse(l).msg), ["Stopped"]);
});

Deno.test("Logger.enabled() tells whether a level is written", () => {
  const log = new Logger({ level: "info", write: () => {} });
  assertEquals([log.enabled("debug"), log.enabled("info"), log.enabled("error")], [
    false,
    true,
    true,
  ]);
});

Deno.test("installCrashHandlers() turns an unhandled rejection into one log line and exit status 1", async () => {
  const { log, lines } = logger("json");
  const codes: number[] = [];
  const uninstall = installCrashHandlers(log, (code) => codes.push(code));
  try {
    void Promise.reject(new Error("boom"));
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    uninstall();
  }
  assertEquals(codes, [1]);
  assertEquals(lines.length, 1);
  const line = JSON.parse(lines[0]!);
  assertEquals([line.level, line.msg, line.error], [
    "error",
    "Cannot go on: an unhandled promise rejection",
    "boom",
  ]);
  assertMatch(line.stack, /^Error: boom \| at /);
});

/** Runs a script that installs the handlers on the process logger and then fails. */
async function crashingProcess(failure: string, env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/crash.ts`;
  const logModule = new URL("../../lib/log.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { installCrashHandlers, log } from ${JSON.stringify(logModule)};\n` +
      `installCrashHandlers(log);\n${failure}\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--allow-read", script],
    env: { NO_COLOR: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("an uncaught error in a process with the crash handlers is one JSON line on standard error and exit status 1", async () => {
  const { code, stderr } = await crashingProcess(
    'setTimeout(() => { throw new TypeError("bad thing"); }, 0);',
  );
  assertEquals(code, 1);
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, stderr);
  assert(!stderr.includes("\x1b["), "no ANSI escapes");
  const line = JSON.parse(lines[0]!);
  assertEquals([line.level, line.msg, line.error], [
    "error",
    "Cannot go on: an uncaught error",
    "bad thing",
  ]);
});

Deno.test("an unhandled rejection in a process with the crash handlers is one JSON line and exit status 1", async () => {
  const { code, stderr } = await crashingProcess('await Promise.reject(new Error("no way"));');
  assertEquals(code, 1);
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, stderr);
  assertEquals(JSON.parse(lines[0]!).error, "no way");
});
