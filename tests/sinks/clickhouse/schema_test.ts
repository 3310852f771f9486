import {
  canonicalType,
  type ColumnSpec,
  createDatabaseSql,
  createDistributedSql,
  createTableSettings,
  createTableSql,
  keyCheckSql,
  keyExpressionProblem,
  parseSchema,
  parseServerVersion,
  parseType,
  quoteIdentifier,
  renderType,
  sameType,
  splitSchemaEntries,
  typeFamilies,
  versionAtLeast,
} from "../../../sinks/clickhouse/schema.ts";
import { assertEquals, assertMatch, assertStrictEquals, assertThrows } from "../../_assert.ts";

function columnsOf(text: string): Array<[string, string]> {
  const { columns, problems } = parseSchema(text);
  assertEquals(problems, []);
  return columns.map((c) => [c.name, c.typeText]);
}

Deno.test("parseSchema() reads field:Type entries separated like the original script", () => {
  assertEquals(
    columnsOf("ip_src:String,ip_dst:String;bytes:UInt64\npackets:UInt64\r\n\ttos:UInt8\f\vx:Int8,"),
    [
      ["ip_src", "String"],
      ["ip_dst", "String"],
      ["bytes", "UInt64"],
      ["packets", "UInt64"],
      ["tos", "UInt8"],
      ["x", "Int8"],
    ],
  );
});

Deno.test("parseSchema() keeps the comma inside Decimal(10,2)", () => {
  assertEquals(columnsOf("amount:Decimal(10,2),bytes:UInt64"), [["amount", "Decimal(10, 2)"], [
    "bytes",
    "UInt64",
  ]]);
});

Deno.test("parseSchema() keeps separators inside brackets and quotes whole", () => {
  assertEquals(
    columnsOf("x:DateTime64(6, 'UTC');e:Enum8('a,b' = 1,\n'c;d' = 2)\tt:DateTime('Europe/Berlin')"),
    [
      ["x", "DateTime64(6, 'UTC')"],
      ["e", "Enum8('a,b' = 1, 'c;d' = 2)"],
      ["t", "DateTime('Europe/Berlin')"],
    ],
  );
});

Deno.test("parseSchema() reads every supported type", () => {
  const types = [
    "String",
    "FixedString(16)",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Int128",
    "Int256",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt128",
    "UInt256",
    "Float32",
    "Float64",
    "Decimal(38, 10)",
    "Decimal32(4)",
    "Decimal64(4)",
    "Decimal128(4)",
    "Decimal256(4)",
    "Bool",
    "Boolean",
    "UUID",
    "Date",
    "Date32",
    "DateTime",
    "DateTime('UTC')",
    "DateTime64(3)",
    "DateTime64(6, 'Asia/Tokyo')",
    "IPv4",
    "IPv6",
    "Enum8('a' = 1, 'b' = -2)",
    "Enum16('x' = 1000)",
    "Nullable(String)",
    "LowCardinality(String)",
    "LowCardinality(Nullable(String))",
    "Array(UInt8)",
    "Array(Nullable(IPv6))",
    "Array(Array(String))",
    "Array(LowCardinality(String))",
  ];
  const text = types.map((t, i) => `c${i}:${t}`).join(",");
  assertEquals(columnsOf(text).map(([, t]) => t), types);
});

Deno.test("parseSchema() reports an entry without a type", () => {
  const { columns, problems } = parseSchema("bytes,packets:,ip_src:String");
  assertEquals(columns.map((c) => c.name), ["ip_src"]);
  assertEquals(problems, [
    { entry: "bytes", message: `needs a type for column "bytes" (field:Type)` },
    { entry: "packets:", message: `needs a type for column "packets" (field:Type)` },
  ]);
});

Deno.test("parseSchema() reports an empty field name and a duplicate column", () => {
  const { problems } = parseSchema(":String,bytes:UInt64,bytes:UInt32");
  assertEquals(problems, [
    { entry: ":String", message: "needs a field name in every entry (field:Type)" },
    { entry: "bytes:UInt32", message: `must not declare column "bytes" twice` },
  ]);
});

Deno.test("parseSchema() reports unbalanced brackets", () => {
  assertEquals(parseSchema("a:Decimal(10,2").problems, [
    { entry: "a:Decimal(10,2", message: "has unbalanced brackets or quotes in an entry" },
  ]);
  assertEquals(parseSchema("a:String),b:UInt8").problems, [
    { entry: "a:String)", message: "has unbalanced brackets or quotes in an entry" },
  ]);
  assertEquals(parseSchema("e:Enum8('a = 1)").problems.length, 1);
});

Deno.test("parseSchema() reports types ClickHouse would refuse, naming what is wrong", () => {
  const cases: Array<[string, string]> = [
    [
      "x:FixedString(x)",
      `has an invalid type for column "x": FixedString needs a length N as an integer, got "x"`,
    ],
    [
      "x:FixedString(0)",
      `has an invalid type for column "x": FixedString length N must be between 1 and 16777215, got 0`,
    ],
    ["x:FixedString", `has an invalid type for column "x": FixedString needs a length N`],
    [
      "x:Decimal(100,2)",
      `has an invalid type for column "x": Decimal precision P must be between 1 and 76, got 100`,
    ],
    [
      "x:Decimal(10,11)",
      `has an invalid type for column "x": Decimal scale S must be between 0 and 10, got 11`,
    ],
    [
      "x:Decimal32(10)",
      `has an invalid type for column "x": Decimal32 scale S must be between 0 and 9, got 10`,
    ],
    [
      "x:Nullable(Nullable(String))",
      `has an invalid type for column "x": Nullable cannot contain Nullable: Nullable(String) cannot be inside Nullable`,
    ],
    [
      "x:Nullable(Array(String))",
      `has an invalid type for column "x": Nullable cannot contain Array: Array(String) cannot be inside Nullable`,
    ],
    [
      "x:LowCardinality(Array(String))",
      `has an invalid type for column "x": LowCardinality cannot contain Array(String)`,
    ],
    ["x:Strin", `has an invalid type for column "x": unknown type "Strin"`],
    [
      "x:string",
      `has an invalid type for column "x": unknown type "string" (type names are case-sensitive: String?)`,
    ],
    ["x:UInt8(3)", `has an invalid type for column "x": UInt8 takes no parameters`],
    [
      "x:DateTime('Mars/Base')",
      `has an invalid type for column "x": DateTime has an unknown time zone 'Mars/Base'`,
    ],
    [
      "x:DateTime64(10)",
      `has an invalid type for column "x": DateTime64 precision P must be between 0 and 9, got 10`,
    ],
    [
      "x:Enum8('a' = 200)",
      `has an invalid type for column "x": Enum8 value of 'a' must be between -128 and 127, got 200`,
    ],
    ["x:Enum8('a' = 1, 'a' = 2)", `has an invalid type for column "x": Enum8 names 'a' twice`],
    [
      "x:Enum8('a', 'b')",
      `has an invalid type for column "x": Enum8 values must be written 'name' = number`,
    ],
    ["x:Array()", `has an invalid type for column "x": Array needs exactly one type: Array(T)`],
    ["x:String String", `has an invalid type for column "x": unexpected "String" after the type`],
  ];
  for (const [entry, message] of cases) {
    assertEquals(parseSchema(entry).problems, [{ entry, message }], entry);
  }
});

Deno.test("parseSchema() collects every problem instead of stopping at the first", () => {
  const { columns, problems } = parseSchema("a,b:Foo,c:String,c:String,:UInt8,d:Decimal(100,2)");
  assertEquals(columns.map((c) => c.name), ["c"]);
  assertEquals(problems.map((p) => p.entry), [
    "a",
    "b:Foo",
    "c:String",
    ":UInt8",
    "d:Decimal(100,2)",
  ]);
});

Deno.test("splitSchemaEntries() marks entries with unbalanced brackets", () => {
  assertEquals(splitSchemaEntries("a:X(1,2),b:Y)"), [
    { entry: "a:X(1,2)", balanced: true },
    { entry: "b:Y)", balanced: false },
  ]);
});

Deno.test("parseType() throws for an unknown type name", () => {
  assertThrows(() => parseType("Foo"), RangeError);
  assertThrows(() => parseType("Array("), SyntaxError);
});

Deno.test("renderType() writes enum names with escaped quotes", () => {
  assertStrictEquals(
    renderType(parseType(String.raw`Enum8('it\'s' = 1, 'a''b' = 2)`)),
    String.raw`Enum8('it\'s' = 1, 'a\'b' = 2)`,
  );
});

Deno.test("sameType() compares a schema type with the server's spelling", () => {
  assertStrictEquals(sameType(parseType("Decimal32(2)"), "Decimal(9, 2)"), true);
  assertStrictEquals(sameType(parseType("Boolean"), "Bool"), true);
  assertStrictEquals(
    sameType(parseType("Enum8('a'=1,'b'=2)"), "Enum8(\\'a\\' = 1, \\'b\\' = 2)"),
    false,
  );
  assertStrictEquals(sameType(parseType("Enum8('a'=1,'b'=2)"), "Enum8('a' = 1, 'b' = 2)"), true);
  assertStrictEquals(sameType(parseType("String"), "UInt8"), false);
  assertStrictEquals(sameType(parseType("String"), "Map(String, String)"), false);
  assertStrictEquals(canonicalType(parseType("Array(Decimal64(3))")), "Array(Decimal(18, 3))");
});

Deno.test("createTableSettings() allows LowCardinality of other types than String on 20.x and newer, and LowCardinality at all on 18.16", () => {
  const settings = (schema: string, version: string) =>
    createTableSettings(parseSchema(schema).columns, parseServerVersion(version));
  assertStrictEquals(settings("a:String,b:IPv4,c:Nullable(DateTime64(3))", "26.9.2.1"), undefined);
  // String and FixedString need nothing since LowCardinality left the experiments.
  assertStrictEquals(
    settings("a:LowCardinality(String),b:LowCardinality(Nullable(FixedString(2)))", "26.9.2.1"),
    undefined,
  );
  for (
    const type of [
      "LowCardinality(IPv4)",
      "LowCardinality(Nullable(IPv6))",
      "LowCardinality(UInt32)",
      "LowCardinality(DateTime)",
      "LowCardinality(UUID)",
      "Array(LowCardinality(Float64))",
    ]
  ) {
    assertEquals(settings(`a:String,b:${type}`, "26.9.2.1"), {
      allow_suspicious_low_cardinality_types: 1,
    }, type);
    assertEquals(settings(`b:${type}`, "22.2.1"), { allow_suspicious_low_cardinality_types: 1 });
  }
  assertEquals(settings("a:LowCardinality(String)", "18.16.1"), {
    allow_experimental_low_cardinality_type: 1,
  });
  assertEquals(settings("a:LowCardinality(UInt32)", "18.16.1"), {
    allow_experimental_low_cardinality_type: 1,
  });
});

Deno.test("typeFamilies() lists every type name a column needs on the server", () => {
  assertEquals(typeFamilies(parseType("Array(Nullable(IPv4))")), ["Array", "Nullable", "IPv4"]);
  assertEquals(typeFamilies(parseType("LowCardinality(String)")), ["LowCardinality", "String"]);
});

Deno.test("quoteIdentifier() back-quotes and escapes names", () => {
  assertStrictEquals(quoteIdentifier("bytes"), "`bytes`");
  assertStrictEquals(quoteIdentifier("we`ird\\name"), "`we\\`ird\\\\name`");
});

function cols(text: string): ColumnSpec[] {
  return parseSchema(text).columns;
}

Deno.test("createTableSql() quotes identifiers and uses ORDER BY tuple() without PARTITION BY by default", () => {
  assertStrictEquals(
    createTableSql({
      database: "pmacct",
      table: "sflowstat",
      columns: cols("ip_src:IPv4,bytes:UInt64,amount:Decimal(10,2)"),
      orderBy: "",
      partitionBy: "",
      deduplication: false,
    }),
    "CREATE TABLE IF NOT EXISTS `pmacct`.`sflowstat` (`ip_src` IPv4, `bytes` UInt64, `amount` Decimal(10, 2)) " +
      "ENGINE = MergeTree() ORDER BY tuple()",
  );
});

Deno.test("createTableSql() passes ORDER BY and PARTITION BY expressions as written", () => {
  assertStrictEquals(
    createTableSql({
      database: "db",
      table: "t`x",
      columns: cols("stamp_inserted:DateTime,ip_src:String"),
      orderBy: "stamp_inserted, ip_src",
      partitionBy: "toYYYYMM(stamp_inserted)",
      deduplication: false,
    }),
    "CREATE TABLE IF NOT EXISTS `db`.`t\\`x` (`stamp_inserted` DateTime, `ip_src` String) ENGINE = MergeTree() " +
      "PARTITION BY (toYYYYMM(stamp_inserted)) ORDER BY (stamp_inserted, ip_src)",
  );
});

Deno.test("createTableSql() adds the deduplication window only when asked (servers >= 22.2)", () => {
  const base = {
    database: "d",
    table: "t",
    columns: cols("a:String"),
    orderBy: "",
    partitionBy: "",
  };
  assertMatch(
    createTableSql({ ...base, deduplication: true }),
    /ORDER BY tuple\(\) SETTINGS non_replicated_deduplication_window = 1000$/,
  );
  assertStrictEquals(createTableSql({ ...base, deduplication: false }).includes("SETTINGS"), false);
  assertStrictEquals(createDatabaseSql("pm`acct"), "CREATE DATABASE IF NOT EXISTS `pm\\`acct`");
});

Deno.test("versionAtLeast() gates deduplication on ClickHouse 22.2", () => {
  const since = [22, 2];
  assertStrictEquals(versionAtLeast(parseServerVersion("18.16.1"), since), false);
  assertStrictEquals(versionAtLeast(parseServerVersion("22.1.3.7"), since), false);
  assertStrictEquals(versionAtLeast(parseServerVersion("22.2.2.1"), since), true);
  assertStrictEquals(versionAtLeast(parseServerVersion("23.8.1.2992"), since), true);
  assertStrictEquals(versionAtLeast(parseServerVersion("100.0"), since), true);
});

Deno.test("keyExpressionProblem() accepts the expressions a MergeTree key is made of", () => {
  for (
    const text of [
      "",
      "stamp_inserted, ip_src",
      "toYYYYMMDD(stamp_updated)",
      "(tag, toStartOfHour(stamp_updated)), cityHash64(ip_src) % 16",
      '`order`, "format", `we``ird`, `back\\`tick`',
      "if(port_src < 1024, 'well-known; -- not a comment', 'other')",
      "concat('it''s', 'a\\'b', \"c\\\"d\")",
      "arr[1], -1.5e3, a != b, x || y, NOT z",
      "toStartOfInterval(stamp_updated, INTERVAL 1 HOUR)",
      "(settings_x, format_y)",
      "tuple(SETTINGS)",
      "a,\n\tb",
    ]
  ) {
    assertStrictEquals(keyExpressionProblem(text), undefined, text);
  }
});

Deno.test("keyExpressionProblem() refuses a key that could end or reshape the CREATE TABLE", () => {
  const cases: Array<[string, RegExp]> = [
    ["(((", /must close every bracket: 3 "\(" left open/],
    ["a) SETTINGS index_granularity = 1 --", /"\)" at 2 closes nothing/],
    ["stamp_updated SETTINGS index_granularity = 1", /not SETTINGS \(at 15\)/],
    ["a FORMAT JSON", /not FORMAT/],
    ["a; DROP TABLE x", /must not contain ";" \(at 2\)/],
    ["a -- rest", /comment \(-- at 3\)/],
    ["a /* x */", /comment \(\/\* at 3\)/],
    ["a */", /comment \(\*\/ at 3\)/],
    ["a # rest", /comment \(# at 3\)/],
    ["'open", /must close the quote ' opened at 1/],
    ["`open\\`", /must close the quote ` opened at 1/],
    ['"open', /must close the quote " opened at 1/],
    ["$$ ' $$ ) -- '", /must not contain "\$" \(at 1\) outside quotes/],
    ["{name:Identifier}", /must not contain "\{"/],
    ["a\u0000b", /control characters/],
    ["a\\b", /must not contain "\\\\"/],
    ["f(a]", /"\]" at 4 closes a "\("/],
    ["[a", /1 "\[" left open/],
  ];
  for (const [text, message] of cases) {
    assertMatch(keyExpressionProblem(text) ?? "accepted", message, JSON.stringify(text));
  }
});

Deno.test("createTableSql() refuses a key that keyExpressionProblem() refuses", () => {
  assertThrows(
    () =>
      createTableSql({
        database: "d",
        table: "t",
        columns: cols("a:String"),
        orderBy: "a) SETTINGS index_granularity = 1 --",
        partitionBy: "",
        deduplication: true,
      }),
    RangeError,
    "closes nothing",
  );
});

Deno.test("keyCheckSql() selects the key over the schema's columns, typed, from no row", () => {
  assertStrictEquals(
    keyCheckSql(
      cols("stamp:DateTime('UTC'),ip:LowCardinality(Nullable(String)),`x`:Array(UInt8)"),
      " toYYYYMM(stamp), ip ",
    ),
    "SELECT (toYYYYMM(stamp), ip) FROM (SELECT " +
      "arrayElement(CAST('[]' AS Array(DateTime('UTC'))), 1) AS `stamp`, " +
      "arrayElement(CAST('[]' AS Array(Nullable(String))), 1) AS `ip`, " +
      "arrayElement(CAST('[]' AS Array(Array(UInt8))), 1) AS `\\`x\\``) WHERE 0",
  );
});

Deno.test("On a cluster: the database ON CLUSTER, a ReplicatedMergeTree local table, a Distributed table over it", () => {
  const cluster = {
    name: "sluice",
    localTable: "flows_local",
    replicaPath: "/clickhouse/tables/{shard}/pm/flows_local",
    replicaName: "{replica}",
    shardingKey: "cityHash64(`ip_src`, `bytes`)",
    direct: false,
  };
  assertStrictEquals(
    createDatabaseSql("pm", "sluice"),
    "CREATE DATABASE IF NOT EXISTS `pm` ON CLUSTER `sluice`",
  );
  assertStrictEquals(
    createTableSql({
      database: "pm",
      table: "flows",
      columns: cols("ip_src:String,bytes:UInt64"),
      orderBy: "ip_src",
      partitionBy: "",
      // A replicated table deduplicates by itself: no window setting.
      deduplication: true,
      cluster,
    }),
    "CREATE TABLE IF NOT EXISTS `pm`.`flows_local` ON CLUSTER `sluice` (`ip_src` String, `bytes` UInt64) " +
      "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/pm/flows_local', '{replica}') " +
      "ORDER BY (ip_src)",
  );
  assertStrictEquals(
    createDistributedSql("pm", "flows", cluster),
    "CREATE TABLE IF NOT EXISTS `pm`.`flows` ON CLUSTER `sluice` AS `pm`.`flows_local` " +
      "ENGINE = Distributed('sluice', 'pm', 'flows_local', (cityHash64(`ip_src`, `bytes`)))",
  );
  assertThrows(
    () => createDistributedSql("pm", "flows", { ...cluster, shardingKey: "rand()) --" }),
    RangeError,
  );
});
