/**
 * Structured logging: one line per event on standard error, with a
 * capitalised message and flat fields; errors go in the `error` field.
 * Two formats (`LOG_FORMAT`): `json`, one JSON object per line for
 * machines, and `text`, `time LEVEL message key=value ...` for people; the
 * default is `text` when standard error is a terminal, `json` otherwise.
 * Every line is in the chosen format, those of uncaught errors included
 * ({@link installCrashHandlers}). Repeated messages are rate-limited per key
 * so one bad producer cannot flood the log. This is the only module that
 * touches the console.
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

/** How a line is written: `json` for machines, `text` for people (`LOG_FORMAT`). */
export type LogFormat = "json" | "text";

/** The names of the fields every line starts with; a field of the same name is not written. */
const RESERVED = new Set(["ts", "level", "msg"]);

/**
 * The format used when `LOG_FORMAT` is unset: `text` when standard error is
 * a terminal (a person is reading), `json` otherwise (a collector is).
 *
 * @returns The format.
 */
export function defaultLogFormat(): LogFormat {
  try {
    return Deno.stderr.isTerminal() ? "text" : "json";
  } catch {
    return "json";
  }
}

const encoder = new TextEncoder();

/** Writes a line to standard error synchronously, so nothing is lost on exit. */
export const stderrWriter: LogWriter = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/** A structured logger. */
export class Logger {
  #min: number;
  #format: LogFormat;
  #silenced = false;
  readonly #write: LogWriter;
  readonly #clock: () => number;
  readonly #limits = new Map<string, { windowStart: number; count: number; suppressed: number }>();
  readonly #limitPerWindow: number;
  readonly #windowMs: number;

  /**
   * @param options Minimum level, format (default `json`), writer, clock, and
   *   the rate limit (`limit` lines per `windowMs` for each key of {@link Logger.limited}).
   */
  constructor(
    options: {
      level?: Level;
      format?: LogFormat;
      write?: LogWriter;
      clock?: () => number;
      limit?: number;
      windowMs?: number;
    } = {},
  ) {
    this.#min = LEVELS[options.level ?? "info"];
    this.#format = options.format ?? "json";
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
   * Changes the format of the lines written from now on.
   *
   * @param format `json` or `text`.
   */
  setFormat(format: LogFormat): void {
    this.#format = format;
  }

  /**
   * Whether lines of a level are written (e.g. to add a stack trace at debug only).
   *
   * @param level The level.
   * @returns `true` when that level is at or above the minimum.
   */
  enabled(level: Level): boolean {
    return LEVELS[level] >= this.#min;
  }

  /**
   * Drops every line from now on. `main.ts` calls it right after its last
   * line ("Stopped"), so that a client library still winding down cannot
   * write after it.
   */
  silence(): void {
    this.#silenced = true;
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
    if (LEVELS[level] < this.#min || this.#silenced) return;
    const ts = new Date(this.#clock()).toISOString();
    this.#write(
      this.#format === "text" ? textLine(ts, level, msg, fields) : jsonLine(ts, level, msg, fields),
    );
  }
}

/** Writes bigints (offsets, exact integers) as decimal strings. */
function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** One JSON object: `ts`, `level`, `msg`, then the fields (an `Error` as its text). */
function jsonLine(ts: string, level: Level, msg: string, fields: Fields | undefined): string {
  const line: Fields = { ts, level, msg };
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (!RESERVED.has(k)) line[k] = v instanceof Error ? errorText(v) : v;
    }
  }
  return JSON.stringify(line, bigintSafe);
}

/**
 * One line for people: `2026-01-02T03:04:05.000Z WARN  Message key=value
 * key="two words"`. A value is written bare when it has no space, quote,
 * `=` or control character, and as JSON otherwise, so a line stays one line.
 */
function textLine(ts: string, level: Level, msg: string, fields: Fields | undefined): string {
  let line = `${ts} ${level.toUpperCase().padEnd(5)} ${msg.replace(/[\r\n]+/g, " ")}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined || RESERVED.has(k)) continue;
      line += ` ${k}=${textValue(v instanceof Error ? errorText(v) : v)}`;
    }
  }
  return line;
}

function textValue(value: unknown): string {
  if (typeof value === "string") return isBare(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return JSON.stringify(value, bigintSafe) ?? String(value);
}

/** Whether a text value can be written without quotes: no space, quote, `=`, `\\` or control character. */
function isBare(value: string): boolean {
  if (value === "" || /[\s"'=\\]/.test(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 32 || code === 127) return false;
  }
  return true;
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

/**
 * The process-wide logger; `main.ts` sets its level and format from the
 * configuration. Until then it writes in the default format ({@link defaultLogFormat}).
 */
export const log: Logger = new Logger({ format: defaultLogFormat() });

/**
 * Makes an uncaught error or an unhandled promise rejection end the process
 * with one log line in the logger's format (message, error and stack as
 * fields) and exit status 1, instead of the runtime's multi-line, coloured
 * report.
 *
 * @param logger Where the line goes.
 * @param exit Ends the process; `Deno.exit` by default.
 * @returns Removes the handlers again (for tests).
 */
export function installCrashHandlers(
  logger: Logger,
  exit: (code: number) => void = Deno.exit,
): () => void {
  const crash = (what: string, error: unknown) => {
    logger.error(what, {
      error,
      stack: error instanceof Error ? error.stack?.replace(/\n\s*/g, " | ") : undefined,
    });
    exit(1);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    crash("Cannot go on: an uncaught error", event.error ?? event.message);
  };
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    crash("Cannot go on: an unhandled promise rejection", event.reason);
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}

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
