/**
 * kafka-influxdb's two reporting modes, run as a process against the real
 * Kafka and InfluxDB: `-b` (benchmark) and `-s` (statistics per flush).
 * Both print to standard output, which `startSluice` does not keep, so the
 * process is run here directly.
 *
 * @module
 */

import { allCommitted, createTopic, produce } from "../_kafka.ts";
import { countAllPoints, dropDatabase, measurements } from "../_influx.ts";
import { influxUrl, kafkaBrokers, uniqueName } from "../_services.ts";
import { MAIN_ARGS, waitFor } from "../_sluice.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const ROOT = new URL("../../", import.meta.url);

interface Run {
  child: Deno.ChildProcess;
  stdout: string[];
  stderr: string[];
  done: Promise<Deno.CommandStatus>;
}

function run(args: string[], env: Record<string, string>): Run {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...MAIN_ARGS, ...args],
    cwd: ROOT.pathname,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      PROMETHEUS_CLIENT_PORT: "0",
      PROMETHEUS_CLIENT_HOST: "127.0.0.1",
      ...env,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout: string[] = [];
  const stderr: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      into.push(...parts);
    }
    if (rest) into.push(rest);
  };
  const pumps = Promise.all([collect(child.stdout, stdout), collect(child.stderr, stderr)]);
  const done = child.status.then(async (status) => {
    await pumps;
    return status;
  });
  return { child, stdout, stderr, done };
}

Deno.test("-b produces N collectd messages, consumes exactly those through InfluxDB and reports the rates", async () => {
  const topic = uniqueName("it_bench");
  const db = `db_${topic}`;
  await createTopic(topic, 1);
  // Messages already in the topic are not part of the benchmark.
  await produce(topic, ["oldhost.old.metric 1 1700000000"]);
  const url = new URL(influxUrl());
  const bench = run(["-b", "--benchmark_messages", "3000", "--benchmark_topic", topic], {
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    INFLUXDB_HOST: url.hostname,
    INFLUXDB_PORT: url.port,
    INFLUXDB_DBNAME: db,
    BUFFER_SIZE: "1000",
  });
  try {
    const status = await Promise.race([
      bench.done,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("the benchmark did not end within 90 s")), 90_000)
      ),
    ]);
    const out = bench.stdout.join("\n");
    assertEquals(status.code, 0, `stdout:\n${out}\nstderr:\n${bench.stderr.slice(-20).join("\n")}`);
    // 3000 samples: a third are load (3 points), the others one point each.
    assertMatch(out, /^Benchmark: 3,000 messages, 5,000 points written to influxdb in [\d.]+ s$/m);
    assertMatch(out, /^ {2}[\d,]+ messages\/s, [\d,]+ points\/s$/m);
    assertMatch(out, /^ {2}consume CPU: [\d.]+ s; peak RSS [\d,]+ MB$/m);
    const err = bench.stderr.join("\n");
    assertMatch(err, /Produced 3,000 of 3,000 messages \(100%\)/);
    assertMatch(err, /Consumed 3,000 of 3,000 messages \(100%\)/);
    assertEquals(await countAllPoints(db), 5000);
    assertEquals((await measurements(db)).includes("old_metric"), false);
  } finally {
    try {
      bench.child.kill("SIGKILL");
    } catch { /* already ended */ }
    await dropDatabase(db).catch(() => {});
  }
});

Deno.test("-s prints the points and messages each flush really wrote, with their rates", async () => {
  const topic = uniqueName("it_stats");
  const db = `db_${topic}`;
  const group = `g_${topic}`;
  await createTopic(topic, 1);
  const t = Math.floor(Date.now() / 1000) - 600;
  const messages = Array.from(
    { length: 100 },
    (_, i) => `h${i}.load.load.shortterm 0.5 ${t}\nh${i}.load.load.midterm 0.25 ${t}\n`,
  );
  await produce(topic, messages);
  const sluice = run(["-s", "--kafka_topic", topic, "--kafka_group", group], {
    SINK: "influxdb",
    KAFKA_BOOTSTRAP_SERVERS: kafkaBrokers(),
    INFLUXDB_URL: influxUrl(),
    INFLUXDB_DBNAME: db,
    BUFFER_SIZE: "50",
    BUFFER_TIMEOUT: "1",
  });
  try {
    await waitFor(() => allCommitted(group, topic), "every offset committed", 60_000);
    sluice.child.kill("SIGTERM");
    assertEquals((await sluice.done).code, 0);
    const flushes = sluice.stdout.map((line) =>
      /^Flushed (\d+) points from (\d+) messages in [\d.]+ s: [\d,]+ messages\/s, [\d,]+ points\/s over the last [\d.]+ s$/
        .exec(line)
    );
    assert(flushes.length > 0, "no statistics printed");
    for (const [i, flush] of flushes.entries()) {
      assert(flush !== null, `not a statistics line: ${sluice.stdout[i]}`);
    }
    // 50 points per write, two points per message: 4 flushes of 25 messages.
    assertEquals(flushes.map((f) => Number(f![1])), [50, 50, 50, 50]);
    assertEquals(flushes.map((f) => Number(f![2])), [25, 25, 25, 25]);
    assertEquals(await countAllPoints(db), 200);
  } finally {
    try {
      sluice.child.kill("SIGKILL");
    } catch { /* already ended */ }
    await sluice.done.catch(() => {});
    await dropDatabase(db).catch(() => {});
  }
});
