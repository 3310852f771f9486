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
import { checkConnections } from "./lib/check_config.ts";
import { helpText, parseFlags, VERSION } from "./lib/cli.ts";
import { allVariables, type Config, describeConfig, loadConfig } from "./lib/config.ts";
import { runBenchmark } from "./lib/benchmark.ts";
import { DeadLetterFile, DeadLetters, DeadLetterTopic } from "./lib/dead_letter.ts";
import { dryRunSummary, printingSink } from "./lib/dry_run.ts";
import { kafkaClientOptions, KafkaSource } from "./lib/kafka.ts";
import { formatWarning } from "./lib/variables.ts";
import {
  defaultLogFormat,
  errorText,
  installCrashHandlers,
  log,
  writeStderr,
  writeStdout,
} from "./lib/log.ts";
import { Metrics, serveMetrics } from "./lib/metrics.ts";
import { type FlushReport, Pipeline } from "./lib/pipeline/mod.ts";
import { RetryPolicy } from "./lib/retry.ts";
import { connectSink } from "./lib/sink.ts";
import type { MessageSource } from "./lib/source.ts";
import { StdinSource } from "./lib/stdin.ts";
import { TimeReader } from "./lib/time.ts";
import { DecodeWorkers } from "./lib/workers.ts";
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
    ({ config, ignoredKeys } = loadConfig(flags, Deno.env.toObject(), REGISTRIES));
  } catch (error) {
    writeStderr(
      (error instanceof ConfigError ? error.message : `Cannot start: ${errorText(error)}`) + "\n",
    );
    return 1;
  }
  log.setLevel(config.logLevel);
  log.setFormat(config.logFormat ?? defaultLogFormat());
  for (const note of ignoredKeys) log.warn("Ignoring a key of the configuration file", { note });
  // --check-config prints them with the settings instead.
  if (!flags.checkConfig) {
    for (const warning of config.warnings) {
      log.warn("Ignoring a variable that looks like sluice's", {
        variable: warning.name,
        warning: formatWarning(warning),
      });
    }
  }
  const time = new TimeReader(config.timeZone, { window: config.recordTime });
  // Made before the sink, which may have metrics of its own (a cluster's shards).
  const metrics = new Metrics();
  const deps = { time, log, input: config.decoder.module.kind, metrics };
  const sink = config.sink.module.create(config.sink.config, deps);
  const policy = new RetryPolicy(config.retry);

  if (flags.checkConfig) {
    writeStdout(describeConfig(config).join("\n") + "\n");
    if (!flags.connect) {
      writeStdout("Configuration is valid\n");
      return 0;
    }
    const checked = await checkConnections(config, sink, { log });
    writeStdout(checked.lines.join("\n") + "\n");
    return checked.ok ? 0 : 1;
  }

  if (config.benchmark.enabled && !flags.dryRun) {
    try {
      return await runBenchmark(config, sink, log);
    } catch (error) {
      log.error("Cannot run the benchmark", { error });
      return 1;
    }
  }

  const dryRun = flags.dryRun;
  // /healthz and sluice_sink_up tell the truth from the first second: nothing is connected yet.
  if (!dryRun) metrics.sinkReachable(sink.name, false, "not connected yet");
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
  let letterFile: DeadLetterFile | undefined;
  try {
    letterFile = config.deadLetterFile === undefined ? undefined : new DeadLetterFile(
      config.deadLetterFile,
      { log, metrics, policy, rotation: config.deadLetterRotation },
    );
  } catch (error) {
    log.error("Cannot start: the dead-letter file cannot be opened", {
      path: config.deadLetterFile,
      error,
    });
    return 1;
  }
  const letterPlaces = [
    ...(letterFile ? [letterFile] : []),
    ...(deadLetterTopic ? [deadLetterTopic] : []),
  ];
  const deadLetters = letterPlaces.length > 0 ? new DeadLetters(letterPlaces) : undefined;
  metrics.initialise({
    version: VERSION,
    sink: sink.name,
    topics: config.kafka.topics,
    skipReason: config.decoder.module.skipReason,
    deadLetterDestinations: letterPlaces.map((place) => place.kind),
  });
  let workers: DecodeWorkers | undefined;
  if (!dryRun && config.decodeWorkers > 0) {
    workers = new DecodeWorkers(
      new URL("./sinks/worker.ts", import.meta.url),
      stringsOf(config.settings.env),
      config.decodeWorkers,
      log,
    );
    try {
      await workers.start();
      log.info("Decode workers started", { workers: workers.size });
    } catch (error) {
      log.error("Cannot start: the decode workers did not start", {
        workers: config.decodeWorkers,
        error,
      });
      return 1;
    }
  }
  const source: MessageSource = dryRun ? new StdinSource() : new KafkaSource(config.kafka, {
    log,
    metrics,
    policy,
    onCrash: () => void shutdown("crash", 1),
    predecoder: workers,
  });
  if (!dryRun) {
    metrics.kafkaReachable(
      false,
      "not connected yet: the consumer starts once the sink is connected",
    );
  }
  // SHUTDOWN_TIMEOUT bounds the whole stop: writing the last batch gets all
  // of it but the last seconds, in which connections are closed.
  const closeGraceMs = Math.min(2000, config.shutdownTimeoutMs / 4);
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
    shutdownTimeoutMs: config.shutdownTimeoutMs - closeGraceMs,
    stallTimeoutMs: config.stallTimeoutMs,
  });

  if (dryRun) {
    await pipeline.start();
    await pipeline.finished();
    const result = await pipeline.stop();
    await deadLetters?.close();
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

  // Every way out goes through here: "Stopped" is the last line, within
  // SHUTDOWN_TIMEOUT of the signal whatever is still under way (a broker
  // that does not answer, a sink retried, a client connecting), and the
  // process exits right after it (Deno.exit below), so no client still
  // winding down can keep it alive or write after it.
  let stopping: Promise<void> | undefined;
  const stopped = Promise.withResolvers<number>();
  const abort = new AbortController();
  const giveUp = Promise.withResolvers<void>();
  const finish = (code: number, last: () => void) => {
    workers?.close();
    last();
    log.silence();
    stopped.resolve(code);
  };
  const shutdown = (why: string, code = 0): Promise<void> => {
    abort.abort();
    stopping ??= (async () => {
      log.info("Stopping: no more fetching, writing the last batch", { signal: why });
      const deadline = setTimeout(giveUp.resolve, config.shutdownTimeoutMs);
      const result = await Promise.race([
        (async () => {
          const result = await pipeline.stop();
          await sink.close().catch((error) => log.warn("Cannot close the sink", { error }));
          await deadLetters?.close();
          await server.shutdown();
          return result;
        })().catch((error) => {
          log.error("Cannot stop cleanly", { error });
          return { clean: false, unwritten: pipeline.pendingRows };
        }),
        giveUp.promise.then(() => ({ clean: false, unwritten: pipeline.pendingRows })),
      ]);
      clearTimeout(deadline);
      finish(result.clean ? code : 1, () =>
        log.info("Stopped", {
          clean: result.clean,
          unwritten: result.unwritten,
          ...pipeline.stats,
        }));
    })();
    return stopping;
  };
  const exitEarly = (msg: string, fields: Record<string, unknown>) => {
    if (stopping !== undefined) return;
    log.error(msg, fields);
    stopping = (async () => {
      abort.abort();
      const closing = Promise.all([
        sink.close().catch(() => {}),
        deadLetters?.close(),
        server.shutdown(),
      ]).catch(() => {});
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 2000))]);
      finish(1, () => {});
    })();
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => {
      // A second signal does not wait any more.
      if (stopping !== undefined) giveUp.resolve();
      void shutdown(signal);
    });
  }

  void (async () => {
    // A sink that is down at start is waited for, like one that fails later.
    try {
      if (!await connectSink(sink, { policy, log, signal: abort.signal, metrics })) return;
    } catch (error) {
      return exitEarly("Cannot start: the sink refused the setup", { sink: sink.name, error });
    }
    if (deadLetterTopic) {
      try {
        await deadLetterTopic.connect();
      } catch (error) {
        return exitEarly("Cannot start: the dead-letter topic cannot be written to", {
          topic: config.deadLetterTopic,
          error,
        });
      }
    }
    if (abort.signal.aborted) return;
    try {
      await pipeline.start();
    } catch (error) {
      // Kafka still unreachable when the client gave up (about 90 s by default).
      if (stopping !== undefined) return;
      log.error("Cannot start consuming from Kafka", { error, brokers: config.kafka.brokers });
      void shutdown("start-failure", 1);
    }
  })();
  return await stopped.promise;
}

/** The variables that are set, for a decode worker to read its configuration from. */
function stringsOf(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) out[name] = value;
  return out;
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

if (import.meta.main) {
  // An uncaught error is one line in the log's format, and exit status 1.
  installCrashHandlers(log);
  Deno.exit(await main(Deno.args));
}
