/**
 * sluice: consumes pmacct flow records (and collectd metrics) from Kafka and
 * writes them in batches to ClickHouse, Elasticsearch/OpenSearch,
 * VictoriaMetrics or InfluxDB, committing offsets only after the write was
 * acknowledged.
 *
 * This file only wires: flags, the env and YAML files merged with the
 * environment, the configuration (handed the static `SINKS` and `DECODERS`
 * registries), the metrics server, the pipeline, signals.
 *
 * @module
 */

import { Kafka } from "kafkajs";
import { helpText, parseFlags, VERSION } from "./lib/cli.ts";
import { allVariables, type Config, describeConfig, parseConfig } from "./lib/config.ts";
import { mergeSources, readConfigFile, readEnvFile } from "./lib/config_files.ts";
import { runBenchmark } from "./lib/benchmark.ts";
import { DeadLetterFile, DeadLetters, DeadLetterTopic } from "./lib/dead_letter.ts";
import { dryRunSummary, printingSink } from "./lib/dry_run.ts";
import { kafkaClientOptions, KafkaSource } from "./lib/kafka.ts";
import { errorText, log, writeStderr, writeStdout } from "./lib/log.ts";
import { Metrics, serveMetrics } from "./lib/metrics.ts";
import { type FlushReport, Pipeline } from "./lib/pipeline/mod.ts";
import { RetryPolicy } from "./lib/retry.ts";
import { connectSink, type Sink } from "./lib/sink.ts";
import type { MessageSource } from "./lib/source.ts";
import { StdinSource } from "./lib/stdin.ts";
import { TimeReader } from "./lib/time.ts";
import { ConfigError } from "./lib/variables.ts";
import { REGISTRIES } from "./sinks/mod.ts";

async function main(args: string[]): Promise<number> {
  const variables = allVariables(REGISTRIES);
  let flags;
  try {
    flags = parseFlags(args, variables);
  } catch (error) {
    writeStderr(`Cannot start: ${errorText(error)}\nTry --help\n`);
    return 2;
  }
  if (flags.help) {
    writeStdout(helpText(variables));
    return 0;
  }
  if (flags.version) {
    writeStdout(`sluice ${VERSION}\n`);
    return 0;
  }

  let config: Config;
  let ignoredKeys: string[] = [];
  try {
    const file = flags.configFile === undefined
      ? undefined
      : readConfigFile(flags.configFile, new Set(variables.map((v) => v.name)));
    ignoredKeys = file?.ignored ?? [];
    const env = mergeSources({
      flags: flags.vars,
      env: Deno.env.toObject(),
      envFile: readEnvFile(flags.envFile.path, flags.envFile.explicit),
      yaml: file?.vars,
    });
    config = parseConfig(env, REGISTRIES);
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
  const policy = new RetryPolicy(config.retry);

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
  const dryRun = flags.dryRun;
  // --dry-run writes nothing anywhere but stdout, the file aside: no topic.
  const deadLetterTopic = config.deadLetterTopic && !dryRun
    ? new DeadLetterTopic({
      topic: config.deadLetterTopic,
      kafka: new Kafka(kafkaClientOptions(config.kafka, log, policy)),
      sink: sink.name,
      version: VERSION,
      log,
      metrics,
      policy,
    })
    : undefined;
  const letterPlaces = [
    ...(config.deadLetterFile
      ? [new DeadLetterFile(config.deadLetterFile, { log, metrics, policy })]
      : []),
    ...(deadLetterTopic ? [deadLetterTopic] : []),
  ];
  const deadLetters = letterPlaces.length > 0 ? new DeadLetters(letterPlaces) : undefined;
  const source: MessageSource = dryRun ? new StdinSource() : new KafkaSource(config.kafka, {
    log,
    metrics,
    policy,
    onCrash: () => void shutdown("crash", 1),
  });
  const pipeline = new Pipeline(source, {
    sink: dryRun ? printingSink(sink) : sink,
    decoder: config.decoder.decode,
    skipReason: config.decoder.module.skipReason,
    onFlush: config.statistics
      ? (flush) => printFlush(flush, config.decoder.module.kind === "flows" ? "rows" : "points")
      : undefined,
    batch: config.sink.batch,
    retry: policy,
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

  let stopping: Promise<void> | undefined;
  const stopped = Promise.withResolvers<number>();
  const abort = new AbortController();
  const shutdown = (why: string, code = 0): Promise<void> => {
    abort.abort();
    stopping ??= (async () => {
      log.info("Stopping: no more fetching, writing the last batch", { signal: why });
      const result = await pipeline.stop();
      await sink.close().catch((error) => log.warn("Cannot close the sink", { error }));
      await deadLetters?.close();
      await server.shutdown();
      log.info("Stopped", { clean: result.clean, unwritten: result.unwritten, ...pipeline.stats });
      stopped.resolve(result.clean ? code : 1);
    })();
    return stopping;
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }

  // A sink that is down at start is waited for, like one that fails later.
  try {
    if (!await connectSink(sink, { policy, log, signal: abort.signal })) {
      return await stopped.promise;
    }
  } catch (error) {
    log.error("Cannot start: the sink refused the setup", { sink: sink.name, error });
    await server.shutdown();
    return 1;
  }
  if (deadLetterTopic) {
    try {
      await deadLetterTopic.connect();
    } catch (error) {
      log.error("Cannot start: the dead-letter topic cannot be written to", {
        topic: config.deadLetterTopic,
        error,
      });
      await sink.close().catch(() => {});
      await deadLetters?.close();
      await server.shutdown();
      return 1;
    }
  }
  try {
    await pipeline.start();
  } catch (error) {
    log.error("Cannot start consuming from Kafka", { error, brokers: config.kafka.brokers });
    void shutdown("start-failure", 1);
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
    const wanted = [
      ...config.kafka.topics,
      ...(config.deadLetterTopic ? [config.deadLetterTopic] : []),
    ];
    const missing = wanted.filter((t) => !topics.includes(t));
    if (missing.length > 0) {
      writeStdout(`Kafka: reachable, but topics not found: ${missing.join(", ")}\n`);
      ok = false;
    } else writeStdout(`Kafka: reachable, topics ${wanted.join(", ")} exist\n`);
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
