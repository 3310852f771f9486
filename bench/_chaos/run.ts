/**
 * One scenario on one sink: its own topic (8 partitions), consumer group,
 * dead-letter topic and destination; the sluice processes it starts, kills
 * and stops; production of the message files; the waits on the sink's
 * count; and, at the end, the figures of the report.
 *
 * A scenario's driver (`scenarios.ts`) calls {@link Run.start},
 * {@link Run.kill}, {@link Run.produce} and {@link Run.waitFraction};
 * {@link Run.finish} then waits until the sink holds every good record and
 * the dead-letter topic every poison message (or nothing moved for 60 s
 * after the last message was produced and every offset was committed),
 * stops sluice with SIGTERM and counts.
 *
 * @module
 */

import { errorText } from "../../lib/log.ts";
import { num, progress, sampleProcess, sleep } from "../_measure.ts";
import { logTail, type Sluice, sluiceEnv, spawnSluice } from "../_sluice.ts";
import {
  type Codec,
  committedToEnd,
  createTopics,
  type DeadLetters,
  deleteTopicsAndGroups,
  KAFKA,
  produceFile,
  readDeadLetters,
  topicEnd,
} from "./kafka.ts";
import type { Messages } from "./records.ts";
import type { ChaosSink, Held } from "./sinks.ts";

/** Partitions of every scenario's topic. */
export const PARTITIONS = 8;

/** What every scenario of a run shares. */
export interface RunSettings {
  /** Names topics, groups, databases, indexes and jobs. */
  id: string;
  /** The messages. */
  messages: Messages;
  /** An empty directory to run sluice in (no `.env` there). */
  cwd: string;
  /** How long a sink outage lasts. */
  outageMs: number;
  /** How long the broker stays stopped. */
  brokerStopMs: number;
  /** How long paced production takes. */
  spanMs: number;
  /** `KAFKA_SESSION_TIMEOUT` of every sluice, in seconds. */
  sessionTimeoutSeconds: number;
  /** Give up on a scenario after this long. */
  timeoutMs: number;
  /** How long nothing may move after production before the wait ends. */
  stallMs: number;
  /** Keep topics and destinations for inspection. */
  keep: boolean;
  /** Where to write each sluice process's standard error at the end, if set. */
  logs?: string;
}

/** A scenario's figures, for the report. */
export interface ScenarioResult {
  /** The sink. */
  sink: string;
  /** The scenario. */
  scenario: string;
  /** Good records produced. */
  expected: number;
  /** Poison messages produced. */
  poison: number;
  /** What the sink holds, when it could be counted. */
  held?: Held;
  /** What the dead-letter topic holds, when it could be read. */
  deadLetters?: DeadLetters;
  /** Whether duplicates are reported only. */
  duplicatesAllowed: boolean;
  /** From the first sluice start to the count. */
  wallSeconds: number;
  /** The largest peak RSS (`VmHWM`) of its sluice processes. */
  peakRssBytes: number;
  /** What happened, for the notes under the table. */
  notes: string[];
  /** Why the scenario could not be carried out, if it could not. */
  error?: string;
}

/** One sluice process of a scenario. */
export interface SluiceInstance {
  /** `#1`, `#2`, ... in start order. */
  name: string;
  /** The process and its log. */
  sluice: Sluice;
  /** Whether the suite sent it a signal (an exit is then expected). */
  signalled: boolean;
}

/** One scenario on one sink. */
export class Run {
  /** The sink. */
  readonly sink: ChaosSink;
  /** The scenario's name. */
  readonly scenario: string;
  /** `<sink> <scenario>`, for progress lines. */
  readonly label: string;
  /** The scenario's topic (8 partitions). */
  readonly topic: string;
  /** sluice's consumer group. */
  readonly group: string;
  /** sluice's `DEAD_LETTER_TOPIC` (1 partition). */
  readonly deadLetterTopic: string;
  /** The destination's name at the sink (`[a-z0-9_]`). */
  readonly dest: string;
  /** What the run's scenarios share. */
  readonly settings: RunSettings;
  readonly #env: Record<string, string>;
  readonly #instances: SluiceInstance[] = [];
  readonly #notes: string[] = [];
  #started = 0;
  #deadline = 0;
  #produced = 0;
  #seen = 0;
  #seenAt = 0;
  #deadLettered = 0;
  #lastReport = 0;
  #peakRss = 0;
  #sampler: ReturnType<typeof setInterval> | undefined;
  #error: string | undefined;
  /** Production started in the background, awaited before the topic is deleted. */
  readonly #background: Promise<unknown>[] = [];

  /**
   * @param sink The sink.
   * @param scenario The scenario's name.
   * @param settings What the run's scenarios share.
   */
  constructor(sink: ChaosSink, scenario: string, settings: RunSettings) {
    this.sink = sink;
    this.scenario = scenario;
    this.settings = settings;
    this.label = `${sink.name} ${scenario}`;
    this.topic = `sluice-chaos-${settings.id}-${sink.name}-${scenario}`;
    this.group = `${this.topic}-group`;
    this.deadLetterTopic = `${this.topic}-dead-letters`;
    this.dest = scenario.replaceAll("-", "_");
    this.#env = sluiceEnv({
      KAFKA_BOOTSTRAP_SERVERS: KAFKA,
      KAFKA_TOPIC: this.topic,
      KAFKA_CONSUMER_GROUP_ID: this.group,
      KAFKA_AUTO_OFFSET_RESET: "earliest",
      KAFKA_SESSION_TIMEOUT: String(settings.sessionTimeoutSeconds),
      DEAD_LETTER_TOPIC: this.deadLetterTopic,
      PROMETHEUS_CLIENT_PORT: "0",
      PROMETHEUS_CLIENT_HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      ...sink.env(this.dest),
    });
  }

  /** Good records the sink must hold. */
  get expected(): number {
    return this.settings.messages.expected;
  }

  /** Distinct records the sink showed at the last look. */
  get seen(): number {
    return this.#seen;
  }

  /** Whether the scenario failed already (its driver's further steps are skipped). */
  get failed(): boolean {
    return this.#error !== undefined;
  }

  /** Chunk files of the messages. */
  get chunks(): number {
    return this.settings.messages.chunks.length;
  }

  /**
   * Says what happens, on standard error, and keeps it for the notes when asked.
   *
   * @param text What happened.
   * @param note Whether it goes under the table too.
   */
  event(text: string, note = false): void {
    progress(`${this.label}: ${text}`);
    if (note) this.#notes.push(text);
  }

  /**
   * Keeps a note for under the table (not said on standard error).
   *
   * @param text The note.
   */
  note(text: string): void {
    this.#notes.push(text);
  }

  /**
   * Runs a step of the driver; after a failure the steps are skipped, and
   * the failure is kept for the report instead of thrown.
   *
   * @param step The step.
   */
  async guard(step: () => Promise<void>): Promise<void> {
    if (this.failed) return;
    try {
      await step();
    } catch (error) {
      this.fail(error);
    }
  }

  /**
   * Marks the scenario failed (the driver's further steps are skipped).
   *
   * @param error Why.
   */
  fail(error: unknown): void {
    if (this.failed) return;
    this.#error = errorText(error);
    this.event(`failed: ${this.#error}`);
  }

  /** Creates the topics and starts the clock and the RSS sampler. */
  async setup(): Promise<void> {
    await createTopics([
      { topic: this.topic, partitions: PARTITIONS },
      // sluice refuses to start without it; one partition is enough.
      { topic: this.deadLetterTopic, partitions: 1 },
    ]);
    this.#started = Date.now();
    this.#deadline = this.#started + this.settings.timeoutMs;
    this.#sampler = setInterval(() => void this.#sample(), 1000);
  }

  async #sample(): Promise<void> {
    for (const instance of this.#instances) {
      if (instance.sluice.exited) continue;
      try {
        const sample = await sampleProcess(instance.sluice.child.pid);
        this.#peakRss = Math.max(this.#peakRss, sample.peakRssBytes, sample.rssBytes);
      } catch {
        // Exited between the check and the read.
      }
    }
  }

  /**
   * Starts sluice processes together and waits until each serves its metrics.
   *
   * @param count How many.
   * @returns Them.
   * @throws {Error} When one exits at start or does not start within 60 s.
   */
  async start(count = 1): Promise<SluiceInstance[]> {
    const started: SluiceInstance[] = [];
    for (let i = 0; i < count; i++) {
      const instance = {
        name: `#${this.#instances.length + 1}`,
        sluice: spawnSluice(this.#env, this.settings.cwd),
        signalled: false,
      };
      this.#instances.push(instance);
      started.push(instance);
    }
    const deadline = Date.now() + 60_000;
    for (const instance of started) {
      const { sluice } = instance;
      while (!sluice.logs.some((l) => l.line["msg"] === "Starting sluice")) {
        if (sluice.exited) {
          throw new Error(`sluice ${instance.name} exited at start:\n${logTail(sluice)}`);
        }
        if (Date.now() > deadline) {
          throw new Error(`sluice ${instance.name} did not start in 60 s:\n${logTail(sluice)}`);
        }
        await sleep(50);
      }
    }
    this.event(
      `started sluice ${started.map((i) => `${i.name} (pid ${i.sluice.child.pid})`).join(", ")}`,
    );
    return started;
  }

  /**
   * SIGKILLs a sluice process and waits until it is gone.
   *
   * @param instance The process.
   */
  async kill(instance: SluiceInstance): Promise<void> {
    instance.signalled = true;
    try {
      instance.sluice.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await instance.sluice.status;
    this.event(
      `SIGKILLed sluice ${instance.name} at ${num(this.#seen)} of ${
        num(this.expected)
      } records in the sink`,
    );
  }

  /**
   * Produces chunk files `from` to `to` (exclusive), waiting `spacingMs`
   * before each but the first, and, with `lead`, also until the sink is no
   * more than that fraction of the good records behind what was produced
   * (so that production pauses while sluice is down or rejoining, and a
   * restarted process does not find the whole rest waiting).
   *
   * @param from The first chunk.
   * @param to After the last chunk.
   * @param options The wait between chunks, the lead, the codec.
   * @throws {Error} When kcat fails, the scenario times out, or after the
   *   last chunk the topic does not hold every message.
   */
  async produce(
    from: number,
    to: number,
    options: { spacingMs?: number; lead?: number; codec?: Codec } = {},
  ): Promise<void> {
    const { spacingMs = 0, lead, codec } = options;
    const { chunks, chunkSizes, records } = this.settings.messages;
    for (let c = from; c < Math.min(to, chunks.length); c++) {
      if (c > from && spacingMs > 0) await sleep(spacingMs);
      while (lead !== undefined && this.#produced - this.#seen > lead * this.expected) {
        if (Date.now() > this.#deadline) {
          throw new Error(`Cannot produce: the sink stays at ${num(this.#seen)} records`);
        }
        await sleep(250);
        await this.#look();
      }
      await produceFile(this.topic, chunks[c]!, codec);
      this.#produced += chunkSizes[c]!;
    }
    if (to >= chunks.length && this.#produced === records) {
      const end = await topicEnd(this.topic);
      if (end !== records) {
        throw new Error(
          `Cannot see every message in ${this.topic}: ${num(end)} of ${num(records)}`,
        );
      }
    }
  }

  /**
   * Starts {@link produce} without waiting for it; a failure is kept until
   * the returned function is awaited (never an unhandled rejection).
   *
   * @param from The first chunk.
   * @param to After the last chunk.
   * @param options The wait between chunks and the lead, as for {@link produce}.
   * @returns Resolves when production is done, throws its failure.
   */
  produceInBackground(
    from: number,
    to: number,
    options: { spacingMs?: number; lead?: number },
  ): () => Promise<void> {
    const outcome = this.produce(from, to, options).then(() => undefined, (error) => ({ error }));
    this.#background.push(outcome);
    return async () => {
      const failed = await outcome;
      if (failed) throw failed.error;
    };
  }

  /** Whether every message was produced. */
  get producedAll(): boolean {
    return this.#produced === this.settings.messages.records;
  }

  /** Throws when a sluice process exited without being told to, with its last error. */
  async #checkInstances(): Promise<void> {
    for (const instance of this.#instances) {
      if (!instance.sluice.exited || instance.signalled) continue;
      instance.signalled = true;
      const { code } = await instance.sluice.status;
      const last = instance.sluice.logs.findLast((l) => l.line["level"] === "error")?.line;
      const why = last === undefined
        ? ""
        : `; its last error: ${String(last["msg"])}${
          last["error"] === undefined ? "" : `: ${String(last["error"])}`
        }`;
      throw new Error(
        `sluice ${instance.name} exited by itself with status ${code}${why}\n${
          logTail(instance.sluice, 8)
        }`,
      );
    }
  }

  /** Reads the sink's and the dead-letter topic's counts; failures keep the last ones. */
  async #look(): Promise<void> {
    const [seen, deadLettered] = await Promise.all([
      this.sink.progress(this.dest).catch(() => this.#seen),
      topicEnd(this.deadLetterTopic).catch(() => this.#deadLettered),
    ]);
    if (seen !== this.#seen || deadLettered !== this.#deadLettered) this.#seenAt = Date.now();
    this.#seen = seen;
    this.#deadLettered = deadLettered;
    if (Date.now() - this.#lastReport >= 5000) {
      this.#lastReport = Date.now();
      const live = this.#instances.filter((i) => !i.sluice.exited).length;
      this.event(
        `${num(this.#seen)} of ${num(this.expected)} in the sink, ${
          num(this.#deadLettered)
        } dead letters, ${num(this.#produced)} of ${
          num(this.settings.messages.records)
        } produced, ${live} sluice running, ${num((Date.now() - this.#started) / 1000, 1)} s`,
      );
    }
  }

  /**
   * Waits until the sink shows this fraction of the good records (and at least `atLeast`).
   *
   * @param fraction From 0 to 1.
   * @param atLeast A count the sink must reach too.
   * @throws {Error} When a sluice process exits by itself or the scenario times out.
   */
  async waitFraction(fraction: number, atLeast = 0): Promise<void> {
    const want = Math.min(this.expected, Math.max(atLeast, Math.ceil(this.expected * fraction)));
    for (;;) {
      await this.#checkInstances();
      await this.#look();
      if (this.#seen >= want) return;
      if (Date.now() > this.#deadline) {
        throw new Error(
          `Cannot see ${num(want)} records in the sink within ${
            this.settings.timeoutMs / 1000
          } s (${num(this.#seen)})`,
        );
      }
      await sleep(250);
    }
  }

  /**
   * Waits until the sink's count grows beyond what it is now.
   *
   * @param since Epoch ms the wait is measured from.
   * @returns Seconds from `since` until it grew, or `undefined` at the deadline.
   */
  async waitGrowth(since: number): Promise<number | undefined> {
    let before: number | undefined;
    while (Date.now() < this.#deadline) {
      await this.#checkInstances();
      const now = await this.sink.progress(this.dest).catch(() => undefined);
      if (now !== undefined) {
        if (before === undefined) before = now;
        else if (now > before) {
          this.#seen = now;
          return (Date.now() - since) / 1000;
        }
        if (now >= this.expected) return (Date.now() - since) / 1000;
      }
      await sleep(200);
    }
    return undefined;
  }

  /** Waits until the sink holds every good record and the dead-letter topic every poison message. */
  async #waitDone(): Promise<void> {
    const poison = this.settings.messages.poison.size;
    for (;;) {
      await this.#checkInstances();
      await this.#look();
      if (this.producedAll && this.#seen >= this.expected && this.#deadLettered >= poison) return;
      const still = Date.now() - this.#seenAt;
      if (
        this.producedAll && still >= this.settings.stallMs &&
        await committedToEnd(this.group, this.topic).catch(() => false)
      ) {
        this.event(
          `nothing moved for ${num(still / 1000)} s with every offset committed: counting`,
          true,
        );
        return;
      }
      if (Date.now() > this.#deadline) {
        this.event(`timed out after ${num(this.settings.timeoutMs / 1000)} s: counting`, true);
        return;
      }
      await sleep(500);
    }
  }

  /**
   * Stops sluice with SIGTERM, waiting up to 60 s each (then SIGKILL).
   *
   * @returns Resolves when every process exited.
   */
  async #stopAll(): Promise<void> {
    await Promise.all(this.#instances.map(async (instance) => {
      if (instance.sluice.exited) return;
      instance.signalled = true;
      try {
        instance.sluice.child.kill("SIGTERM");
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        this.event(`sluice ${instance.name} still runs 60 s after SIGTERM: SIGKILL`, true);
        try {
          instance.sluice.child.kill("SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }, 60_000);
      const status = await instance.sluice.status;
      clearTimeout(timer);
      if (status.code !== 0) {
        this.event(
          `sluice ${instance.name} exited with status ${status.code} after SIGTERM:\n${
            logTail(instance.sluice, 5)
          }`,
        );
        this.#notes.push(`sluice ${instance.name} exited with status ${status.code} after SIGTERM`);
      }
    }));
  }

  /** Writes each sluice process's standard error to `<dir>/<sink>-<scenario>-<n>.log`. */
  async #saveLogs(dir: string): Promise<void> {
    try {
      await Deno.mkdir(dir, { recursive: true });
      for (const [i, instance] of this.#instances.entries()) {
        const file = `${dir}/${this.sink.name}-${this.scenario}-${i + 1}.log`;
        await Deno.writeTextFile(file, instance.sluice.raw.join("\n") + "\n");
      }
    } catch (error) {
      this.event(`cannot write the logs to ${dir}: ${errorText(error)}`);
    }
  }

  /**
   * Waits for the end (unless the driver failed), stops sluice, counts the
   * sink and the dead-letter topic, and drops what the scenario made
   * (unless `keep`).
   *
   * @returns The figures.
   */
  async finish(): Promise<ScenarioResult> {
    await this.guard(() => this.#waitDone());
    await this.#sample();
    await this.#stopAll();
    clearInterval(this.#sampler);
    if (this.settings.logs !== undefined) await this.#saveLogs(this.settings.logs);
    const wallSeconds = this.#started === 0 ? 0 : (Date.now() - this.#started) / 1000;
    // Counted after a failure too: the figures say what the failure cost.
    let held: Held | undefined;
    let deadLetters: DeadLetters | undefined;
    if (this.#started > 0) {
      try {
        held = await this.sink.count(this.dest);
      } catch (error) {
        this.event(`cannot count the sink: ${errorText(error)}`, true);
      }
      try {
        deadLetters = await readDeadLetters(
          this.deadLetterTopic,
          new Set(this.settings.messages.poison.keys()),
        );
      } catch (error) {
        this.event(`cannot read the dead-letter topic: ${errorText(error)}`, true);
      }
    }
    // A driver that failed may have left production running: let it end first,
    // or kcat would create the topic again after its deletion.
    await Promise.all(this.#background);
    if (!this.settings.keep) {
      await this.sink.drop(this.dest).catch((e) => this.event(`cannot drop: ${errorText(e)}`));
      await deleteTopicsAndGroups([this.topic, this.deadLetterTopic], [this.group]);
    }
    return {
      sink: this.sink.name,
      scenario: this.scenario,
      expected: this.expected,
      poison: this.settings.messages.poison.size,
      held,
      deadLetters,
      duplicatesAllowed: this.sink.duplicatesAllowed,
      wallSeconds,
      peakRssBytes: this.#peakRss,
      notes: this.#notes,
      error: this.#error,
    };
  }
}
