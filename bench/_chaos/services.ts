/**
 * Stopping and starting the local services for the chaos suite, through
 * `scripts/services.sh stop|start <service>`. A service the suite stopped is
 * remembered until it answers again, so that an interrupt or a failure
 * elsewhere still starts it ({@link restartStopped}); {@link outage} starts it
 * again in a `finally`, and nothing goes on before it answers.
 *
 * @module
 */

import { errorText } from "../../lib/log.ts";
import { progress, sleep } from "../_measure.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SERVICES = ROOT + "scripts/services.sh";

/** The services the suite stops, as `scripts/services.sh` names them. */
export type ServiceName =
  | "kafka"
  | "clickhouse"
  | "clickhouse26"
  | "elasticsearch"
  | "victoriametrics"
  | "influxdb";

/** Services stopped by the suite and not yet seen answering again. */
const stopped = new Set<ServiceName>();

/** How to tell that a service answers, per service (set by whoever knows how). */
const probes = new Map<ServiceName, () => Promise<void>>();

/**
 * Registers how to tell that a service answers (a request that fails when it does not).
 *
 * @param service The service.
 * @param probe Resolves when it answers, throws when not.
 */
export function setProbe(service: ServiceName, probe: () => Promise<void>): void {
  probes.set(service, probe);
}

async function services(action: "stop" | "start", service: ServiceName): Promise<void> {
  const out = await new Deno.Command("bash", {
    args: [SERVICES, action, service],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-10).join("\n");
    throw new Error(
      `Cannot ${action} ${service} with bash scripts/services.sh ${action} ${service} ` +
        `(exit ${out.code}):\n${text}`,
    );
  }
}

/**
 * Stops a service (`scripts/services.sh stop`).
 *
 * @param service The service.
 * @throws {Error} When the script fails.
 */
export async function stopService(service: ServiceName): Promise<void> {
  stopped.add(service);
  await services("stop", service);
}

/**
 * Starts a service and waits until it answers: `scripts/services.sh start`
 * (which waits until the service is ready), then the service's probe; both
 * are tried again until `timeoutMs` passed.
 *
 * @param service The service.
 * @param timeoutMs How long to keep trying.
 * @throws {Error} When it does not answer within that time.
 */
export async function startService(service: ServiceName, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1;; attempt++) {
    try {
      await services("start", service);
      await probes.get(service)?.();
      stopped.delete(service);
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(
          `Cannot bring ${service} back within ${timeoutMs / 1000} s: ${errorText(error)}; ` +
            `start it with bash scripts/services.sh start ${service}`,
        );
      }
      progress(`${service} does not answer yet (attempt ${attempt}): ${errorText(error)}`);
      await sleep(2000);
    }
  }
}

/**
 * Stops a service for a while and starts it again, also when `during`
 * fails; returns once the service answers again.
 *
 * @param service The service.
 * @param ms How long it stays stopped (from the end of the stop).
 * @param during Runs while it is stopped (production, say); the outage
 *   lasts at least `ms` and at least as long as `during`.
 * @returns When it answered again (epoch ms) and how long it was away.
 * @throws {Error} When it cannot be stopped or started, or `during` fails
 *   (after the service answers again).
 */
export async function outage(
  service: ServiceName,
  ms: number,
  during: () => Promise<void> = () => Promise.resolve(),
): Promise<{ backAt: number; awaySeconds: number }> {
  const started = Date.now();
  try {
    await stopService(service);
    const stoppedAt = Date.now();
    await Promise.all([during(), sleep(Math.max(0, ms - (Date.now() - stoppedAt)))]);
  } finally {
    await startService(service);
  }
  const backAt = Date.now();
  return { backAt, awaySeconds: (backAt - started) / 1000 };
}

/**
 * Starts every service the suite stopped and has not seen answering since
 * (after a failure or an interrupt).
 *
 * @returns Resolves when they answer; failures are reported, not thrown.
 */
export async function restartStopped(): Promise<void> {
  for (const service of [...stopped]) {
    progress(`starting ${service} again`);
    await startService(service).catch((error) => progress(errorText(error)));
  }
}
