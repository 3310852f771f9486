/**
 * The connect rule against a proxy in front of each sink: a 502 or 503
 * with an empty body at start (the backend behind the proxy is away) is
 * waited for like an outage, with a reason that says what came back.
 *
 * @module
 */

import { Logger } from "../../lib/log.ts";
import { connectSink, SinkWriteError } from "../../lib/sink.ts";
import { Metrics } from "../../lib/metrics.ts";
import { RetryPolicy } from "../../lib/retry.ts";
import { TimeReader } from "../../lib/time.ts";
import { VarReader } from "../../lib/variables.ts";
import { SINKS } from "../../sinks/mod.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { fakeHttpServer } from "../_fake_http.ts";

const ENV: Record<string, (url: string) => Record<string, string>> = {
  clickhouse: (url) => ({ CLICKHOUSE_HOST: url, CLICKHOUSE_DATA_SCHEMA: "a:String" }),
  elastic: (url) => ({ ELASTIC_HOSTS: url }),
  influxdb: (url) => ({ INFLUXDB_URL: url, INFLUXDB_DBNAME: "flows" }),
  vm: (url) => ({ VM_URL: url, VM_JOB: "pmacct", VM_INSTANCE: "nf1" }),
};

for (const [name, module] of Object.entries(SINKS)) {
  for (const status of [502, 503]) {
    Deno.test(`${name} connect() waits on a proxy's ${status} with an empty body at start, naming the status`, async () => {
      const fake = fakeHttpServer(() => new Response(null, { status }));
      const reader = new VarReader(ENV[name]!(fake.url), module.variables);
      const { config } = module.parseConfig(reader);
      assertEquals(reader.problems, []);
      const sink = module.create(config, {
        time: new TimeReader(),
        log: new Logger({ write: () => {} }),
      });
      const lines: Array<Record<string, unknown>> = [];
      const metrics = new Metrics();
      const stop = new AbortController();
      try {
        let error: unknown;
        try {
          await sink.connect();
        } catch (thrown) {
          error = thrown;
        }
        assert(error instanceof SinkWriteError, String(error));
        assertEquals(error.action, "retry");
        assertMatch(error.message, new RegExp(`: HTTP ${status}`));
        // connectSink() waits (no throw), says why on every attempt, and keeps the sink down.
        const waiting = connectSink(sink, {
          policy: new RetryPolicy({ initialMs: 5, maxMs: 10 }),
          log: new Logger({ write: (line) => lines.push(JSON.parse(line)) }),
          signal: stop.signal,
          metrics,
        });
        await new Promise((resolve) => setTimeout(resolve, 60));
        stop.abort();
        assertEquals(await waiting, false);
        assert(lines.length > 0);
        for (const line of lines) {
          assertEquals(line["msg"], "Cannot reach the sink, retrying");
          assertMatch(String(line["error"]), new RegExp(`^Cannot connect to .*: HTTP ${status}`));
        }
        const state = metrics.reachability().get("sink");
        assertEquals(state?.up, false);
        assertMatch(state?.reason ?? "", new RegExp(`HTTP ${status}`));
      } finally {
        await sink.close();
        await fake.close();
      }
    });
  }
}
