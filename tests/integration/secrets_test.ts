/**
 * Secrets never printed by a running sluice: a secret is planted in the
 * credential variables and URLs of each sink while the sink is down or
 * refuses, and in the SASL password the broker refuses; standard output,
 * standard error, `/metrics`, `/healthz` and the dead-letter file are
 * searched for it. The paths that need no server are in tests/secrets_test.ts.
 *
 * @module
 */

import { closedPort } from "../_fake_http.ts";
import { createTopic, produce } from "../_kafka.ts";
import {
  clickhouseUrl,
  kafkaAuthListeners,
  kafkaBrokers,
  uniqueName,
  victoriaMetricsUrl,
} from "../_services.ts";
import { assert, assertEquals } from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url);
const SECRET = "pl4ntedS3cretX9";

/** The forms of the secret that would give it away. */
const FORMS = [SECRET, encodeURIComponent(SECRET), btoa(`u:${SECRET}`), btoa(`sluice:${SECRET}`)];

/** What a sluice run showed on every channel. */
interface Seen {
  stdout: string;
  stderr: string;
  metrics: string;
  healthz: string;
  letters: string;
}

/** The channels searched (`watch()` also returns the exit code, which is none). */
const CHANNELS: ReadonlyArray<keyof Seen> = ["stdout", "stderr", "metrics", "healthz", "letters"];

function assertNoSecret(seen: Seen, what: string): void {
  for (const channel of CHANNELS) {
    const text = seen[channel];
    for (const form of FORMS) {
      assert(!text.includes(form), `${what}: the secret is in ${channel}:\n${text}`);
    }
  }
}

/**
 * Runs sluice with `env` until `ready` says so (or it exits), reading
 * `/metrics` and `/healthz` every half second while it runs, then stops it.
 */
async function watch(
  env: Record<string, string>,
  ready: (now: { stderr: string; letters: string }) => boolean,
  options: { before?: (dir: string) => Promise<void>; timeoutMs?: number } = {},
): Promise<Seen & { code: number }> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-secrets-" });
  const port = closedPort();
  const letters = `${dir}/dead-letters.jsonl`;
  await options.before?.(dir);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--frozen",
      "--config",
      new URL("deno.json", ROOT).pathname,
      new URL("main.ts", ROOT).pathname,
    ],
    cwd: dir,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      PROMETHEUS_CLIENT_HOST: "127.0.0.1",
      PROMETHEUS_CLIENT_PORT: String(port),
      DEAD_LETTER_FILE: letters,
      RETRY_BACKOFF_INITIAL: "0.2",
      RETRY_BACKOFF_MAX: "1",
      SHUTDOWN_TIMEOUT: "3",
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let stderr = "";
  let stdout = "";
  const pump = async (stream: ReadableStream<Uint8Array>, add: (text: string) => void) => {
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  };
  const pumping = Promise.all([
    pump(child.stderr, (t) => stderr += t),
    pump(child.stdout, (t) => stdout += t),
  ]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let metrics = "";
  let healthz = "";
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const lettersNow = () => Deno.readTextFile(letters).catch(() => "");
  while (!exited && Date.now() < deadline && !ready({ stderr, letters: await lettersNow() })) {
    await new Promise((r) => setTimeout(r, 500));
    try {
      metrics += await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      healthz += `${health.status} ${await health.text()}\n`;
    } catch {
      // Not listening yet, or already stopped.
    }
  }
  if (!exited) child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (!exited) child.kill("SIGKILL");
  }, 15_000);
  const { code } = await status;
  clearTimeout(timer);
  await pumping;
  const written = await lettersNow();
  await Deno.remove(dir, { recursive: true });
  return { code, stdout, stderr, metrics, healthz, letters: written };
}

const SCHEMA = "ip_src:String,bytes:UInt64";

Deno.test("sluice prints no secret while each sink is down, on any channel", async () => {
  const down = `127.0.0.1:${closedPort()}`;
  const topic = uniqueName("secrets");
  await createTopic(topic, 1);
  const kafka = { KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(), KAFKA_TOPIC: topic };
  const cases: Array<[string, Record<string, string>]> = [
    ["clickhouse", {
      ...kafka,
      CLICKHOUSE_HOST: `http://${down}`,
      CLICKHOUSE_PASSWORD: SECRET,
      CLICKHOUSE_DATA_SCHEMA: SCHEMA,
    }],
    ["elastic", {
      ...kafka,
      SINK: "elastic",
      ELASTIC_HOSTS: `http://${down}`,
      ELASTIC_USERNAME: "u",
      ELASTIC_PASSWORD: SECRET,
    }],
    ["vm", {
      ...kafka,
      SINK: "vm",
      VM_URL: `http://u:${SECRET}@${down}`,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["influxdb", {
      ...kafka,
      SINK: "influxdb",
      ENCODER: "pmacct",
      INFLUXDB_URL: `http://${down}`,
      INFLUXDB_TOKEN: SECRET,
      INFLUXDB_ORG: "o",
      INFLUXDB_BUCKET: "b",
    }],
  ];
  for (const [what, env] of cases) {
    // Three connect attempts are logged, /metrics and /healthz are read meanwhile.
    const seen = await watch(
      env,
      ({ stderr }) => (stderr.match(/Cannot reach the sink, retrying/g) ?? []).length >= 3,
    );
    assert(seen.stderr.includes("Cannot reach the sink"), `${what}: ${seen.stderr}`);
    assert(seen.metrics.includes("sluice_"), `${what}: /metrics was read`);
    assertNoSecret(seen, what);
  }
});

Deno.test("sluice prints no secret when ClickHouse refuses the password", async () => {
  const topic = uniqueName("secrets");
  await createTopic(topic, 1);
  const seen = await watch({
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    KAFKA_TOPIC: topic,
    CLICKHOUSE_HOST: clickhouseUrl(),
    CLICKHOUSE_USER: "default",
    CLICKHOUSE_PASSWORD: SECRET,
    CLICKHOUSE_DATA_SCHEMA: SCHEMA,
  }, () => false);
  assertEquals(seen.code, 1, seen.stderr);
  assert(/Wrong password|Authentication failed/.test(seen.stderr), seen.stderr);
  assertNoSecret(seen, "a refused ClickHouse password");
});

Deno.test("sluice prints no secret when the broker refuses the SASL password", async () => {
  const auth = kafkaAuthListeners();
  const seen = await watch(
    {
      KAFKA_BOOTSTRAP_SERVERS: auth.sasl,
      KAFKA_TOPIC: uniqueName("secrets"),
      KAFKA_SASL_MECHANISM: "scram-sha-256",
      KAFKA_SASL_USERNAME: auth.username,
      KAFKA_SASL_PASSWORD: SECRET,
      SINK: "vm",
      VM_URL: victoriaMetricsUrl(),
      VM_JOB: "j",
      VM_INSTANCE: "i",
    },
    () => false,
    { timeoutMs: 60_000 },
  );
  assertEquals(seen.code, 1, seen.stderr);
  assertNoSecret(seen, "a refused SASL password");
});

Deno.test("sluice keeps the secret of a URL out of the dead letters it writes", async () => {
  const topic = uniqueName("secrets");
  await createTopic(topic, 1);
  await produce(topic, [
    "not json",
    JSON.stringify({ ip_src: "10.0.0.1", bytes: "many", stamp_updated: "2026-11-21 12:00:00" }),
  ]);
  const seen = await watch({
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    KAFKA_TOPIC: topic,
    KAFKA_CONSUMER_GROUP_ID: uniqueName("secrets"),
    SINK: "vm",
    // VictoriaMetrics without -httpAuth ignores the credentials.
    VM_URL: victoriaMetricsUrl().replace("://", `://u:${SECRET}@`),
    VM_JOB: "j",
    VM_INSTANCE: "i",
    VM_METRICS_NAMES: "bytes",
    VM_TIMESTAMP_MAX_AGE: String(100 * 365 * 86400),
  }, ({ letters }) => letters.split("\n").filter((l) => l !== "").length >= 2);
  assert(seen.letters.includes("not json"), `dead letters: ${seen.letters}\n${seen.stderr}`);
  assertNoSecret(seen, "dead letters");
});
