/**
 * The static registry of input decoders. `deno compile` embeds only imports
 * it can see, so decoders are listed here rather than loaded by name.
 *
 * @module
 */

import type { InputRecord } from "../../sinks/sink.ts";
import { decodePmacct } from "./pmacct.ts";

/** What a decoder makes of one Kafka message. */
export interface DecodeResult {
  /** Decoded records with their position in the message (from 0). */
  records: Array<{ index: number; record: InputRecord }>;
  /** Records deliberately skipped (pmacct purge markers). */
  skipped: number;
  /** One entry per part of the message that could not be decoded. */
  errors: Array<{ index: number; error: string }>;
}

/** Turns one message value into records. Pure; never throws. */
export type Decoder = (value: Uint8Array | string | null) => DecodeResult;

/** Every decoder, by the name `ENCODER` selects. */
export const DECODERS: Readonly<Record<string, Decoder>> = {
  pmacct: decodePmacct,
};
