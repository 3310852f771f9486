/**
 * Where servers are, as users write it: an `http(s)://` base URL, a
 * `host[:port]` entry that may also be a URL (ClickHouse, Elasticsearch),
 * or a Kafka `host:port`. Pure: every function returns what is wrong
 * instead of recording it, and the caller names the variable.
 *
 * @module
 */

/** A problem with a value, worded to follow the variable's name. */
export interface AddressProblem {
  ok: false;
  /** E.g. `must be an http:// or https:// URL`. */
  message: string;
}

/** A base URL, its credentials taken out. */
export interface BaseUrl {
  /** Scheme, host, port and path prefix, without a trailing slash and without credentials. */
  url: string;
  /** Whether the scheme is https. */
  secure: boolean;
  /** The user of `user:password@`, percent-decoded. */
  username?: string;
  /** The password of `user:password@`, percent-decoded. */
  password?: string;
}

/** What the URL readers refuse besides a bad URL. */
export interface UrlRules {
  /** Where credentials go instead (e.g. `CLICKHOUSE_USER and CLICKHOUSE_PASSWORD`); unset: allowed in the URL. */
  credentialsIn?: string;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Reads a base URL: http(s), optionally with a path prefix and with
 * `user:password@` credentials, which are taken out.
 *
 * @param text The URL as the user wrote it.
 * @param rules Whether credentials may be in it.
 * @returns The base URL and the credentials, or the problem.
 */
export function parseBaseUrl(
  text: string,
  rules: UrlRules = {},
): ({ ok: true } & BaseUrl) | AddressProblem {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, message: "must be an http:// or https:// URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { ok: false, message: "must be an http:// or https:// URL" };
  }
  if (url.search !== "" || url.hash !== "") {
    return { ok: false, message: "must not contain a query or fragment" };
  }
  const hasCredentials = url.username !== "" || url.password !== "";
  if (hasCredentials && rules.credentialsIn !== undefined) {
    return { ok: false, message: `must not contain credentials; set ${rules.credentialsIn}` };
  }
  const username = url.username === "" ? undefined : percentDecoded(url.username);
  const password = url.password === "" ? undefined : percentDecoded(url.password);
  url.username = "";
  url.password = "";
  const base = url.href.replace(/\/+$/, "");
  return { ok: true, url: base, secure: url.protocol === "https:", username, password };
}

/** A server as a `host[:port]` entry or a URL names it. */
export interface Endpoint {
  /** The scheme when the entry is a URL; `undefined` for `host[:port]`. */
  scheme?: "http" | "https";
  /** Host name or IP; an IPv6 address in brackets. */
  host: string;
  /** The port as written, if any (also a scheme's default port written out, `http://h:80`). */
  port?: number;
  /** Path prefix of a URL, `""` when none, without a trailing slash. */
  path: string;
}

const HOST_FORMS = "must be a host name or IP, optionally with :port, or an http(s):// URL";

/**
 * Reads one server entry: `host`, `host:port`, `[v6]:port`, a bare IPv6
 * address, or an `http(s)://host[:port][/path]` URL (no query, fragment or,
 * with `credentialsIn`, credentials).
 *
 * @param text The entry, trimmed.
 * @param rules Where credentials go instead of the URL.
 * @returns The endpoint, or the problem.
 */
export function parseEndpoint(
  text: string,
  rules: UrlRules = {},
): { ok: true; endpoint: Endpoint } | AddressProblem {
  if (SCHEME.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { ok: false, message: HOST_FORMS };
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return { ok: false, message: "must use http:// or https:// when it is a URL" };
    }
    if ((url.username !== "" || url.password !== "") && rules.credentialsIn !== undefined) {
      return { ok: false, message: `must not contain credentials; set ${rules.credentialsIn}` };
    }
    if (url.search !== "" || url.hash !== "") {
      return { ok: false, message: "must not contain a query or fragment" };
    }
    // URL drops a scheme's default port (http://es:80): read it from the text.
    const written = /^[a-z]+:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^/:?#]*)(?::(\d+))?/i.exec(text)?.[1];
    return {
      ok: true,
      endpoint: {
        scheme: url.protocol === "https:" ? "https" : "http",
        host: url.hostname,
        port: written === undefined ? undefined : Number(written),
        path: url.pathname.replace(/\/+$/, ""),
      },
    };
  }
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([A-Za-z0-9._-]+)(?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = `[${bracketed[1]}]`;
    port = bracketed[2];
  } else if (/^[0-9A-Fa-f:.]+$/.test(text) && text.split(":").length > 2) {
    host = `[${text}]`; // a bare IPv6 address: no port possible
  } else if (plain) {
    host = plain[1]!;
    port = plain[2];
  } else {
    return { ok: false, message: HOST_FORMS };
  }
  const number = port === undefined ? undefined : Number(port);
  if (number !== undefined && (number < 1 || number > 65535)) {
    return { ok: false, message: "must have a port between 1 and 65535" };
  }
  return { ok: true, endpoint: { host, port: number, path: "" } };
}

/**
 * Whether an entry is a Kafka bootstrap server: `host:port` or `[v6]:port`.
 *
 * @param text The entry.
 * @returns `true` when it has that form.
 */
export function isHostPort(text: string): boolean {
  return /^[^\s:]+:\d{1,5}$/.test(text) || /^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(text);
}

/**
 * Masks the credentials of every URL in a text, for messages, logs and
 * printed settings: the one masking function of sluice.
 *
 * The credentials of `scheme://user:password@host` are everything between
 * `://` and the last `@` of the URL (WHATWG URL reads `a:p@ss@host` as user
 * `a`, password `p@ss`), so a password holding `@`, `/`, `:` or `,` is
 * masked whole; the user stays readable, except when there is no password
 * (a lone `scheme://token@host` is often a secret itself). A host entry
 * written without a scheme (`user:password@host:port`) is masked the same
 * way. The URL ends at white space, a quote, `<`/`>` or a comma before the
 * next `scheme://`, so a text with a URL in a JSON string or a list of URLs
 * is masked too; a text that only
 * looks like credentials is masked as well: better too much than a leak.
 *
 * @param text Any text.
 * @returns The same text, each URL's credentials replaced by `***` (`user:***`).
 */
export function maskUrlPassword(text: string): string {
  if (!text.includes("@")) return text;
  return text
    .replace(
      /([a-z][a-z0-9+.-]*:\/\/)((?:(?!,[a-z][a-z0-9+.-]*:\/\/)[^\s"'<>])*)@/gi,
      (_, scheme: string, info: string) => `${scheme}${maskedUserInfo(info)}@`,
    )
    .replace(
      /(^|[\s"'(=,])([^\s"'<>@:/=,()]+):(?!\/\/)([^\s"'<>]*)@(?=[^\s"'<>@])/g,
      (_, before: string, user: string) => `${before}${user}:***@`,
    );
}

/** `user:***` for `user:password`, `***` for a lone user (it may be a token). */
function maskedUserInfo(info: string): string {
  if (info === "***" || info.endsWith(":***")) return info;
  const colon = info.indexOf(":");
  const slash = info.indexOf("/");
  if (colon > 0 && (slash === -1 || colon < slash)) return `${info.slice(0, colon)}:***`;
  return "***";
}

/** Percent-decodes URL credentials; a malformed escape is kept as written. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
