/**
 * Where the local test services answer (started by `scripts/services.sh`).
 * A test that needs a service and cannot reach it fails; it never skips.
 *
 * @module
 */

/** ClickHouse HTTP URL of the local test instance. */
export function clickhouseUrl(): string {
  return `http://127.0.0.1:${Deno.env.get("SLUICE_CLICKHOUSE_HTTP_PORT") ?? "18123"}`;
}

/** Kafka bootstrap address of the local test broker. */
export function kafkaBrokers(): string {
  return `127.0.0.1:${Deno.env.get("SLUICE_KAFKA_PORT") ?? "19092"}`;
}

/**
 * Bootstrap addresses of the local three-node Kafka cluster
 * (`scripts/services.sh start kafka-cluster`): `SLUICE_KAFKA_CLUSTER_BROKERS`,
 * as `services.sh env kafka-cluster` prints it, else the script's defaults.
 * Node N (`services.sh` service `kafka-cluster-N`) is broker id N.
 *
 * @returns E.g. `127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194`.
 */
export function kafkaClusterBrokers(): string {
  return Deno.env.get("SLUICE_KAFKA_CLUSTER_BROKERS") ??
    "127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194";
}

/** The nodes of the local ClickHouse cluster: service `clickhouse-cluster-N` is node N. */
export const CLICKHOUSE_CLUSTER_NODE_COUNT = 4;

/**
 * The cluster name of the local ClickHouse cluster (`scripts/services.sh start
 * clickhouse-cluster`), as in its nodes' `remote_servers`: `SLUICE_CLICKHOUSE_CLUSTER`,
 * as `services.sh env clickhouse-cluster` prints it, else `sluice`.
 *
 * @returns The name to use in `ON CLUSTER` and `Distributed(...)`.
 */
export function clickhouseClusterName(): string {
  return Deno.env.get("SLUICE_CLICKHOUSE_CLUSTER") ?? "sluice";
}

/**
 * The HTTP URLs of the local ClickHouse cluster's nodes, node 1 first (2 shards x 2
 * replicas: nodes 1 and 2 are shard 1, nodes 3 and 4 shard 2):
 * `SLUICE_CLICKHOUSE_CLUSTER_URLS` (comma-separated, as `services.sh env
 * clickhouse-cluster` prints it), else loopback at `SLUICE_CLICKHOUSE_CLUSTER_HTTP_PORT`
 * (default 18131) + N - 1, the script's defaults.
 *
 * @returns E.g. `["http://127.0.0.1:18131", ..., "http://127.0.0.1:18134"]`.
 */
export function clickhouseClusterUrls(): string[] {
  const list = Deno.env.get("SLUICE_CLICKHOUSE_CLUSTER_URLS");
  if (list !== undefined) return list.split(",").map((url) => url.trim());
  const first = Number(Deno.env.get("SLUICE_CLICKHOUSE_CLUSTER_HTTP_PORT") ?? "18131");
  return Array.from(
    { length: CLICKHOUSE_CLUSTER_NODE_COUNT },
    (_, i) => `http://127.0.0.1:${first + i}`,
  );
}

/**
 * The state dir of `scripts/services.sh`: `SLUICE_SERVICES_DIR`, else
 * `.services` in the repository.
 *
 * @returns An absolute path.
 */
export function servicesDir(): string {
  return Deno.env.get("SLUICE_SERVICES_DIR") ?? new URL("../.services", import.meta.url).pathname;
}

/**
 * The Kafka jars `scripts/services.sh` fetched for the version the local
 * cluster runs (its `kafka-cluster/kafka.version`, else `SLUICE_KAFKA_VERSION`,
 * else 3.9.1), as a `java -cp` value, for tools that use Kafka's own Admin client.
 *
 * @returns E.g. `<repo>/.services/kafka/lib/3.9.1/*`.
 */
export async function kafkaClusterClasspath(): Promise<string> {
  const version = await Deno.readTextFile(`${servicesDir()}/kafka-cluster/kafka.version`)
    .then((text) => text.trim(), () => Deno.env.get("SLUICE_KAFKA_VERSION") ?? "3.9.1");
  return `${servicesDir()}/kafka/lib/${version}/*`;
}

/** The authenticated listeners of the local test broker, and how to log in to them. */
export interface KafkaAuthListeners {
  /** `host:port` of the SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512). */
  sasl: string;
  /** `host:port` of the SSL listener. */
  tls: string;
  /** `host:port` of the SASL_SSL listener (the same mechanisms over TLS). */
  saslTls: string;
  /** PEM file of the CA that signed the broker's certificate. */
  caFile: string;
  /** The SASL user, known to every mechanism. */
  username: string;
  /** Its password. */
  password: string;
}

/**
 * Where the SASL and TLS listeners of the local test broker answer, from the
 * same `SLUICE_*` variables and defaults as `scripts/services.sh`.
 *
 * @returns The listener addresses, the CA file and the test user.
 */
export function kafkaAuthListeners(): KafkaAuthListeners {
  const address = (variable: string, port: string) => `127.0.0.1:${Deno.env.get(variable) ?? port}`;
  return {
    sasl: address("SLUICE_KAFKA_SASL_PORT", "19094"),
    tls: address("SLUICE_KAFKA_TLS_PORT", "19095"),
    saslTls: address("SLUICE_KAFKA_SASL_TLS_PORT", "19096"),
    caFile: Deno.env.get("SLUICE_KAFKA_CA_FILE") ?? `${servicesDir()}/kafka/tls/ca.pem`,
    username: "sluice",
    password: "sluice-secret",
  };
}

/**
 * A name no other test run uses, for tables, topics and groups.
 *
 * @param prefix What the name is for.
 * @returns E.g. `t_clickhouse_1732233600000_ab12`.
 */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now()}_${Math.random().toString(36).slice(2, 6)}`;
}

/** VictoriaMetrics HTTP URL of the local test instance. */
export function victoriaMetricsUrl(): string {
  return `http://127.0.0.1:${Deno.env.get("SLUICE_VM_PORT") ?? "18428"}`;
}

/** Elasticsearch (or OpenSearch) HTTP URL of the local test instance. */
export function elasticUrl(): string {
  return `http://127.0.0.1:${Deno.env.get("SLUICE_ELASTIC_PORT") ?? "19200"}`;
}

/**
 * InfluxDB (1.x) HTTP URL of the local test instance: `SLUICE_INFLUXDB_URL`
 * when set, else loopback at `SLUICE_INFLUXDB_PORT` (default 18086), as
 * `scripts/services.sh` starts it.
 *
 * @returns E.g. `http://127.0.0.1:18086`.
 */
export function influxUrl(): string {
  return Deno.env.get("SLUICE_INFLUXDB_URL") ??
    `http://127.0.0.1:${Deno.env.get("SLUICE_INFLUXDB_PORT") ?? "18086"}`;
}

/** Where the local InfluxDB 2.x answers, and what `scripts/influxdb2.sh start` set up in it. */
export interface Influx2Settings {
  /** Base HTTP URL, e.g. `http://127.0.0.1:18087`. */
  url: string;
  /** The organisation. */
  org: string;
  /** The bucket made at setup (tests make their own). */
  bucket: string;
  /** The operator token: every right in every organisation. */
  token: string;
}

/**
 * The local InfluxDB 2.x (`scripts/influxdb2.sh start`): `SLUICE_INFLUXDB2_URL`
 * (else loopback at `SLUICE_INFLUXDB2_PORT`, default 18087), `_ORG`,
 * `_BUCKET` and `_TOKEN`, with the script's defaults (what its `env` prints).
 *
 * @returns The URL, organisation, bucket and token.
 */
export function influx2(): Influx2Settings {
  const env = (name: string, fallback: string) =>
    Deno.env.get(`SLUICE_INFLUXDB2_${name}`) ?? fallback;
  return {
    url: env("URL", `http://127.0.0.1:${env("PORT", "18087")}`),
    org: env("ORG", "sluice"),
    bucket: env("BUCKET", "sluice"),
    token: env("TOKEN", "sluice-token"),
  };
}

/**
 * Runs `scripts/services.sh` (e.g. `services("stop", "clickhouse")`), for
 * tests that stop and restart a server mid-stream.
 *
 * @param args The subcommand and services.
 * @throws {Error} With the script's output when it fails.
 */
export async function services(...args: string[]): Promise<void> {
  const script = new URL("../scripts/services.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [script, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `Cannot run services.sh ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}
