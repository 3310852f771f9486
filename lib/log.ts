/**
 * Structured logging: one JSON object per line on standard error, with a
 * capitalised message and flat fields; errors go in the `error` field.
 * Repeated messages are rate-limited per key so one bad producer cannot
 * flood the log. This is the only module that touches the console.
 *
 * @module
 */

/** Log levels, least to most severe. */
export type Level = "debug" | "info" | "warn" | "error";

const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Extra fields of a log line. */
export type Fields = Record<string, unknown>;

/** Where log lines go; replaced in tests. */
export type LogWriter = (line: string) => void;

const encoder = new TextEncoder();

/** Writes a line to standard error synchronously, so nothing is lost on exit. */
export const stderrWriter: LogWriter = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** A structured logger. */
export class Logger {
  #min: number;
  readonly #write: LogWriter;
  readonly #clock: () => number;
  readonly #limits = new Map<string, { windowStart: number; count: number; suppressed: number }>();
  readonly #limitPerWindow: number;
  readonly #windowMs: number;

  /**
   * @param options Minimum level, writer, clock, and the rate limit
   *   (`limit` lines per `windowMs` for each key of {@link Logger.limited}).
   */
  constructor(
    options: {
      level?: Level;
      write?: LogWriter;
      clock?: () => number;
      limit?: number;
      windowMs?: number;
    } = {},
  ) {
    this.#min = LEVELS[options.level ?? "info"];
    this.#write = options.write ?? stderrWriter;
    this.#clock = options.clock ?? Date.now;
    this.#limitPerWindow = options.limit ?? 5;
    this.#windowMs = options.windowMs ?? 10_000;
  }

  /**
   * Changes the minimum level.
   *
   * @param level The new minimum level.
   */
  setLevel(level: Level): void {
    this.#min = LEVELS[level];
  }

  /**
   * Logs at debug level.
   *
   * @param msg Capitalised message.
   * @param fields Extra fields.
   */
  debug(msg: string, fields?: Fields): void {
    this.log("debug", msg, fields);
  }

  /**
   * Logs at info level.
   *
   * @param msg Capitalised message.
   * @param fields Extra fields.
   */
  info(msg: string, fields?: Fields): void {
    this.log("info", msg, fields);
  }

  /**
   * Logs at warn level.
   *
   * @param msg Capitalised message.
   * @param fields Extra fields.
   */
  warn(msg: string, fields?: Fields): void {
    this.log("warn", msg, fields);
  }

  /**
   * Logs at error level.
   *
   * @param msg Capitalised message.
   * @param fields Extra fields.
   */
  error(msg: string, fields?: Fields): void {
    this.log("error", msg, fields);
  }

  /**
   * Logs unless `key` was logged more than the limit within the window; when a
   * window that suppressed lines ends, the next line carries `suppressed: N`.
   *
   * @param key What makes lines "the same", e.g. `decode_error`.
   * @param level The level.
   * @param msg Capitalised message.
   * @param fields Extra fields.
   */
  limited(key: string, level: Level, msg: string, fields?: Fields): void {
    if (LEVELS[level] < this.#min) return;
    const now = this.#clock();
    let state = this.#limits.get(key);
    if (state === undefined || now - state.windowStart >= this.#windowMs) {
      const suppressed = state?.suppressed ?? 0;
      state = { windowStart: now, count: 0, suppressed: 0 };
      this.#limits.set(key, state);
      if (suppressed > 0) fields = { ...fields, suppressed };
    }
    state.count++;
    if (state.count > this.#limitPerWindow) {
      state.suppressed++;
      return;
    }
    this.log(level, msg, fields);
  }

  /**
   * Logs one line.
   *
   * @param level The level.
   * @param msg Capitalised message.
   * @param fields Extra fields; `Error` values become their message.
   */
  log(level: Level, msg: string, fields?: Fields): void {
    if (LEVELS[level] < this.#min) return;
    const line: Fields = { ts: new Date(this.#clock()).toISOString(), level, msg };
    if (fields) {
      for (const [k, v] of Object.entries(fields)) line[k] = v instanceof Error ? errorText(v) : v;
    }
    this.#write(JSON.stringify(line));
  }
}

/**
 * The message of an error and of its causes, joined, for the `error` field.
 *
 * @param error Anything thrown.
 * @returns A one-line description.
 */
export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let text = error.message;
  let cause = error.cause;
  for (let depth = 0; cause instanceof Error && depth < 3; depth++) {
    if (!text.includes(cause.message)) text += `: ${cause.message}`;
    cause = cause.cause;
  }
  return text;
}

/**
 * The message of an error and its causes on one line, for error messages
 * that embed another error (server answers often span lines).
 *
 * @param error Anything thrown.
 * @returns The text with runs of white space folded to one space.
 */
export function errorLine(error: unknown): string {
  return errorText(error).replace(/\s+/g, " ").trim();
}

/**
 * Writes text to standard output (dry-run rows, `--help`), unbuffered.
 *
 * @param text The text; a newline is not added.
 */
export function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** The process-wide logger; `main.ts` sets its level from configuration. */
export const log: Logger = new Logger();

/**
 * Writes human-facing text to standard error (summaries, configuration errors).
 *
 * @param text The text; a newline is not added.
 */
export function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += Deno.stderr.writeSync(bytes.subarray(written));
}
