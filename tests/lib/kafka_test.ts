import { logLevel } from "kafkajs";
import {
  connectionFailure,
  FIRST_ANSWER_MS,
  groupLostError,
  isTransientKafkaError,
  KafkaWatch,
  LagTracker,
  logKafkaEntry,
} from "../../lib/kafka.ts";
import { Logger } from "../../lib/log.ts";
import { Metrics } from "../../lib/metrics.ts";
import { assert, assertEquals } from "../_assert.ts";

Deno.test("groupLostError() finds the coordinator moved or the member unknown, nothing else", () => {
  const moved = Object.assign(new Error("This is not the correct coordinator for this group"), {
    type: "NOT_COORDINATOR_FOR_GROUP",
  });
  const unknown = Object.assign(new Error("The coordinator is not aware of this member"), {
    type: "UNKNOWN_MEMBER_ID",
  });
  assertEquals(groupLostError(moved), moved);
  assertEquals(groupLostError(new Error("heartbeat failed", { cause: unknown })), unknown);
  const rebalance = Object.assign(new Error("rebalancing"), { type: "REBALANCE_IN_PROGRESS" });
  assertEquals(groupLostError(rebalance), undefined);
  assertEquals(groupLostError(new Error("connect ECONNREFUSED 127.0.0.1:19193")), undefined);
});

Deno.test("isTransientKafkaError() waits out a broker coming back and ends sluice on credentials", () => {
  const coordinator = Object.assign(new Error("Failed to find group coordinator"), {
    name: "KafkaJSNonRetriableError",
    cause: Object.assign(new Error("There is no coordinator"), {
      name: "KafkaJSGroupCoordinatorNotFound",
    }),
  });
  assertEquals(isTransientKafkaError(coordinator), true);
  assertEquals(
    isTransientKafkaError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9092"), {
      name: "KafkaJSConnectionError",
    })),
    true,
  );
  assertEquals(
    isTransientKafkaError(Object.assign(new Error("SASL SCRAM SHA256 authentication failed"), {
      name: "KafkaJSSASLAuthenticationError",
    })),
    false,
  );
  assertEquals(
    isTransientKafkaError(Object.assign(new Error("Not authorized to access topics"), {
      name: "KafkaJSProtocolError",
      type: "TOPIC_AUTHORIZATION_FAILED",
      retriable: false,
    })),
    false,
  );
});

function recorder() {
  const lines: Array<Record<string, unknown>> = [];
  const log = new Logger({ write: (line) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

Deno.test("connectionFailure() reads the reason of a connection kafkajs could not make", () => {
  const at = "2026-01-02T03:04:05.000Z";
  assertEquals(
    connectionFailure({
      timestamp: at,
      message: "Connection error: connect ECONNREFUSED 127.0.0.1:9092",
      broker: "127.0.0.1:9092",
    }),
    "connect ECONNREFUSED 127.0.0.1:9092",
  );
  assertEquals(
    connectionFailure({
      timestamp: at,
      message: "Failed to connect to seed broker, trying another broker from the list: " +
        "Connection error: getaddrinfo ENOTFOUND kafka",
    }),
    "getaddrinfo ENOTFOUND kafka",
  );
  assertEquals(
    connectionFailure({ timestamp: at, message: "Connection timeout", broker: "10.0.0.1:9092" }),
    "10.0.0.1:9092: connection timeout",
  );
  assertEquals(
    connectionFailure({ timestamp: at, message: "The group is rebalancing, re-joining" }),
    undefined,
  );
});

Deno.test("logKafkaEntry() merges kafkajs's fields without its timestamp and logger, and keeps stack traces for debug", () => {
  const { log, lines } = recorder();
  const entry = {
    timestamp: "2026-01-02T03:04:05.000Z",
    logger: "kafkajs",
    message: "Crash: KafkaJSNumberOfRetriesExceeded",
    groupId: "g",
    stack: "KafkaJSNumberOfRetriesExceeded\n    at x",
  };
  logKafkaEntry(log, logLevel.ERROR, entry);
  assertEquals(Object.keys(lines[0]!), ["ts", "level", "msg", "groupId"]);
  assertEquals([lines[0]!["level"], lines[0]!["msg"]], [
    "error",
    "Kafka client: Crash: KafkaJSNumberOfRetriesExceeded",
  ]);
  log.setLevel("debug");
  logKafkaEntry(log, logLevel.WARN, entry);
  assertEquals(lines[1]!["stack"], entry.stack);
  assertEquals(lines[1]!["level"], "warn");
});

Deno.test("logKafkaEntry() hands a failed connection to sluice's own line and keeps kafkajs's at debug", () => {
  const { log, lines } = recorder();
  const reasons: string[] = [];
  const entry = {
    timestamp: "2026-01-02T03:04:05.000Z",
    logger: "kafkajs",
    message: "Connection error: connect ECONNREFUSED 127.0.0.1:1",
    broker: "127.0.0.1:1",
    stack: "Error: connect ECONNREFUSED\n    at ...",
  };
  logKafkaEntry(log, logLevel.ERROR, entry, (reason) => reasons.push(reason));
  assertEquals(reasons, ["connect ECONNREFUSED 127.0.0.1:1"]);
  assertEquals(lines, []);
  // Without anyone to tell (a dead-letter producer), it is logged as kafkajs said it.
  logKafkaEntry(log, logLevel.ERROR, entry);
  assertEquals(lines.length, 1);
  assertEquals(
    lines[0]!["msg"],
    "Kafka client: Connection error: connect ECONNREFUSED 127.0.0.1:1",
  );
});

function watch(clock: () => number) {
  const { log, lines } = recorder();
  const metrics = new Metrics(clock);
  const w = new KafkaWatch({ brokers: ["k1:9092", "k2:9092"], log, metrics, clock });
  const kafka = () => metrics.reachability().get("kafka");
  return { w, lines, metrics, kafka };
}

Deno.test("KafkaWatch says at the first failed connection that it cannot reach the brokers, with the reason, and marks Kafka down", async () => {
  let now = 0;
  const { w, lines, metrics, kafka } = watch(() => now);
  assertEquals(kafka(), { up: false, since: 0, reason: "not connected yet" });
  w.connecting();
  now = 30;
  w.failed("connect ECONNREFUSED 10.0.0.1:9092");
  assertEquals(lines.map((l) => [l["level"], l["msg"], l["error"]]), [[
    "warn",
    "Cannot reach the Kafka brokers k1:9092,k2:9092: connect ECONNREFUSED 10.0.0.1:9092, retrying",
    "connect ECONNREFUSED 10.0.0.1:9092",
  ]]);
  assertEquals(kafka()?.up, false);
  assertEquals(kafka()?.reason, "connect ECONNREFUSED 10.0.0.1:9092");
  assert((await metrics.render()).includes("sluice_kafka_up 0"));
  // Repeated failures are said again only every 30 s.
  now = 10_000;
  w.failed("connect ECONNREFUSED 10.0.0.1:9092");
  now = 31_000;
  w.failed("connect ETIMEDOUT");
  assertEquals(lines.length, 2);
  assertEquals(lines[1]!["for_seconds"], 30.97);
  now = 40_000;
  w.answered();
  assertEquals(lines[2]!["msg"], "Reaching the Kafka brokers again");
  assertEquals(kafka()?.up, true);
  assert((await metrics.render()).includes("sluice_kafka_up 1"));
});

Deno.test("KafkaWatch ignores one broker's failed connection while another answered in the last 10 s", () => {
  let now = 0;
  const { w, lines, kafka } = watch(() => now);
  w.answered();
  now = 5000;
  w.failed("k2:9092: connection timeout");
  assertEquals([kafka()?.up, lines.length], [true, 0]);
  now = 16_000;
  w.failed("k2:9092: connection timeout");
  assertEquals([kafka()?.up, lines.length], [false, 1]);
});

Deno.test("KafkaWatch.firstAnswerDue() says the brokers do not answer when nothing answered nor failed yet", () => {
  let now = 0;
  const { w, lines, kafka } = watch(() => now);
  w.connecting();
  now = FIRST_ANSWER_MS;
  w.firstAnswerDue();
  assertEquals(lines.map((l) => l["error"]), [`no answer within ${FIRST_ANSWER_MS / 1000} s`]);
  assertEquals(kafka()?.up, false);
  // Once up, it says nothing.
  const other = watch(() => now);
  other.w.answered();
  other.w.firstAnswerDue();
  assertEquals(other.lines, []);
});

async function lagOf(metrics: Metrics): Promise<Record<string, number>> {
  const lag: Record<string, number> = {};
  for (const line of (await metrics.render()).split("\n")) {
    const m = /^sluice_consumer_lag\{topic="([^"]+)",partition="(\d+)"\} (\d+)$/.exec(line);
    if (m) lag[`${m[1]}/${m[2]}`] = Number(m[3]);
  }
  return lag;
}

Deno.test("LagTracker measures from the committed offset, not the consumed one", async () => {
  const metrics = new Metrics();
  const lag = new LagTracker(metrics, true);
  lag.assigned([{ topic: "flows", partition: 0 }]);
  lag.read("flows", [{ partition: 0, high: "100", low: "0" }], [{
    partition: 0,
    offset: "40",
  }]);
  assertEquals(await lagOf(metrics), { "flows/0": 60 });
  // A fetched batch up to the end is consumed, not committed: the lag stays.
  lag.end({ topic: "flows", partition: 0 }, "100");
  assertEquals(await lagOf(metrics), { "flows/0": 60 });
  lag.committed([{ topic: "flows", partition: 0, offset: "100" }]);
  assertEquals(await lagOf(metrics), { "flows/0": 0 });
});

Deno.test("LagTracker keeps the lag current while consumption is paused: each read of the brokers moves it", async () => {
  const metrics = new Metrics();
  const lag = new LagTracker(metrics, true);
  lag.assigned([{ topic: "flows", partition: 0 }, { topic: "flows", partition: 1 }]);
  lag.committed([{ topic: "flows", partition: 0, offset: "10" }]);
  // Paused: no batch is fetched, producers go on, the periodic read sees it.
  for (const high of ["50", "80", "120"]) {
    lag.read("flows", [
      { partition: 0, high, low: "0" },
      { partition: 1, high: "7", low: "2" },
    ], [{ partition: 0, offset: "10" }, { partition: 1, offset: "-1" }]);
  }
  // Partition 1 has no commit: the group starts at its earliest offset.
  assertEquals(await lagOf(metrics), { "flows/0": 110, "flows/1": 5 });
  // With KAFKA_AUTO_OFFSET_RESET=latest, a group without a commit starts at the end.
  const atEnd = new Metrics();
  const latest = new LagTracker(atEnd, false);
  latest.assigned([{ topic: "t", partition: 0 }]);
  latest.read("t", [{ partition: 0, high: "9", low: "0" }], [{ partition: 0, offset: "-1" }]);
  assertEquals(await lagOf(atEnd), { "t/0": 0 });
});

Deno.test("LagTracker drops the gauge of partitions this member no longer holds", async () => {
  const metrics = new Metrics();
  const lag = new LagTracker(metrics, true);
  lag.assigned([{ topic: "flows", partition: 0 }, { topic: "flows", partition: 1 }]);
  lag.read("flows", [
    { partition: 0, high: "5", low: "0" },
    { partition: 1, high: "6", low: "0" },
  ], [{ partition: 0, offset: "5" }, { partition: 1, offset: "1" }]);
  lag.assigned([{ topic: "flows", partition: 1 }]);
  assertEquals(await lagOf(metrics), { "flows/1": 5 });
  assertEquals(lag.topics, ["flows"]);
});

Deno.test("LagTracker counts the partitions assigned, and every join of the group after the first as a rebalance", async () => {
  const metrics = new Metrics();
  const lag = new LagTracker(metrics, true);
  const read = async () => {
    const text = await metrics.registry.metrics();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    return [value("sluice_kafka_assigned_partitions"), value("sluice_kafka_rebalances_total")];
  };
  assertEquals(await read(), [0, 0]);
  lag.assigned([{ topic: "flows", partition: 0 }, { topic: "flows", partition: 1 }]);
  assertEquals(await read(), [2, 0]);
  lag.assigned([{ topic: "flows", partition: 1 }]);
  assertEquals(await read(), [1, 1]);
  lag.assigned([]);
  assertEquals(await read(), [0, 2]);
});
