/**
 * The chaos scenarios: what each does to sluice, to the sink's server or to
 * the broker while the messages are produced. Each runs on its own topic
 * and destination (`run.ts`); every message file carries the same 1% of
 * poison.
 *
 * - `kill`: sluice SIGKILLed when the sink shows 20%, 45% and 70% of the
 *   good records (and the process started after the last kill wrote
 *   something), restarted each time; production paced over the run, never
 *   more than 20% of the records ahead of the sink.
 * - `sink-down`: the sink's server stopped twice for the outage time while
 *   production goes on (30% of the messages during each outage, 20% before,
 *   10% after each; the second outage once sluice caught up); how long
 *   after the server answered again the sink's count grew is reported.
 * - `broker`: the broker restarted once, later stopped for the broker stop
 *   time; sluice is never restarted. With several sinks they share the
 *   broker's outages (each its own topic and sluice).
 * - `poison`: no fault; only the poison.
 * - `scale`: three sluice processes in one group started together, a fourth
 *   at 30%, one of the first SIGKILLed at 60% (not restarted); production
 *   paced as for `kill`.
 * - `codec-<codec>`: the messages produced with `kcat -z <codec>`.
 *
 * @module
 */

import { num } from "../_measure.ts";
import { type Codec, CODECS } from "./kafka.ts";
import type { Run } from "./run.ts";
import { outage } from "./services.ts";

/** Every scenario, in the order of the report. */
export const SCENARIOS = [
  "kill",
  "sink-down",
  "broker",
  "poison",
  "scale",
  ...CODECS.map((c) => `codec-${c}` as const),
] as const;

/** A scenario's name. */
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * SIGKILLs sluice at 20%, 45% and 70% of the good records in the sink and
 * starts it again each time; production is paced over the run.
 *
 * @param run The scenario's run.
 */
export async function killScenario(run: Run): Promise<void> {
  let current = (await run.start())[0]!;
  const produced = run.produceInBackground(0, run.chunks, {
    spacingMs: run.settings.spanMs / run.chunks,
    lead: 0.2,
  });
  const kills: number[] = [];
  for (const fraction of [0.2, 0.45, 0.7]) {
    // The restarted process must have written something before it is killed again.
    await run.waitFraction(fraction, (kills.at(-1) ?? 0) + 1);
    kills.push(run.seen);
    await run.kill(current);
    current = (await run.start())[0]!;
  }
  run.note(`SIGKILLed at ${kills.map((n) => num(n)).join(", ")} records in the sink`);
  await produced();
}

/**
 * Stops the sink's server twice while production goes on, and reports when
 * sluice's writes resumed after each outage.
 *
 * @param run The scenario's run.
 */
export async function sinkDownScenario(run: Run): Promise<void> {
  const { outageMs } = run.settings;
  const c = run.chunks;
  // 20% before, 30% during each outage, 10% after each.
  const cuts = [0, 0.2, 0.5, 0.6, 0.9, 1].map((f) => Math.round(c * f));
  await run.start();
  await run.produce(cuts[0]!, cuts[1]!, { spacingMs: 250 });
  await run.waitFraction(0.1);
  const service = run.sink.service;
  const away: string[] = [], resumes: string[] = [];
  for (const k of [1, 2]) {
    const [from, to, after] = k === 1 ? cuts.slice(1, 4) : cuts.slice(3, 6);
    run.event(`stopping ${service} for ${num(outageMs / 1000)} s (outage ${k} of 2)`);
    const spacing = outageMs / Math.max(1, to! - from! + 1);
    const { backAt, awaySeconds } = await outage(
      service,
      outageMs,
      () => run.produce(from!, to!, { spacingMs: spacing }),
    );
    run.event(`${service} answers again after ${num(awaySeconds, 1)} s away`);
    away.push(`${num(awaySeconds, 1)} s`);
    const resumed = await run.waitGrowth(backAt);
    resumes.push(resumed === undefined ? "never" : `${num(resumed, 1)} s`);
    run.event(
      resumed === undefined
        ? `outage ${k}: sluice's writes did not resume`
        : `outage ${k}: writes resumed ${num(resumed, 1)} s after ${service} answered again`,
    );
    await run.produce(to!, after!, { spacingMs: 250 });
    // The second outage starts once sluice caught up with what came before.
    if (k === 1) await run.waitFraction(0.45);
  }
  run.note(
    `${service} stopped twice (away ${away.join(" and ")}); sluice's writes resumed ` +
      `${resumes.join(" and ")} after it answered again`,
  );
}

/**
 * Restarts the broker once, then stops it for the broker stop time, while
 * one sluice per run waits and resumes by itself. The runs (one per sink)
 * share the broker's outages; a failed run's steps are skipped.
 *
 * @param runs The scenario's runs.
 */
export async function brokerScenario(runs: readonly Run[]): Promise<void> {
  const all = (step: (run: Run) => Promise<void>) =>
    Promise.all(runs.map((run) => run.guard(() => step(run))));
  const c = runs[0]!.chunks;
  const { brokerStopMs } = runs[0]!.settings;
  const quarter = Math.round(c / 4), half = Math.round(c / 2);
  await all(async (run) => void await run.start());
  await all((run) => run.produce(0, quarter, { spacingMs: 250 }));
  await all((run) => run.waitFraction(0.15));
  const restartedAt = runs.map((run) => run.seen);
  for (const run of runs) run.event("restarting the Kafka broker");
  const restart = await outage("kafka", 0);
  await all((run) => run.produce(quarter, half, { spacingMs: 250 }));
  await all((run) => run.waitFraction(0.4));
  const stoppedAt = runs.map((run) => run.seen);
  for (const run of runs) run.event(`stopping the Kafka broker for ${num(brokerStopMs / 1000)} s`);
  const stop = await outage("kafka", brokerStopMs);
  runs.forEach((run, i) => {
    run.event(`the broker answers again after ${num(stop.awaySeconds, 1)} s`);
    run.note(
      `broker restarted at ${num(restartedAt[i]!)} records in the sink (away ` +
        `${num(restart.awaySeconds, 1)} s), stopped at ${num(stoppedAt[i]!)} (away ` +
        `${num(stop.awaySeconds, 1)} s); sluice was not restarted`,
    );
  });
  await all((run) => run.produce(half, c, { spacingMs: 250 }));
}

/**
 * No fault: sluice reads the poison with the records.
 *
 * @param run The scenario's run.
 */
export async function poisonScenario(run: Run): Promise<void> {
  await run.start();
  await run.produce(0, run.chunks);
}

/**
 * Three sluice processes in one group, a fourth added at 30%, one of the
 * first three SIGKILLed at 60% and not restarted.
 *
 * @param run The scenario's run.
 */
export async function scaleScenario(run: Run): Promise<void> {
  const first = await run.start(3);
  const produced = run.produceInBackground(0, run.chunks, {
    spacingMs: run.settings.spanMs / run.chunks,
    lead: 0.2,
  });
  await run.waitFraction(0.3);
  const added = run.seen;
  await run.start();
  await run.waitFraction(0.6);
  await run.kill(first[1]!);
  run.note(`#4 started at ${num(added)}, #2 SIGKILLed at ${num(run.seen)} records in the sink`);
  await produced();
}

/**
 * Produces the messages compressed with a codec.
 *
 * @param codec The codec.
 * @returns The scenario.
 */
export function codecScenario(codec: Codec): (run: Run) => Promise<void> {
  return async (run) => {
    await run.start();
    await run.produce(0, run.chunks, { codec });
  };
}

/**
 * The driver of a single-sink scenario.
 *
 * @param name The scenario (not `broker`, which drives several runs).
 * @returns Its driver.
 */
export function driverOf(name: Exclude<ScenarioName, "broker">): (run: Run) => Promise<void> {
  switch (name) {
    case "kill":
      return killScenario;
    case "sink-down":
      return sinkDownScenario;
    case "poison":
      return poisonScenario;
    case "scale":
      return scaleScenario;
    default:
      return codecScenario(name.slice("codec-".length) as Codec);
  }
}
