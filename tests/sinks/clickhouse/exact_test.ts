/**
 * Exact values through the real local ClickHouse servers (scripts/services.sh):
 * pmacct JSON with counters beyond 2^53 is decoded, prepared and inserted by
 * the sink, and the server gives back every digit. A fresh database per
 * test, dropped afterwards. Fails when a server is not reachable.
 *
 * @module
 */

import { decodePmacct } from "../../../lib/decode/pmacct.ts";
import { Logger } from "../../../lib/log.ts";
import type { PreparedRow } from "../../../lib/record.ts";
import { TimeReader } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import { CLICKHOUSE, parseClickHouseConfig } from "../../../sinks/clickhouse/config.ts";
import { type ClickHouseRow, ClickHouseSink } from "../../../sinks/clickhouse/mod.ts";
import { assertEquals } from "../../_assert.ts";
import { CLICKHOUSE_18, CLICKHOUSE_26, type ClickHouseServer } from "../../_clickhouse.ts";
import { uniqueName } from "../../_services.ts";

/** Decodes the messages, inserts them through the sink, and reads the columns back as text. */
async function roundTrip(
  server: ClickHouseServer,
  schema: string,
  messages: string[],
  columns: string,
): Promise<unknown[]> {
  await server.expectVersion();
  const database = uniqueName("t_exact");
  const reader = new VarReader({
    CLICKHOUSE_HOST: server.url,
    CLICKHOUSE_DB: database,
    CLICKHOUSE_TABLE: "flows",
    CLICKHOUSE_DATA_SCHEMA: schema,
    CLICKHOUSE_ORDER_BY: "id",
  }, CLICKHOUSE.specs);
  const { config } = parseClickHouseConfig(reader);
  assertEquals(reader.problems, []);
  const sink = new ClickHouseSink(config, {
    time: new TimeReader("UTC"),
    log: new Logger({ write: () => {} }),
  });
  try {
    await sink.connect();
    const rows: PreparedRow<ClickHouseRow>[] = messages.map((text, i) => {
      const origin = { topic: "flows", partition: 0, offset: String(i), index: 0 };
      const prepared = sink.prepare(decodePmacct(text).records[0]!.record, origin);
      if (!prepared.ok) throw new Error(prepared.rejection.error);
      return { row: prepared.row, bytes: prepared.bytes, origin };
    });
    await sink.write(rows);
    return await server.rows(`SELECT ${columns} FROM \`${database}\`.flows ORDER BY id`);
  } finally {
    await sink.close();
    await server.query(`DROP DATABASE IF EXISTS \`${database}\``);
  }
}

for (const server of [CLICKHOUSE_18, CLICKHOUSE_26]) {
  Deno.test(`ClickHouseSink stores a UInt64 maximum and Int64 ends from pmacct JSON exactly (${server.label})`, async () => {
    const back = await roundTrip(
      server,
      "id:UInt8,bytes:UInt64,packets:UInt64,delta:Int64",
      [
        '{"id": 1, "bytes": 18446744073709551615, "packets": 9007199254740993, ' +
        '"delta": -9223372036854775808}',
        '{"id": 2, "bytes": 9007199254740992, "packets": 0, "delta": 9223372036854775807}',
      ],
      "id, toString(bytes) AS bytes, toString(packets) AS packets, toString(delta) AS delta",
    );
    assertEquals(back, [
      {
        id: 1,
        bytes: "18446744073709551615",
        packets: "9007199254740993",
        delta: "-9223372036854775808",
      },
      { id: 2, bytes: "9007199254740992", packets: "0", delta: "9223372036854775807" },
    ]);
  });
}

Deno.test(`ClickHouseSink stores 128- and 256-bit integers and long decimals exactly (${CLICKHOUSE_26.label})`, async () => {
  const back = await roundTrip(
    CLICKHOUSE_26,
    "id:UInt8,a:UInt256,b:Int128,d:Decimal(38, 20),e:Decimal(10, 2)",
    [
      `{"id": 1, "a": ${"115792089237316195423570985008687907853269984665640564039457584007913129639935"}, ` +
      '"b": -170141183460469231731687303715884105728, "d": 0.10000000000000000001, "e": 12.34}',
    ],
    "id, toString(a) AS a, toString(b) AS b, toString(d) AS d, toString(e) AS e",
  );
  assertEquals(back, [{
    id: 1,
    a: "115792089237316195423570985008687907853269984665640564039457584007913129639935",
    b: "-170141183460469231731687303715884105728",
    d: "0.10000000000000000001",
    e: "12.34",
  }]);
});
