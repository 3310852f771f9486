/**
 * Secrets never printed, on every path that needs no server: a secret is
 * planted in every credential variable and in every URL that can carry
 * credentials (in the environment, the env file, the YAML file and the
 * flags), and standard output, standard error and the dead-letter file of
 * `--help`, `--check-config` (valid and invalid configurations),
 * `--check-config --connect` against closed ports, and `--dry-run` are
 * searched for it. The same with a running sluice against servers that are
 * down or refuse is in tests/integration/secrets_test.ts.
 *
 * @module
 */

import { assert, assertEquals } from "./_assert.ts";
import { closedPort } from "./_fake_http.ts";
import { MAIN_ARGS } from "./_sluice.ts";

/** The planted secret: distinctive, and the same percent-encoded. */
const SECRET = "pl4ntedS3cretX9";

/** Every variable that holds a credential, each set to the secret. */
const CREDENTIALS = {
  CLICKHOUSE_PASSWORD: SECRET,
  ELASTIC_PASSWORD: SECRET,
  ELASTIC_API_KEY: SECRET,
  VM_PASSWORD: SECRET,
  VM_BEARER_TOKEN: SECRET,
  INFLUXDB_PASSWORD: SECRET,
  INFLUXDB_TOKEN: SECRET,
  KAFKA_SASL_PASSWORD: SECRET,
};

const CLICKHOUSE = {
  KAFKA_BOOTSTRAP_SERVERS: "127.0.0.1:9",
  KAFKA_TOPIC: "flows",
  CLICKHOUSE_HOST: "127.0.0.1",
  CLICKHOUSE_DATA_SCHEMA: "ip_src:String,port_src:UInt16,bytes:UInt64",
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** The dead-letter file's content, when the run had one. */
  letters: string;
}

async function sluice(
  args: string[],
  env: Record<string, string>,
  options: { stdin?: string; files?: Record<string, string> } = {},
): Promise<Run> {
  const cwd = await Deno.makeTempDir({ prefix: "sluice-secrets-" });
  try {
    for (const [name, text] of Object.entries(options.files ?? {})) {
      await Deno.writeTextFile(`${cwd}/${name}`, text);
    }
    const child = new Deno.Command(Deno.execPath(), {
      args: [...MAIN_ARGS, ...args],
      cwd,
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "/tmp",
        DEAD_LETTER_FILE: `${cwd}/dead-letters.jsonl`,
        ...env,
      },
      clearEnv: true,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const out = await child.output();
    const decoder = new TextDecoder();
    const letters = await Deno.readTextFile(`${cwd}/dead-letters.jsonl`).catch(() => "");
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      letters,
    };
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

/** Fails when the secret, raw or percent-encoded, is in any output of the run. */
function assertNoSecret(run: Run, what: string): void {
  for (
    const [channel, text] of Object.entries({
      stdout: run.stdout,
      stderr: run.stderr,
      "dead-letter file": run.letters,
    })
  ) {
    for (const form of [SECRET, encodeURIComponent(SECRET), btoa(`u:${SECRET}`)]) {
      assert(!text.includes(form), `${what}: the secret is in ${channel}:\n${text}`);
    }
  }
}

Deno.test("sluice --help prints no secret set in the environment", async () => {
  const run = await sluice(["--help"], { ...CLICKHOUSE, ...CREDENTIALS });
  assertEquals(run.code, 0);
  assertNoSecret(run, "--help");
});

Deno.test("sluice --check-config masks every credential variable of a valid configuration", async () => {
  const cases: Array<[string, Record<string, string>]> = [
    ["clickhouse", {
      ...CLICKHOUSE,
      CLICKHOUSE_PASSWORD: SECRET,
      KAFKA_SASL_MECHANISM: "scram-sha-512",
      KAFKA_SASL_USERNAME: "sluice",
      KAFKA_SASL_PASSWORD: SECRET,
    }],
    ["elastic, basic", {
      ...CLICKHOUSE,
      SINK: "elastic",
      ELASTIC_USERNAME: "u",
      ELASTIC_PASSWORD: SECRET,
    }],
    ["elastic, API key", { ...CLICKHOUSE, SINK: "elastic", ELASTIC_API_KEY: SECRET }],
    ["vm, URL", {
      ...CLICKHOUSE,
      SINK: "vm",
      VM_URL: `http://u:${SECRET}@vm:8428`,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["vm, token in the URL", {
      ...CLICKHOUSE,
      SINK: "vm",
      VM_URL: `http://${SECRET}@vm:8428`,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["vm, variables", {
      ...CLICKHOUSE,
      SINK: "vm",
      VM_URL: "http://vm:8428",
      VM_USERNAME: "u",
      VM_PASSWORD: SECRET,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["vm, bearer", {
      ...CLICKHOUSE,
      SINK: "vm",
      VM_URL: "http://vm:8428",
      VM_BEARER_TOKEN: SECRET,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["influxdb 1", { ...CLICKHOUSE, SINK: "influxdb", INFLUXDB_PASSWORD: SECRET }],
    ["influxdb 2", {
      ...CLICKHOUSE,
      SINK: "influxdb",
      INFLUXDB_TOKEN: SECRET,
      INFLUXDB_ORG: "o",
      INFLUXDB_BUCKET: "b",
    }],
    ["misspelt password variables", {
      ...CLICKHOUSE,
      CLICKHOUSE_PASWORD: SECRET,
      KAFKA_SASL_PASSWROD: SECRET,
      ELASTIC_PASSWD: SECRET,
    }],
  ];
  for (const [what, env] of cases) {
    const run = await sluice(["--check-config"], env);
    assertEquals(run.code, 0, `${what}: ${run.stderr}`);
    assertNoSecret(run, what);
  }
});

Deno.test("sluice --check-config names every refused credential and URL without its secret", async () => {
  const cases: Array<[string, Record<string, string>]> = [
    ["ClickHouse URL", { ...CLICKHOUSE, CLICKHOUSE_HOST: `http://admin:${SECRET}@ch:8123` }],
    ["ClickHouse URL, slash", {
      ...CLICKHOUSE,
      CLICKHOUSE_HOST: `http://admin:${SECRET}/x@ch:8123`,
    }],
    ["ClickHouse host without scheme", {
      ...CLICKHOUSE,
      CLICKHOUSE_HOST: `admin:${SECRET}@ch:8123`,
    }],
    ["ClickHouse URL and port", {
      ...CLICKHOUSE,
      CLICKHOUSE_HOST: `https://admin:${SECRET}@ch`,
      CLICKHOUSE_PORT: "9000",
      CLICKHOUSE_SECURE: "NO",
    }],
    ["Elasticsearch URLs", {
      ...CLICKHOUSE,
      SINK: "elastic",
      ELASTIC_HOSTS: `http://admin:${SECRET}@es:9200,http://${SECRET}@es2:9200`,
    }],
    ["Elasticsearch key and password", {
      ...CLICKHOUSE,
      SINK: "elastic",
      ELASTIC_API_KEY: SECRET,
      ELASTIC_PASSWORD: SECRET,
    }],
    ["VictoriaMetrics URL and password", {
      ...CLICKHOUSE,
      SINK: "vm",
      VM_URL: `http://u:${SECRET}@vm:8428`,
      VM_PASSWORD: SECRET,
      VM_BEARER_TOKEN: SECRET,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["VictoriaMetrics bad URL", {
      ...CLICKHOUSE,
      SINK: "vm",
      VM_URL: `ftp://u:${SECRET}@vm:8428`,
      VM_PASSWORD: SECRET,
      VM_JOB: "j",
      VM_INSTANCE: "i",
    }],
    ["InfluxDB URL and a token for API 1", {
      ...CLICKHOUSE,
      SINK: "influxdb",
      INFLUXDB_URL: `http://u:${SECRET}@influx:8086`,
      INFLUXDB_API_VERSION: "1",
      INFLUXDB_TOKEN: SECRET,
    }],
    ["InfluxDB password with API 2", {
      ...CLICKHOUSE,
      SINK: "influxdb",
      INFLUXDB_API_VERSION: "2",
      INFLUXDB_PASSWORD: SECRET,
    }],
    ["Kafka SASL password without a mechanism", {
      ...CLICKHOUSE,
      KAFKA_SASL_PASSWORD: SECRET,
    }],
    ["an unknown SINK", { ...CLICKHOUSE, ...CREDENTIALS, SINK: "clickhous" }],
  ];
  for (const [what, env] of cases) {
    const run = await sluice(["--check-config"], env);
    assertEquals(run.code, 1, `${what}: ${run.stdout}`);
    assert(run.stderr.startsWith("Cannot start: "), `${what}: ${run.stderr}`);
    assertNoSecret(run, what);
  }
});

Deno.test("sluice never quotes a secret from the env file, the YAML file or the flags", async () => {
  const envFile = Object.entries({ ...CLICKHOUSE, ...CREDENTIALS, VM_URL: "::bad" })
    .map(([k, v]) => `${k}=${v}`).join("\n");
  const runs = [
    await sluice(["--check-config"], {}, { files: { ".env": envFile } }),
    await sluice(["--check-config", "-c", "config.yaml"], { SINK: "influxdb" }, {
      files: {
        "config.yaml": `influxdb:\n  password: ${SECRET}\n  pasword: ${SECRET}\n` +
          `  token: ${SECRET}\n  url: http://u:${SECRET}@h:8086\n`,
      },
    }),
    await sluice([
      "--check-config",
      "--kafka_sasl_password",
      SECRET,
      `--clickhouse_password=${SECRET}`,
      "--clickhouse_host",
      `http://u:${SECRET}@ch`,
    ], CLICKHOUSE),
  ];
  for (const [i, run] of runs.entries()) {
    assertEquals(run.code, 1, run.stdout);
    assertNoSecret(run, `source ${i}`);
  }
});

Deno.test("sluice --check-config --connect prints no secret when the servers cannot be reached", async () => {
  const port = closedPort();
  const down = `127.0.0.1:${port}`;
  const kafka = {
    KAFKA_BOOTSTRAP_SERVERS: down,
    KAFKA_TOPIC: "flows",
    KAFKA_SASL_MECHANISM: "plain",
    KAFKA_SASL_USERNAME: "sluice",
    KAFKA_SASL_PASSWORD: SECRET,
    DEAD_LETTER_TOPIC: "dead",
  };
  const cases: Array<[string, Record<string, string>]> = [
    ["clickhouse", {
      ...kafka,
      CLICKHOUSE_HOST: `http://${down}`,
      CLICKHOUSE_PASSWORD: SECRET,
      CLICKHOUSE_DATA_SCHEMA: "a:String",
      CLICKHOUSE_REQUEST_TIMEOUT: "2",
    }],
    ["elastic", {
      ...kafka,
      SINK: "elastic",
      ELASTIC_HOSTS: down,
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
      INFLUXDB_URL: `http://${down}`,
      INFLUXDB_TOKEN: SECRET,
      INFLUXDB_BUCKET: "b",
    }],
  ];
  for (const [what, env] of cases) {
    const run = await sluice(["--check-config", "--connect"], env);
    assertEquals(run.code, 1, `${what}: ${run.stdout}${run.stderr}`);
    assertNoSecret(run, what);
  }
});

Deno.test("sluice --dry-run prints no secret in its rows, its summary, its logs or the dead letters", async () => {
  const input = [
    JSON.stringify({ ip_src: "10.0.0.1", port_src: 80, bytes: 1, stamp_updated: 1 }),
    "not json",
    JSON.stringify({ ip_src: "10.0.0.2", port_src: 70000, bytes: 1 }),
  ].join("\n") + "\n";
  const cases: Array<[string, Record<string, string>]> = [
    ["clickhouse", { ...CLICKHOUSE, ...CREDENTIALS, SINK: "clickhouse", KAFKA_SASL_PASSWORD: "" }],
    ["vm", {
      SINK: "vm",
      VM_URL: `http://u:${SECRET}@vm:8428`,
      VM_JOB: "j",
      VM_INSTANCE: "i",
      VM_METRICS_NAMES: "bytes",
    }],
    ["elastic", { SINK: "elastic", ELASTIC_USERNAME: "u", ELASTIC_PASSWORD: SECRET }],
    ["influxdb", {
      SINK: "influxdb",
      ENCODER: "pmacct",
      INFLUXDB_URL: "http://influx:8086",
      INFLUXDB_PASSWORD: SECRET,
      INFLUXDB_FIELDS: "bytes",
    }],
  ];
  for (const [what, env] of cases) {
    const run = await sluice(["--dry-run"], env, { stdin: input });
    assertEquals(run.code, 0, `${what}: ${run.stderr}`);
    assert(run.letters.includes("not json"), `${what}: dead letters ${run.letters}`);
    assertNoSecret(run, what);
  }
});
