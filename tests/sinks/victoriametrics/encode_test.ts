/**
 * Records to VictoriaMetrics import lines: labels, escaping, reserved names,
 * millisecond timestamps in a zone, and what is set aside before sending.
 *
 * @module
 */

import { utf8Length } from "../../../lib/text.ts";
import { TimeReader, type TimeWindow } from "../../../lib/time.ts";
import { VarReader } from "../../../lib/variables.ts";
import type { PrepareResult } from "../../../lib/record.ts";
import {
  parseVictoriaMetricsConfig,
  VICTORIAMETRICS,
} from "../../../sinks/victoriametrics/config.ts";
import {
  compileRecordEncoder,
  labelNameOf,
  metricValueOf,
  type VictoriaMetricsRow,
} from "../../../sinks/victoriametrics/encode.ts";
import { labelValueOf } from "../../../lib/fields.ts";
import { decodePmacct } from "../../../lib/decode/pmacct.ts";
import { assert, assertEquals, assertMatch, assertStrictEquals } from "../../_assert.ts";

/** 2026-11-22 00:00:00 UTC: "now" for the timestamp window. */
const NOW = Date.UTC(2026, 10, 22, 0, 0, 0);

/** The first record of tests/testdata/samples/pmacctd-print-json.jsonl. */
const SAMPLE = {
  event_type: "purge",
  peer_ip_src: "",
  ip_src: "127.0.0.1",
  ip_dst: "127.0.0.1",
  port_src: 54818,
  port_dst: 8123,
  ip_proto: "tcp",
  tos: 0,
  stamp_inserted: "2026-11-21 23:25:00",
  stamp_updated: "2026-11-21 23:27:47",
  packets: 6,
  bytes: 402,
};

function encoder(env: Record<string, string> = {}, zone = "UTC") {
  const reader = new VarReader(
    { VM_URL: "http://vm:8428", VM_JOB: "pmacct", VM_INSTANCE: "nfacctd-1", ...env },
    VICTORIAMETRICS.specs,
  );
  const { config } = parseVictoriaMetricsConfig(reader);
  assertEquals(reader.problems, []);
  const time = new TimeReader(zone, { clock: () => NOW });
  return compileRecordEncoder({ ...config, time, clock: () => NOW });
}

function row(result: PrepareResult<VictoriaMetricsRow>): VictoriaMetricsRow {
  if (!result.ok) throw new Error(`Expected a row, got ${result.rejection.error}`);
  return result.row;
}

function parsed(result: PrepareResult<VictoriaMetricsRow>): unknown[] {
  return row(result).lines.map((l) => JSON.parse(l));
}

function rejection(result: PrepareResult<VictoriaMetricsRow>): string {
  if (result.ok) throw new Error(`Expected a rejection, got ${JSON.stringify(result.row)}`);
  assertStrictEquals(result.rejection.reason, "convert");
  return result.rejection.error;
}

Deno.test("encoder writes one line per metric with job, instance, the other fields and ms timestamps", () => {
  const result = encoder()(SAMPLE);
  const labels = {
    job: "pmacct",
    instance: "nfacctd-1",
    ip_src: "127.0.0.1",
    ip_dst: "127.0.0.1",
    port_src: "54818",
    port_dst: "8123",
    ip_proto: "tcp",
    tos: "0",
  };
  const ms = Date.UTC(2026, 10, 21, 23, 27, 47);
  assertEquals(row(result).lines, [
    JSON.stringify({
      metric: { __name__: "bytes", ...labels },
      values: [402],
      timestamps: [ms],
    }),
    JSON.stringify({
      metric: { __name__: "packets", ...labels },
      values: [6],
      timestamps: [ms],
    }),
  ]);
  assert(result.ok);
  assertStrictEquals(
    result.bytes,
    row(result).lines.reduce((n, l) => n + utf8Length(l) + 1, 0),
  );
  assertStrictEquals(row(result).setAside, undefined);
});

Deno.test("encoder gives label values as proper strings: numbers, booleans, JSON; no null, no empty", () => {
  const [line] = parsed(
    encoder({ VM_METRICS_NAMES: "bytes" })({
      stamp_updated: "2026-11-21 23:27:47",
      bytes: 1,
      float: 0.5,
      big: 1e21,
      neg: -3,
      yes: true,
      no: false,
      nothing: null,
      empty: "",
      list: [1, "a"],
      obj: { a: 1 },
      quote: 'say "hi" \\ \n\t',
      unicode: "Zürich ✓ 🙂",
    }),
  ) as Array<{ metric: Record<string, string> }>;
  assertEquals(line!.metric, {
    __name__: "bytes",
    job: "pmacct",
    instance: "nfacctd-1",
    float: "0.5",
    big: "1e+21",
    neg: "-3",
    yes: "true",
    no: "false",
    list: '[1,"a"]',
    obj: '{"a":1}',
    quote: 'say "hi" \\ \n\t',
    unicode: "Zürich ✓ 🙂",
  });
  assertStrictEquals(labelValueOf(null), undefined);
  assertStrictEquals(labelValueOf(""), undefined);
  assertStrictEquals(labelValueOf(12n), "12");
});

Deno.test("encoder never lets a record field override job, instance or __name__", () => {
  const [line] = parsed(
    encoder({ VM_METRICS_NAMES: "bytes" })({
      stamp_updated: "2026-11-21 23:27:47",
      bytes: 1,
      job: "evil",
      instance: "evil-instance",
      __name__: "evil_metric",
      exported_job: "already",
      __meta: "x",
    }),
  ) as Array<{ metric: Record<string, string> }>;
  assertEquals(line!.metric, {
    __name__: "bytes",
    job: "pmacct",
    instance: "nfacctd-1",
    exported_job: "already",
    exported_exported_job: "evil",
    exported_instance: "evil-instance",
    exported___name__: "evil_metric",
    exported___meta: "x",
  });
});

Deno.test("encoder sanitizes label names to [a-zA-Z_][a-zA-Z0-9_]*", () => {
  assertEquals(labelNameOf("ip_src"), { name: "ip_src", renamed: false });
  assertEquals(labelNameOf("mpls-label.top"), { name: "mpls_label_top", renamed: true });
  assertEquals(labelNameOf("1st"), { name: "_1st", renamed: true });
  assertEquals(labelNameOf(""), { name: "_", renamed: true });
  assertEquals(labelNameOf("größe"), { name: "gr__e", renamed: true });
  const [line] = parsed(
    encoder({ VM_METRICS_NAMES: "bytes" })({
      stamp_updated: "2026-11-21 23:27:47",
      "a-b": "renamed",
      a_b: "kept",
      bytes: 1,
    }),
  ) as Array<{ metric: Record<string, string> }>;
  assertEquals(line!.metric, {
    __name__: "bytes",
    job: "pmacct",
    instance: "nfacctd-1",
    a_b: "kept",
    exported_a_b: "renamed",
  });
});

Deno.test("encoder reads stamp_updated in PMACCT_TIMEZONE, in every pmacct form, to the millisecond", () => {
  const at = (value: unknown, zone = "UTC") => {
    const [line] = parsed(
      encoder({ VM_METRICS_NAMES: "bytes" }, zone)({
        stamp_updated: value,
        bytes: 1,
      }),
    ) as Array<{ timestamps: number[] }>;
    return line!.timestamps[0];
  };
  const utc = Date.UTC(2026, 10, 21, 23, 27, 47);
  assertStrictEquals(at("2026-11-21 23:27:47"), utc);
  // Berlin is UTC+1 in November: local 23:27:47 is 22:27:47 UTC.
  assertStrictEquals(at("2026-11-21 23:27:47", "Europe/Berlin"), utc - 3600_000);
  assertStrictEquals(at("2026-11-21 23:27:47.123456"), utc + 123);
  assertStrictEquals(at(String(utc / 1000)), utc);
  assertStrictEquals(at(utc / 1000 + 0.5), utc + 500);
  assertStrictEquals(at("2026-11-21T23:27:47+01:00", "America/New_York"), utc - 3600_000);
});

Deno.test("encoder takes the time from VM_TIMESTAMP_FIELD and keeps it out of the labels", () => {
  const [line] = parsed(
    encoder({ VM_TIMESTAMP_FIELD: "stamp_inserted", VM_METRICS_NAMES: "bytes" })(
      SAMPLE,
    ),
  ) as Array<{ metric: Record<string, string>; timestamps: number[] }>;
  assertStrictEquals(line!.timestamps[0], Date.UTC(2026, 10, 21, 23, 25, 0));
  assert(!("stamp_inserted" in line!.metric));
  assert(!("stamp_updated" in line!.metric));
});

Deno.test("encoder leaves out VM_AVOID_LABELS (prefixes too) or keeps only VM_LABELS", () => {
  const record = {
    ...SAMPLE,
    writer_id: "default_kafka/18604",
    timestamp_start: "2026-11-21 23:20:00.000000",
    timestamp_end: "2026-11-21 23:21:00.000000",
    flows: 2,
  };
  const [byDefault] = parsed(encoder()(record)) as Array<{ metric: Record<string, string> }>;
  assertEquals(Object.keys(byDefault!.metric), [
    "__name__",
    "job",
    "instance",
    "ip_src",
    "ip_dst",
    "port_src",
    "port_dst",
    "ip_proto",
    "tos",
  ]);
  const [original] = parsed(
    encoder({ VM_AVOID_LABELS: "bytes,packets,stamp_updated" })(
      record,
    ),
  ) as Array<{ metric: Record<string, string> }>;
  assertEquals(original!.metric["writer_id"], "default_kafka/18604");
  assertEquals(original!.metric["stamp_inserted"], "2026-11-21 23:25:00");
  const [allowed] = parsed(encoder({ VM_LABELS: "ip_*,tos" })(record)) as Array<
    { metric: Record<string, string> }
  >;
  assertEquals(allowed!.metric, {
    __name__: "bytes",
    job: "pmacct",
    instance: "nfacctd-1",
    ip_src: "127.0.0.1",
    ip_dst: "127.0.0.1",
    ip_proto: "tcp",
    tos: "0",
  });
});

Deno.test("encoder sets aside a metric that is missing, null, not a number or not finite, keeping the others", () => {
  const encode = encoder({ VM_METRICS_NAMES: "bytes,packets,flows" });
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ packets: null }, "packets: is null"],
    [{ packets: "abc" }, 'packets: "abc" is not a number'],
    [{ packets: "NaN" }, 'packets: "NaN" is not a number'],
    [{ packets: Infinity }, "packets: Infinity is not a finite number"],
    [{ packets: NaN }, "packets: NaN is not a finite number"],
    [
      { packets: "1e999" },
      'packets: "1e999" is beyond the range of a 64-bit float (about 1.8e308)',
    ],
    [{ packets: true }, "packets: true is not a number"],
    [{ packets: [1] }, "packets: [1] is not a number"],
  ];
  for (const [fields, why] of cases) {
    const r = row(encode({ ...SAMPLE, flows: 1, ...fields }));
    assertEquals(r.lines.map((l) => JSON.parse(l).metric.__name__), ["bytes", "flows"]);
    assertEquals(r.setAside, [why]);
  }
  const missing = row(encode(SAMPLE));
  assertEquals(missing.setAside, ["flows: is missing"]);
  const numericText = parsed(encode({ ...SAMPLE, flows: " 3 ", bytes: "1.5e3" })) as Array<
    { values: number[] }
  >;
  assertEquals(numericText.map((l) => l.values[0]), [1500, 6, 3]);
  assertEquals(metricValueOf("0x10"), { ok: false, why: '"0x10" is not a number' });
  assertEquals(metricValueOf(-0), { ok: true, value: -0 });
});

Deno.test("encoder rejects a record whose every metric is invalid", () => {
  const error = rejection(encoder()({ ...SAMPLE, bytes: "x", packets: null }));
  assertStrictEquals(
    error,
    'Cannot convert record: no metric field has a number value (bytes: "x" is not a number; packets: is null)',
  );
});

Deno.test("encoder rejects a record without a readable timestamp, or outside the window", () => {
  const encode = encoder();
  assertMatch(
    rejection(encode({ bytes: 1, packets: 1 })),
    /it has no field "stamp_updated" \(VM_TIMESTAMP_FIELD\)/,
  );
  assertMatch(
    rejection(encode({ ...SAMPLE, stamp_updated: "yesterday" })),
    /field "stamp_updated" is not a timestamp: Cannot read timestamp/,
  );
  assertMatch(
    rejection(encode({ ...SAMPLE, stamp_updated: "2026-10-21 23:59:59" })),
    /is 2678401 s old, older than VM_TIMESTAMP_MAX_AGE \(2678400 s\)/,
  );
  row(encode({ ...SAMPLE, stamp_updated: "2026-10-22 00:00:00" }));
  row(encode({ ...SAMPLE, stamp_updated: "2026-11-22 00:10:00" }));
  assertMatch(
    rejection(encode({ ...SAMPLE, stamp_updated: "2026-11-22 00:10:01" })),
    /is 601 s in the future, more than VM_TIMESTAMP_MAX_FUTURE \(600 s\); check PMACCT_TIMEZONE/,
  );
  const wide = encoder({ VM_TIMESTAMP_MAX_AGE: String(100 * 365 * 86400) });
  row(wide({ ...SAMPLE, stamp_updated: "2001-09-09 01:46:40" }));
});

Deno.test("encoder rejects labels the server would change: lone surrogates, long values, too many", () => {
  const encode = encoder({ VM_MAX_LABEL_VALUE_LENGTH: "10", VM_MAX_LABELS: "5" });
  assertMatch(
    rejection(encode({ ...SAMPLE, ip_proto: "tcp\ud800" })),
    /field "ip_proto" is not valid Unicode \(a lone surrogate\)/,
  );
  assertMatch(
    rejection(encode({ ...SAMPLE, ip_src: "2001:db8::1" })),
    /field "ip_src" is 11 bytes long, longer than VM_MAX_LABEL_VALUE_LENGTH \(10\)/,
  );
  // 10 bytes in 5 characters is within the limit: the label count is what fails next.
  assertMatch(
    rejection(encode({ ...SAMPLE, ip_proto: "üüüüü" })),
    /^Cannot convert record: it gives 9 labels/,
  );
  assertMatch(
    rejection(encode(SAMPLE)),
    /it gives 9 labels, more than VM_MAX_LABELS \(5\); leave fields out with VM_AVOID_LABELS or VM_LABELS/,
  );
  row(encoder({ VM_MAX_LABELS: "9" })(SAMPLE));
});

Deno.test("utf8Length() counts UTF-8 bytes", () => {
  for (const text of ["", "abc", "Zürich", "✓", "🙂", 'x"\\\n']) {
    assertStrictEquals(utf8Length(text), new TextEncoder().encode(text).length, text);
  }
});

Deno.test("encoder keeps label values exact and sets aside sample values VictoriaMetrics would store changed", () => {
  const encode = encoder({ VM_METRICS_NAMES: "bytes,packets,flows" });
  const record = decodePmacct(
    '{"stamp_updated": "2026-11-21 23:27:47", "peer_as": 18446744073709551615, ' +
      '"bytes": 18446744073709551615, "packets": 9007199254740992, "flows": 1e400}',
  ).records[0]!.record;
  const r = row(encode(record));
  assertEquals(r.lines.map((l) => JSON.parse(l).metric.__name__), ["packets"]);
  // The label keeps the digits; the line is written with them, not with a rounded number.
  assert(r.lines[0]!.includes('"peer_as":"18446744073709551615"'), r.lines[0]);
  assert(r.lines[0]!.includes('"values":[9007199254740992]'), r.lines[0]);
  assertEquals(r.setAside, [
    "bytes: 18446744073709551615 is beyond 2^53, where VictoriaMetrics does not store numbers exactly",
    "flows: 1e400 is beyond the range of a 64-bit float (about 1.8e308)",
  ]);
  // A float literal of any magnitude is stored as a float; an integer literal
  // beyond 2^53 is not, even one a double holds (1.79.5 stored 2^60 changed).
  const large = row(
    encode(
      decodePmacct(
        '{"stamp_updated": "2026-11-21 23:27:47", "bytes": 2.5E+300, "packets": "1.5e308", ' +
          '"flows": 1152921504606846976}',
      ).records[0]!.record,
    ),
  );
  assertEquals(large.lines.map((l) => JSON.parse(l).values), [[2.5e300], [1.5e308]]);
  assertEquals(large.setAside, [
    "flows: 1152921504606846976 is beyond 2^53, where VictoriaMetrics does not store numbers exactly",
  ]);
  const tiny = row(encode({ ...SAMPLE, packets: "1e-400" }));
  assertEquals(tiny.setAside, [
    'packets: "1e-400" is closer to 0 than a 64-bit float can hold (about 5e-324)',
    "flows: is missing",
  ]);
});

Deno.test("encoder sets aside records outside the record-time window every sink has", () => {
  const encode = encoder({ VM_TIMESTAMP_MAX_AGE: String(100 * 365 * 86400) });
  const old = encode({ ...SAMPLE, stamp_updated: "0050-06-01 12:00:00" });
  assert(!old.ok);
  assertStrictEquals(
    old.rejection.error,
    'Cannot convert record: field "stamp_updated" "0050-06-01 12:00:00" is before ' +
      "RECORD_TIME_MIN (1970-01-01T00:00:00Z)",
  );
});

Deno.test("encoder names the narrower bound when a time is outside both the record-time window and VM_TIMESTAMP_MAX_AGE/_FUTURE", () => {
  const at = (stamp: string) => ({ ...SAMPLE, stamp_updated: stamp });
  const withWindow = (env: Record<string, string>, window: TimeWindow) => {
    const reader = new VarReader(
      { VM_URL: "http://vm:8428", VM_JOB: "pmacct", VM_INSTANCE: "nfacctd-1", ...env },
      VICTORIAMETRICS.specs,
    );
    const { config } = parseVictoriaMetricsConfig(reader);
    assertEquals(reader.problems, []);
    const time = new TimeReader("UTC", { window, clock: () => NOW });
    return compileRecordEncoder({ ...config, time, clock: () => NOW });
  };
  // The defaults: VictoriaMetrics' 600 s ahead and 31 days back are the narrower.
  const defaults = encoder();
  assertMatch(
    rejection(defaults(at("2099-01-01 00:00:00"))),
    /"2099-01-01 00:00:00" is \d+ s in the future, more than VM_TIMESTAMP_MAX_FUTURE \(600 s\)/,
  );
  assertMatch(
    rejection(defaults(at("2020-01-01 00:00:00"))),
    /"2020-01-01 00:00:00" is \d+ s old, older than VM_TIMESTAMP_MAX_AGE \(2678400 s\)/,
  );
  // A window narrower than VictoriaMetrics' bounds speaks for itself, outside both or only it.
  const narrow = withWindow({ VM_TIMESTAMP_MAX_FUTURE: "172800" }, {
    minSeconds: Date.UTC(2026, 10, 1) / 1000,
    maxFutureMs: 3_600_000,
  });
  for (const stamp of ["2099-01-01 00:00:00", "2026-11-22 02:00:00"]) {
    assertMatch(
      rejection(narrow(at(stamp))),
      /is more than RECORD_TIME_MAX_FUTURE \(3600 s\) ahead of the clock \(2026-11-22T00:00:00Z\)/,
      stamp,
    );
  }
  for (const stamp of ["2020-01-01 00:00:00", "2026-10-25 00:00:00"]) {
    assertMatch(
      rejection(narrow(at(stamp))),
      /is before RECORD_TIME_MIN \(2026-11-01T00:00:00Z\)$/,
      stamp,
    );
  }
  // Between the bounds: VictoriaMetrics' own bound when it is the one crossed.
  const wide = withWindow({ VM_TIMESTAMP_MAX_FUTURE: "60" }, {
    minSeconds: 0,
    maxFutureMs: 3_600_000,
  });
  assertMatch(
    rejection(wide(at("2026-11-22 00:30:00"))),
    /is 1800 s in the future, more than VM_TIMESTAMP_MAX_FUTURE \(60 s\)/,
  );
  row(wide(at("2026-11-22 00:01:00")));
});
