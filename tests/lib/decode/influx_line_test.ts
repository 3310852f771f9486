import {
  checkLine,
  decodeInfluxLine,
  influxLineDecoder,
  lineTimestamp,
} from "../../../lib/decode/influx_line.ts";
import { DECODERS, findDecoder } from "../../../lib/decode/mod.ts";
import type { RawLine } from "../../../lib/record.ts";
import { assert, assertEquals, assertStrictEquals } from "../../_assert.ts";
import { assertMessageErrors, runGoldenCases } from "./_golden.ts";

const TESTDATA = new URL("../../testdata/influx_line/", import.meta.url);

function lines(result: ReturnType<typeof decodeInfluxLine>): string[] {
  return result.records.map((r) => (r.record as RawLine).line);
}

Deno.test("decodeInfluxLine() reads the golden fixtures: kafka-influxdb's examples, escapes and quotes, CRLF and comments, poison lines", async () => {
  const cases = await runGoldenCases(influxLineDecoder, TESTDATA, 4);
  assert(cases.includes("kafka_influxdb_readme"));
  assert(cases.includes("escapes_and_quotes"));
  assert(cases.includes("poison"));
});

Deno.test("decodeInfluxLine() passes each line through unchanged", () => {
  const message = [
    "cpu,host=server01,region=uswest value=1.0 1434055562000000000",
    "temperature,machine=unit42,type=assembly internal=32,external=100 1434055562000000035",
    "mem,host=a used=1024i,free=2u,ok=t",
  ];
  const result = decodeInfluxLine(new TextEncoder().encode(message.join("\n") + "\n"));
  assertEquals(result.errors, []);
  assertEquals(lines(result), message);
  assertEquals(result.records.map((r) => r.index), [0, 1, 2]);
});

Deno.test("decodeInfluxLine() passes a one-line message through as the same string", () => {
  const line = "cpu,host=a value=1 1434055562000000000";
  assertStrictEquals(lines(decodeInfluxLine(line))[0], line);
});

Deno.test("decodeInfluxLine() keeps escaped spaces and commas and quoted strings with spaces in one line", () => {
  const message = [
    "disk\\ io,host=web\\ 1,path=/var\\,log read\\ bytes=42i 1436357630000000000",
    'log,host=web msg="started, listening on port=8080 (tcp)",level="info"',
    'log,host=web msg="say \\"hi\\" to all" 1436357630000000000',
  ];
  const result = decodeInfluxLine(message.join("\n"));
  assertEquals(result.errors, []);
  assertEquals(lines(result), message);
});

Deno.test("decodeInfluxLine() strips CR, leaves out blank lines and # comments", () => {
  const result = decodeInfluxLine(
    "# comment\r\ncpu value=1\r\n\r\n  # indented\r\nmem used=2i\r\n",
  );
  assertEquals(result.errors, []);
  assertEquals(lines(result), ["cpu value=1", "mem used=2i"]);
  assertEquals(decodeInfluxLine("# only a comment\n"), { records: [], skipped: 0, errors: [] });
});

Deno.test("decodeInfluxLine() reports a line the server would refuse as an error of its own, with the line", () => {
  const result = decodeInfluxLine("cpu value=1\ncpu\\ value=1\ncpu,host=a value=2\n");
  assertEquals(lines(result), ["cpu value=1", "cpu,host=a value=2"]);
  assertEquals(result.records.map((r) => r.index), [0, 2]);
  assertEquals(result.errors, [{
    index: 1,
    error:
      'Cannot decode InfluxDB line protocol: expected a field set ("<key>=<value>") after an unescaped space, got "cpu\\\\ value=1"',
    data: "cpu\\ value=1",
  }]);
});

Deno.test("checkLine() takes what InfluxDB takes and refuses lines without measurement, field set or integer time", () => {
  const good = [
    "cpu value=1",
    "cpu,host=a value=1 1434055562000000000",
    "cpu value=1 -1",
    'cpu msg="a b, c=d"',
    'cpu msg=""',
    'cpu a=1,b=2i,c=true,d="x" 1',
    "cpu\\,01,host=server\\ A value=1.0",
    "cpu value=1  ",
  ];
  for (const line of good) assertEquals(checkLine(line), undefined, line);
  const bad = [
    "cpu",
    "cpu ",
    "cpu,host=a",
    "cpu\\ value=1",
    "cpu value",
    "cpu value=",
    "cpu =1",
    "cpu value=1,",
    'cpu msg="open',
    'cpu msg="a"b',
    ",host=a value=1",
    "cpu value=1 1.5",
    "cpu value=1 1 2",
  ];
  for (const line of bad) assert(checkLine(line) !== undefined, line);
});

Deno.test("decodeInfluxLine() reports tombstones, empty and non-UTF-8 messages", () => {
  assertMessageErrors(decodeInfluxLine);
});

Deno.test("influxLineDecoder is registered under kafka-influxdb's echo encoder names", () => {
  assertEquals(DECODERS["influx_line"], influxLineDecoder);
  for (
    const name of ["echo", "echo_encoder", "line_protocol", "kafka_influxdb.encoder.echo_encoder"]
  ) {
    assertEquals(findDecoder(DECODERS, name), influxLineDecoder, name);
  }
  assertEquals(influxLineDecoder.kind, "lines");
  assertEquals(influxLineDecoder.skipReason, "none");
});

Deno.test("lineTimestamp() gives a line's timestamp as written, or none", () => {
  assertEquals(lineTimestamp("cpu,host=a value=1 1700000000"), "1700000000");
  assertEquals(lineTimestamp('cpu s="a b" -5  '), "-5");
  assertEquals(lineTimestamp("cpu value=1"), undefined);
  assertEquals(lineTimestamp("cpu value=1 "), undefined);
  assertEquals(lineTimestamp("not line protocol"), undefined);
});
