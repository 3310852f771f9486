import {
  collectdGraphiteDecoder,
  createCollectdGraphiteDecoder,
  decodeCollectdGraphite,
} from "../../../lib/decode/collectd_graphite.ts";
import { DECODERS, findDecoder } from "../../../lib/decode/mod.ts";
import type { Point } from "../../../lib/record.ts";
import { assert, assertEquals, assertMatch } from "../../_assert.ts";
import { assertMessageErrors, build, runGoldenCases } from "./_golden.ts";

const SAMPLE = new URL("../../testdata/samples/collectd-write_graphite.txt", import.meta.url);
const TESTDATA = new URL("../../testdata/collectd_graphite/", import.meta.url);

function points(result: ReturnType<typeof decodeCollectdGraphite>): Point[] {
  return result.records.map((r) => r.record as Point);
}

Deno.test("decodeCollectdGraphite() reads the golden fixtures: real write_graphite and write_kafka output, prefix, postfix, delimiter, poison lines", async () => {
  const cases = await runGoldenCases(collectdGraphiteDecoder, TESTDATA, 11);
  assert(cases.includes("write_graphite_sample"));
  assert(cases.includes("write_kafka_unescaped_host"));
  assert(cases.includes("poison"));
});

Deno.test("decodeCollectdGraphite() reads all of collectd 5.12's write_graphite sample: 54 points, 26 nan skipped", async () => {
  const { decode } = build(collectdGraphiteDecoder, {
    GRAPHITE_PREFIX: "mydatacenter.",
    GRAPHITE_PREFIX_TAG: "datacenter",
  });
  const result = decode(await Deno.readFile(SAMPLE));
  assertEquals(result.errors, []);
  assertEquals(result.skipped, 26);
  assertEquals(result.records.length, 54);
  for (const point of points(result)) {
    assertEquals(point.tags, { host: "xx_example_internal", datacenter: "mydatacenter" });
    assert(point.time === 1795303694_000000000n || point.time === 1795303696_000000000n);
  }
  // The first interval's rates are nan; the second has them.
  assertEquals(
    points(result).filter((p) => p.measurement === "interface-lo_if_octets_rx"),
    [{
      measurement: "interface-lo_if_octets_rx",
      tags: { host: "xx_example_internal", datacenter: "mydatacenter" },
      fields: { value: 9733.184982 },
      time: 1795303696_000000000n,
    }],
  );
});

Deno.test("decodeCollectdGraphite() gives the same points for a message as for its lines sent one by one", async () => {
  const decode = createCollectdGraphiteDecoder({ prefix: "mydatacenter." });
  const text = await Deno.readTextFile(SAMPLE);
  const whole = points(decode(text));
  const single = text.split("\n").filter((l) => l.trim() !== "").flatMap((line) => {
    const result = decode(line);
    assertEquals(result.errors, []);
    return points(result);
  });
  assertEquals(single, whole);
});

Deno.test("decodeCollectdGraphite() decodes kafka-influxdb's documented example as kafka-influxdb did", () => {
  // kafka-influxdb wrote "load_load_shortterm,host=26f2fc918f50 value=0.05 1436357630".
  assertEquals(decodeCollectdGraphite("26f2fc918f50.load.load.shortterm 0.05 1436357630"), {
    records: [{
      index: 0,
      record: {
        measurement: "load_load_shortterm",
        tags: { host: "26f2fc918f50" },
        fields: { value: 0.05 },
        time: 1436357630_000000000n,
      },
    }],
    skipped: 0,
    errors: [],
  });
});

Deno.test("decodeCollectdGraphite() skips and counts nan values", () => {
  const result = decodeCollectdGraphite(
    [
      "web.interface-lo.if_octets.rx nan 1436357630",
      "web.interface-lo.if_octets.tx -nan 1436357630",
      "web.interface-lo.if_packets.rx NaN 1436357630",
      "web.interface-lo.if_packets.tx inf 1436357630",
      "web.interface-lo.if_errors.rx -INF 1436357630",
      "web.interface-lo.if_errors.tx 0.000000 1436357630",
    ].join("\r\n"),
  );
  assertEquals(result.skipped, 5);
  assertEquals(result.errors, []);
  assertEquals(result.records.map((r) => r.index), [5]);
});

Deno.test("decodeCollectdGraphite() keeps every value a float, 30364 and 743657472 included", () => {
  const result = decodeCollectdGraphite(
    "h.cpu-0.cpu-user 30364 1436357630\nh.memory.memory-buffered 743657472 1436357630\n" +
      "h.cpu-0.cpu-idle 97.036570 1436357630\nh.df.df_complex-free 1.5e+20 1436357630",
  );
  const values = points(result).map((p) => p.fields["value"]);
  assertEquals(values, [30364, 743657472, 97.03657, 1.5e20]);
  // number is written as a float; an integer would be a bigint.
  for (const value of values) assertEquals(typeof value, "number");
});

Deno.test("decodeCollectdGraphite() keeps fractional seconds to the microsecond", () => {
  const [point] = points(decodeCollectdGraphite("h.load.load.shortterm 0.05 1436372292.412"));
  assertEquals(point?.time, 1436372292_412000000n);
});

Deno.test("decodeCollectdGraphite() finds the postfix after the host, where collectd writes it, and at the end of the path", () => {
  const decode = createCollectdGraphiteDecoder({ postfix: ".dc1", postfixTag: "dc" });
  const result = decode(
    "web_example_org.dc1.load.load.shortterm 0.5 1436357630\n" +
      "web_example_org.load.load.shortterm.dc1 0.5 1436357630\n" +
      "web_example_org.load.load.shortterm 0.5 1436357630\n",
  );
  const expected = {
    measurement: "load_load_shortterm",
    tags: { host: "web_example_org", dc: "dc1" },
    fields: { value: 0.5 },
    time: 1436357630_000000000n,
  };
  assertEquals(points(result), [expected, expected]);
  assertEquals(result.errors.map((e) => e.index), [2]);
  assertMatch(result.errors[0]!.error, /expected the postfix "\.dc1" after the host/);
});

Deno.test("decodeCollectdGraphite() takes the host up to the postfix, so write_kafka's unescaped host names survive", () => {
  const decode = createCollectdGraphiteDecoder({ prefix: "dc1.", postfix: ".prod" });
  const [point] = points(decode("dc1.web.example.org.prod.cpu-0.cpu-idle 99 1795313943\r\n"));
  assertEquals(point?.tags, { host: "web.example.org" });
  assertEquals(point?.measurement, "cpu-0_cpu-idle");
});

Deno.test("decodeCollectdGraphite() reports a path without a delimiter as an error of its line only (kafka-influxdb crashed)", () => {
  const result = decodeCollectdGraphite(
    "bla 1 1436357630\nweb.load.load.shortterm 0.05 1436357630",
  );
  assertEquals(result.records.map((r) => r.index), [1]);
  assertEquals(result.errors, [{
    index: 0,
    error: 'Cannot decode collectd Graphite line: expected "<host>.<metric>" as path, got "bla"',
    data: "bla 1 1436357630",
  }]);
});

Deno.test("decodeCollectdGraphite() reports lines that are not three fields, bad values and bad timestamps, with the line", () => {
  const lines = [
    "web.load.load.shortterm 0.05",
    "web.load.load.shortterm 0.05 1436357630 x",
    "web.load.load.shortterm high 1436357630",
    "web.load.load.shortterm 0.05 -1",
    "web.load.load.shortterm 0.05 yesterday",
  ];
  const result = decodeCollectdGraphite(lines.join("\n"));
  assertEquals(result.records, []);
  assertEquals(result.errors.map((e) => e.data), lines);
  assertEquals(
    result.errors[0]!.error,
    'Cannot decode collectd Graphite line: expected "<path> <value> <timestamp>", got "web.load.load.shortterm 0.05"',
  );
  assertMatch(result.errors[2]!.error, /expected a number as value, got "high"$/);
  assertMatch(result.errors[3]!.error, /expected the timestamp in seconds >= 0, got "-1"$/);
  assertMatch(result.errors[4]!.error, /got "yesterday"$/);
});

Deno.test("decodeCollectdGraphite() reports tombstones, empty and non-UTF-8 messages", () => {
  assertMessageErrors(decodeCollectdGraphite);
});

Deno.test("collectdGraphiteDecoder reports a tag without its prefix or postfix, and clashing tags, as config problems", () => {
  assertEquals(build(collectdGraphiteDecoder, {}).problems, []);
  const alone = build(collectdGraphiteDecoder, {
    GRAPHITE_PREFIX_TAG: "datacenter",
    GRAPHITE_POSTFIX_TAG: "env",
  });
  assertEquals(alone.problems.map((p) => [p.name, p.value, p.message]), [
    ["GRAPHITE_PREFIX_TAG", "datacenter", 'needs "GRAPHITE_PREFIX" to be set too'],
    ["GRAPHITE_POSTFIX_TAG", "env", 'needs "GRAPHITE_POSTFIX" to be set too'],
  ]);
  const clash = build(collectdGraphiteDecoder, {
    GRAPHITE_PREFIX: "dc1.",
    GRAPHITE_PREFIX_TAG: "host",
    GRAPHITE_POSTFIX: ".prod",
    GRAPHITE_POSTFIX_TAG: "host",
    GRAPHITE_DELIMITER: "a b",
  });
  assertEquals(clash.problems.map((p) => p.name), [
    "GRAPHITE_DELIMITER",
    "GRAPHITE_PREFIX_TAG",
    "GRAPHITE_POSTFIX_TAG",
    "GRAPHITE_PREFIX_TAG/GRAPHITE_POSTFIX_TAG",
  ]);
});

Deno.test("collectdGraphiteDecoder is registered under kafka-influxdb's encoder names", () => {
  assertEquals(DECODERS["collectd_graphite"], collectdGraphiteDecoder);
  assertEquals(findDecoder(DECODERS, "collectd_graphite_encoder"), collectdGraphiteDecoder);
  assertEquals(
    findDecoder(DECODERS, "kafka_influxdb.encoder.collectd_graphite_encoder"),
    collectdGraphiteDecoder,
  );
  assertEquals(collectdGraphiteDecoder.kind, "points");
  assertEquals(collectdGraphiteDecoder.skipReason, "nan");
  assertEquals(
    collectdGraphiteDecoder.variables.map((v) => [v.name, v.default]),
    [
      ["GRAPHITE_DELIMITER", "."],
      ["GRAPHITE_PREFIX", undefined],
      ["GRAPHITE_PREFIX_TAG", undefined],
      ["GRAPHITE_POSTFIX", undefined],
      ["GRAPHITE_POSTFIX_TAG", undefined],
    ],
  );
});

Deno.test("decodeCollectdGraphite() refuses a value a float field cannot hold, quoting it as written", () => {
  const result = decodeCollectdGraphite(
    "h.a.b 1e400 1436357630\nh.a.b 1e-400 1436357630\nh.a.b 18446744073709551615 1436357630\n" +
      "h.a.b 9007199254740992 1436357630\nh.a.b 0 1436357630\nh.a.b 0.000 1436357630\n" +
      // Float literals of any magnitude are floats, rounded as every float is.
      "h.a.b 2.5E+300 1436357630\nh.a.b -1.5e308 1436357630\nh.a.b 9007199254740993.0 1436357630",
  );
  assertEquals(points(result).map((p) => p.fields["value"]), [
    9007199254740992,
    0,
    0,
    2.5e300,
    -1.5e308,
    9007199254740992,
  ]);
  assertEquals(result.errors.map((e) => [e.index, e.error]), [
    [
      0,
      'Cannot decode collectd Graphite line: expected a number a float field holds, got "1e400", ' +
      "which is beyond the range of a 64-bit float (about 1.8e308)",
    ],
    [
      1,
      'Cannot decode collectd Graphite line: expected a number a float field holds, got "1e-400", ' +
      "which is closer to 0 than a 64-bit float can hold (about 5e-324)",
    ],
    [
      2,
      "Cannot decode collectd Graphite line: expected a number a float field holds, got " +
      '"18446744073709551615", which is beyond 2^53, where a 64-bit float would store ' +
      "18446744073709551616 instead",
    ],
  ]);
});
