/**
 * The ClickHouse sink against the real local ClickHouse (scripts/services.sh):
 * a fresh database per test, dropped afterwards. Fails when the server is
 * not reachable.
 *
 * @module
 */

import { Logger } from "../../../lib/log.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import { CLICKHOUSE, parseClickHouseConfig } from "../../../sinks/clickhouse/config.ts";
import { type ClickHouseRow, ClickHouseSink } from "../../../sinks/clickhouse/mod.ts";
import type { PreparedRow, RecordOrigin } from "../../../lib/record.ts";
import { SinkWriteError } from "../../../lib/sink.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStrictEquals,
} from "../../_assert.ts";
import { query as sql, rows } from "../../_clickhouse.ts";
import { clickhouseUrl, uniqueName } from "../../_services.ts";

const SAMPLES = new URL("../../testdata/samples/pmacctd-print-json.jsonl", import.meta.url);

interface Harness {
  sink: ClickHouseSink;
  database: string;
  table: string;
  logs: Array<Record<string, unknown>>;
}

function harness(
  env: Record<string, string>,
  options: { zone?: string; database?: string } = {},
): Harness {
  const database = options.database ?? uniqueName("t_clickhouse");
  const table = env.CLICKHOUSE_TABLE ?? "flows";
  const reader = new VarReader(
    { CLICKHOUSE_HOST: clickhouseUrl(), CLICKHOUSE_DB: database, CLICKHOUSE_TABLE: table, ...env },
    CLICKHOUSE.specs,
  );
  const { config } = parseClickHouseConfig(reader);
  assertEquals(reader.problems, []);
  const logs: Array<Record<string, unknown>> = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const sink = new ClickHouseSink(config, { time: new TimeReader(options.zone ?? "UTC"), log });
  return { sink, database, table, logs };
}

/** Runs a test body with a harness, then closes the sink and drops the database. */
async function withSink(
  env: Record<string, string>,
  body: (h: Harness) => Promise<void>,
  options: { zone?: string } = {},
): Promise<void> {
  const h = harness(env, options);
  try {
    await body(h);
  } finally {
    await h.sink.close();
    await sql(`DROP DATABASE IF EXISTS \`${h.database}\``);
  }
}

function origin(offset: number, index = 0): RecordOrigin {
  return { topic: "flows", partition: 0, offset: String(offset), index };
}

function prepareAll(
  sink: ClickHouseSink,
  records: Record<string, unknown>[],
): PreparedRow<ClickHouseRow>[] {
  return records.map((record, i) => {
    const result = sink.prepare(record, origin(i));
    if (!result.ok) throw new Error(`Cannot prepare record ${i}: ${result.rejection.error}`);
    return { row: result.row, bytes: result.bytes, origin: origin(i) };
  });
}

async function samples(): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(SAMPLES);
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

const FLOW_SCHEMA = [
  "event_type:Enum8('purge' = 1, 'trigger' = 2)",
  "peer_ip_src:Nullable(String)",
  "ip_src:String",
  "ip_dst:String",
  "port_src:UInt16",
  "port_dst:UInt16",
  "ip_proto:LowCardinality(String)",
  "tos:UInt8",
  "stamp_inserted:DateTime",
  "stamp_updated:DateTime('Europe/Berlin')",
  "packets:UInt64",
  "bytes:UInt64",
].join(",");

Deno.test("ClickHouseSink.connect() creates the database and a MergeTree table with the schema's columns", async () => {
  await withSink({
    CLICKHOUSE_DATA_SCHEMA: FLOW_SCHEMA + ",day:Date,amount:Decimal(10,2),tags:Array(String)",
    CLICKHOUSE_ORDER_BY: "stamp_inserted, ip_src",
    CLICKHOUSE_PARTITION_BY: "toYYYYMM(stamp_inserted)",
  }, async ({ sink, database, table }) => {
    await sink.connect();
    assertStrictEquals(sink.serverVersion !== "", true);
    const columns = await rows<{ name: string; type: string }>(
      `SELECT name, type FROM system.columns WHERE database = '${database}' AND table = '${table}'`,
    );
    assertEquals(columns, [
      { name: "event_type", type: "Enum8('purge' = 1, 'trigger' = 2)" },
      { name: "peer_ip_src", type: "Nullable(String)" },
      { name: "ip_src", type: "String" },
      { name: "ip_dst", type: "String" },
      { name: "port_src", type: "UInt16" },
      { name: "port_dst", type: "UInt16" },
      { name: "ip_proto", type: "LowCardinality(String)" },
      { name: "tos", type: "UInt8" },
      { name: "stamp_inserted", type: "DateTime" },
      { name: "stamp_updated", type: "DateTime('Europe/Berlin')" },
      { name: "packets", type: "UInt64" },
      { name: "bytes", type: "UInt64" },
      { name: "day", type: "Date" },
      { name: "amount", type: "Decimal(10, 2)" },
      { name: "tags", type: "Array(String)" },
    ]);
    const [info] = await rows<{ engine: string; partition_key: string; sorting_key: string }>(
      `SELECT engine, partition_key, sorting_key FROM system.tables WHERE database = '${database}' AND name = '${table}'`,
    );
    assertEquals(info, {
      engine: "MergeTree",
      partition_key: "toYYYYMM(stamp_inserted)",
      sorting_key: "stamp_inserted, ip_src",
    });
    // A second connect finds the table and leaves it alone.
    await sink.close();
    await sink.connect();
    assertStrictEquals(await sink.healthcheck(), true);
  });
});

Deno.test("ClickHouseSink.write() inserts the sample flows and they read back with exact values", async () => {
  await withSink({ CLICKHOUSE_DATA_SCHEMA: FLOW_SCHEMA }, async ({ sink, database, table }) => {
    await sink.connect();
    const records = await samples();
    const prepared = prepareAll(sink, records);
    const result = await sink.write(prepared);
    assertEquals(result, { rejected: [], retry: [] });
    const back = await rows<Record<string, unknown>>(
      `SELECT event_type, peer_ip_src, ip_src, ip_dst, port_src, port_dst, ip_proto, tos,
        toUnixTimestamp(stamp_inserted) AS inserted, toUnixTimestamp(stamp_updated) AS updated,
        toString(packets) AS packets, toString(bytes) AS bytes
       FROM \`${database}\`.\`${table}\``,
    );
    const key = (r: Record<string, unknown>) =>
      `${r.ip_src} ${r.port_src} ${r.port_dst} ${r.bytes}`;
    back.sort((a, b) => key(a).localeCompare(key(b)));
    const expected = records.map((r) => ({
      event_type: r.event_type,
      // pmacct's empty peer_ip_src is a value for a String column.
      peer_ip_src: r.peer_ip_src,
      ip_src: r.ip_src,
      ip_dst: r.ip_dst,
      port_src: r.port_src,
      port_dst: r.port_dst,
      ip_proto: r.ip_proto,
      tos: r.tos,
      // 2026-11-21 23:25:00 and 23:27:47, read in UTC.
      inserted: 1795303500,
      updated: 1795303667,
      packets: String(r.packets),
      bytes: String(r.bytes),
    })).sort((a, b) => key(a).localeCompare(key(b)));
    assertEquals(back, expected);
  });
});

Deno.test("ClickHouseSink.write() keeps Int64/UInt64 beyond 2^53, Decimal digits, dates, arrays and nulls exact", async () => {
  await withSink({
    CLICKHOUSE_DATA_SCHEMA:
      "id:UInt32,big:UInt64,neg:Int64,amount:Decimal(20,4),day:Date,at:DateTime," +
      "tags:Array(UInt16),note:Nullable(String),kind:Enum16('a' = -5, 'b' = 300),uuid:UUID,code:FixedString(3)",
    CLICKHOUSE_COMPRESSION: "NO",
  }, async ({ sink, database, table }) => {
    await sink.connect();
    const prepared = prepareAll(sink, [
      {
        id: 1,
        big: "18446744073709551615",
        neg: "-9223372036854775808",
        amount: "1234567890123456.7891",
        day: "2026-11-21 23:25:00",
        at: "1795303500.75",
        tags: [1, "2", 65535],
        note: null,
        kind: 300,
        uuid: "61F0C404-5CB3-11E7-907B-A6006AD3DBA0",
        code: "ab",
      },
      { id: 2, big: 9007199254740993n, amount: 0.1, kind: "a", tags: [] },
      { id: 3 },
    ]);
    await sink.write(prepared);
    const back = await rows<Record<string, unknown>>(
      `SELECT id, toString(big) AS big, toString(neg) AS neg, toString(amount) AS amount, toString(day) AS day,
        toUnixTimestamp(at) AS at, tags, note, kind, toString(uuid) AS uuid, code
       FROM \`${database}\`.\`${table}\` ORDER BY id`,
    );
    assertEquals(back, [
      {
        id: 1,
        big: "18446744073709551615",
        neg: "-9223372036854775808",
        amount: "1234567890123456.7891",
        day: "2026-11-21",
        at: 1795303500,
        tags: [1, 2, 65535],
        note: null,
        kind: "b",
        uuid: "61f0c404-5cb3-11e7-907b-a6006ad3dba0",
        code: "ab\u0000",
      },
      {
        id: 2,
        big: "9007199254740993",
        neg: "0",
        amount: "0.1000",
        day: "0000-00-00",
        at: 0,
        tags: [],
        note: null,
        kind: "a",
        uuid: "00000000-0000-0000-0000-000000000000",
        code: "\u0000\u0000\u0000",
      },
      // Missing fields get the column defaults, as the original's 0 and ''.
      {
        id: 3,
        big: "0",
        neg: "0",
        amount: "0.0000",
        day: "0000-00-00",
        at: 0,
        tags: [],
        note: null,
        kind: "a",
        uuid: "00000000-0000-0000-0000-000000000000",
        code: "\u0000\u0000\u0000",
      },
    ]);
  });
});

Deno.test("ClickHouseSink.write() reads local timestamps in the configured zone (Europe/Berlin)", async () => {
  await withSink({ CLICKHOUSE_DATA_SCHEMA: "stamp_inserted:DateTime,day:Date" }, async (h) => {
    await h.sink.connect();
    await h.sink.write(
      prepareAll(h.sink, [{ stamp_inserted: "2026-11-21 23:25:00", day: "2026-11-21 00:30:00" }]),
    );
    const back = await rows<{ at: number; day: string }>(
      `SELECT toUnixTimestamp(stamp_inserted) AS at, toString(day) AS day FROM \`${h.database}\`.\`${h.table}\``,
    );
    // 23:25 in Berlin (UTC+1 in November) is 22:25 UTC; the date stays the local one.
    assertEquals(back, [{ at: Date.UTC(2026, 10, 21, 22, 25) / 1000, day: "2026-11-21" }]);
  }, { zone: "Europe/Berlin" });
});

Deno.test("ClickHouseSink.write() with a row ClickHouse refuses throws SinkWriteError with action split", async () => {
  await withSink({ CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64" }, async (h) => {
    await h.sink.connect();
    const good = prepareAll(h.sink, [{ ip_src: "127.0.0.1", bytes: 1 }, {
      ip_src: "::1",
      bytes: 2,
    }]);
    // A raw row naming a column the table does not have: Code 117 on 18.16.
    const bad: PreparedRow<ClickHouseRow> = {
      row: { ip_src: "x", no_such_column: 1 },
      bytes: 40,
      origin: origin(9),
    };
    const error = await h.sink.write([good[0]!, bad, good[1]!]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert(error instanceof SinkWriteError, `expected SinkWriteError, got ${error}`);
    assertStrictEquals(error.action, "split");
    assertStrictEquals(error.errorType, "code_117");
    assertStrictEquals(error.status, 117);
    assertMatch(
      error.message,
      /^Cannot insert 3 rows into ClickHouse table `t_clickhouse_\w+`\.`flows`: Code: 117/,
    );
    // Nothing of the refused insert landed; the good rows alone go through.
    assertEquals(await rows(`SELECT count() AS n FROM \`${h.database}\`.\`${h.table}\``), [{
      n: "0",
    }]);
    await h.sink.write(good);
    assertEquals(await rows(`SELECT count() AS n FROM \`${h.database}\`.\`${h.table}\``), [{
      n: "2",
    }]);
  });
});

Deno.test("ClickHouseSink.write() into a table whose column type differs from the schema splits on the server's refusal", async () => {
  const database = uniqueName("t_clickhouse");
  await sql(`CREATE DATABASE \`${database}\``);
  await sql(
    `CREATE TABLE \`${database}\`.flows (ip_src String, tos UInt8) ENGINE = MergeTree() ORDER BY tuple()`,
  );
  const h = harness({
    CLICKHOUSE_DATA_SCHEMA: "ip_src:String,tos:String",
    CLICKHOUSE_CREATE_TABLE: "NO",
  }, { database });
  try {
    await h.sink.connect();
    const warning = h.logs.find((l) =>
      l.msg === "ClickHouse column type differs from CLICKHOUSE_DATA_SCHEMA"
    );
    assertEquals(warning?.column, "tos");
    assertEquals(warning?.table_type, "UInt8");
    assertEquals(warning?.schema_type, "String");
    // "abc" passes prepare() for a String column but the UInt8 column refuses it.
    const rowsToWrite = prepareAll(h.sink, [{ ip_src: "a", tos: "1" }, {
      ip_src: "b",
      tos: "abc",
    }]);
    await assertRejects(
      () => h.sink.write(rowsToWrite),
      (e: unknown) =>
        e instanceof SinkWriteError && e.action === "split" && e.errorType === "code_27",
    );
  } finally {
    await h.sink.close();
    await sql(`DROP DATABASE IF EXISTS \`${database}\``);
  }
});

Deno.test("ClickHouseSink.connect() fails clearly on a type the server lacks (IPv4 on ClickHouse 18.16)", async () => {
  const [{ v: version }] = await rows<{ v: string }>("SELECT version() AS v") as [{ v: string }];
  const known = new Set(
    (await rows<{ name: string }>("SELECT name FROM system.data_type_families")).map((f) => f.name),
  );
  // The 18.16 of scripts/services.sh has none of these.
  const candidates = ["IPv4", "DateTime64(3)", "Date32", "Int128", "Bool"];
  const missing = candidates.find((t) => !known.has(t.replace(/\(.*$/, "")));
  if (missing === undefined) {
    throw new Error(
      `Cannot test a missing type: ClickHouse ${version} knows all of ${candidates.join(", ")}`,
    );
  }
  const family = missing.replace(/\(.*$/, "");
  await withSink({ CLICKHOUSE_DATA_SCHEMA: `ip_src:${missing},bytes:UInt64` }, async (h) => {
    await assertRejects(
      () => h.sink.connect(),
      {
        message:
          `Cannot use ClickHouse ${version} at ${clickhouseUrl()}: column "ip_src" has type ${missing}, ` +
          `and this server has no type ${family} (see system.data_type_families); ` +
          `change "CLICKHOUSE_DATA_SCHEMA" or upgrade the server`,
      },
    );
    // The check runs before anything is created.
    assertEquals(await rows(`SELECT name FROM system.databases WHERE name = '${h.database}'`), []);
  });
});

Deno.test("ClickHouseSink.connect() fails when a schema column is MATERIALIZED in the existing table", async () => {
  const database = uniqueName("t_clickhouse");
  await sql(`CREATE DATABASE \`${database}\``);
  await sql(
    `CREATE TABLE \`${database}\`.flows (bytes UInt64, kb UInt64 MATERIALIZED intDiv(bytes, 1024)) ` +
      `ENGINE = MergeTree() ORDER BY tuple()`,
  );
  const h = harness({ CLICKHOUSE_DATA_SCHEMA: "bytes:UInt64,kb:UInt64" }, { database });
  try {
    await assertRejects(
      () => h.sink.connect(),
      /column "kb" is MATERIALIZED and cannot be inserted into/,
    );
  } finally {
    await h.sink.close();
    await sql(`DROP DATABASE IF EXISTS \`${database}\``);
  }
});

Deno.test("ClickHouseSink.connect() fails when the existing table lacks a schema column", async () => {
  const database = uniqueName("t_clickhouse");
  await sql(`CREATE DATABASE \`${database}\``);
  await sql(
    `CREATE TABLE \`${database}\`.flows (ip_src String) ENGINE = MergeTree() ORDER BY tuple()`,
  );
  const h = harness({ CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64" }, { database });
  try {
    await assertRejects(
      () => h.sink.connect(),
      {
        message:
          `Cannot use ClickHouse table \`${database}\`.\`flows\`: it has no column "bytes" ` +
          `that "CLICKHOUSE_DATA_SCHEMA" declares as UInt64`,
      },
    );
  } finally {
    await h.sink.close();
    await sql(`DROP DATABASE IF EXISTS \`${database}\``);
  }
});

Deno.test("ClickHouseSink.connect() with CLICKHOUSE_CREATE_TABLE=NO fails when the table does not exist", async () => {
  await withSink(
    { CLICKHOUSE_DATA_SCHEMA: "ip_src:String", CLICKHOUSE_CREATE_TABLE: "NO" },
    async (h) => {
      await assertRejects(
        () => h.sink.connect(),
        /it does not exist and "CLICKHOUSE_CREATE_TABLE" is NO/,
      );
    },
  );
});

/** A sink for the given variables, not connected. */
function unconnectedSink(env: Record<string, string>): ClickHouseSink {
  const { config } = parseClickHouseConfig(new VarReader(env, CLICKHOUSE.specs));
  return new ClickHouseSink(config, {
    time: new TimeReader(),
    log: new Logger({ write: () => {} }),
  });
}

Deno.test("ClickHouseSink.connect() to a closed port fails with the address as a retryable error, and healthcheck() says false", async () => {
  const sink = unconnectedSink({
    CLICKHOUSE_HOST: "127.0.0.1:1",
    CLICKHOUSE_DATA_SCHEMA: "a:String",
    CLICKHOUSE_REQUEST_TIMEOUT: "5",
  });
  try {
    await assertRejects(
      () => sink.connect(),
      (error: unknown) =>
        error instanceof SinkWriteError && error.action === "retry" &&
        /^Cannot connect to ClickHouse at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/.test(
          error.message,
        ),
    );
    assertStrictEquals(await sink.healthcheck(), false);
  } finally {
    await sink.close();
  }
});

/** A TCP relay to the test server that can be cut, to lose the server mid-run. */
function relay(): { port: number; cut: () => void } {
  const target = new URL(clickhouseUrl());
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const upstream = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
      conns.add(upstream);
      conn.readable.pipeTo(upstream.writable).catch(() => {});
      upstream.readable.pipeTo(conn.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
    },
  };
}

Deno.test("ClickHouseSink.write() to a server that went away throws SinkWriteError with action retry", async () => {
  const proxy = relay();
  await withSink({
    CLICKHOUSE_HOST: `127.0.0.1:${proxy.port}`,
    CLICKHOUSE_DATA_SCHEMA: "ip_src:String",
    CLICKHOUSE_REQUEST_TIMEOUT: "5",
  }, async (h) => {
    await h.sink.connect();
    await h.sink.write(prepareAll(h.sink, [{ ip_src: "a" }]));
    proxy.cut();
    const error = await h.sink.write(prepareAll(h.sink, [{ ip_src: "b" }])).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert(error instanceof SinkWriteError, `expected SinkWriteError, got ${error}`);
    assertStrictEquals(error.action, "retry");
    assertStrictEquals(error.errorType, "network");
    assertStrictEquals(await h.sink.healthcheck(), false);
  });
});

Deno.test("ClickHouseSink.connect() with an unknown user fails for good (not retried), naming the server's refusal", async () => {
  const sink = unconnectedSink({
    CLICKHOUSE_HOST: clickhouseUrl(),
    CLICKHOUSE_USER: "no_such_user",
    CLICKHOUSE_DATA_SCHEMA: "a:String",
  });
  try {
    await assertRejects(
      () => sink.connect(),
      (error: unknown) =>
        error instanceof SinkWriteError && error.action === "fatal" &&
        /Cannot connect to ClickHouse at .*no_such_user/.test(error.message),
    );
  } finally {
    await sink.close();
  }
});

Deno.test("ClickHouseSink.connect() fails for good, naming the statement, when the server refuses the CREATE TABLE", async () => {
  await withSink(
    { CLICKHOUSE_DATA_SCHEMA: "ip_src:String", CLICKHOUSE_ORDER_BY: "no_such_column" },
    async (h) => {
      await assertRejects(
        () => h.sink.connect(),
        (error: unknown) =>
          error instanceof SinkWriteError && error.action === "fatal" &&
          /^Cannot run on ClickHouse [\d.]+: CREATE TABLE IF NOT EXISTS .*: Code: \d+/.test(
            error.message,
          ),
      );
    },
  );
});
