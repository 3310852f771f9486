/**
 * The ClickHouse sink against the real local ClickHouse servers
 * (scripts/services.sh): the Debian 18.16 and the current 26.x. Each test
 * that holds for both runs once per server, the server's label in its name;
 * the types and settings 18.16 lacks are tested on 26.x alone, and the
 * limits of 18.16 on 18.16 alone. A fresh database per test, dropped
 * afterwards. Fails when a server is not reachable.
 *
 * @module
 */

import { Logger } from "../../../lib/log.ts";
import { TimeReader, type TimeWindow } from "../../../lib/time.ts";
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
import {
  CLICKHOUSE_18,
  CLICKHOUSE_26,
  CLICKHOUSE_SERVERS,
  type ClickHouseServer,
} from "../../_clickhouse.ts";
import { uniqueName } from "../../_services.ts";

const SAMPLES = new URL("../../testdata/samples/pmacctd-print-json.jsonl", import.meta.url);

interface Harness {
  sink: ClickHouseSink;
  database: string;
  table: string;
  logs: Array<Record<string, unknown>>;
}

function harness(
  server: ClickHouseServer,
  env: Record<string, string>,
  options: { zone?: string; database?: string; window?: TimeWindow } = {},
): Harness {
  const database = options.database ?? uniqueName("t_clickhouse");
  const table = env.CLICKHOUSE_TABLE ?? "flows";
  const reader = new VarReader(
    { CLICKHOUSE_HOST: server.url, CLICKHOUSE_DB: database, CLICKHOUSE_TABLE: table, ...env },
    CLICKHOUSE.specs,
  );
  const { config } = parseClickHouseConfig(reader);
  assertEquals(reader.problems, []);
  const logs: Array<Record<string, unknown>> = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const time = new TimeReader(options.zone ?? "UTC", { window: options.window });
  const sink = new ClickHouseSink(config, { time, log });
  return { sink, database, table, logs };
}

/** Runs a test body with a harness, then closes the sink and drops the database. */
async function withSink(
  server: ClickHouseServer,
  env: Record<string, string>,
  body: (h: Harness) => Promise<void>,
  options: { zone?: string; database?: string; window?: TimeWindow } = {},
): Promise<void> {
  await server.expectVersion();
  const h = harness(server, env, options);
  try {
    await body(h);
  } finally {
    await h.sink.close();
    await server.query(`DROP DATABASE IF EXISTS \`${h.database}\``);
  }
}

/**
 * Expects `connect()` with this schema to fail on an existing table made by
 * this DDL, as `expected` (given the database name) says.
 */
async function connectRejectsOn(
  server: ClickHouseServer,
  ddl: string,
  schema: string,
  expected: (database: string) => RegExp | { message: string },
): Promise<void> {
  const database = await existingTable(server, ddl);
  await withSink(server, { CLICKHOUSE_DATA_SCHEMA: schema }, async (h) => {
    await assertRejects(() => h.sink.connect(), expected(database));
  }, { database });
}

/** Makes a database with one table for a test that starts from an existing table. */
async function existingTable(server: ClickHouseServer, ddl: string): Promise<string> {
  await server.expectVersion();
  const database = uniqueName("t_clickhouse");
  await server.query(`CREATE DATABASE \`${database}\``);
  await server.query(`CREATE TABLE \`${database}\`.flows ${ddl}`);
  return database;
}

function origin(offset: number, index = 0): RecordOrigin {
  return { topic: "flows", partition: 0, offset: String(offset), index };
}

function prepareAll(
  sink: ClickHouseSink,
  records: Record<string, unknown>[],
  firstOffset = 0,
): PreparedRow<ClickHouseRow>[] {
  return records.map((record, i) => {
    const at = origin(firstOffset + i);
    const result = sink.prepare(record, at);
    if (!result.ok) throw new Error(`Cannot prepare record ${i}: ${result.rejection.error}`);
    return { row: result.row, bytes: result.bytes, origin: at };
  });
}

async function samples(): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(SAMPLES);
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

/**
 * A check for `assertRejects`: a `SinkWriteError` with this action (and
 * error type, when given) whose message matches.
 */
function sinkError(
  action: SinkWriteError["action"],
  message: RegExp,
  errorType?: string,
): (error: unknown) => boolean {
  return (error) =>
    error instanceof SinkWriteError && error.action === action && message.test(error.message) &&
    (errorType === undefined || error.errorType === errorType);
}

/** The `SinkWriteError` a `write()` of these rows throws. */
async function writeError(
  sink: ClickHouseSink,
  rows: PreparedRow<ClickHouseRow>[],
): Promise<SinkWriteError> {
  const error = await sink.write(rows).then(() => undefined, (e: unknown) => e);
  assert(error instanceof SinkWriteError, `expected SinkWriteError, got ${error}`);
  return error;
}

/** The warnings `connect()` logged about column types that differ from the schema. */
function typeWarnings(h: Harness): unknown[] {
  return h.logs.filter((l) =>
    l.msg === "ClickHouse column type differs from CLICKHOUSE_DATA_SCHEMA"
  );
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

// --- Both servers ---------------------------------------------------------------------

for (const server of CLICKHOUSE_SERVERS) {
  const on = `(${server.label})`;

  Deno.test(`ClickHouseSink.connect() creates the database and a MergeTree table with the schema's columns ${on}`, async () => {
    await withSink(server, {
      CLICKHOUSE_DATA_SCHEMA: FLOW_SCHEMA + ",day:Date,amount:Decimal(10,2),tags:Array(String)",
      CLICKHOUSE_ORDER_BY: "stamp_inserted, ip_src",
      CLICKHOUSE_PARTITION_BY: "toYYYYMM(stamp_inserted)",
    }, async (h) => {
      const { sink, database, table } = h;
      await sink.connect();
      assertStrictEquals(sink.serverVersion, await server.expectVersion());
      const columns = await server.rows<{ name: string; type: string }>(
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
      const [info] = await server.rows<
        { engine: string; partition_key: string; sorting_key: string }
      >(
        `SELECT engine, partition_key, sorting_key FROM system.tables WHERE database = '${database}' AND name = '${table}'`,
      );
      assertEquals(info, {
        engine: "MergeTree",
        // sluice writes PARTITION BY (expr); 18.16 drops the brackets, 26.x keeps them.
        partition_key: server.legacy ? "toYYYYMM(stamp_inserted)" : "(toYYYYMM(stamp_inserted))",
        sorting_key: "stamp_inserted, ip_src",
      });
      assertEquals(typeWarnings(h), []);
      // A second connect finds the table and leaves it alone.
      await sink.close();
      await sink.connect();
      assertStrictEquals(await sink.healthcheck(), true);
    });
  });

  Deno.test(`ClickHouseSink.write() inserts the sample flows and they read back with exact values ${on}`, async () => {
    await withSink(
      server,
      { CLICKHOUSE_DATA_SCHEMA: FLOW_SCHEMA },
      async ({ sink, database, table }) => {
        await sink.connect();
        const records = await samples();
        const prepared = prepareAll(sink, records);
        const result = await sink.write(prepared);
        assertEquals(result, { rejected: [], retry: [] });
        const back = await server.rows<Record<string, unknown>>(
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
      },
    );
  });

  Deno.test(`ClickHouseSink.write() keeps Int64/UInt64 beyond 2^53, Decimal digits, dates, arrays and nulls exact ${on}`, async () => {
    await withSink(server, {
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
      const back = await server.rows<Record<string, unknown>>(
        `SELECT id, toString(big) AS big, toString(neg) AS neg, toString(amount) AS amount, toString(day) AS day,
          toUnixTimestamp(at) AS at, tags, note, kind, toString(uuid) AS uuid, code
         FROM \`${database}\`.\`${table}\` ORDER BY id`,
      );
      // Missing fields get the column defaults, as the original's 0 and ''.
      // How each server prints the zero date and a Decimal's trailing zeros.
      const decimal = (legacy: string, current: string) => server.legacy ? legacy : current;
      const defaults = {
        neg: "0",
        day: server.legacy ? "0000-00-00" : "1970-01-01",
        at: 0,
        tags: [],
        note: null,
        kind: "a",
        uuid: "00000000-0000-0000-0000-000000000000",
        code: "\u0000\u0000\u0000",
      };
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
        { ...defaults, id: 2, big: "9007199254740993", amount: decimal("0.1000", "0.1") },
        { ...defaults, id: 3, big: "0", amount: decimal("0.0000", "0") },
      ]);
    });
  });

  Deno.test(`ClickHouseSink.write() reads local timestamps in the configured zone (Europe/Berlin) ${on}`, async () => {
    await withSink(
      server,
      { CLICKHOUSE_DATA_SCHEMA: "stamp_inserted:DateTime,day:Date" },
      async (h) => {
        await h.sink.connect();
        await h.sink.write(
          prepareAll(h.sink, [{
            stamp_inserted: "2026-11-21 23:25:00",
            day: "2026-11-21 00:30:00",
          }]),
        );
        const back = await server.rows<{ at: number; day: string }>(
          `SELECT toUnixTimestamp(stamp_inserted) AS at, toString(day) AS day FROM \`${h.database}\`.\`${h.table}\``,
        );
        // 23:25 in Berlin (UTC+1 in November) is 22:25 UTC; the date stays the local one.
        assertEquals(back, [{ at: Date.UTC(2026, 10, 21, 22, 25) / 1000, day: "2026-11-21" }]);
      },
      { zone: "Europe/Berlin" },
    );
  });

  Deno.test(`ClickHouseSink.write() with a row ClickHouse refuses throws SinkWriteError with action split ${on}`, async () => {
    await withSink(server, { CLICKHOUSE_DATA_SCHEMA: "ip_src:String,bytes:UInt64" }, async (h) => {
      await h.sink.connect();
      const good = prepareAll(h.sink, [{ ip_src: "127.0.0.1", bytes: 1 }, {
        ip_src: "::1",
        bytes: 2,
      }]);
      // A raw row (past prepare(), which would reject it) with text in the
      // UInt64 column: Code 27 on both servers. (A column the table lacks is
      // Code 117 on 18.16, but current servers skip unknown JSON keys.)
      const bad: PreparedRow<ClickHouseRow> = {
        row: JSON.stringify({ ip_src: "x", bytes: "abc" }),
        bytes: 40,
        origin: origin(9),
      };
      const error = await writeError(h.sink, [good[0]!, bad, good[1]!]);
      assertStrictEquals(error.action, "split");
      assertStrictEquals(error.errorType, "code_27");
      assertStrictEquals(error.status, 27);
      assertMatch(
        error.message,
        /^Cannot insert 3 rows into ClickHouse table `t_clickhouse_\w+`\.`flows`: .*Cannot parse input/,
      );
      // Nothing of the refused insert landed; the good rows alone go through.
      const count = `SELECT count() FROM \`${h.database}\`.\`${h.table}\``;
      assertStrictEquals(await server.scalar(count), 0);
      await h.sink.write(good);
      assertStrictEquals(await server.scalar(count), 2);
    });
  });

  Deno.test(`ClickHouseSink.write() into a table whose column type differs from the schema splits on the server's refusal ${on}`, async () => {
    const database = await existingTable(
      server,
      "(ip_src String, tos UInt8) ENGINE = MergeTree() ORDER BY tuple()",
    );
    await withSink(server, {
      CLICKHOUSE_DATA_SCHEMA: "ip_src:String,tos:String",
      CLICKHOUSE_CREATE_TABLE: "NO",
    }, async (h) => {
      await h.sink.connect();
      const [warning] = typeWarnings(h) as Array<Record<string, unknown>>;
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
        sinkError("split", /Cannot parse input/, "code_27"),
      );
    }, { database });
  });

  Deno.test(`ClickHouseSink.connect() fails when a schema column is MATERIALIZED in the existing table ${on}`, async () => {
    await connectRejectsOn(
      server,
      "(bytes UInt64, kb UInt64 MATERIALIZED intDiv(bytes, 1024)) ENGINE = MergeTree() ORDER BY tuple()",
      "bytes:UInt64,kb:UInt64",
      () => /column "kb" is MATERIALIZED and cannot be inserted into/,
    );
  });

  Deno.test(`ClickHouseSink.connect() fails when the existing table lacks a schema column ${on}`, async () => {
    await connectRejectsOn(
      server,
      "(ip_src String) ENGINE = MergeTree() ORDER BY tuple()",
      "ip_src:String,bytes:UInt64",
      (database) => ({
        message:
          `Cannot use ClickHouse table \`${database}\`.\`flows\`: it has no column "bytes" ` +
          `that "CLICKHOUSE_DATA_SCHEMA" declares as UInt64`,
      }),
    );
  });

  Deno.test(`ClickHouseSink.connect() with CLICKHOUSE_CREATE_TABLE=NO fails when the table does not exist ${on}`, async () => {
    await withSink(
      server,
      { CLICKHOUSE_DATA_SCHEMA: "ip_src:String", CLICKHOUSE_CREATE_TABLE: "NO" },
      async (h) => {
        await assertRejects(
          () => h.sink.connect(),
          /it does not exist and "CLICKHOUSE_CREATE_TABLE" is NO/,
        );
      },
    );
  });

  Deno.test(`ClickHouseSink.write() to a server that went away throws SinkWriteError with action retry ${on}`, async () => {
    const proxy = relay(server);
    await withSink(server, {
      CLICKHOUSE_HOST: `127.0.0.1:${proxy.port}`,
      CLICKHOUSE_DATA_SCHEMA: "ip_src:String",
      CLICKHOUSE_REQUEST_TIMEOUT: "5",
    }, async (h) => {
      await h.sink.connect();
      await h.sink.write(prepareAll(h.sink, [{ ip_src: "a" }]));
      proxy.cut();
      const error = await writeError(h.sink, prepareAll(h.sink, [{ ip_src: "b" }]));
      assertStrictEquals(error.action, "retry");
      assertStrictEquals(error.errorType, "network");
      assertStrictEquals(await h.sink.healthcheck(), false);
    });
  });

  Deno.test(`ClickHouseSink.connect() with an unknown user fails for good (not retried), naming the server's refusal ${on}`, async () => {
    await server.expectVersion();
    await withUnconnectedSink({
      CLICKHOUSE_HOST: server.url,
      CLICKHOUSE_USER: "no_such_user",
      CLICKHOUSE_DATA_SCHEMA: "a:String",
    }, async (sink) => {
      await assertRejects(
        () => sink.connect(),
        sinkError("fatal", /^Cannot connect to ClickHouse at .*no_such_user/),
      );
    });
  });

  Deno.test(`ClickHouseSink.connect() fails for good, naming the statement, when the server refuses the CREATE TABLE ${on}`, async () => {
    // A constant key reads as an expression, so only the CREATE TABLE refuses it.
    await withSink(
      server,
      { CLICKHOUSE_DATA_SCHEMA: "ip_src:String", CLICKHOUSE_ORDER_BY: "1" },
      async (h) => {
        // 18.16's text starts "Code: 44, e.displayText() = ..."; a newer
        // server's code comes apart from its text (the client reads it).
        await assertRejects(
          () => h.sink.connect(),
          sinkError(
            "fatal",
            /^Cannot run on ClickHouse [\d.]+: CREATE TABLE IF NOT EXISTS .* ORDER BY \(1\).*: .*constants/,
            "code_44",
          ),
        );
      },
    );
  });

  Deno.test(`ClickHouseSink.connect() refuses an ORDER BY or PARTITION BY the server cannot read, before creating anything ${on}`, async () => {
    for (
      const [name, env, code] of [
        ["CLICKHOUSE_ORDER_BY", { CLICKHOUSE_ORDER_BY: "(((no_such_column)))" }, "code_47"],
        [
          "CLICKHOUSE_PARTITION_BY",
          { CLICKHOUSE_PARTITION_BY: "toYYYYMM(ip_src" + ")" },
          "code_43",
        ],
        ["CLICKHOUSE_ORDER_BY", { CLICKHOUSE_ORDER_BY: "no_such_function(ip_src)" }, "code_46"],
      ] as const
    ) {
      await withSink(server, { CLICKHOUSE_DATA_SCHEMA: "ip_src:String", ...env }, async (h) => {
        await assertRejects(
          () => h.sink.connect(),
          sinkError(
            "fatal",
            new RegExp(`^Cannot use "${name}" .*: ClickHouse [\\d.]+ refuses it as an expression`),
            code,
          ),
        );
        assertEquals(
          await server.rows(`SELECT name FROM system.databases WHERE name = '${h.database}'`),
          [],
          "the database is not created",
        );
      });
    }
  });

  Deno.test(`ClickHouseSink.check() passes the keys the server reads, and creates nothing ${on}`, async () => {
    await withSink(server, {
      CLICKHOUSE_DATA_SCHEMA: FLOW_SCHEMA,
      CLICKHOUSE_ORDER_BY: "stamp_inserted, ip_src, cityHash64(ip_dst) % 16",
      CLICKHOUSE_PARTITION_BY: "toYYYYMM(stamp_inserted)",
    }, async (h) => {
      const version = await server.expectVersion();
      assertStrictEquals(
        await h.sink.check(),
        `ClickHouse ${version} at ${server.url}, user default: table \`${h.database}\`.\`${h.table}\` ` +
          "does not exist and will be created, with ORDER BY and PARTITION BY checked by the server",
      );
      assertEquals(
        await server.rows(`SELECT name FROM system.databases WHERE name = '${h.database}'`),
        [],
      );
      // The same keys create the table.
      await h.sink.connect();
      assertStrictEquals(
        await h.sink.check(),
        `ClickHouse ${version} at ${server.url}, user default: table \`${h.database}\`.\`${h.table}\` ` +
          "has every schema column",
      );
    });
  });

  Deno.test(`ClickHouseSink.check() fails for good on a wrong password and on an unknown user ${on}`, async () => {
    await server.expectVersion();
    for (
      const [env, refusal] of [
        [{ CLICKHOUSE_PASSWORD: "wrong-password" }, /default/],
        [{ CLICKHOUSE_USER: "no_such_user" }, /no_such_user/],
      ] as const
    ) {
      await withUnconnectedSink(
        { CLICKHOUSE_HOST: server.url, CLICKHOUSE_DATA_SCHEMA: "a:String", ...env },
        async (sink) => {
          const error = await sink.check().then(() => undefined, (e: unknown) => e);
          assert(error instanceof SinkWriteError, String(error));
          assertStrictEquals(error.action, "fatal");
          assertMatch(error.message, /^Cannot connect to ClickHouse at /);
          assertMatch(error.message, refusal);
          assert(!error.message.includes("wrong-password"));
        },
      );
    }
  });

  Deno.test(`ClickHouseSink.check() compares an existing table's columns with the schema ${on}`, async () => {
    const database = await existingTable(
      server,
      "(a String) ENGINE = MergeTree() ORDER BY tuple()",
    );
    await withSink(server, { CLICKHOUSE_DATA_SCHEMA: "a:String,b:UInt64" }, async (h) => {
      await assertRejects(() => h.sink.check(), {
        message: `Cannot use ClickHouse table \`${database}\`.\`flows\`: it has no column "b" ` +
          `that "CLICKHOUSE_DATA_SCHEMA" declares as UInt64`,
      });
    }, { database });
  });
}

// --- ClickHouse 18.16: its limits -------------------------------------------------------

Deno.test(`ClickHouseSink.connect() fails clearly on a type the server lacks (IPv4 on ${CLICKHOUSE_18.label})`, async () => {
  const server = CLICKHOUSE_18;
  const version = await server.expectVersion();
  const known = new Set(
    (await server.rows<{ name: string }>("SELECT name FROM system.data_type_families")).map((f) =>
      f.name
    ),
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
  await withSink(
    server,
    { CLICKHOUSE_DATA_SCHEMA: `ip_src:${missing},bytes:UInt64` },
    async (h) => {
      await assertRejects(
        () => h.sink.connect(),
        {
          message:
            `Cannot use ClickHouse ${version} at ${server.url}: column "ip_src" has type ${missing}, ` +
            `and this server has no type ${family} (see system.data_type_families); ` +
            `change "CLICKHOUSE_DATA_SCHEMA" or upgrade the server`,
        },
      );
      // The check runs before anything is created.
      assertEquals(
        await server.rows(`SELECT name FROM system.databases WHERE name = '${h.database}'`),
        [],
      );
    },
  );
});

Deno.test(`ClickHouseSink.check() fails on a type the server lacks (IPv4 on ${CLICKHOUSE_18.label})`, async () => {
  const server = CLICKHOUSE_18;
  const version = await server.expectVersion();
  await withSink(server, { CLICKHOUSE_DATA_SCHEMA: "ip_src:IPv4,bytes:UInt64" }, async (h) => {
    await assertRejects(() => h.sink.check(), {
      message:
        `Cannot use ClickHouse ${version} at ${server.url}: column "ip_src" has type IPv4, ` +
        "and this server has no type IPv4 (see system.data_type_families); " +
        'change "CLICKHOUSE_DATA_SCHEMA" or upgrade the server',
    });
  });
});

Deno.test(`ClickHouseSink.write() of the same rows twice stores them twice on ${CLICKHOUSE_18.label} (no deduplication token before 22.2)`, async () => {
  await withSink(CLICKHOUSE_18, { CLICKHOUSE_DATA_SCHEMA: "seq:UInt32" }, async (h) => {
    await h.sink.connect();
    assertStrictEquals(h.sink.deduplicates, false);
    const batch = prepareAll(h.sink, [{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
    await h.sink.write(batch);
    await h.sink.write(batch);
    assertStrictEquals(
      await CLICKHOUSE_18.scalar(`SELECT count() FROM \`${h.database}\`.\`${h.table}\``),
      6,
    );
  });
});

// --- ClickHouse 26.x: the types and settings 18.16 lacks ----------------------------------

/**
 * On ClickHouse 26.x, a sink with this schema connects (creating the table,
 * ordered by `id`, unless `existing` gives one), finds the table's types the
 * schema's, writes the records, and gives back what `SELECT columns ...
 * ORDER BY id` reads from the table.
 */
async function roundTrip26(
  schema: string,
  records: Record<string, unknown>[],
  columns: string,
  options: { existing?: string; tableColumns?: Array<{ name: string; type: string }> } = {},
): Promise<unknown[]> {
  const server = CLICKHOUSE_26;
  const database = options.existing === undefined
    ? undefined
    : await existingTable(server, options.existing);
  const env = { CLICKHOUSE_DATA_SCHEMA: schema, CLICKHOUSE_ORDER_BY: "id" };
  let back: unknown[] = [];
  await withSink(server, env, async (h) => {
    await h.sink.connect();
    assertEquals(typeWarnings(h), []);
    if (options.tableColumns !== undefined) {
      assertEquals(
        await server.rows(
          `SELECT name, type FROM system.columns WHERE database = '${h.database}' AND table = '${h.table}'`,
        ),
        options.tableColumns,
      );
    }
    await h.sink.write(prepareAll(h.sink, records));
    back = await server.rows(
      `SELECT ${columns} FROM \`${h.database}\`.\`${h.table}\` ORDER BY id`,
    );
    // The record-time window opened to 1900-2300, so that the types' own range shows.
  }, { database, window: { minSeconds: -2208988800, maxFutureMs: 300 * 365 * 86_400_000 } });
  return back;
}

Deno.test(`ClickHouseSink.write() stores IPv4 and IPv6, Nullable and Array of them, with exact values (${CLICKHOUSE_26.label})`, async () => {
  const back = await roundTrip26(
    "id:UInt8,v4:IPv4,v6:IPv6,n4:Nullable(IPv4),n6:Nullable(IPv6)," +
      "a4:Array(IPv4),a6:Array(IPv6),an4:Array(Nullable(IPv4))",
    [
      {
        id: 1,
        v4: "192.0.2.1",
        v6: "2001:DB8::1",
        n4: "10.0.0.255",
        n6: "::ffff:192.0.2.1",
        a4: ["1.2.3.4", "", "255.255.255.255"],
        a6: ["::1", "192.0.2.7"],
        an4: ["1.1.1.1", null],
      },
      { id: 2, v4: 3221225985, v6: "192.0.2.1", n4: null, n6: "", a4: [], a6: [], an4: [null] },
      // An empty address is left out: the column default (0.0.0.0, ::, NULL).
      { id: 3, v4: "", n4: "::ffff:10.1.2.3" },
    ],
    "id, v4, v6, n4, n6, a4, a6, an4",
  );
  assertEquals(back, [
    {
      id: 1,
      v4: "192.0.2.1",
      v6: "2001:db8::1",
      n4: "10.0.0.255",
      n6: "::ffff:192.0.2.1",
      a4: ["1.2.3.4", "0.0.0.0", "255.255.255.255"],
      a6: ["::1", "::ffff:192.0.2.7"],
      an4: ["1.1.1.1", null],
    },
    {
      id: 2,
      v4: "192.0.2.1",
      v6: "::ffff:192.0.2.1",
      n4: null,
      n6: null,
      a4: [],
      a6: [],
      an4: [null],
    },
    { id: 3, v4: "0.0.0.0", v6: "::", n4: "10.1.2.3", n6: null, a4: [], a6: [], an4: [] },
  ]);
});

Deno.test(`ClickHouseSink.write() stores DateTime64 at precisions 0, 3, 6 and 9, in a zone, before 1970, Nullable and in an Array, exactly (${CLICKHOUSE_26.label})`, async () => {
  const back = await roundTrip26(
    "id:UInt8,t0:DateTime64(0),t3:DateTime64(3),t6:DateTime64(6, 'Europe/Berlin')," +
      "t9:DateTime64(9),nt:Nullable(DateTime64(3)),at:Array(DateTime64(6))",
    [
      {
        id: 1,
        // The fraction is cut to the precision, as ClickHouse does.
        t0: "2026-11-21 23:25:00.9",
        t3: "2026-11-21 23:25:00.123456",
        t6: "2026-11-21 23:25:00.000001",
        t9: "2026-11-21 23:25:00.123456",
        nt: null,
        at: ["1969-12-31 23:59:58.5", "1900-01-01 00:00:00", "2299-12-31 23:59:59.999999"],
      },
      {
        id: 2,
        // Epochs as pmacct may send them, and instants whose epoch text a
        // best_effort parse would take for dates ("0.001", "20261121").
        t0: 1795303500,
        t3: "1970-01-01 00:00:00.001",
        t6: "1970-08-23 12:05:21",
        t9: "1795303500.5",
        nt: "2026-11-21 23:25:00.001",
        at: [],
      },
      { id: 3 },
    ],
    "id, toString(t0) AS t0, toUnixTimestamp64Milli(t3) AS t3, toString(t6) AS t6, " +
      "toString(toUnixTimestamp64Nano(t9)) AS t9, toString(nt) AS nt, arrayMap(x -> toString(x), at) AS at",
  );
  assertEquals(back, [
    {
      id: 1,
      t0: "2026-11-21 23:25:00",
      t3: "1795303500123",
      // Shown in the column's zone: 00:25 in Berlin is 23:25 UTC.
      t6: "2026-11-22 00:25:00.000001",
      t9: "1795303500123456000",
      nt: null,
      at: [
        "1969-12-31 23:59:58.500000",
        "1900-01-01 00:00:00.000000",
        "2299-12-31 23:59:59.999999",
      ],
    },
    {
      id: 2,
      t0: "2026-11-21 23:25:00",
      t3: "1",
      t6: "1970-08-23 13:05:21.000000",
      t9: "1795303500500000000",
      nt: "2026-11-21 23:25:00.001",
      at: [],
    },
    {
      id: 3,
      t0: "1970-01-01 00:00:00",
      t3: "0",
      t6: "1970-01-01 01:00:00.000000",
      t9: "0",
      nt: null,
      at: [],
    },
  ]);
});

Deno.test(`ClickHouseSink.write() stores Bool, Nullable(Bool) and Array(Bool) exactly (${CLICKHOUSE_26.label})`, async () => {
  // Boolean is an alias: the table says Bool, the same type (no warning).
  const back = await roundTrip26(
    "id:UInt8,b:Bool,bb:Boolean,nb:Nullable(Bool),ab:Array(Bool)",
    [
      { id: 1, b: true, bb: "yes", nb: null, ab: [true, "0", 1, "off"] },
      { id: 2, b: "FALSE", bb: 0, nb: 1, ab: [] },
      { id: 3 },
    ],
    "id, b, bb, nb, ab, toTypeName(bb) AS type",
  );
  assertEquals(back, [
    { id: 1, b: true, bb: true, nb: null, ab: [true, false, true, false], type: "Bool" },
    { id: 2, b: false, bb: false, nb: true, ab: [], type: "Bool" },
    { id: 3, b: false, bb: false, nb: null, ab: [], type: "Bool" },
  ]);
});

/** LowCardinality columns of the types 18.16 lacks, and of DateTime: what they store. */
const LOW_CARDINALITY = {
  schema: "id:UInt8,l4:LowCardinality(IPv4),l6:LowCardinality(Nullable(IPv6))," +
    "ld:LowCardinality(DateTime),al:Array(LowCardinality(IPv4))",
  records: [
    {
      id: 1,
      l4: "192.0.2.1",
      l6: "2001:DB8::2",
      ld: "2026-11-21 23:25:00",
      al: ["10.0.0.1", "10.0.0.1"],
    },
    { id: 2, l4: "::ffff:192.0.2.1", l6: null, ld: 1795303667, al: [] },
  ],
  columns: "id, l4, l6, toUnixTimestamp(ld) AS ld, al",
  back: [
    { id: 1, l4: "192.0.2.1", l6: "2001:db8::2", ld: 1795303500, al: ["10.0.0.1", "10.0.0.1"] },
    { id: 2, l4: "192.0.2.1", l6: null, ld: 1795303667, al: [] },
  ],
};

Deno.test(`ClickHouseSink.write() into an existing table stores LowCardinality(IPv4), LowCardinality(Nullable(IPv6)) and LowCardinality(DateTime) exactly (${CLICKHOUSE_26.label})`, async () => {
  const { schema, records, columns } = LOW_CARDINALITY;
  const back = await roundTrip26(schema, records, columns, {
    existing: "(id UInt8, l4 LowCardinality(IPv4), l6 LowCardinality(Nullable(IPv6)), " +
      "ld LowCardinality(DateTime), al Array(LowCardinality(IPv4))) ENGINE = MergeTree() " +
      "ORDER BY id SETTINGS allow_suspicious_low_cardinality_types = 1",
  });
  assertEquals(back, LOW_CARDINALITY.back);
});

Deno.test(`ClickHouseSink.connect() creates LowCardinality columns of IPv4, IPv6 and DateTime, which need allow_suspicious_low_cardinality_types (${CLICKHOUSE_26.label})`, async () => {
  const { schema, records, columns } = LOW_CARDINALITY;
  const back = await roundTrip26(schema, records, columns, {
    tableColumns: [
      { name: "id", type: "UInt8" },
      { name: "l4", type: "LowCardinality(IPv4)" },
      { name: "l6", type: "LowCardinality(Nullable(IPv6))" },
      { name: "ld", type: "LowCardinality(DateTime)" },
      { name: "al", type: "Array(LowCardinality(IPv4))" },
    ],
  });
  assertEquals(back, LOW_CARDINALITY.back);
});

Deno.test(`ClickHouseSink.write() of the same rows twice stores them once in a table it created: the insert_deduplication_token (${CLICKHOUSE_26.label})`, async () => {
  const server = CLICKHOUSE_26;
  await withSink(server, { CLICKHOUSE_DATA_SCHEMA: "seq:UInt32,ip_src:IPv4" }, async (h) => {
    await h.sink.connect();
    assertStrictEquals(h.sink.deduplicates, true);
    const [{ query: ddl }] = await server.rows<{ query: string }>(
      `SELECT create_table_query AS query FROM system.tables WHERE database = '${h.database}' AND name = '${h.table}'`,
    ) as [{ query: string }];
    assertMatch(ddl, /non_replicated_deduplication_window = 1000/);
    const count = () => server.scalar(`SELECT count() FROM \`${h.database}\`.\`${h.table}\``);
    const records = [1, 2, 3, 4, 5].map((seq) => ({ seq, ip_src: `192.0.2.${seq}` }));
    const batch = prepareAll(h.sink, records);
    await h.sink.write(batch);
    assertStrictEquals(await count(), 5);
    // A retry of a batch whose insert landed (same rows, same Kafka
    // origins): the same token, dropped by the server.
    await h.sink.write(batch);
    assertStrictEquals(await count(), 5);
    // The same values from other offsets are other records: another token,
    // stored, although the data (and so its hash) is identical. Without
    // tokens the table's window would drop them as a repeated block.
    await h.sink.write(prepareAll(h.sink, records, 100));
    assertStrictEquals(await count(), 10);
    assertEquals(
      await server.rows(
        `SELECT seq, count() AS n FROM \`${h.database}\`.\`${h.table}\` GROUP BY seq ORDER BY seq`,
      ),
      [1, 2, 3, 4, 5].map((seq) => ({ seq, n: "2" })),
    );
  });
});

// --- No server --------------------------------------------------------------------------

/** Runs a body with a sink for the given variables, not connected, then closes it. */
async function withUnconnectedSink(
  env: Record<string, string>,
  body: (sink: ClickHouseSink) => Promise<void>,
): Promise<void> {
  const { config } = parseClickHouseConfig(new VarReader(env, CLICKHOUSE.specs));
  const sink = new ClickHouseSink(config, {
    time: new TimeReader(),
    log: new Logger({ write: () => {} }),
  });
  try {
    await body(sink);
  } finally {
    await sink.close();
  }
}

Deno.test("ClickHouseSink.connect() to a closed port fails with the address as a retryable error, and healthcheck() says false", async () => {
  await withUnconnectedSink({
    CLICKHOUSE_HOST: "127.0.0.1:1",
    CLICKHOUSE_DATA_SCHEMA: "a:String",
    CLICKHOUSE_REQUEST_TIMEOUT: "5",
  }, async (sink) => {
    await assertRejects(
      () => sink.connect(),
      sinkError(
        "retry",
        /^Cannot connect to ClickHouse at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/,
      ),
    );
    assertStrictEquals(await sink.healthcheck(), false);
  });
});

/** A TCP relay to a test server that can be cut, to lose the server mid-run. */
function relay(server: ClickHouseServer): { port: number; cut: () => void } {
  const target = new URL(server.url);
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
