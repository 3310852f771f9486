/**
 * Running main.ts as a user does, for the command-line tests.
 *
 * @module
 */
import { MAIN_ARGS } from "./_sluice.ts";

/** A valid ClickHouse configuration whose servers need not answer. */
export const VALID = {
  KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9",
  KAFKA_TOPIC: "pmacct.acct",
  CLICKHOUSE_HOST: "127.0.0.1",
  CLICKHOUSE_DATA_SCHEMA:
    "ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,stamp_updated:DateTime,packets:UInt64,bytes:UInt64",
};

/**
 * Runs main.ts with flags in a fresh directory and a clean environment.
 *
 * @param args The flags.
 * @param env The whole environment (PATH and HOME are added).
 * @param stdin Text for standard input, if any.
 * @returns The exit code, the output and the directory it ran in.
 */
export async function sluice(args: string[], env: Record<string, string>, stdin?: string) {
  const cwd = await Deno.makeTempDir({ prefix: "sluice-cli-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [...MAIN_ARGS, ...args],
    cwd,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/tmp", ...env },
    clearEnv: true,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    cwd,
  };
}
