import {
  checkConnections,
  checkDeadLetterFile,
  checkKafka,
  checkSink,
  type KafkaAdmin,
} from "../../lib/check_config.ts";
import { parseConfig } from "../../lib/config.ts";
import { Logger } from "../../lib/log.ts";
import { type Sink, SinkWriteError, startupError } from "../../lib/sink.ts";
import { REGISTRIES } from "../../sinks/mod.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const ENV = {
  KAFKA_BOOTSTRAP_SERVERS: "k1:9092",
  KAFKA_TOPIC: "flows",
  CLICKHOUSE_HOST: "ch",
  CLICKHOUSE_DATA_SCHEMA: "bytes:UInt64",
};

/** A Kafka admin client that knows some topics and one broker setting. */
function fakeAdmin(
  options: { topics?: string[]; autoCreate?: string | Error; connect?: Error } = {},
): KafkaAdmin & { disconnected: boolean } {
  const admin = {
    disconnected: false,
    connect: () => options.connect ? Promise.reject(options.connect) : Promise.resolve(),
    disconnect: () => {
      admin.disconnected = true;
      return Promise.resolve();
    },
    listTopics: () => Promise.resolve(options.topics ?? []),
    describeCluster: () =>
      Promise.resolve({
        brokers: [{ nodeId: 7, host: "k1", port: 9092 }],
        controller: 7,
        clusterId: "c",
      }),
    describeConfigs: (request: { resources: Array<{ name: string; configNames?: string[] }> }) => {
      if (options.autoCreate instanceof Error) return Promise.reject(options.autoCreate);
      assertEquals(request.resources[0]?.name, "7");
      assertEquals(request.resources[0]?.configNames, ["auto.create.topics.enable"]);
      return Promise.resolve({
        throttleTime: 0,
        resources: [{
          errorCode: 0,
          errorMessage: "",
          resourceName: "7",
          resourceType: 4,
          configEntries: [{
            configName: "auto.create.topics.enable",
            configValue: options.autoCreate ?? "true",
            isDefault: false,
            configSource: 4,
            isSensitive: false,
            readOnly: true,
            configSynonyms: [],
          }],
        }],
      });
    },
  };
  return admin as unknown as KafkaAdmin & { disconnected: boolean };
}

/** A sink whose check() does what it is told. */
function fakeSink(check?: () => Promise<string>, healthy = true): Sink & { closed: boolean } {
  const sink = {
    name: "fake",
    closed: false,
    connect: () => Promise.resolve(),
    prepare: () => ({ ok: false }) as never,
    encode: () => [],
    write: () => Promise.reject(new Error("not here")),
    check,
    healthcheck: () => Promise.resolve(healthy),
    close: () => {
      sink.closed = true;
      return Promise.resolve();
    },
  };
  return sink as unknown as Sink & { closed: boolean };
}

Deno.test("checkKafka() passes when the brokers answer and every topic exists", async () => {
  const admin = fakeAdmin({ topics: ["flows", "other"] });
  const lines = await checkKafka(parseConfig(ENV, REGISTRIES), admin);
  assertEquals(lines, [{ outcome: "ok", text: "Kafka: reachable at k1:9092, topics flows exist" }]);
  assert(admin.disconnected);
});

Deno.test("checkKafka() only warns about a missing topic when the broker creates topics", async () => {
  const config = parseConfig(ENV, REGISTRIES);
  const [creates] = await checkKafka(config, fakeAdmin({ autoCreate: "true" }));
  assertEquals(creates?.outcome, "warning");
  assertMatch(creates!.text, /topics not found: flows \(a warning: the broker creates a topic/);
  const [refuses] = await checkKafka(config, fakeAdmin({ autoCreate: "false" }));
  assertEquals(refuses?.outcome, "failed");
  assertMatch(refuses!.text, /topics not found: flows, and the broker does not create topics/);
  const [unknown] = await checkKafka(
    config,
    fakeAdmin({ autoCreate: new Error("Cluster authorization failed") }),
  );
  assertEquals(unknown?.outcome, "failed");
  assertMatch(
    unknown!.text,
    /cannot read auto\.create\.topics\.enable: Cluster authorization failed/,
  );
});

Deno.test("checkKafka() fails on a missing dead-letter topic and on brokers that do not answer", async () => {
  const config = parseConfig({ ...ENV, DEAD_LETTER_TOPIC: "dead" }, REGISTRIES);
  const lines = await checkKafka(config, fakeAdmin({ topics: ["flows"] }));
  assertEquals(lines.map((l) => l.outcome), ["ok", "failed"]);
  assertMatch(lines[1]!.text, /^Dead-letter topic: topics not found: dead/);
  const down = await checkKafka(config, fakeAdmin({ connect: new Error("Connection refused") }));
  assertEquals(down, [{
    outcome: "failed",
    text: "Kafka: cannot reach k1:9092: Connection refused",
  }]);
});

Deno.test("checkSink() puts the sink's reason on its line, and closes it", async () => {
  const ok = fakeSink(() => Promise.resolve("table fits"));
  assertEquals(await checkSink(ok), { outcome: "ok", text: "fake: reachable: table fits" });
  assert(ok.closed);
  const down = await checkSink(fakeSink(() =>
    Promise.reject(
      startupError("Cannot connect to X at http://h:1: connect ECONNREFUSED", {
        action: "retry",
        errorType: "network",
      }, new Error("connect ECONNREFUSED")),
    )
  ));
  assertEquals(down, {
    outcome: "failed",
    text: "fake: cannot reach (sluice would wait for it at start): " +
      "Cannot connect to X at http://h:1: connect ECONNREFUSED",
  });
  const refused = await checkSink(fakeSink(() =>
    Promise.reject(
      new SinkWriteError("Cannot connect to X: Code: 516. Authentication\n failed", {
        action: "fatal",
        errorType: "code_516",
      }),
    )
  ));
  assertEquals(
    refused.text,
    "fake: sluice would not start: Cannot connect to X: Code: 516. Authentication failed",
  );
  assertEquals(await checkSink(fakeSink(undefined, false)), {
    outcome: "failed",
    text: "fake: not healthy",
  });
  assertEquals(await checkSink(fakeSink(undefined, true)), {
    outcome: "ok",
    text: "fake: reachable",
  });
});

Deno.test("checkDeadLetterFile() says whether the file can be written to", () => {
  assertEquals(checkDeadLetterFile(undefined), []);
  const dir = Deno.makeTempDirSync();
  try {
    assertEquals(checkDeadLetterFile(`${dir}/dead.jsonl`), [
      { outcome: "ok", text: `Dead-letter file: ${dir}/dead.jsonl can be written to` },
    ]);
    assertEquals([...Deno.readDirSync(dir)], []);
    assertEquals(checkDeadLetterFile("/nonexistent/x")[0]?.outcome, "failed");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("checkConnections() ends with a summary and masks credentials in every line", async () => {
  const config = parseConfig(ENV, REGISTRIES);
  const log = new Logger({ write: () => {} });
  const passed = await checkConnections(config, fakeSink(() => Promise.resolve("fine")), {
    log,
    admin: fakeAdmin({ topics: ["flows"] }),
  });
  assertEquals(passed, {
    ok: true,
    lines: [
      "Kafka: reachable at k1:9092, topics flows exist",
      "fake: reachable: fine",
      "Connection check passed",
    ],
  });
  const failed = await checkConnections(
    config,
    fakeSink(() => Promise.reject(new Error("cannot use http://admin:supersecret123@ch:8123"))),
    { log, admin: fakeAdmin({ topics: [] }) },
  );
  assertEquals(failed.ok, false);
  assertEquals(failed.lines.at(-1), "Connection check failed: 1 of 2 checks");
  assertMatch(failed.lines[0]!, /Connection check|topics not found/);
  assert(!failed.lines.join("\n").includes("supersecret123"), failed.lines.join("\n"));
  assertMatch(
    failed.lines[1]!,
    /^fake: sluice would not start: cannot use http:\/\/admin:\*\*\*@ch:8123$/,
  );
});
