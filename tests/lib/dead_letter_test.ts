import type { Kafka, Message, ProducerRecord } from "kafkajs";
import {
  type DeadLetter,
  DeadLetterFile,
  DeadLetters,
  DeadLetterTopic,
} from "../../lib/dead_letter.ts";
import { Logger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { RetryPolicy } from "../../lib/retry.ts";
import { assert, assertEquals } from "../_assert.ts";

const encoder = new TextEncoder();
const quiet = () => ({
  log: new Logger({ write: () => {} }),
  metrics: new Metrics(),
  policy: new RetryPolicy({ initialMs: 5, maxMs: 10 }),
});
const origin = { topic: "flows", partition: 2, offset: "9007199254740993", index: 1 };

Deno.test("DeadLetterFile.add() appends one JSON line per record with reason, error, origin, key and data", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    Deno.writeTextFileSync(path, '{"earlier":true}\n');
    const letters = new DeadLetterFile(path, quiet());
    letters.add({
      origin,
      rejection: { reason: "convert", error: "bad port" },
      data: { port: "x", n: 12n },
      value: "record",
    });
    letters.add({
      origin: { ...origin, index: 0, key: encoder.encode("router-1") },
      rejection: { reason: "decode", error: "not JSON" },
      data: encoder.encode("{oops"),
      value: "message",
      message: encoder.encode("{oops"),
    });
    await letters.stored();
    await letters.close();
    const lines = Deno.readTextFileSync(path).trimEnd().split("\n");
    assertEquals(lines.length, 3);
    assertEquals(lines[0], '{"earlier":true}');
    const first = JSON.parse(lines[1]!);
    assert(!Number.isNaN(Date.parse(first.ts)), first.ts);
    delete first.ts;
    assertEquals(first, {
      reason: "convert",
      error: "bad port",
      topic: "flows",
      partition: 2,
      offset: "9007199254740993",
      index: 1,
      data: { port: "x", n: "12" },
    });
    const second = JSON.parse(lines[2]!);
    assertEquals([second.reason, second.data, second.index, second.key], [
      "decode",
      "{oops",
      0,
      "router-1",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("new DeadLetterFile() throws when the file cannot be opened", () => {
  let thrown: unknown;
  try {
    new DeadLetterFile("/nonexistent-sluice-dir/dead.jsonl", quiet());
  } catch (error) {
    thrown = error;
  }
  assert(thrown instanceof Deno.errors.NotFound, String(thrown));
});

/**
 * A kafkajs client whose producer fails the first `failures` sends, and
 * then the sends `fail` picks, and records the rest; its topic has
 * `partitions` partitions (1 unless said).
 */
function fakeKafka(
  options: {
    failures?: number;
    topics?: string[];
    partitions?: number;
    fail?: (record: ProducerRecord) => boolean;
  } = {},
) {
  let failures = options.failures ?? 0;
  const sent: ProducerRecord[] = [];
  const producerOptions: unknown[] = [];
  const kafka = {
    producer(opts: unknown) {
      producerOptions.push(opts);
      return {
        connect: () => Promise.resolve(),
        disconnect: () => Promise.resolve(),
        send(record: ProducerRecord) {
          if (failures > 0 || options.fail?.(record)) {
            failures--;
            return Promise.reject(new Error("There is no leader for this topic-partition"));
          }
          sent.push(record);
          return Promise.resolve([]);
        },
      };
    },
    admin() {
      return {
        connect: () => Promise.resolve(),
        disconnect: () => Promise.resolve(),
        listTopics: () => Promise.resolve(options.topics ?? ["dead"]),
        fetchTopicMetadata: () =>
          Promise.resolve({
            topics: [{
              name: "dead",
              partitions: Array.from({ length: options.partitions ?? 1 }, (_, i) => ({
                partitionErrorCode: 0,
                partitionId: i,
                leader: i % 3,
                replicas: [i % 3],
                isr: [i % 3],
              })),
            }],
          }),
      };
    },
  };
  return { kafka: kafka as unknown as Kafka, sent, producerOptions };
}

function topic(kafka: Kafka, metrics = new Metrics()): DeadLetterTopic {
  return new DeadLetterTopic({
    ...quiet(),
    topic: "dead",
    kafka,
    sink: "clickhouse",
    version: "9.9.9",
    metrics,
  });
}

const headerText = (message: Message, name: string) => String(message.headers?.[name]);

Deno.test("DeadLetterTopic produces the message's own bytes, its key, and the headers naming where it came from, with acks from all replicas", async () => {
  const { kafka, sent, producerOptions } = fakeKafka();
  const letters = topic(kafka);
  await letters.connect();
  const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x22]); // not UTF-8: kept as is
  letters.add({
    origin: { ...origin, key: encoder.encode("k1") },
    rejection: { reason: "decode", error: "Unexpected token" },
    data: bytes,
    value: "message",
    message: bytes,
  });
  letters.add({
    origin: { ...origin, index: 3 },
    rejection: { reason: "server", error: "Cannot parse" },
    data: { port_src: "x", bytes: 12n },
    value: "row",
  });
  await letters.stored();
  await letters.close();
  assertEquals(producerOptions, [{
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  }]);
  const messages = sent.flatMap((r) => r.messages);
  assertEquals(sent.map((r) => [r.topic, r.acks]), [["dead", -1]]);
  assertEquals(messages.length, 2);
  const [first, second] = messages as [Message, Message];
  assertEquals(new Uint8Array(first.value as Uint8Array), bytes);
  assertEquals(String(first.key), "k1");
  assertEquals(
    [
      "sluice.reason",
      "sluice.error",
      "sluice.source.topic",
      "sluice.source.partition",
      "sluice.source.offset",
      "sluice.source.index",
      "sluice.value",
      "sluice.sink",
      "sluice.version",
    ].map((h) => headerText(first, h)),
    [
      "decode",
      "Unexpected token",
      "flows",
      "2",
      "9007199254740993",
      "1",
      "message",
      "clickhouse",
      "9.9.9",
    ],
  );
  assertEquals(second.key, null);
  assertEquals(String(second.value), '{"port_src":"x","bytes":"12"}');
  assertEquals([headerText(second, "sluice.value"), headerText(second, "sluice.source.index")], [
    "row",
    "3",
  ]);
});

Deno.test("DeadLetterTopic sends each partition's letters alone, a key's letters to one partition in order, and again only the partition that failed", async () => {
  // Partition 1's first send fails (its leader moved): only its letters go again.
  let failOnce = true;
  const { kafka, sent } = fakeKafka({
    partitions: 3,
    fail: (record) => {
      const failing = failOnce && record.messages[0]?.partition === 1;
      if (failing) failOnce = false;
      return failing;
    },
  });
  const letters = topic(kafka);
  await letters.connect();
  const keys = ["a", "b", "c", "d", "e", "f", "a", "b", "c", "d", "e", "f"];
  keys.forEach((key, i) =>
    letters.add({
      origin: { ...origin, offset: String(i), key: encoder.encode(key) },
      rejection: { reason: "decode", error: "x" },
      data: encoder.encode(`m${i}`),
      value: "record",
    })
  );
  await letters.stored();
  await letters.close();
  assert(!failOnce, "partition 1 had letters, and its first send failed");
  // Each send holds one partition's letters, each letter naming it.
  for (const record of sent) {
    const partitions = new Set(record.messages.map((m) => m.partition));
    assertEquals(partitions.size, 1, JSON.stringify([...partitions]));
  }
  const messages = sent.flatMap((r) => r.messages);
  // Every letter once: the partitions that had answered were not sent again.
  assertEquals(messages.map((m) => String(m.value)).sort(), keys.map((_, i) => `m${i}`).sort());
  // One partition per key, and a key's letters in the order they came.
  const partitionOf = new Map<string, number>();
  for (const m of messages) {
    const key = String(m.key);
    assertEquals(partitionOf.get(key) ?? m.partition, m.partition, `key ${key}`);
    partitionOf.set(key, m.partition!);
  }
  for (const key of new Set(keys)) {
    const order = messages.filter((m) => String(m.key) === key).map((m) => String(m.value));
    assertEquals(order, [...order].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
  }
  assert(new Set(partitionOf.values()).size > 1, "the keys spread over the partitions");
});

Deno.test("DeadLetterTopic stores a letter added just as its sending loop ends, with no later letter to wake it", async () => {
  const { kafka, sent } = fakeKafka();
  const letters = topic(kafka);
  await letters.connect();
  const letter = (index: number): DeadLetter => ({
    origin: { ...origin, index },
    rejection: { reason: "decode", error: "x" },
    data: { index },
    value: "record",
  });
  letters.add(letter(0));
  // The loop wakes this waiter as it stores letter 0, then finds nothing
  // more and ends: letter 1 comes in between.
  await letters.stored().then(() => letters.add(letter(1)));
  const stored = letters.stored().then(() => "stored");
  const late = new Promise((resolve) => setTimeout(() => resolve("still waiting"), 1000));
  assertEquals(await Promise.race([stored, late]), "stored");
  await letters.close();
  assertEquals(sent.flatMap((r) => r.messages).length, 2);
});

Deno.test("DeadLetterTopic.stored() waits while the topic cannot be written to, and resolves once it was", async () => {
  const { kafka, sent } = fakeKafka({ failures: 3 });
  const metrics = new Metrics();
  const letters = topic(kafka, metrics);
  await letters.connect();
  const letter: DeadLetter = {
    origin,
    rejection: { reason: "convert", error: "bad" },
    data: { a: 1 },
    value: "record",
  };
  letters.add(letter);
  let stored = false;
  const waiting = letters.stored().then(() => (stored = true));
  await new Promise((resolve) => setTimeout(resolve, 1));
  assertEquals(stored, false);
  await waiting;
  assertEquals(sent.length, 1);
  const text = await metrics.registry.metrics();
  assert(text.includes('sluice_dead_letter_errors_total{destination="topic"} 3'), text);
  assert(
    text.includes('sluice_dead_letters_total{destination="topic",reason="convert"} 1'),
    text,
  );
  assert(text.includes('sluice_dead_letters_waiting{destination="topic"} 0'), text);
  await letters.close();
});

Deno.test("DeadLetterTopic.stored() gives up at the signal, and close() leaves unsent letters unstored", async () => {
  const { kafka, sent } = fakeKafka({ failures: 1_000_000 });
  const letters = topic(kafka);
  await letters.connect();
  letters.add({ origin, rejection: { reason: "decode", error: "x" }, data: null, value: "record" });
  const stop = new AbortController();
  const waiting = letters.stored(stop.signal).then(() => "stored", (e) => `gave up: ${e}`);
  stop.abort(new Error("deadline"));
  assertEquals(await waiting, "gave up: Error: deadline");
  await letters.close();
  assertEquals(sent.length, 0);
});

Deno.test("DeadLetterTopic.connect() names a dead-letter topic that does not exist", async () => {
  const { kafka } = fakeKafka({ topics: ["flows"] });
  const letters = topic(kafka);
  let thrown: unknown;
  try {
    await letters.connect();
  } catch (error) {
    thrown = error;
  }
  assert(String(thrown).includes('DEAD_LETTER_TOPIC "dead" does not exist'), String(thrown));
});

Deno.test("DeadLetters.full holds the source while 10,000 letters wait, room() frees it", async () => {
  const { kafka } = fakeKafka({ failures: 2 });
  const letters = topic(kafka);
  await letters.connect();
  const all = new DeadLetters([letters]);
  for (let i = 0; i < 10_000; i++) {
    all.add({
      origin: { ...origin, offset: String(i) },
      rejection: { reason: "decode", error: "x" },
      data: "x",
      value: "record",
    });
  }
  assertEquals(all.full, true);
  await all.room();
  await all.stored();
  assertEquals(all.full, false);
  await all.close();
});

Deno.test("DeadLetterFile keeps the lines a full disk refuses, logs and counts it, and stored() waits for them", async () => {
  const lines: string[] = [];
  const metrics = new Metrics();
  const letters = new DeadLetterFile("/dev/full", {
    log: new Logger({ write: (line) => lines.push(line) }),
    metrics,
    policy: new RetryPolicy({ initialMs: 5, maxMs: 10 }),
  });
  letters.add({ origin, rejection: { reason: "decode", error: "x" }, data: "x", value: "record" });
  const stop = new AbortController();
  const waiting = letters.stored(stop.signal).then(() => "stored", () => "still waiting");
  await new Promise((resolve) => setTimeout(resolve, 50));
  stop.abort(new Error("deadline"));
  assertEquals(await waiting, "still waiting");
  await letters.close();
  const text = await metrics.registry.metrics();
  assert(/sluice_dead_letter_errors_total\{destination="file"\} [1-9]/.test(text), text);
  assert(text.includes('sluice_dead_letters_waiting{destination="file"} 1'), text);
  assert(lines.some((l) => l.includes("Cannot store dead letters in /dev/full")), lines.join());
  assert(lines.some((l) => l.includes("Dead letters not stored at stop")), lines.join());
});

const letter = (n: number): DeadLetter => ({
  origin: { ...origin, offset: String(n) },
  rejection: { reason: "decode", error: "not JSON" },
  data: `line ${n}`,
  value: "record",
});

Deno.test("new DeadLetterFile() creates the file readable and writable by its owner only (0600)", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    const letters = new DeadLetterFile(path, quiet());
    letters.add(letter(1));
    await letters.close();
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o600);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("new DeadLetterFile() keeps the mode of an existing file and warns when others may read it", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    Deno.writeTextFileSync(path, "");
    Deno.chmodSync(path, 0o644);
    const lines: string[] = [];
    const letters = new DeadLetterFile(path, {
      ...quiet(),
      log: new Logger({ write: (line) => lines.push(line) }),
    });
    await letters.close();
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o644);
    assertEquals(lines.map((l) => JSON.parse(l)).map((l) => [l.msg, l.mode, l.fix]), [[
      "The dead-letter file may be read by other users; it holds flow records",
      "0644",
      `chmod 600 ${path}`,
    ]]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("DeadLetterFile rotates past DEAD_LETTER_FILE_MAX_BYTES: FILE to FILE.1 and up, whole lines, nothing lost, the oldest beyond the kept ones deleted", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    const lines: string[] = [];
    const letters = new DeadLetterFile(path, {
      ...quiet(),
      log: new Logger({ write: (line) => lines.push(line) }),
      rotation: { maxBytes: 600, keep: 3 },
    });
    for (let n = 0; n < 20; n++) letters.add(letter(n));
    await letters.stored();
    await letters.close();
    const files = [path, `${path}.1`, `${path}.2`, `${path}.3`];
    assertEquals(Deno.readDirSync(dir).map((e) => `${dir}/${e.name}`).toArray().sort(), files);
    const kept = files.map((f) => Deno.readTextFileSync(f));
    for (const [i, text] of kept.entries()) {
      assert(text.length <= 600, `${files[i]} has ${text.length} bytes`);
      assert(text.endsWith("\n"), `${files[i]} ends with a whole line`);
    }
    assertEquals(Deno.statSync(`${path}.1`).mode! & 0o777, 0o600);
    // Newest in FILE, then FILE.1, ...: read oldest first, the offsets follow each other.
    const offsets = kept.reverse().join("").trimEnd().split("\n").map((l) =>
      Number(JSON.parse(l).offset)
    );
    const first = offsets[0]!;
    assertEquals(offsets, Array.from({ length: 20 - first }, (_, i) => first + i));
    assert(first > 0, "the oldest lines went with the file beyond the kept ones");
    const said = lines.map((l) => JSON.parse(l).msg);
    assert(said.includes("Rotated the dead-letter file"), said.join());
    assert(
      said.includes("Deleting the oldest rotated dead-letter file (DEAD_LETTER_FILE_KEEP)"),
      said.join(),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("DeadLetterFile with room for every rotated file keeps every line exactly once", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/dead.jsonl`;
    const letters = new DeadLetterFile(path, { ...quiet(), rotation: { maxBytes: 400, keep: 50 } });
    for (let n = 0; n < 30; n++) letters.add(letter(n));
    await letters.stored();
    await letters.close();
    const names = Deno.readDirSync(dir).map((e) => e.name).toArray();
    assert(names.length > 3, names.join());
    const offsets = names.flatMap((name) =>
      Deno.readTextFileSync(`${dir}/${name}`).trimEnd().split("\n").map((l) =>
        Number(JSON.parse(l).offset)
      )
    ).sort((a, b) => a - b);
    assertEquals(offsets, Array.from({ length: 30 }, (_, i) => i));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("DeadLetterFile never rotates what is not a regular file (/dev/full, a pipe)", async () => {
  const letters = new DeadLetterFile("/dev/full", {
    ...quiet(),
    rotation: { maxBytes: 1, keep: 2 },
  });
  letters.add(letter(1));
  letters.add(letter(2));
  await new Promise((resolve) => setTimeout(resolve, 30));
  await letters.close();
  let renamed = true;
  try {
    Deno.statSync("/dev/full.1");
  } catch {
    renamed = false;
  }
  assertEquals(renamed, false);
});
