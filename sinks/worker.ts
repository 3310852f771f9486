/**
 * A decode worker (`DECODE_WORKERS`, `lib/workers.ts`): builds the decoder
 * and the sink from the variables the main thread read, then decodes and
 * prepares chunks of messages. The sink is never connected here: only its
 * pure `prepare()` runs. A prepared row travels back without its record; a
 * rejected one with it (the dead letter needs it).
 *
 * It lives in `sinks/` because it needs the registry of sinks, which
 * `lib/` may not import.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { parseConfig } from "../lib/config.ts";
import type { DecodedRecord, Decoder, Predecoded } from "../lib/decoder.ts";
import { errorText, Logger } from "../lib/log.ts";
import type { RecordOrigin } from "../lib/record.ts";
import type { Sink } from "../lib/sink.ts";
import { TimeReader } from "../lib/time.ts";
import {
  type Chunk,
  packResults,
  unpackChunk,
  type WorkerReply,
  type WorkerRequest,
} from "../lib/workers.ts";
import { REGISTRIES } from "./mod.ts";

let decoder: Decoder | undefined;
let sink: Sink | undefined;

/**
 * Decodes and prepares one chunk, as the pipeline would on the main thread.
 *
 * @param chunk The packed messages.
 * @param decode The decoder.
 * @param target The sink whose `prepare()` makes the rows.
 * @returns One result per message.
 */
export function decodeChunk(chunk: Chunk, decode: Decoder, target: Sink): Predecoded[] {
  const { topic, partition } = chunk;
  return unpackChunk(chunk).map(({ offset, value, key }) => {
    const decoded = decode(value);
    const records: DecodedRecord[] = decoded.records.map(({ index, record }) => {
      const origin: RecordOrigin = key ? { topic, partition, offset, index, key } : {
        topic,
        partition,
        offset,
        index,
      };
      const prepared = target.prepare(record, origin);
      return prepared.ok ? { index, prepared } : { index, record, prepared };
    });
    return { records, skipped: decoded.skipped, errors: decoded.errors };
  });
}

function reply(message: WorkerReply): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  try {
    if (request.type === "init") {
      const config = parseConfig(request.env, REGISTRIES, { offline: true });
      const log = new Logger({ level: config.logLevel, format: config.logFormat ?? "json" });
      decoder = config.decoder.decode;
      sink = config.sink.module.create(config.sink.config, {
        time: new TimeReader(config.timeZone, { window: config.recordTime }),
        log,
        input: config.decoder.module.kind,
      });
      reply({ type: "ready" });
      return;
    }
    if (decoder === undefined || sink === undefined) {
      reply({ type: "failed", id: request.id, error: "the worker was not initialised" });
      return;
    }
    const results = packResults(decodeChunk(request.chunk, decoder, sink));
    reply({ type: "done", id: request.id, results });
  } catch (error) {
    reply({
      type: "failed",
      id: request.type === "chunk" ? request.id : undefined,
      error: errorText(error),
    });
  }
};
