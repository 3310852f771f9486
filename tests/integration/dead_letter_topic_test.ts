/**
 * The dead-letter topic (`DEAD_LETTER_TOPIC`) against the real broker and
 * ClickHouse 26.x: what a letter holds, the start check, and the replay task.
 */
import { Buffer } from "node:buffer";
import type { Message } from "kafkajs";
import { letterKey, readTopic } from "../../scripts/replay_dead_letters.ts";
import { CLICKHOUSE_26 } from "../_clickhouse.ts";
import { flowMessages } from "../_flows.ts";
import { allCommitted, client, createTopic, produceMessages } from "../_kafka.ts";
import { kafkaBrokers, uniqueName } from "../_services.ts";
import { clickhouseSinkEnv, runToExit, startSluice, stopQuietly, waitFor } from "../_sluice.ts";
import { assert, assertEquals } from "../_assert.ts";

const SCHEMA = "seq:UInt64,ip_src:String,port_src:UInt16,stamp_updated:DateTime,bytes:UInt64";
const ROOT = new URL("../../", import.meta.url).pathname;

/** A fresh topic (3 partitions), dead-letter topic, group and table on ClickHouse 26.x. */
async function fixture() {
  await CLICKHOUSE_26.expectVersion();
  const name = uniqueName("dlq");
  await createTopic(name, 3);
  await createTopic(`${name}-dead`, 1);
  const db = `sluice_${name}`;
  return {
    topic: name,
    dead: `${name}-dead`,
    group: `g_${name}`,
    env: {
      ...clickhouseSinkEnv({ topic: name, group: `g_${name}`, database: db, schema: SCHEMA }),
      CLICKHOUSE_HOST: CLICKHOUSE_26.url,
      CLICKHOUSE_ORDER_BY: "seq",
      CLICKHOUSE_MAX_SAMPLES_PER_SEND: "100",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      DEAD_LETTER_TOPIC: `${name}-dead`,
    },
    count: () => CLICKHOUSE_26.scalar(`SELECT count() FROM ${db}.flows`),
    drop: () => CLICKHOUSE_26.query(`DROP DATABASE IF EXISTS ${db}`),
  };
}

/** 300 good records and three poison messages of different kinds, each with a key. */
function messages(): { good: number; poison: Message[]; all: Message[] } {
  const good = flowMessages(0, 300).map((value, i) => ({ value, partition: i % 3 }));
  const poison: Message[] = [
    { key: "router-1", value: "{not json", partition: 0 },
    // Not UTF-8: must come back byte for byte.
    { key: "router-2", value: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), partition: 1 },
    // JSON the sink refuses: a port that is not a number.
    { key: "router-3", value: '{"seq": 999, "port_src": "http"}', partition: 2 },
  ];
  return {
    good: good.length,
    poison,
    all: [
      ...good.slice(0, 100),
      poison[0]!,
      ...good.slice(100, 200),
      poison[1]!,
      poison[2]!,
      ...good.slice(200),
    ],
  };
}

Deno.test("sluice produces each poison message to DEAD_LETTER_TOPIC as it came, with its key and origin headers, before committing it", async () => {
  const f = await fixture();
  const { good, poison, all } = messages();
  await produceMessages(f.topic, all);
  const sluice = await startSluice(f.env);
  try {
    await waitFor(async () => (await f.count()) === good, `${good} rows`);
    await waitFor(() => allCommitted(f.group, f.topic), "every offset committed");
    const letters = await readTopic(client(), f.dead);
    assertEquals(letters.length, poison.length);
    const byKey = new Map(letters.map((l) => [String(l.message.key), l]));
    for (const sent of poison) {
      const letter = byKey.get(String(sent.key));
      assert(letter !== undefined, `a letter with key ${sent.key}`);
      assertEquals(
        new Uint8Array(letter.message.value!),
        new Uint8Array(Buffer.from(sent.value as string | Buffer)),
      );
      assertEquals(letter.header("sluice.source.topic"), f.topic);
      assertEquals(letter.header("sluice.source.partition"), String(sent.partition));
      assertEquals(letter.header("sluice.value"), "message");
      assertEquals(letter.header("sluice.sink"), "clickhouse");
      assert(letterKey(letter) !== undefined);
    }
    assertEquals(byKey.get("router-1")!.header("sluice.reason"), "decode");
    assertEquals(byKey.get("router-3")!.header("sluice.reason"), "convert");
    assert(byKey.get("router-3")!.header("sluice.error")!.includes("port_src"));
    assertEquals(
      await sluice.metric("sluice_dead_letters_total", { destination: "topic", reason: "decode" }),
      2,
    );
  } finally {
    await stopQuietly(sluice);
    await f.drop();
  }
});

Deno.test("sluice refuses to start when DEAD_LETTER_TOPIC does not exist, naming it", async () => {
  const f = await fixture();
  try {
    const out = await runToExit({ ...f.env, DEAD_LETTER_TOPIC: `${f.topic}-missing` });
    assertEquals(out.code, 1, out.stderr);
    const refused = out.logs.find((l) =>
      l["msg"] === "Cannot start: the dead-letter topic cannot be written to"
    );
    assert(
      String(refused?.["error"]).includes(`DEAD_LETTER_TOPIC "${f.topic}-missing" does not exist`),
      out.stderr,
    );
  } finally {
    await f.drop();
  }
});

Deno.test("deno task replay-dead-letters produces each letter's bytes and key once, leaving out repeats", async () => {
  const dead = uniqueName("dlq-replay");
  const target = `${dead}-to`;
  await createTopic(dead, 1);
  await createTopic(target, 1);
  const letter = (offset: string, value: string | Buffer, valueKind = "message"): Message => ({
    key: `k${offset}`,
    value,
    headers: {
      "sluice.reason": "decode",
      "sluice.error": "x",
      "sluice.source.topic": "flows",
      "sluice.source.partition": "0",
      "sluice.source.offset": offset,
      "sluice.source.index": "0",
      "sluice.value": valueKind,
    },
  });
  const binary = Buffer.from([0xff, 0x00, 0x7b]);
  await produceMessages(dead, [
    letter("5", "{bad"),
    letter("9", binary),
    letter("5", "{bad"), // the same poison message, dead-lettered again after a crash
    letter("12", '{"port_src":"x"}', "row"),
  ]);
  const run = await new Deno.Command("deno", {
    args: [
      "run",
      "-A",
      "--frozen",
      `${ROOT}scripts/replay_dead_letters.ts`,
      "--from",
      dead,
      "--to",
      target,
      "--brokers",
      kafkaBrokers(),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
  assertEquals(run.code, 0, out);
  assert(
    out.includes("replayed 2 to") && out.includes("left out 1 repeats, 1 server-refused rows"),
    out,
  );
  const replayed = await readTopic(client(), target);
  assertEquals(replayed.map((l) => String(l.message.key)), ["k5", "k9"]);
  assertEquals(new Uint8Array(replayed[1]!.message.value!), new Uint8Array(binary));
  assertEquals(replayed[0]!.header("sluice.replayed.from"), `${dead}/0/0`);
});
