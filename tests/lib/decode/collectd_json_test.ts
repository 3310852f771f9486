import { collectdJsonDecoder, decodeCollectdJson } from "../../../lib/decode/collectd_json.ts";
import { DECODERS, findDecoder } from "../../../lib/decode/mod.ts";
import type { Point } from "../../../lib/record.ts";
import { assert, assertEquals, assertMatch } from "../../_assert.ts";
import { assertMessageErrors, runGoldenCases } from "./_golden.ts";

const SAMPLE = new URL("../../testdata/samples/collectd-write_http.json", import.meta.url);
const TESTDATA = new URL("../../testdata/collectd_json/", import.meta.url);

function points(result: ReturnType<typeof decodeCollectdJson>): Point[] {
  return result.records.map((r) => r.record as Point);
}

function valueList(values: unknown[], more: Record<string, unknown> = {}): string {
  return JSON.stringify({
    values,
    dstypes: values.map(() => "derive"),
    dsnames: values.length === 1 ? ["value"] : ["rx", "tx", "third"].slice(0, values.length),
    time: 1795303694.97,
    interval: 1,
    host: "xx.example.internal",
    plugin: "interface",
    plugin_instance: "lo",
    type: "if_octets",
    type_instance: "",
    ...more,
  });
}

Deno.test("decodeCollectdJson() reads the golden fixtures: real write_kafka and write_http output, kafka-influxdb's examples, nulls, poison lists", async () => {
  const cases = await runGoldenCases(collectdJsonDecoder, TESTDATA, 9);
  assert(cases.includes("write_http_sample"));
  assert(cases.includes("collectd_wiki_pretty"));
  assert(cases.includes("poison"));
});

Deno.test("decodeCollectdJson() reads all of collectd 5.12's write_http sample: 92 value lists, 60 points, 48 nulls skipped", async () => {
  // Five requests, one JSON array each, one per line.
  const text = await Deno.readTextFile(SAMPLE);
  const result = decodeCollectdJson(text);
  assertEquals(result.errors, []);
  assertEquals(result.skipped, 48);
  assertEquals(result.records.length, 60);
  const indexes = result.records.map((r) => r.index);
  assertEquals(indexes, [...indexes].sort((a, b) => a - b));
  assert(indexes.at(-1)! <= 91);
  for (const point of points(result)) {
    assertEquals(point.tags["host"], "xx.example.internal");
    for (const value of Object.values(point.fields)) assertEquals(typeof value, "number");
  }
  // Sent one request per message, the lines decode to the same points.
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  assertEquals(lines.length, 5);
  const perLine = lines.map((line) => decodeCollectdJson(line));
  assertEquals(perLine.flatMap(points), points(result));
  assertEquals(perLine.reduce((n, r) => n + r.skipped, 0), 48);
});

Deno.test("decodeCollectdJson() decodes kafka-influxdb's documented example as kafka-influxdb did, keeping the milliseconds", () => {
  // kafka-influxdb wrote "cpu_1_cpu,host=26f2fc918f50,type_instance=interrupt value=0 1436372292".
  const message =
    '[{"values":[0],"dstypes":["derive"],"dsnames":["value"],"time":1436372292.412,"interval":10.000,"host":"26f2fc918f50","plugin":"cpu","plugin_instance":"1","type":"cpu","type_instance":"interrupt"}]';
  assertEquals(decodeCollectdJson(new TextEncoder().encode(message)), {
    records: [{
      index: 0,
      record: {
        measurement: "cpu_1_cpu",
        tags: { host: "26f2fc918f50", type_instance: "interrupt" },
        fields: { value: 0 },
        time: 1436372292_412000000n,
      },
    }],
    skipped: 0,
    errors: [],
  });
});

Deno.test("decodeCollectdJson() names the fields of multi-value lists by dsnames: load, if_octets", () => {
  const load = valueList([0.41, 0.23, 0.09], {
    dsnames: ["shortterm", "midterm", "longterm"],
    plugin: "load",
    plugin_instance: "",
    type: "load",
  });
  const result = decodeCollectdJson(`[${load},${valueList([9733.18, 9733.5])}]`);
  assertEquals(points(result).map((p) => [p.measurement, p.fields]), [
    ["load_load", { shortterm: 0.41, midterm: 0.23, longterm: 0.09 }],
    ["interface_lo_if_octets", { rx: 9733.18, tx: 9733.5 }],
  ]);
});

Deno.test("decodeCollectdJson() skips and counts null values and keeps the others of their list", () => {
  const result = decodeCollectdJson(
    `[${valueList([null, null])},${valueList([null, 5])},${valueList([null])},${valueList([7])}]`,
  );
  assertEquals(result.skipped, 4);
  assertEquals(result.errors, []);
  assertEquals(result.records.map((r) => [r.index, (r.record as Point).fields]), [
    [1, { tx: 5 }],
    [3, { value: 7 }],
  ]);
});

Deno.test("decodeCollectdJson() reports a malformed value list alone and decodes its neighbours", () => {
  const bad = valueList([1, 2], { dsnames: ["rx"] });
  const result = decodeCollectdJson(
    `[${valueList([1])},${bad},${valueList([3])}]\n[${valueList([4])}]`,
  );
  assertEquals(points(result).map((p) => p.fields["value"]), [1, 3, 4]);
  assertEquals(result.records.map((r) => r.index), [0, 2, 3]);
  assertEquals(result.errors.length, 1);
  assertEquals(result.errors[0]!.index, 1);
  assertEquals(result.errors[0]!.data, bad);
  assertEquals(
    result.errors[0]!.error,
    'Cannot decode collectd JSON value list: expected "dsnames" to be an array naming each of the 2 values, got ["rx"]',
  );
});

Deno.test("decodeCollectdJson() reports a line that is not JSON as one error and reads the other lines", () => {
  const result = decodeCollectdJson(`[${valueList([1])}]\n[{"values":[2],\n[${valueList([3])}]\n`);
  assertEquals(points(result).map((p) => p.fields["value"]), [1, 3]);
  assertEquals(result.records.map((r) => r.index), [0, 2]);
  assertEquals(result.errors.map((e) => [e.index, e.data]), [[1, '[{"values":[2],']]);
  assertMatch(
    result.errors[0]!.error,
    /^Cannot decode collectd JSON: .*, got "\[\{\\"values\\":\[2\],"$/,
  );
});

Deno.test("decodeCollectdJson() reads a pretty-printed array spanning lines", () => {
  const pretty = JSON.stringify(JSON.parse(`[${valueList([1, 2])}]`), null, 2);
  assert(pretty.split("\n").length > 10);
  const result = decodeCollectdJson(pretty);
  assertEquals(result.errors, []);
  assertEquals(points(result).map((p) => p.fields), [{ rx: 1, tx: 2 }]);
});

Deno.test("decodeCollectdJson() reports tombstones, empty and non-UTF-8 messages", () => {
  assertMessageErrors(decodeCollectdJson);
});

Deno.test("collectdJsonDecoder is registered under kafka-influxdb's encoder names", () => {
  assertEquals(DECODERS["collectd_json"], collectdJsonDecoder);
  assertEquals(findDecoder(DECODERS, "collectd_json_encoder"), collectdJsonDecoder);
  assertEquals(
    findDecoder(DECODERS, "kafka_influxdb.encoder.collectd_json_encoder"),
    collectdJsonDecoder,
  );
  assertEquals(collectdJsonDecoder.kind, "points");
  assertEquals(collectdJsonDecoder.skipReason, "nan");
  assertEquals(collectdJsonDecoder.variables, []);
});

Deno.test("decodeCollectdJson() refuses a value a float field cannot hold, quoting it as written", () => {
  const list = (value: string, time = "1795303694.97") =>
    valueList([0]).replace('"values":[0]', `"values":[${value}]`).replace(
      '"time":1795303694.97',
      `"time":${time}`,
    );
  const cases: Array<[string, string]> = [
    ["1e400", 'value 1e400 of "value" is beyond the range of a 64-bit float (about 1.8e308)'],
    [
      "1e-400",
      'value 1e-400 of "value" is closer to 0 than a 64-bit float can hold (about 5e-324)',
    ],
    [
      "18446744073709551615",
      'value 18446744073709551615 of "value" is beyond 2^53, where a 64-bit float would store ' +
      "18446744073709551616 instead",
    ],
  ];
  for (const [value, why] of cases) {
    const result = decodeCollectdJson(`[${list(value)},${valueList([2])}]`);
    assertEquals(points(result).map((p) => p.fields["value"]), [2]);
    assertEquals(result.errors.map((e) => e.error), [
      `Cannot decode collectd JSON value list: ${why}`,
    ]);
    assert(result.errors[0]!.data!.includes(`"values":[${value}]`), result.errors[0]!.data);
  }
  // 1e20, float literals of any magnitude and a fraction with more digits than a double are floats.
  assertEquals(
    points(
      decodeCollectdJson(
        `[${list("1e20")},${list("0.1000000000000000000001")},${list("2.5E+300")},${
          list("1.5e308")
        },${list("9007199254740993.0")}]`,
      ),
    ).map((p) => p.fields["value"]),
    [1e20, 0.1, 2.5e300, 1.5e308, 9007199254740992],
  );
  const huge = decodeCollectdJson(`[${list("1", "1e400")}]`);
  assertEquals(huge.errors.map((e) => e.error), [
    'Cannot decode collectd JSON value list: expected "time" to be a number of seconds >= 0, got 1e400',
  ]);
});
