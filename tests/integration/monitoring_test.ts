/**
 * The Grafana dashboard (`deploy/grafana/dashboards/sluice.json`) and the
 * alert rules (`deploy/prometheus/alerts.yml`) against a real Prometheus
 * (Debian's `prometheus`, on a free loopback port) scraping real sluice
 * processes every second, fed by the local Kafka and ClickHouse of
 * `scripts/services.sh`: every panel query and every operand of every alert
 * condition returns data, and the sink-down alert fires for a sluice whose
 * ClickHouse does not answer. `promtool` checks the rules, their unit tests
 * (`deploy/prometheus/alerts_test.yml`) and the compose stack's Prometheus
 * configuration. Without `prometheus` and `promtool` these tests fail.
 *
 * @module
 */

import { parse, stringify } from "yaml";
import { flowMessages } from "../_flows.ts";
import { createTopic, produce } from "../_kafka.ts";
import { clickhouseUrl, uniqueName } from "../_services.ts";
import {
  clickhouseSinkEnv,
  type SluiceProcess,
  startSluice,
  stopQuietly,
  waitFor,
} from "../_sluice.ts";
import { assert, assertEquals, assertMatch } from "../_assert.ts";

const DEPLOY = new URL("../../deploy/", import.meta.url);
const PROMETHEUS_DIR = new URL("prometheus/", DEPLOY).pathname;
const PROMETHEUS_YML = new URL("prometheus/prometheus.yml", DEPLOY).pathname;
const ALERTS_YML = new URL("prometheus/alerts.yml", DEPLOY).pathname;
const DASHBOARD_JSON = new URL("grafana/dashboards/sluice.json", DEPLOY).pathname;
const DATASOURCES_YML = new URL("grafana/provisioning/datasources/prometheus.yml", DEPLOY).pathname;

const SCHEMA =
  "seq:UInt64,ip_src:String,ip_dst:String,port_src:UInt16,port_dst:UInt16,ip_proto:String," +
  "stamp_updated:DateTime,packets:UInt64,bytes:UInt64";

/** One alerting or recording rule of a Prometheus rules file. */
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
}

/** A Prometheus rules file. */
interface RulesFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}

/** One series of an instant query's answer. */
interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A panel of the dashboard, rows' panels included. */
interface Panel {
  title: string;
  type: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; datasource?: { type: string; uid: string } }>;
  panels?: Panel[];
}

/**
 * Runs a command to its end and returns its exit code and all it printed.
 *
 * @param command The program.
 * @param args Its arguments.
 * @returns The code and stdout followed by stderr.
 * @throws {Error} When the program is not installed.
 */
async function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    throw new Error(
      `Cannot run ${command}: install Debian's prometheus package (scripts/setup.sh)`,
      { cause: error },
    );
  }
  const text = new TextDecoder();
  return { code: out.code, output: text.decode(out.stdout) + text.decode(out.stderr) };
}

/**
 * The panels of the dashboard, those inside rows too.
 *
 * @param panels The top-level panels.
 * @returns Every panel.
 */
function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/**
 * The operands of an alert condition: the expression split at its top-level
 * comparisons (`==`, `>`, ...) and set operators (`and`, `or`, `unless`,
 * with their `on (...)` or `ignoring (...)`), parentheses around a whole
 * part unwrapped, number literals left out. `a > 0 unless on (x) (b < 300)`
 * gives `a` and `b`: each must return data for the condition to mean anything.
 *
 * @param expr A PromQL condition.
 * @returns The operands, as PromQL expressions.
 */
function conditionOperands(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = "";
  let start = 0;
  const split = (at: number, length: number) => {
    parts.push(expr.slice(start, at));
    start = at + length;
  };
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (quote !== "") {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
      continue;
    }
    if (c === '"' || c === "'" || c === "`") quote = c;
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    else if (depth === 0) {
      const comparison = /^(==|!=|>=|<=|>|<)/.exec(expr.slice(i));
      const set = /^(and|or|unless)(?=[\s(])/.exec(expr.slice(i));
      if (comparison) {
        split(i, comparison[0].length);
        i += comparison[0].length - 1;
      } else if (set && (i === 0 || /[\s)]/.test(expr[i - 1]!))) {
        split(i, set[0].length);
        i += set[0].length - 1;
      }
    }
  }
  parts.push(expr.slice(start));
  const operands: string[] = [];
  for (const part of parts) {
    const operand = part.trim()
      .replace(/^bool\s+/, "")
      .replace(/^(on|ignoring)\s*\([^)]*\)\s*/, "")
      .replace(/^(group_left|group_right)\s*(\([^)]*\))?\s*/, "")
      .trim();
    if (operand === "" || /^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$/i.test(operand)) continue;
    const inner = wrapped(operand);
    if (inner !== undefined) operands.push(...conditionOperands(inner));
    else if (parts.length > 1) operands.push(...conditionOperands(operand));
    else operands.push(operand);
  }
  return operands;
}

/** The inside of `(...)` when the parentheses enclose the whole expression, else undefined. */
function wrapped(expr: string): string | undefined {
  if (!expr.startsWith("(") || !expr.endsWith(")")) return undefined;
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    if (expr[i] === "(") depth++;
    else if (expr[i] === ")") depth--;
    if (depth === 0 && i < expr.length - 1) return undefined;
  }
  return expr.slice(1, -1);
}

/**
 * A loopback port nothing listens on now.
 *
 * @returns The port.
 */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A Prometheus server started by a test. */
interface PrometheusProcess {
  /** E.g. `http://127.0.0.1:40123`. */
  url: string;
  /** What it logged so far. */
  log: string[];
  /** Stops it and waits for its exit. */
  stop(): Promise<void>;
}

/**
 * Starts Debian's `prometheus` on a free loopback port with a config file
 * and waits until it is ready.
 *
 * @param dir A temporary folder for its data.
 * @param config The path of its configuration.
 * @returns The running server.
 * @throws {Error} When it is not installed or not ready within 30 s.
 */
async function startPrometheus(dir: string, config: string): Promise<PrometheusProcess> {
  const port = freePort();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("prometheus", {
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new Error(
      "Cannot start prometheus: install Debian's prometheus package (scripts/setup.sh)",
      { cause: error },
    );
  }
  const log: string[] = [];
  const pumping = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log.push(chunk);
  })();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await pumping;
  };
  try {
    await waitFor(
      async () => {
        const exited = await Promise.race([child.status, Promise.resolve(undefined)]);
        if (exited) throw new Error(`prometheus exited at start: ${log.join("")}`);
        return await fetch(`${url}/-/ready`).then(async (r) => {
          await r.body?.cancel();
          return r.ok;
        }, () => false);
      },
      "prometheus ready",
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, log, stop };
}

/**
 * Runs an instant query.
 *
 * @param prometheus The server.
 * @param expr The PromQL expression.
 * @returns The series of the answer.
 * @throws {Error} When Prometheus refuses the query (bad syntax).
 */
async function query(prometheus: PrometheusProcess, expr: string): Promise<PromSample[]> {
  const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = await response.json();
  if (body.status !== "success") {
    throw new Error(`Cannot query Prometheus: ${expr}: ${body.errorType}: ${body.error}`);
  }
  return body.data.result as PromSample[];
}

/**
 * Waits until every expression returns data; fails listing those that never did.
 *
 * @param prometheus The server.
 * @param exprs The expressions, each with what it comes from.
 * @param timeoutMs How long to wait.
 */
async function assertAllReturnData(
  prometheus: PrometheusProcess,
  exprs: ReadonlyArray<{ from: string; expr: string }>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let empty = [...exprs];
  for (;;) {
    const still: typeof empty = [];
    for (const e of empty) {
      if ((await query(prometheus, e.expr)).length === 0) still.push(e);
    }
    empty = still;
    if (empty.length === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  assertEquals(
    empty,
    [],
    `Cannot get data for these expressions:\n${
      empty.map((e) => `${e.from}: ${e.expr}`).join("\n")
    }`,
  );
}

Deno.test("conditionOperands() splits an alert condition at its comparisons and set operators", () => {
  assertEquals(conditionOperands("sluice_sink_up == 0"), ["sluice_sink_up"]);
  assertEquals(conditionOperands('up{job="sluice"} == 0'), ['up{job="sluice"}']);
  assertEquals(
    conditionOperands('sum by (sink) (rate(x_total{reason!="a>b"}[5m])) > 0'),
    ['sum by (sink) (rate(x_total{reason!="a>b"}[5m]))'],
  );
  assertEquals(
    conditionOperands(
      "(sum by (job, instance) (a + b) > 0)\nunless on (job, instance)\n" +
        "(time() - max by (job, instance) (c) < 300)",
    ),
    ["sum by (job, instance) (a + b)", "time() - max by (job, instance) (c)"],
  );
  assertEquals(
    conditionOperands("sum by (t) (delta(lag[10m])) > 0 and sum by (t) (lag) > 1e4"),
    ["sum by (t) (delta(lag[10m]))", "sum by (t) (lag)"],
  );
  assertEquals(conditionOperands("max(errors_or_andless) >= bool 2"), ["max(errors_or_andless)"]);
});

Deno.test("promtool passes the alert rules, their unit tests and the compose stack's Prometheus config", async () => {
  const check = await run("promtool", ["check", "rules", ALERTS_YML]);
  assertEquals(check.code, 0, check.output);
  assertMatch(check.output, /SUCCESS: \d+ rules found/);
  // alerts_test.yml names alerts.yml relative to the working directory.
  const unit = await new Deno.Command("promtool", {
    args: ["test", "rules", "alerts_test.yml"],
    cwd: PROMETHEUS_DIR,
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error("Cannot run promtool: install Debian's prometheus package", { cause: error });
  });
  const said = new TextDecoder().decode(unit.stdout) + new TextDecoder().decode(unit.stderr);
  assertEquals(unit.code, 0, said);
  assertMatch(said, /SUCCESS/);
  const config = await run("promtool", ["check", "config", PROMETHEUS_YML]);
  assertEquals(config.code, 0, config.output);
});

Deno.test("the dashboard names the provisioned Prometheus datasource by uid and shows the metrics docs/operations.md lists", async () => {
  const text = await Deno.readTextFile(DASHBOARD_JSON);
  assert(!text.includes("${DS"), "no ${DS_...} input variables");
  const dashboard = JSON.parse(text);
  assertEquals(dashboard.__inputs, undefined);
  const datasources = parse(await Deno.readTextFile(DATASOURCES_YML)) as {
    datasources: Array<{ uid: string; type: string }>;
  };
  const provisioned = { type: "prometheus", uid: datasources.datasources[0]!.uid };
  const panels = allPanels(dashboard.panels as Panel[]).filter((p) => p.type !== "row");
  assert(panels.length >= 10, `${panels.length} panels`);
  for (const panel of panels) {
    assertEquals(panel.datasource, provisioned, panel.title);
    assert((panel.targets ?? []).length > 0, `${panel.title} has queries`);
    for (const target of panel.targets ?? []) assertEquals(target.datasource, provisioned);
  }
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join("\n");
  for (
    const family of [
      "sluice_records_received_total",
      "sluice_records_written_total",
      "sluice_records_rejected_total",
      "sluice_dead_letters_total",
      "sluice_batch_duration_seconds_bucket",
      "sluice_sink_up",
      "sluice_kafka_up",
      "sluice_consumer_lag",
      "sluice_end_to_end_lag_seconds",
      "sluice_rows_pending",
      "sluice_rows_in_flight",
      "process_resident_memory_bytes",
      "sluice_bytes_received_total",
      "sluice_bytes_written_total",
    ]
  ) {
    assert(exprs.includes(family), `a panel shows ${family}`);
  }
  const config = parse(await Deno.readTextFile(PROMETHEUS_YML)) as {
    scrape_configs: Array<{ job_name: string }>;
  };
  assert(config.scrape_configs.some((job) => job.job_name === "sluice"));
});

Deno.test("a real Prometheus scraping sluice gets data for every dashboard query and alert operand, and fires SluiceSinkDown for a sluice without ClickHouse", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-monitoring-" });
  const topic = uniqueName("monitoring");
  const database = `sluice_${topic}`;
  let healthy: SluiceProcess | undefined;
  let sinkDown: SluiceProcess | undefined;
  let prometheus: PrometheusProcess | undefined;
  try {
    await createTopic(topic, 2);
    await createTopic(`${topic}_down`, 1);
    healthy = await startSluice({
      ...clickhouseSinkEnv({ topic, group: `g_${topic}`, database, schema: SCHEMA }),
      CLICKHOUSE_ORDER_BY: "seq",
      CLICKHOUSE_MAX_TIME_TO_SEND: "1",
      DEAD_LETTER_FILE: `${dir}/dead_letters.jsonl`,
    });
    // Nothing listens at this ClickHouse: sluice waits for it, with sluice_sink_up 0.
    sinkDown = await startSluice({
      ...clickhouseSinkEnv({
        topic: `${topic}_down`,
        group: `g_${topic}_down`,
        database,
        schema: SCHEMA,
      }),
      CLICKHOUSE_HOST: `http://127.0.0.1:${freePort()}`,
      DEAD_LETTER_FILE: `${dir}/dead_letters_down.jsonl`,
    });
    const good = `127.0.0.1:${healthy.metricsPort}`;
    const bad = `127.0.0.1:${sinkDown.metricsPort}`;

    // The shipped configuration, with these targets, every second, and the rules copied
    // with `for: 0s` so that a condition fires at its first evaluation.
    const config = parse(await Deno.readTextFile(PROMETHEUS_YML)) as {
      global: Record<string, string>;
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const rules = parse(await Deno.readTextFile(ALERTS_YML)) as RulesFile;
    for (const group of rules.groups) for (const rule of group.rules) rule.for = "0s";
    await Deno.writeTextFile(`${dir}/alerts.yml`, stringify(rules));
    config.global = { ...config.global, scrape_interval: "1s", evaluation_interval: "1s" };
    config.rule_files = ["alerts.yml"];
    config.scrape_configs = config.scrape_configs
      .filter((job) => job.job_name === "sluice")
      .map((job) => ({ ...job, static_configs: [{ targets: [good, bad] }] }));
    assertEquals(config.scrape_configs.length, 1, "the sluice job of prometheus.yml");
    await Deno.writeTextFile(`${dir}/prometheus.yml`, stringify(config));
    prometheus = await startPrometheus(dir, `${dir}/prometheus.yml`);
    const p = prometheus;
    await waitFor(
      async () => (await query(p, 'up{job="sluice"} == 1')).length === 2,
      "both sluice targets scraped",
      30_000,
    );

    // Records, and one message that is not JSON (a rejection and a dead letter).
    await produce(topic, [...flowMessages(0, 300), "{not json", ...flowMessages(300, 600)]);
    const h = healthy;
    await waitFor(
      async () =>
        (await h.metric("sluice_records_written_total")) === 600 &&
        (await h.metric("sluice_dead_letters_total")) === 1,
      "600 records written and 1 dead letter",
    );
    await waitFor(
      async () =>
        (await query(p, `sluice_records_written_total{instance="${good}"} == 600`)).length === 1,
      "Prometheus scraped the writes",
    );

    // Every panel query, with the dashboard's variables as Grafana fills them with
    // "All" selected: the instances of sluice_build_info, and a rate interval.
    const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD_JSON));
    const instances = (await query(p, "sluice_build_info")).map((s) => s.metric["instance"]!);
    assertEquals(instances.sort(), [good, bad].sort());
    const all = `(${instances.map((i) => i.replaceAll(".", "\\\\.")).join("|")})`;
    const panelExprs = allPanels(dashboard.panels as Panel[]).flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({
        from: panel.title,
        expr: target.expr.replaceAll("$instance", all).replaceAll("$__rate_interval", "1m"),
      }))
    );
    for (const e of panelExprs) assert(!e.expr.includes("$"), `a variable left in ${e.expr}`);
    await assertAllReturnData(p, panelExprs);

    // Every operand of every alert condition.
    const alertExprs = rules.groups.flatMap((group) =>
      group.rules.flatMap((rule) =>
        conditionOperands(rule.expr).map((expr) => ({ from: rule.alert ?? "", expr }))
      )
    );
    assert(alertExprs.length >= rules.groups[0]!.rules.length);
    await assertAllReturnData(p, alertExprs);

    // The staged failures: the sink that does not answer, and the rejected message.
    const active = (alert: string, instance: string) =>
      query(
        p,
        `ALERTS{alertname="${alert}", instance="${instance}", alertstate=~"firing|pending"}`,
      );
    await waitFor(
      async () => (await active("SluiceSinkDown", bad)).length === 1,
      "SluiceSinkDown for the sluice without ClickHouse",
      30_000,
    );
    assertEquals(await active("SluiceSinkDown", good), [], "no SluiceSinkDown for the healthy one");
    await waitFor(
      async () =>
        (await active("SluiceRecordsRejected", good)).some((s) => s.metric["reason"] === "decode"),
      "SluiceRecordsRejected (decode) for the healthy sluice",
      30_000,
    );
  } catch (error) {
    if (prometheus) {
      throw new Error(`${(error as Error).message}\nprometheus said:\n${prometheus.log.join("")}`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    await prometheus?.stop();
    await stopQuietly(healthy);
    await stopQuietly(sinkDown);
    await fetch(clickhouseUrl(), { method: "POST", body: `DROP DATABASE IF EXISTS ${database}` })
      .then((r) => r.body?.cancel());
    await Deno.remove(dir, { recursive: true });
  }
});
