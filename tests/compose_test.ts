/**
 * The compose stack (`deploy/compose/docker-compose.yml`) passes a real compose
 * implementation's own check, Debian's `docker-compose config` (no Docker
 * engine runs here, so the stack itself is not started), has the services
 * docs/operations.md lists, pins every image, mounts files that exist, and gives
 * sluice an environment that sluice's `--check-config` accepts.
 */
import { parse } from "yaml";
import { MAIN_ARGS } from "./_sluice.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const COMPOSE_FILE = `${ROOT}/deploy/compose/docker-compose.yml`;
const SERVICES = ["clickhouse", "flows", "grafana", "kafka", "kafka-ui", "prometheus", "sluice"];

/** A service of the resolved compose file, as much as these tests read. */
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string | number>;
  volumes?: string[];
  command?: string[];
}

/**
 * Runs `docker-compose -f deploy/compose/docker-compose.yml ...` with a
 * clean environment (no variable of the caller fills the file's `${...}`).
 *
 * @param args The subcommand and its flags.
 * @returns The exit code, stdout and stderr.
 * @throws {Error} When docker-compose is not installed.
 */
async function compose(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const output = await new Deno.Command("docker-compose", {
    args: ["-f", COMPOSE_FILE, ...args],
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "" },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(
      "Cannot run docker-compose: install Debian's docker-compose package (scripts/setup.sh)",
      { cause: error },
    );
  });
  const text = new TextDecoder();
  return { code: output.code, out: text.decode(output.stdout), err: text.decode(output.stderr) };
}

/**
 * The compose file as `docker-compose config` resolves it.
 *
 * @returns Its services by name.
 */
async function resolvedServices(): Promise<Record<string, Service>> {
  const { code, out, err } = await compose("config");
  assertEquals(code, 0, err);
  return (parse(out) as { services: Record<string, Service> }).services;
}

Deno.test("docker-compose config accepts deploy/compose/docker-compose.yml with the stack's services", async () => {
  const { code, out, err } = await compose("config", "--services");
  assertEquals({ code, err: err.trim() }, { code: 0, err: "" });
  assertEquals(out.trim().split("\n").sort(), SERVICES);
  const quiet = await compose("config", "--quiet");
  assertEquals({ code: quiet.code, err: quiet.err.trim() }, { code: 0, err: "" });
});

Deno.test("the compose stack pins its images, builds sluice from the repository's Dockerfile and mounts files that exist", async () => {
  const services = await resolvedServices();
  for (const [name, service] of Object.entries(services)) {
    if (name === "sluice") continue;
    assertMatch(service.image ?? "", /^[a-z0-9./-]+:[A-Za-z0-9._-]+$/, `${name} names a tag`);
    assert(!service.image!.endsWith(":latest"), `${name} pins a version`);
  }
  assertEquals(services["sluice"]!.build, { context: ROOT, dockerfile: "Dockerfile" });
  assertMatch(services["kafka"]!.image!, /^apache\/kafka:/);
  assertEquals(services["kafka"]!.environment!["KAFKA_PROCESS_ROLES"], "broker,controller");
  assertMatch(services["clickhouse"]!.image!, /^clickhouse\/clickhouse-server:/);
  assertMatch(services["prometheus"]!.image!, /^prom\/prometheus:/);
  assertMatch(services["grafana"]!.image!, /^grafana\/grafana:/);
  const mounts = Object.values(services).flatMap((s) => s.volumes ?? [])
    .map((v) => v.split(":"))
    .filter(([source]) => source!.startsWith("/"));
  for (const [source, target] of mounts) {
    await Deno.stat(source!).catch((error) => {
      throw new Error(`Cannot find ${source}, mounted at ${target}`, { cause: error });
    });
  }
  const targets = mounts.map(([, target]) => target);
  for (
    const target of [
      "/etc/prometheus/prometheus.yml",
      "/etc/prometheus/alerts.yml",
      "/etc/grafana/provisioning/datasources",
      "/etc/grafana/provisioning/dashboards",
      "/etc/grafana/dashboards",
    ]
  ) {
    assert(targets.includes(target), `${target} is mounted`);
  }
  // The flow producer runs the repository's demo feed from the mounted checkout.
  assertEquals(services["flows"]!.command, ["sh", "deploy/compose/feed_flows.sh"]);
  await Deno.stat(`${ROOT}/deploy/compose/feed_flows.sh`);
});

Deno.test("the compose stack's sluice environment passes sluice --check-config", async () => {
  const env = (await resolvedServices())["sluice"]!.environment!;
  assertEquals(
    [env["SINK"], env["KAFKA_BOOTSTRAP_SERVERS"], String(env["PROMETHEUS_CLIENT_PORT"])],
    ["clickhouse", "kafka:9092", "9003"],
  );
  const cwd = await Deno.makeTempDir({ prefix: "sluice-compose-" });
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...MAIN_ARGS, "--check-config"],
    cwd,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(cwd, { recursive: true }));
  const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, said);
  assertMatch(said, /Configuration is valid/);
  assertMatch(said, /CLICKHOUSE_DATA_SCHEMA=peer_ip_src:String,/);
});
