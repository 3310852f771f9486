/**
 * sluice against the authenticated listeners of the local Kafka broker
 * (scripts/services.sh): SASL PLAIN and SCRAM on SASL_PLAINTEXT, TLS on SSL,
 * SCRAM over TLS on SASL_SSL. Records go in through the PLAINTEXT listener;
 * sluice reads them through the listener under test into a fresh ClickHouse
 * database. A missing listener fails the test, it never skips.
 */
import { flowMessages } from "../_flows.ts";
import { query, scalar } from "../_clickhouse.ts";
import { allCommitted, createTopic, offsets, produce } from "../_kafka.ts";
import { kafkaAuthListeners, uniqueName } from "../_services.ts";
import {
  clickhouseSinkEnv,
  type SluiceProcess,
  startSluice,
  stopQuietly,
  stopSluice,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

/** A listener of the test broker. */
interface Listener {
  /** Its name in the broker's config, e.g. `SASL_PLAINTEXT`. */
  name: string;
  /** `host:port`. */
  address: string;
}

const auth = kafkaAuthListeners();
const SCHEMA = "seq:UInt64,ip_src:String,stamp_updated:DateTime,packets:UInt64,bytes:UInt64";
const RECORDS = 1000;

/**
 * How long sluice may take to give up: a refused login fails at once, and a
 * certificate that does not verify is caught by sluice's own TLS handshake
 * before kafkajs would retry it for a minute; this leaves ample room.
 */
const FAILURE_TIMEOUT_MS = 60_000;

const messages = (n: number) => flowMessages(0, n);

/**
 * Fails with the fix when nothing answers at the listener's address, rather
 * than letting sluice retry into a timeout.
 */
async function assertListening(name: string, address: string): Promise<void> {
  const [hostname, port] = address.split(":");
  try {
    (await Deno.connect({ hostname, port: Number(port) })).close();
  } catch (error) {
    throw new Error(
      `Cannot reach the ${name} listener of the test broker at ${address} (${error}); ` +
        "run 'scripts/services.sh stop kafka', then 'scripts/services.sh start kafka'",
    );
  }
}

/** A fresh topic (with records), group and database, and the env that points sluice at them. */
async function fixture(listener: Listener, env: Record<string, string>) {
  await assertListening(listener.name, listener.address);
  const name = uniqueName("auth");
  await createTopic(name, 3);
  await produce(name, messages(RECORDS));
  const db = `sluice_${name}`;
  const table = `${db}.flows`;
  return {
    topic: name,
    group: `g_${name}`,
    env: {
      ...clickhouseSinkEnv({
        topic: name,
        group: `g_${name}`,
        database: db,
        schema: SCHEMA,
        brokers: listener.address,
      }),
      CLICKHOUSE_ORDER_BY: "seq",
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "300",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      ...env,
    },
    /** Rows written; 0 when sluice never got as far as the table. */
    count: () => scalar(`SELECT count() FROM ${table}`),
    distinct: () => scalar(`SELECT uniqExact(seq) FROM ${table}`),
    drop: () => query(`DROP DATABASE IF EXISTS ${db}`),
  };
}

async function nothingCommitted(group: string, topic: string): Promise<boolean> {
  const { committed } = await offsets(group, topic);
  return Object.values(committed).every((offset) => Number(offset) < 0);
}

/**
 * Error lines other than kafkajs's own "Response ..." lines: kafkajs logs a
 * retriable protocol error at error level too, e.g. "The group coordinator is
 * not available" when the first group of a fresh broker creates
 * `__consumer_offsets`, and then retries.
 */
const errorLines = (sluice: SluiceProcess) =>
  sluice.logs.filter((l) =>
    l["level"] === "error" && !String(l["msg"]).startsWith("Kafka client: Response ")
  );

/** The exit code of a sluice that is expected to give up on its own. */
async function exitCode(sluice: SluiceProcess): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`sluice still runs after ${FAILURE_TIMEOUT_MS / 1000} s`)),
      FAILURE_TIMEOUT_MS,
    );
  });
  try {
    return (await Promise.race([sluice.status, timeout])).code;
  } finally {
    clearTimeout(timer);
  }
}

const sasl = (mechanism: string, password = auth.password) => ({
  KAFKA_SASL_MECHANISM: mechanism,
  KAFKA_SASL_USERNAME: auth.username,
  KAFKA_SASL_PASSWORD: password,
});
const SASL_PLAINTEXT: Listener = { name: "SASL_PLAINTEXT", address: auth.sasl };
const SSL: Listener = { name: "SSL", address: auth.tls };
const SASL_SSL: Listener = { name: "SASL_SSL", address: auth.saslTls };

const ACCEPTED: Array<{ how: string; listener: Listener; env: Record<string, string> }> = [
  { how: "SASL PLAIN", listener: SASL_PLAINTEXT, env: sasl("plain") },
  { how: "SASL SCRAM-SHA-256", listener: SASL_PLAINTEXT, env: sasl("scram-sha-256") },
  { how: "SASL SCRAM-SHA-512", listener: SASL_PLAINTEXT, env: sasl("scram-sha-512") },
  {
    how: "TLS verified against KAFKA_TLS_CA_FILE",
    listener: SSL,
    env: { KAFKA_TLS: "YES", KAFKA_TLS_CA_FILE: auth.caFile },
  },
  {
    how: "TLS with KAFKA_TLS_VERIFY=NO and no CA file",
    listener: SSL,
    env: { KAFKA_TLS: "YES", KAFKA_TLS_VERIFY: "NO" },
  },
  {
    how: "SASL SCRAM-SHA-512 over verified TLS",
    listener: SASL_SSL,
    env: { KAFKA_TLS: "YES", KAFKA_TLS_CA_FILE: auth.caFile, ...sasl("scram-sha-512") },
  },
];

for (const { how, listener, env } of ACCEPTED) {
  Deno.test(`sluice consumes through ${how} (${listener.name}), writes every record and commits`, async () => {
    const f = await fixture(listener, env);
    const sluice = await startSluice(f.env);
    try {
      await waitFor(async () => (await f.count()) === RECORDS, `${RECORDS} rows`);
      await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
      assertEquals(await f.distinct(), RECORDS);
      assertEquals(await sluice.metric("sluice_records_written_total"), RECORDS);
      assertEquals(await stopSluice(sluice), 0);
      assertEquals(errorLines(sluice), [], `no error was logged: ${JSON.stringify(sluice.logs)}`);
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });
}

const REFUSED: Array<
  { what: string; listener: Listener; env: Record<string, string>; error: RegExp }
> = [
  {
    what: "the SASL PLAIN password is wrong",
    listener: SASL_PLAINTEXT,
    env: sasl("plain", "not-the-password"),
    error: /SASL PLAIN authentication failed: .*(Invalid username or password|invalid credentials)/,
  },
  {
    what: "the SASL SCRAM-SHA-256 password is wrong",
    listener: SASL_PLAINTEXT,
    env: sasl("scram-sha-256", "not-the-password"),
    error: /SASL SCRAM SHA256 authentication failed: .*invalid credentials/i,
  },
  {
    what: "TLS verification is on and no CA file names the broker's CA",
    listener: SSL,
    env: { KAFKA_TLS: "YES" },
    error:
      /^Cannot connect to Kafka broker 127\.0\.0\.1:\d+ with TLS: self[- ]signed certificate.*set KAFKA_TLS_CA_FILE/i,
  },
];

for (const { what, listener, env, error } of REFUSED) {
  Deno.test(`sluice exits 1 with a clear error and commits nothing when ${what}`, async () => {
    const f = await fixture(listener, env);
    const sluice = await startSluice(f.env);
    try {
      await waitFor(
        () => sluice.logs.some((l) => error.test(String(l["error"] ?? l["msg"]))),
        `an error matching ${error}`,
        10_000,
      );
      assertEquals(await exitCode(sluice), 1);
      const failure = sluice.logs.find((l) => l["msg"] === "Cannot start consuming from Kafka");
      assert(
        failure,
        `"Cannot start consuming from Kafka" was logged: ${JSON.stringify(sluice.logs)}`,
      );
      assertEquals(failure["level"], "error");
      assertEquals(failure["brokers"], [listener.address]);
      assertMatch(String(failure["error"]), error);
      assert(
        !JSON.stringify(sluice.logs).includes("not-the-password"),
        "the password is not logged",
      );
      assertEquals(await f.count(), 0);
      assert(await nothingCommitted(f.group, f.topic), "no offset was committed");
    } finally {
      await stopQuietly(sluice);
      await f.drop();
    }
  });
}
