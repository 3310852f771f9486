/**
 * What the targets share: plain HTTP to the servers, reading parsed JSON
 * answers, and sluice's per-record CPU work for a sink run in this process
 * (the baseline, and the bodies the "server alone" baselines send).
 *
 * @module
 */

import { parseConfig } from "../../lib/config.ts";
import { errorText, log } from "../../lib/log.ts";
import { TimeReader } from "../../lib/time.ts";
import type { PreparedRow } from "../../lib/record.ts";
import type { Baseline } from "../_measure.ts";
import type { TargetContext } from "./mod.ts";
import { REGISTRIES } from "../../sinks/mod.ts";

/** What to do when a server does not answer. */
export const HINT = "start the local services with: bash scripts/services.sh start";

/** A server's answer, its body read. */
export interface Answer {
  status: number;
  text: string;
}

/**
 * Sends one request to a local server.
 *
 * @param product The server, for messages.
 * @param base Its base URL.
 * @param method The method.
 * @param path The path and query.
 * @param body The body, if any.
 * @param contentType The body's type, if any.
 * @returns The answer, whatever its status.
 * @throws {Error} When the server cannot be reached.
 */
export async function request(
  product: string,
  base: string,
  method: string,
  path: string,
  body?: BodyInit,
  contentType?: string,
): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(base + path, {
      method,
      body,
      headers: contentType === undefined ? undefined : { "content-type": contentType },
    });
  } catch (error) {
    throw new Error(
      `Cannot reach ${product} at ${base} for ${method} ${path.slice(0, 80)}: ${
        errorText(error)
      } (bash scripts/services.sh status)`,
    );
  }
  return { status: response.status, text: await response.text() };
}

/**
 * Sends one request to a local server and insists on a 2xx answer.
 *
 * @param product The server, for messages.
 * @param base Its base URL.
 * @param method The method.
 * @param path The path and query.
 * @param body The body, if any.
 * @param contentType The body's type, if any.
 * @returns The answer's body.
 * @throws {Error} When the server cannot be reached or does not answer 2xx.
 */
export async function requestOk(
  product: string,
  base: string,
  method: string,
  path: string,
  body?: BodyInit,
  contentType?: string,
): Promise<string> {
  const answer = await request(product, base, method, path, body, contentType);
  if (answer.status < 200 || answer.status >= 300) {
    throw new Error(
      `Cannot ${method} ${path.slice(0, 100)} on ${product}: HTTP ${answer.status}: ${
        answer.text.trim().slice(0, 300)
      }`,
    );
  }
  return answer.text;
}

/**
 * A field of a parsed JSON answer by path.
 *
 * @param value The parsed answer.
 * @param path The keys, outermost first.
 * @returns The field, or `undefined`.
 */
export function field(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const key of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Every record prepared and encoded the way sluice does it, in requests of `batch` records. */
export interface Prepared {
  /** How long the work took. */
  seconds: number;
  /** Records prepared. */
  records: number;
  /** The body lines of each write, as `Sink.encode()` returns them. */
  requests: string[][];
}

/**
 * Runs sluice's per-record work for a sink in this process, without I/O:
 * decode of the messages as produced (K records each with `--per-message`),
 * `Sink.prepare()`, and `Sink.encode()` per batch, built from the same
 * variables a run gets (`parseConfig`, the sink registry).
 *
 * @param env sluice's environment for the sink.
 * @param ctx The records, topic, partitions and batch size.
 * @returns The time it took and the bodies.
 * @throws {ConfigError} When the variables are invalid.
 * @throws {Error} When a record could not be prepared.
 */
export function prepareAll(env: Record<string, string>, ctx: TargetContext): Prepared {
  const config = parseConfig(env, REGISTRIES);
  const sink = config.sink.module.create(config.sink.config, {
    time: new TimeReader(config.timeZone, { window: config.recordTime }),
    log,
    input: config.decoder.module.kind,
  });
  const decode = config.decoder.decode;
  const encoder = new TextEncoder();
  const values = ctx.data.messages.map((m) => encoder.encode(m));
  const started = performance.now();
  const requests: string[][] = [];
  let rows: PreparedRow[] = [];
  let records = 0;
  for (let i = 0; i < values.length; i++) {
    const partition = i % ctx.partitions;
    const offset = String(Math.floor(i / ctx.partitions));
    for (const { index, record } of decode(values[i]!).records) {
      const origin = { topic: ctx.topic, partition, offset, index };
      const prepared = sink.prepare(record, origin);
      if (!prepared.ok) continue;
      records++;
      rows.push({ row: prepared.row, bytes: prepared.bytes, origin });
      if (rows.length === ctx.batch) {
        requests.push(sink.encode(rows));
        rows = [];
      }
    }
  }
  if (rows.length > 0) requests.push(sink.encode(rows));
  const seconds = (performance.now() - started) / 1000;
  const want = ctx.data.records.length;
  if (records !== want) {
    throw new Error(`Cannot prepare every record for ${sink.name}: ${records} of ${want}`);
  }
  return { seconds, records, requests };
}

/**
 * The baseline row of {@link prepareAll}.
 *
 * @param product The server the bodies are for.
 * @param prepared What {@link prepareAll} measured.
 * @param note Added to the note.
 * @returns The baseline.
 */
export function prepareBaseline(product: string, prepared: Prepared, note = ""): Baseline {
  return {
    label: `sluice's decode + prepare + encode for ${product} alone (in this process, no I/O)`,
    seconds: prepared.seconds,
    records: prepared.records,
    note: `CPU-bound, one core${note}`,
  };
}
