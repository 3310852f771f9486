/**
 * Timestamps as pmacct writes them, read into exact instants.
 *
 * pmacct prints `stamp_inserted`, `stamp_updated`, `timestamp_start`, ... as:
 * - `YYYY-MM-DD HH:MM:SS` in the collector's local time (the default),
 * - the same with `.uuuuuu` microseconds (`timestamps_secs: false`, NetFlow start/end),
 * - epoch seconds as a string, optionally with a fraction (`timestamps_since_epoch: true`),
 * - RFC 3339 / RFC 9557 with an offset or `Z`, optionally followed by a `[Zone]`
 *   suffix (`timestamps_rfc3339: true`).
 *
 * Local times are read in a configurable IANA zone (default UTC), computed
 * with `Intl` and cached per hour so the hot path stays cheap.
 *
 * @module
 */

/** An instant with microsecond precision. */
export interface Timestamp {
  /** Whole seconds since the Unix epoch (floor). */
  seconds: number;
  /** Microseconds past `seconds`, 0 to 999999. */
  micros: number;
}

const LOCAL_RE =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?(?:\[[^\]]+\])?$/;
const EPOCH_RE = /^(\d{1,12})(?:\.(\d{1,9}))?$/;

/**
 * Checks that a time zone name is one `Intl` knows (`UTC`, `Europe/Berlin`, ...).
 *
 * @param zone The IANA zone name.
 * @returns `true` when usable.
 */
export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Reads pmacct timestamps in one configured zone. */
export class TimeReader {
  readonly #zone: string;
  readonly #utc: boolean;
  readonly #format: Intl.DateTimeFormat | undefined;
  readonly #offsetCache = new Map<number, number>();
  /** pmacct repeats the same few timestamp strings (bins, purge times): cache their readings. */
  readonly #textCache = new Map<string, Readonly<Timestamp>>();

  /**
   * @param zone IANA zone in which pmacct wrote local timestamps.
   * @throws {RangeError} When the zone is unknown.
   */
  constructor(zone = "UTC") {
    if (!isValidTimeZone(zone)) {
      throw new RangeError(`Cannot read timestamps: unknown time zone "${zone}"`);
    }
    this.#zone = zone;
    this.#utc = zone.toUpperCase() === "UTC" || zone === "Etc/UTC";
    this.#format = this.#utc ? undefined : new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
  }

  /** The zone local timestamps are read in. */
  get zone(): string {
    return this.#zone;
  }

  /**
   * Reads one timestamp value in any form pmacct writes.
   *
   * @param value A string or a number of epoch seconds.
   * @returns The instant.
   * @throws {SyntaxError} When the value is not a timestamp.
   */
  parse(value: unknown): Timestamp {
    if (typeof value === "number") {
      if (!Number.isFinite(value) || value < 0) {
        throw new SyntaxError(`Cannot read timestamp: ${value} is not an epoch time`);
      }
      const seconds = Math.floor(value);
      return { seconds, micros: Math.round((value - seconds) * 1e6) % 1e6 };
    }
    if (typeof value !== "string") {
      throw new SyntaxError(
        `Cannot read timestamp: expected a string, got ${JSON.stringify(value)}`,
      );
    }
    const cached = this.#textCache.get(value);
    if (cached !== undefined) return cached;
    const parsed = Object.freeze(this.#parseText(value));
    if (this.#textCache.size >= 4096) this.#textCache.clear();
    this.#textCache.set(value, parsed);
    return parsed;
  }

  #parseText(value: string): Timestamp {
    const text = value.trim();
    const epoch = EPOCH_RE.exec(text);
    if (epoch) return { seconds: Number(epoch[1]), micros: fractionToMicros(epoch[2]) };
    const m = LOCAL_RE.exec(text);
    if (!m) {
      throw new SyntaxError(`Cannot read timestamp: ${JSON.stringify(value)} is not a pmacct time`);
    }
    const [, y, mo, d, h, mi, s, frac, offset] = m;
    const year = Number(y), month = Number(mo), day = Number(d);
    const hour = Number(h), minute = Number(mi), second = Number(s);
    if (
      month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60
    ) {
      throw new SyntaxError(
        `Cannot read timestamp: ${JSON.stringify(value)} is not a valid date and time`,
      );
    }
    const wall = Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
    let seconds: number;
    if (offset !== undefined) seconds = wall - offsetSeconds(offset);
    else seconds = this.#utc ? wall : wall - this.#zoneOffset(wall);
    return { seconds, micros: fractionToMicros(frac) };
  }

  /**
   * The calendar date (`YYYY-MM-DD`) of an instant in the configured zone.
   *
   * @param ts The instant.
   * @returns The date as pmacct's collector saw it.
   */
  localDate(ts: Timestamp): string {
    const shifted = this.#utc ? ts.seconds : ts.seconds + this.#offsetAt(ts.seconds);
    return new Date(shifted * 1000).toISOString().slice(0, 10);
  }

  /** Offset (seconds east of UTC) in force at a wall-clock time read as if UTC. */
  #zoneOffset(wallSeconds: number): number {
    // First guess with the offset at the wall time taken as UTC, then correct
    // once: right everywhere except inside a DST gap, where no answer is right.
    const guess = this.#offsetAt(wallSeconds);
    const second = this.#offsetAt(wallSeconds - guess);
    return second;
  }

  /** Offset (seconds east of UTC) at an instant, cached per hour. */
  #offsetAt(instantSeconds: number): number {
    const hourKey = Math.floor(instantSeconds / 3600);
    const cached = this.#offsetCache.get(hourKey);
    if (cached !== undefined) return cached;
    // Offsets change on quarter-hour boundaries at the finest, so the offset
    // at the start of the hour holds for the whole hour.
    const at = hourKey * 3600;
    const parts = this.#format!.formatToParts(new Date(at * 1000));
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
    const wall = Date.UTC(
      get("year"),
      get("month") - 1,
      get("day"),
      get("hour"),
      get("minute"),
      get("second"),
    ) /
      1000;
    const offset = wall - at;
    if (this.#offsetCache.size > 10_000) this.#offsetCache.clear();
    this.#offsetCache.set(hourKey, offset);
    return offset;
  }
}

function fractionToMicros(frac: string | undefined): number {
  if (frac === undefined) return 0;
  return Number(frac.padEnd(6, "0").slice(0, 6));
}

function offsetSeconds(offset: string): number {
  if (offset === "Z") return 0;
  const sign = offset[0] === "-" ? -1 : 1;
  const digits = offset.slice(1).replace(":", "");
  return sign * (Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4)) * 60);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return (DAYS_IN_MONTH[month - 1] ?? 31) + (leap ? 1 : 0);
}
