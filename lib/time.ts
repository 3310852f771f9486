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
 * Reading is strict: a month 13, a 30 February, an hour 24, a second 60 and
 * an offset no zone has (beyond ±14:00, or with minutes from 60) are refused
 * with the text in the message, never carried into the next day or shifted;
 * years 0000 to 0099 are those years (`Date.UTC` would read them as
 * 1900-1999). Fractions are kept to the nanosecond.
 *
 * The record-time window (`RECORD_TIME_MIN`, `RECORD_TIME_MAX_FUTURE`) is
 * the one range of record times every sink accepts: each sink's `prepare()`
 * asks {@link TimeReader.outsideWindow} about the time it files a record
 * under, and sets a record outside aside (`convert`), so that garbage times
 * create no Elasticsearch index for the year 1900 or 9999, no InfluxDB shard
 * and no ClickHouse partition far away. The defaults (1970-01-01 to a day
 * ahead of now) take every record pmacct writes, replays of old data
 * included.
 *
 * @module
 */

import { declareVariables, type VarReader } from "./variables.ts";

/** An instant with microsecond precision (nanoseconds when the text had them). */
export interface Timestamp {
  /** Whole seconds since the Unix epoch (floor). */
  seconds: number;
  /** Microseconds past `seconds`, 0 to 999999. */
  micros: number;
  /**
   * Nanoseconds past `seconds`, 0 to 999999999, when the text had more than
   * six digits of fraction; absent: `micros` × 1000.
   */
  nanos?: number;
}

/**
 * Nanoseconds past the second of an instant.
 *
 * @param ts The instant.
 * @returns 0 to 999999999.
 */
export function nanosOf(ts: Timestamp): number {
  return ts.nanos ?? ts.micros * 1000;
}

const LOCAL_RE =
  /^(\d{4})-(\d{2})-(\d{2})[ Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:?\d{2})?(?:\[[^\]]+\])?$/;
const EPOCH_RE = /^(\d{1,12})(?:\.(\d{1,9}))?$/;

/** Seconds from 0000-01-01T00:00:00Z (proleptic Gregorian) to the Unix epoch. */
const YEAR_0 = -62167219200;
/** 9999-12-31T23:59:59Z: the last second with a four-digit year. */
const YEAR_9999_END = 253402300799;

/** The range of record times every sink accepts (`RECORD_TIME_MIN`, `RECORD_TIME_MAX_FUTURE`). */
export interface TimeWindow {
  /** The earliest record time, in seconds since the epoch (`RECORD_TIME_MIN`). */
  minSeconds: number;
  /** How far ahead of now a record time may be, in milliseconds (`RECORD_TIME_MAX_FUTURE`). */
  maxFutureMs: number;
}

/** The defaults of the window: 1970-01-01T00:00:00Z to one day ahead of now. */
export const DEFAULT_TIME_WINDOW: Readonly<TimeWindow> = Object.freeze({
  minSeconds: 0,
  maxFutureMs: 86_400_000,
});

/** The variables of the record-time window. */
export const RECORD_TIME = declareVariables("Record time", {
  RECORD_TIME_MIN: {
    type: "string",
    default: "1970-01-01",
    doc: "Set aside records whose time (the time each sink files them under) is before this " +
      "date (YYYY-MM-DD) or UTC instant (RFC 3339); the default takes replays of any " +
      "pmacct data",
  },
  RECORD_TIME_MAX_FUTURE: {
    type: "seconds",
    default: "86400",
    min: 0,
    doc: "Set aside records whose time is more than this many seconds ahead of the clock " +
      "(a wrong PMACCT_TIMEZONE, a collector's clock or garbage); applies to every sink",
  },
});

/**
 * Reads the record-time window; problems go to `reader.problems`.
 *
 * @param reader The configuration reader.
 * @returns The window (the default's part where a variable is invalid).
 */
export function readTimeWindow(reader: VarReader): TimeWindow {
  const v = RECORD_TIME.read(reader);
  let minSeconds = DEFAULT_TIME_WINDOW.minSeconds;
  const text = v.RECORD_TIME_MIN;
  const date = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  try {
    if (!/(?:[Zz]|[+-]\d{2}:?\d{2})$/.test(date)) throw new SyntaxError("no offset");
    minSeconds = new TimeReader("UTC", { window: false }).parse(date).seconds;
  } catch {
    reader.problem(
      "RECORD_TIME_MIN",
      text,
      "must be a date (YYYY-MM-DD) or an instant with an offset (2026-01-01T00:00:00Z)",
    );
  }
  return { minSeconds, maxFutureMs: v.RECORD_TIME_MAX_FUTURE };
}

/** How a {@link TimeReader} is made. */
export interface TimeReaderOptions {
  /**
   * The record-time window {@link TimeReader.outsideWindow} checks; `false`:
   * none. Unset: {@link DEFAULT_TIME_WINDOW}.
   */
  window?: TimeWindow | false;
  /** Milliseconds clock for the window, injected by tests. */
  clock?: () => number;
}

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
  readonly #window: TimeWindow | undefined;
  readonly #clock: () => number;
  /**
   * The latest accepted record time in milliseconds, from an earlier reading
   * of the clock: the clock only moves on, so a time below it is inside
   * without reading the clock again.
   */
  #latestMs = -Infinity;

  /**
   * @param zone IANA zone in which pmacct wrote local timestamps.
   * @param options The record-time window and the clock it is measured with.
   * @throws {RangeError} When the zone is unknown.
   */
  constructor(zone = "UTC", options: TimeReaderOptions = {}) {
    if (!isValidTimeZone(zone)) {
      throw new RangeError(`Cannot read timestamps: unknown time zone "${zone}"`);
    }
    this.#window = options.window === false ? undefined : options.window ?? DEFAULT_TIME_WINDOW;
    this.#clock = options.clock ?? Date.now;
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
   * The record-time window {@link TimeReader.outsideWindow} checks, for a
   * sink with bounds of its own to tell which is narrower.
   *
   * @returns The window, or `undefined` when there is none.
   */
  get window(): Readonly<TimeWindow> | undefined {
    return this.#window;
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
      if (!Number.isFinite(value) || value < 0 || value > YEAR_9999_END) {
        throw new SyntaxError(`Cannot read timestamp: ${value} is not an epoch time`);
      }
      // Rounded once, as a whole: 1.9999999 is 2 s, not 1 s and 1000000 µs.
      const total = Math.round(value * 1e6);
      const seconds = Math.floor(total / 1e6);
      return { seconds, micros: total - seconds * 1e6 };
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
    if (epoch) return withFraction(Number(epoch[1]), epoch[2]);
    const m = LOCAL_RE.exec(text);
    if (!m) {
      throw new SyntaxError(`Cannot read timestamp: ${JSON.stringify(value)} is not a pmacct time`);
    }
    const [, y, mo, d, h, mi, s, frac, offset] = m;
    const year = Number(y), month = Number(mo), day = Number(d);
    const hour = Number(h), minute = Number(mi), second = Number(s);
    // No second 60: POSIX clocks (pmacct's) never show a leap second, and
    // carrying it into the next minute would change the time.
    if (
      month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59
    ) {
      throw new SyntaxError(
        `Cannot read timestamp: ${JSON.stringify(value)} is not a valid date and time`,
      );
    }
    const wall = epochSeconds(year, month, day, hour, minute, second);
    let seconds: number;
    if (offset !== undefined) {
      const east = offsetSeconds(offset);
      if (east === undefined) {
        throw new SyntaxError(
          `Cannot read timestamp: ${JSON.stringify(value)} has an offset no time zone has ` +
            "(from -14:00 to +14:00, minutes below 60)",
        );
      }
      seconds = wall - east;
    } else seconds = this.#utc ? wall : wall - this.#zoneOffset(wall);
    return withFraction(seconds, frac);
  }

  /**
   * Why an instant is outside the record-time window, if it is.
   *
   * @param ts The record time.
   * @returns A sentence fragment (`is before RECORD_TIME_MIN (...)`), or
   *   `undefined` when the instant is inside (or there is no window).
   */
  outsideWindow(ts: Timestamp): string | undefined {
    const window = this.#window;
    if (window === undefined) return undefined;
    if (ts.seconds < window.minSeconds) {
      return `is before RECORD_TIME_MIN (${isoSeconds(window.minSeconds)})`;
    }
    // Compared in milliseconds: a record a fraction of a second past the edge is out.
    const ms = ts.seconds * 1000 + Math.floor(ts.micros / 1000);
    if (ms <= this.#latestMs) return undefined;
    const now = this.#clock();
    this.#latestMs = now + window.maxFutureMs;
    if (ms > this.#latestMs) {
      return `is more than RECORD_TIME_MAX_FUTURE (${window.maxFutureMs / 1000} s) ahead of ` +
        `the clock (${isoSeconds(Math.floor(now / 1000))}); check PMACCT_TIMEZONE and the ` +
        "collector's clock";
    }
    return undefined;
  }

  /**
   * The calendar date (`YYYY-MM-DD`) of an instant in the configured zone.
   *
   * @param ts The instant.
   * @returns The date as pmacct's collector saw it.
   */
  localDate(ts: Timestamp): string {
    const shifted = this.#utc ? ts.seconds : ts.seconds + this.#offsetAt(ts.seconds);
    return isoDate(shifted);
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
    // Before the year 1 Intl counts years by era; the zone's offset there is
    // its earliest (local mean time) anyway.
    const hourKey = Math.floor(Math.max(instantSeconds, FIRST_CE_SECOND) / 3600);
    const cached = this.#offsetCache.get(hourKey);
    if (cached !== undefined) return cached;
    // Offsets change on quarter-hour boundaries at the finest, so the offset
    // at the start of the hour holds for the whole hour.
    const at = hourKey * 3600;
    const parts = this.#format!.formatToParts(new Date(at * 1000));
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
    const wall = epochSeconds(
      get("year"),
      get("month"),
      get("day"),
      get("hour"),
      get("minute"),
      get("second"),
    );
    const offset = wall - at;
    if (this.#offsetCache.size > 10_000) this.#offsetCache.clear();
    this.#offsetCache.set(hourKey, offset);
    return offset;
  }
}

/** 0001-01-01T00:00:00Z. */
const FIRST_CE_SECOND = -62135596800;

/** An instant from whole seconds and the digits of a fraction (up to 9). */
function withFraction(seconds: number, frac: string | undefined): Timestamp {
  if (frac === undefined) return { seconds, micros: 0 };
  if (frac.length <= 6) return { seconds, micros: Number(frac.padEnd(6, "0")) };
  const nanos = Number(frac.padEnd(9, "0"));
  return { seconds, micros: Math.floor(nanos / 1000), nanos };
}

/** Seconds east of UTC of `Z` or `±HH[:]MM`; `undefined` for one no zone has. */
function offsetSeconds(offset: string): number | undefined {
  if (offset === "Z" || offset === "z") return 0;
  const sign = offset[0] === "-" ? -1 : 1;
  const digits = offset.slice(1).replace(":", "");
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2, 4));
  // UTC-12:00 (Baker Island) to UTC+14:00 (Line Islands) are the offsets in
  // use; RFC 3339 allows up to 23:59, which would shift a time by almost a day.
  if (minutes > 59 || hours > 14 || (hours === 14 && minutes > 0)) return undefined;
  return sign * (hours * 3600 + minutes * 60);
}

/**
 * Seconds since the epoch of a date and time read as UTC, for any year from
 * 0000 (proleptic Gregorian, as RFC 3339 counts): `Date.UTC` reads years
 * 0 to 99 as 1900 to 1999.
 *
 * @param year The year, e.g. 50 for 0050.
 * @param month 1 to 12.
 * @param day 1 to 31.
 * @param hour 0 to 23.
 * @param minute 0 to 59.
 * @param second 0 to 59.
 * @returns Seconds since 1970-01-01T00:00:00Z.
 */
export function epochSeconds(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
): number {
  return daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * `days_from_civil`, http://howardhinnant.github.io/date_algorithms.html).
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * The UTC date of an instant, `YYYY-MM-DD`, with four-digit years from 0000
 * to 9999 (`-YYYY` before, `+YYYYY` after, as `Date.toISOString` writes them).
 *
 * @param seconds Seconds since the epoch.
 * @returns E.g. `0050-06-01`.
 */
export function isoDate(seconds: number): string {
  const ms = seconds * 1000;
  if (Math.abs(ms) > 8.64e15) return `${seconds} s since the epoch`;
  // toISOString() ends with "THH:MM:SS.sssZ".
  return new Date(ms).toISOString().slice(0, -14);
}

/**
 * An instant as RFC 3339 in UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`.
 *
 * @param seconds Seconds since the epoch.
 * @returns E.g. `1970-01-01T00:00:00Z`.
 */
export function isoSeconds(seconds: number): string {
  const ms = seconds * 1000;
  if (Math.abs(ms) > 8.64e15) return `${seconds} s since the epoch`;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Whether an instant has a four-digit year (0000 to 9999), as index names
 * and `YYYY-MM-DD` texts need.
 *
 * @param seconds Seconds since the epoch.
 * @returns `true` from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
 */
export function hasFourDigitYear(seconds: number): boolean {
  return seconds >= YEAR_0 && seconds <= YEAR_9999_END;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return (DAYS_IN_MONTH[month - 1] ?? 31) + (leap ? 1 : 0);
}
