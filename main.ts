/**
 * sluice: consumes pmacct flow records from Kafka and writes them in batches
 * to ClickHouse, Elasticsearch/OpenSearch or VictoriaMetrics, committing
 * offsets only after the write was acknowledged.
 *
 * This file only wires: flags, env file, configuration, the sink and decoder
 * from their static registries, the metrics server, the pipeline, signals.
 *
 * @module
 */

import { Kafka } from "kafkajs";
import { helpText, parseFlags, VERSION } from "./lib/cli.ts";
import {
  allVariables,
  type Config,
  describeConfig,
  loadEnvFile,
  parseConfig,
  readConfigFile,
} from "./lib/config.ts";
import { runBenchmark } from "./lib/benchmark.ts";
import { DeadLetters } from "./lib/dead_letter.ts";
import { dryRunSummary, printingSink } from "./lib/dry_run.ts";
import {
  kafkaClientOptions,
  KafkaSource,
  type MessageSource,
  StdinSource,
} from "./lib/kafka_source.ts";
import { errorText, log, writeStderr, writeStdout } from "./lib/log.ts";
import { Metrics, serveMetrics } from "./lib/metrics.ts";
import { type FlushReport, Pipeline } from "./lib/pipeline.ts";
import { backoffDelay, sleep } from "./lib/retry.ts";
import { TimeReader } from "./lib/time.ts";
import { ConfigError } from "./lib/variables.ts";
import { type Sink, SinkWriteError } from "./sinks/sink.ts";

async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args, allVariables());
  } catch (error) {
    writeStderr(`Cannot start: ${errorText(error)}\nTry --help\n`);
    return 2;
  }
  if (flags.help) {
    writeStdout(helpText(allVariables()));
    return 0;
  }
  if (flags.version) {
    writeStdout(`sluice ${VERSION}\n`);
    return 0;
  }

  let config: Config;
  let ignoredKeys: string[] = [];
  try {
    loadEnvFile(flags.envFile.path, flags.envFile.explicit);
    // Precedence: flags, then the environment, then the env file, then the YAML file.
    if (flags.configFile !== undefined) {
      const file = readConfigFile(flags.configFile);
      for (const [name, value] of file.vars) {
        if ((Deno.env.get(name) ?? "") === "") Deno.env.set(name, value);
      }
      ignoredKeys = file.ignored;
    }
    for (const [name, value] of Object.entries(flags.vars)) Deno.env.set(name, value);
    config = parseConfig(Deno.env.toObject());
  } catch (error) {
    writeStderr(
      (error instanceof ConfigError ? error.message : `Cannot start: ${errorText(error)}`) + "\n",
    );
    return 1;
  }
  log.setLevel(config.logLevel);
  for (const note of ignoredKeys) log.warn("Ignoring a key of the configuration file", { note });
  const deps = { time: new TimeReader(config.timeZone), log, input: config.decoder.module.kind };
  const sink = config.sink.module.create(config.sink.config, deps);

  if (flags.checkConfig) {
    writeStdout(describeConfig(config).join("\n") + "\n");
    if (!flags.connect) {
      writeStdout("Configuration is valid\n");
      return 0;
    }
    return await checkConnections(config, sink);
  }

  if (config.benchmark.enabled && !flags.dryRun) {
    try {
      return await runBenchmark(config, sink, log);
    } catch (error) {
      log.error("Cannot run the benchmark", { error });
      return 1;
    }
  }

  const metrics = new Metrics();
  const deadLetters = config.deadLetterFile ? new DeadLetters(config.deadLetterFile) : undefined;
  const dryRun = flags.dryRun;
  const source: MessageSource = dryRun
    ? new StdinSource()
    : new KafkaSource(config.kafka, { log, metrics, onCrash: () => void shutdown("crash", 1) });
  const pipeline = new Pipeline(source, {
    sink: dryRun ? printingSink(sink) : sink,
    decoder: config.decoder.decode,
    skipReason: config.decoder.module.skipReason,
    onFlush: config.statistics
      ? (flush) => printFlush(flush, config.decoder.module.kind === "flows" ? "rows" : "points")
      : undefined,
    batch: config.sink.batch,
    retry: config.retry,
    metrics,
    log,
    deadLetters,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    stallTimeoutMs: config.stallTimeoutMs,
  });

  if (dryRun) {
    await pipeline.start();
    await pipeline.finished();
    const result = await pipeline.stop();
    writeStderr(dryRunSummary(pipeline.stats) + "\n");
    return result.clean ? 0 : 1;
  }

  const server = serveMetrics({ ...config.metrics, metrics, health: () => pipeline.health() });
  log.info("Starting sluice", {
    version: VERSION,
    sink: sink.name,
    topics: config.kafka.topics,
    group: config.kafka.groupId,
    metrics_port: server.addr.port,
  });

  let exitCode: number | undefined;
  let stopping: Promise<void> | undefined;
  const stopped = Promise.withResolvers<number>();
  const abort = new AbortController();
  const shutdown = (why: string, code = 0): Promise<void> => {
    abort.abort();
    stopping ??= (async () => {
      log.info("Stopping: no more fetching, writing the last batch", { signal: why });
      const result = await pipeline.stop();
      await sink.close().catch((error) => log.warn("Cannot close the sink", { error }));
      deadLetters?.close();
      await server.shutdown();
      exitCode = result.clean ? code : 1;
      log.info("Stopped", { clean: result.clean, unwritten: result.unwritten, ...pipeline.stats });
      stopped.resolve(exitCode);
    })();
    return stopping;
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }

  // A sink that is down at start is waited for, like one that fails later.
  for (let attempt = 1; exitCode === undefined && stopping === undefined; attempt++) {
    try {
      await sink.connect();
      break;
    } catch (error) {
      if (!(error instanceof SinkWriteError) || error.action !== "retry") {
        log.error("Cannot start: the sink refused the setup", { sink: sink.name, error });
        await server.shutdown();
        return 1;
      }
      const delay = backoffDelay(attempt, config.retry);
      log.limited("connect", "warn", "Cannot reach the sink, retrying", {
        sink: sink.name,
        attempt,
        retry_in_seconds: delay / 1000,
        error,
      });
      await sleep(delay, abort.signal);
    }
  }
  if (stopping === undefined) {
    try {
      await pipeline.start();
    } catch (error) {
      log.error("Cannot start consuming from Kafka", { error, brokers: config.kafka.brokers });
      void shutdown("start-failure", 1);
    }
  }
  return await stopped.promise;
}

/** `-s`: one line per acknowledged batch, with the rates it really achieved. */
function printFlush(flush: FlushReport, unit: string): void {
  const per = (n: number) =>
    Math.round(n / Math.max(flush.sincePrevious, 0.001)).toLocaleString("en-US");
  writeStdout(
    `Flushed ${flush.rows} ${unit} from ${flush.messages} messages in ${
      flush.seconds.toFixed(3)
    } s: ` +
      `${per(flush.messages)} messages/s, ${per(flush.rows)} ${unit}/s over the last ` +
      `${flush.sincePrevious.toFixed(2)} s\n`,
  );
}

/** `--check-config --connect`: reaches Kafka (topic metadata) and the sink (health check). */
async function checkConnections(config: Config, sink: Sink): Promise<number> {
  let ok = true;
  const admin = new Kafka({ ...kafkaClientOptions(config.kafka, log), retry: { retries: 1 } })
    .admin();
  try {
    await admin.connect();
    const topics = await admin.listTopics();
    const missing = config.kafka.topics.filter((t) => !topics.includes(t));
    if (missing.length > 0) {
      writeStdout(`Kafka: reachable, but topics not found: ${missing.join(", ")}\n`);
      ok = false;
    } else writeStdout(`Kafka: reachable, topics ${config.kafka.topics.join(", ")} exist\n`);
  } catch (error) {
    writeStdout(`Kafka: cannot reach ${config.kafka.brokers.join(",")}: ${errorText(error)}\n`);
    ok = false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
  try {
    const healthy = await sink.healthcheck();
    writeStdout(`${sink.name}: ${healthy ? "reachable" : "not healthy"}\n`);
    ok &&= healthy;
  } catch (error) {
    writeStdout(`${sink.name}: cannot reach: ${errorText(error)}\n`);
    ok = false;
  } finally {
    await sink.close().catch(() => {});
  }
  return ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
