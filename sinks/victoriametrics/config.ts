/**
 * The VictoriaMetrics sink's variables, read once into a resolved configuration.
 *
 * Compatible with pmacct-kafka-vm: `VM_URL`, `VM_SSL_VERIFY`,
 * `VM_IMPORT_PATH`, `VM_INSTANCE`, `VM_JOB`, `VM_METRICS_NAMES` (and the
 * single `VM_METRIC_NAME` its README documented), `VM_AVOID_LABELS`,
 * `VM_MAX_SAMPLES_PER_SEND` and `VM_MAX_TIME_TO_SEND` mean what they meant
 * there, with two fixes: `VM_SSL_VERIFY=NO` really turns verification off
 * (the script never passed it on), and `VM_URL` and `VM_IMPORT_PATH` are
 * joined with exactly one slash (the script sent `//api/v1/import`).
 *
 * The default of `VM_AVOID_LABELS` differs on purpose: besides the metric
 * fields it leaves out every field whose value changes on each pmacct purge
 * (`stamp_inserted`, `stamp_updated`, `timestamp_*`, `writer_id`,
 * `event_type`), each of which made a new series per purge.
 *
 * @module
 */

import type { Env, VarReader, VarSpec } from "../../lib/variables.ts";
import type { BatchLimits } from "../registry_types.ts";
import { matchesPattern } from "../../lib/fields.ts";
import { parseBaseUrl } from "../../lib/http.ts";

/** How requests authenticate. */
export type VictoriaMetricsAuth =
  | { kind: "none" }
  | { kind: "basic"; username: string; password: string }
  | { kind: "bearer"; token: string };

/** The resolved VictoriaMetrics configuration. */
export interface VictoriaMetricsConfig {
  /**
   * Base URL without credentials and without a trailing slash, e.g.
   * `http://127.0.0.1:8428` or `https://vmauth:8427/prefix` (`VM_URL`).
   */
  url: string;
  /**
   * Where lines are imported: `url` and `VM_IMPORT_PATH` joined with one slash.
   * @default `${url}/api/v1/import`
   */
  importUrl: string;
  /** Where the health check asks: `${url}/health`. */
  healthUrl: string;
  /**
   * Verify the server's TLS certificate (`VM_SSL_VERIFY`).
   * @default true
   */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificate (`VM_CA_FILE`). */
  caFile?: string;
  /** Value of the `job` label of every series (`VM_JOB`). */
  job: string;
  /** Value of the `instance` label of every series (`VM_INSTANCE`). */
  instance: string;
  /**
   * Record fields sent as metrics, each also the metric name (`VM_METRICS_NAMES`,
   * else `VM_METRIC_NAME`).
   * @default ["bytes", "packets"]
   */
  metricNames: string[];
  /**
   * Field patterns that do not become labels (`VM_AVOID_LABELS`); `name*`
   * matches a prefix. Ignored when {@link labels} is set. The metric fields
   * and the timestamp field never become labels.
   * @default DEFAULT_AVOID_LABELS
   */
  avoidLabels: string[];
  /** Field patterns that alone become labels, when set (`VM_LABELS`). */
  labels?: string[];
  /**
   * Field holding each record's time (`VM_TIMESTAMP_FIELD`).
   * @default "stamp_updated"
   */
  timestampField: string;
  /**
   * Records older than this (milliseconds before now) are set aside (`VM_TIMESTAMP_MAX_AGE`).
   * @default 2678400000 (31 days, VictoriaMetrics' default retention)
   */
  maxAgeMs: number;
  /**
   * Records further ahead than this (milliseconds after now) are set aside
   * (`VM_TIMESTAMP_MAX_FUTURE`).
   * @default 600000
   */
  maxFutureMs: number;
  /**
   * Most labels per series, `__name__`, `job` and `instance` included
   * (`VM_MAX_LABELS`, the server's `-maxLabelsPerTimeseries`).
   * @default 30
   */
  maxLabels: number;
  /**
   * Longest label value in UTF-8 bytes (`VM_MAX_LABEL_VALUE_LENGTH`, the
   * server's `-maxLabelValueLen`).
   * @default 16384
   */
  maxLabelValueBytes: number;
  /**
   * Request timeout in milliseconds (`VM_REQUEST_TIMEOUT`).
   * @default 30000
   */
  requestTimeoutMs: number;
  /**
   * Gzip request bodies (`VM_COMPRESSION`).
   * @default true
   */
  compression: boolean;
  /** Credentials: `VM_USERNAME`/`VM_PASSWORD`, `VM_BEARER_TOKEN`, or from `VM_URL`. */
  auth: VictoriaMetricsAuth;
  /**
   * How long after a 204 the offsets of a batch are committed (`VM_COMMIT_DELAY`), in milliseconds.
   * @default 15000
   */
  commitDelayMs: number;
}

const GROUP = "VictoriaMetrics";

/** The default of `VM_AVOID_LABELS`: metric fields and fields that change on every purge. */
export const DEFAULT_AVOID_LABELS =
  "bytes,packets,flows,stamp_inserted,stamp_updated,timestamp_*,writer_id,event_type";

/** Metric names as Prometheus and VictoriaMetrics define them. */
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Every variable the VictoriaMetrics sink reads. */
export const VICTORIAMETRICS_VARIABLES: readonly VarSpec[] = [
  {
    name: "VM_URL",
    type: "string",
    required: true,
    group: GROUP,
    example: "http://127.0.0.1:8428",
    doc: "Base http(s):// URL of VictoriaMetrics (single node, vminsert or vmauth), " +
      "optionally with a path prefix",
  },
  {
    name: "VM_IMPORT_PATH",
    type: "string",
    default: "/api/v1/import",
    group: GROUP,
    doc: "Path of the JSON line import API, appended to VM_URL with one slash " +
      "(e.g. /insert/0/prometheus/api/v1/import for a cluster)",
  },
  {
    name: "VM_SSL_VERIFY",
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "Verify the server's TLS certificate and host name (NO accepts any certificate)",
  },
  {
    name: "VM_CA_FILE",
    type: "string",
    group: GROUP,
    doc: "PEM file with the CA certificate(s) that signed the server certificate, " +
      "in addition to the system CAs",
  },
  {
    name: "VM_USERNAME",
    type: "string",
    group: GROUP,
    doc: "User name for HTTP basic authentication (vmauth, -httpAuth.username)",
  },
  {
    name: "VM_PASSWORD",
    type: "string",
    secret: true,
    group: GROUP,
    doc: "Password for HTTP basic authentication, with VM_USERNAME",
  },
  {
    name: "VM_BEARER_TOKEN",
    type: "string",
    secret: true,
    group: GROUP,
    doc: "Bearer token sent as Authorization: Bearer (instead of VM_USERNAME/VM_PASSWORD)",
  },
  {
    name: "VM_JOB",
    type: "string",
    required: true,
    group: GROUP,
    example: "pmacct",
    doc: "Value of the job label of every series",
  },
  {
    name: "VM_INSTANCE",
    type: "string",
    required: true,
    group: GROUP,
    example: "nfacctd-1",
    doc: "Value of the instance label of every series",
  },
  {
    name: "VM_METRICS_NAMES",
    type: "list",
    default: "bytes,packets",
    group: GROUP,
    doc: "Comma-separated record fields sent as metrics, each under its own name " +
      "(one line per field per record)",
  },
  {
    name: "VM_METRIC_NAME",
    type: "string",
    group: GROUP,
    doc: "A single metric field, as the original README documented it; " +
      "used only when VM_METRICS_NAMES is unset",
  },
  {
    name: "VM_AVOID_LABELS",
    type: "list",
    default: DEFAULT_AVOID_LABELS,
    group: GROUP,
    doc: "Comma-separated record fields that do not become labels (name* matches a prefix); " +
      "the metric and timestamp fields never do",
  },
  {
    name: "VM_LABELS",
    type: "list",
    group: GROUP,
    doc: "Comma-separated record fields that alone become labels (name* matches a prefix), " +
      "instead of every field not in VM_AVOID_LABELS",
  },
  {
    name: "VM_TIMESTAMP_FIELD",
    type: "string",
    default: "stamp_updated",
    group: GROUP,
    doc:
      "Record field holding the sample time, in any pmacct form (local times in PMACCT_TIMEZONE)",
  },
  {
    name: "VM_TIMESTAMP_MAX_AGE",
    type: "seconds",
    default: "2678400",
    group: GROUP,
    doc: "Set aside records older than this many seconds (default 31 days, the server's " +
      "default -retentionPeriod, which drops older samples silently); raise it with the retention",
  },
  {
    name: "VM_TIMESTAMP_MAX_FUTURE",
    type: "seconds",
    default: "600",
    min: 0,
    group: GROUP,
    doc: "Set aside records more than this many seconds in the future " +
      "(a sign of a wrong PMACCT_TIMEZONE or clock)",
  },
  {
    name: "VM_MAX_LABELS",
    type: "int",
    default: "30",
    min: 3,
    group: GROUP,
    doc: "Set aside records with more labels than this per series (__name__, job and instance " +
      "included); match the server's -maxLabelsPerTimeseries, beyond which it drops labels silently",
  },
  {
    name: "VM_MAX_LABEL_VALUE_LENGTH",
    type: "int",
    default: "16384",
    min: 1,
    group: GROUP,
    doc: "Set aside records with a label value longer than this many UTF-8 bytes; match the " +
      "server's -maxLabelValueLen, beyond which it truncates values silently",
  },
  {
    name: "VM_MAX_SAMPLES_PER_SEND",
    type: "int",
    default: "1000",
    min: 1,
    group: GROUP,
    doc: "Import a batch when it holds this many records (one line per metric name each)",
  },
  {
    name: "VM_MAX_BYTES_PER_SEND",
    type: "int",
    default: "10485760",
    min: 1,
    group: GROUP,
    doc: "Import a batch when its JSON lines reach this many bytes (before compression)",
  },
  {
    name: "VM_MAX_TIME_TO_SEND",
    type: "seconds",
    default: "10",
    group: GROUP,
    doc: "Import a batch when its oldest record has waited this many seconds " +
      "(decimals allowed, > 0)",
  },
  {
    name: "VM_REQUEST_TIMEOUT",
    type: "seconds",
    default: "30",
    group: GROUP,
    doc: "Give up on one VictoriaMetrics request after this many seconds (decimals allowed, > 0)",
  },
  {
    name: "VM_COMMIT_DELAY",
    type: "seconds",
    default: "15",
    min: 0,
    group: GROUP,
    doc: "Commit a batch's Kafka offsets this many seconds after the 204: VictoriaMetrics " +
      "acknowledges before its samples are on disk (a crash within about 8 s lost them in tests)",
  },
  {
    name: "VM_COMPRESSION",
    type: "bool",
    default: "YES",
    group: GROUP,
    doc: "Gzip the bodies of import requests",
  },
];

/**
 * Whether the environment configures the VictoriaMetrics sink.
 *
 * @param env The environment.
 * @returns `true` when `VM_URL` is set.
 */
export function isVictoriaMetricsConfigured(env: Env): boolean {
  return env.VM_URL !== undefined && env.VM_URL.trim() !== "";
}

/**
 * Joins a base URL and a path with exactly one slash (the original script
 * wrote `f"{vm_url}/{vm_import_path}"`, which gave `//api/v1/import`).
 *
 * @param base A URL without a trailing slash, e.g. `http://vm:8428/prefix`.
 * @param path A path, with or without a leading slash; may carry a `?query`.
 * @returns E.g. `http://vm:8428/prefix/api/v1/import`.
 */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
}

/**
 * Replaces the password of a URL with `***`, for messages.
 *
 * @param text A URL as the user wrote it.
 * @returns The same text without the secret.
 */
export function maskUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*:)[^/@]*@/i, "$1***@");
}

/**
 * Checks field patterns: names, or a prefix followed by one `*`.
 *
 * @param patterns The patterns.
 * @returns The first invalid one, or `undefined`.
 */
function invalidPattern(patterns: readonly string[]): string | undefined {
  return patterns.find((p) => p.indexOf("*") !== -1 && p.indexOf("*") !== p.length - 1);
}

/**
 * Reads and validates the VictoriaMetrics variables; every problem goes to
 * `reader.problems`, nothing is thrown.
 *
 * @param reader The reader holding the environment.
 * @returns The resolved configuration and the batch limits.
 */
export function parseVictoriaMetricsConfig(
  reader: VarReader,
): { config: VictoriaMetricsConfig; batch: BatchLimits } {
  const urlText = reader.string("VM_URL");
  let base = { url: "", secure: false } as {
    url: string;
    secure: boolean;
    username?: string;
    password?: string;
  };
  if (urlText !== "") {
    const parsed = parseBaseUrl(urlText, "see VM_IMPORT_PATH");
    if (parsed.ok) base = parsed;
    else reader.problem("VM_URL", maskUrl(urlText), parsed.message);
  }

  const importPath = reader.string("VM_IMPORT_PATH");
  if (
    importPath.includes("#") || /\s/.test(importPath) || /^[a-z][a-z0-9+.-]*:/i.test(importPath)
  ) {
    reader.problem("VM_IMPORT_PATH", importPath, "must be a path such as /api/v1/import");
  }

  const tlsVerify = reader.bool("VM_SSL_VERIFY");
  const caFile = reader.optional("VM_CA_FILE");
  if (caFile !== undefined) {
    if (base.url !== "" && !base.secure) {
      reader.problem("VM_CA_FILE", caFile, "is only used with TLS: give VM_URL as https://");
    } else {
      try {
        const text = new TextDecoder().decode(Deno.readFileSync(caFile));
        if (!text.includes("-----BEGIN CERTIFICATE-----")) {
          reader.problem("VM_CA_FILE", caFile, "must be a PEM file with at least one certificate");
        }
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        reader.problem("VM_CA_FILE", caFile, `must be a readable file (${why})`);
      }
    }
  }

  const auth = readAuth(reader, base);

  const job = reader.string("VM_JOB");
  const instance = reader.string("VM_INSTANCE");

  // The original read only VM_METRICS_NAMES; its README documented
  // VM_METRIC_NAME, which is honoured when VM_METRICS_NAMES is unset.
  const metricVariable = reader.isSet("VM_METRICS_NAMES") || !reader.isSet("VM_METRIC_NAME")
    ? "VM_METRICS_NAMES"
    : "VM_METRIC_NAME";
  const metricNames = metricVariable === "VM_METRICS_NAMES"
    ? reader.list("VM_METRICS_NAMES")
    : [reader.string("VM_METRIC_NAME")];
  if (metricNames.length === 0) {
    reader.problem("VM_METRICS_NAMES", reader.raw("VM_METRICS_NAMES"), "must name a field");
  }
  for (const name of metricNames) {
    if (!METRIC_NAME_RE.test(name)) {
      reader.problem(
        metricVariable,
        name,
        "must name fields that are valid metric names ([a-zA-Z_:][a-zA-Z0-9_:]*)",
      );
    }
  }
  const duplicate = metricNames.find((n, i) => metricNames.indexOf(n) !== i);
  if (duplicate !== undefined) {
    reader.problem(metricVariable, duplicate, "must not name a field twice");
  }

  const timestampField = reader.string("VM_TIMESTAMP_FIELD");
  if (metricNames.includes(timestampField)) {
    reader.problem("VM_TIMESTAMP_FIELD", timestampField, "must not be a metric field too");
  }

  const avoidLabels = reader.list("VM_AVOID_LABELS");
  const labels = reader.isSet("VM_LABELS") ? reader.list("VM_LABELS") : undefined;
  for (
    const [name, patterns] of [["VM_AVOID_LABELS", avoidLabels], ["VM_LABELS", labels]] as const
  ) {
    const bad = patterns === undefined ? undefined : invalidPattern(patterns);
    if (bad !== undefined) {
      reader.problem(name, bad, "may use * only at the end of a name (a prefix)");
    }
  }
  if (labels !== undefined) {
    if (reader.isSet("VM_AVOID_LABELS")) {
      reader.problem(
        "VM_LABELS/VM_AVOID_LABELS",
        undefined,
        "are exclusive: VM_LABELS lists the label fields, VM_AVOID_LABELS the fields left out; set one",
      );
    }
    for (const field of [...metricNames, timestampField]) {
      if (matchesPattern(field, labels)) {
        reader.problem(
          "VM_LABELS",
          reader.raw("VM_LABELS"),
          `must not include the metric or timestamp field "${field}"`,
        );
      }
    }
  }

  const batch: BatchLimits = {
    maxRows: reader.int("VM_MAX_SAMPLES_PER_SEND"),
    maxBytes: reader.int("VM_MAX_BYTES_PER_SEND"),
    maxAgeMs: reader.positiveMillis("VM_MAX_TIME_TO_SEND"),
  };
  const config: VictoriaMetricsConfig = {
    url: base.url,
    importUrl: base.url === "" ? "" : joinUrl(base.url, importPath),
    healthUrl: base.url === "" ? "" : joinUrl(base.url, "/health"),
    tlsVerify,
    caFile,
    job,
    instance,
    metricNames,
    avoidLabels,
    labels,
    timestampField,
    maxAgeMs: reader.positiveMillis("VM_TIMESTAMP_MAX_AGE"),
    maxFutureMs: reader.millis("VM_TIMESTAMP_MAX_FUTURE"),
    maxLabels: reader.int("VM_MAX_LABELS"),
    maxLabelValueBytes: reader.int("VM_MAX_LABEL_VALUE_LENGTH"),
    requestTimeoutMs: reader.positiveMillis("VM_REQUEST_TIMEOUT"),
    compression: reader.bool("VM_COMPRESSION"),
    auth,
    commitDelayMs: reader.millis("VM_COMMIT_DELAY"),
  };
  return { config, batch };
}

function readAuth(
  reader: VarReader,
  base: { username?: string; password?: string },
): VictoriaMetricsAuth {
  const username = reader.optional("VM_USERNAME");
  const password = reader.raw("VM_PASSWORD");
  const token = reader.raw("VM_BEARER_TOKEN");
  const fromUrl = base.username !== undefined || base.password !== undefined;
  if (fromUrl && (username !== undefined || password !== undefined || token !== undefined)) {
    reader.problem(
      "VM_URL",
      undefined,
      "must not contain credentials when VM_USERNAME, VM_PASSWORD or VM_BEARER_TOKEN is set",
    );
  }
  if (token !== undefined && (username !== undefined || password !== undefined)) {
    reader.problem(
      "VM_BEARER_TOKEN/VM_USERNAME",
      undefined,
      "are exclusive: use a bearer token or basic authentication, not both",
    );
  }
  if (password !== undefined && username === undefined && token === undefined) {
    reader.problem("VM_PASSWORD", password, "is set but VM_USERNAME is not; set both");
  }
  if (token !== undefined) return { kind: "bearer", token };
  if (username !== undefined) return { kind: "basic", username, password: password ?? "" };
  if (fromUrl) {
    return { kind: "basic", username: base.username ?? "", password: base.password ?? "" };
  }
  return { kind: "none" };
}

/**
 * Describes a configuration for `--check-config`, secrets masked.
 *
 * @param config The resolved configuration.
 * @returns Lines of text.
 */
export function describeVictoriaMetricsConfig(config: VictoriaMetricsConfig): string[] {
  const auth = config.auth.kind === "basic"
    ? `basic user=${config.auth.username} password=${
      config.auth.password === "" ? "(none)" : "***"
    }`
    : config.auth.kind === "bearer"
    ? "bearer token=***"
    : "none";
  const tls = config.url.startsWith("https:")
    ? `tls=on verify=${config.tlsVerify ? "yes" : "no"}${
      config.caFile ? ` ca=${config.caFile}` : ""
    }`
    : "tls=off";
  return [
    `vm import=${config.importUrl} health=${config.healthUrl} auth=${auth} ${tls} ` +
    `compression=${config.compression ? "gzip" : "none"} request_timeout=${
      config.requestTimeoutMs / 1000
    }s`,
    `vm job=${JSON.stringify(config.job)} instance=${JSON.stringify(config.instance)} ` +
    `metrics=${config.metricNames.join(",")} timestamp_field=${config.timestampField} ` +
    (config.labels === undefined
      ? `avoid_labels=${config.avoidLabels.join(",")}`
      : `labels=${config.labels.join(",")}`),
    `vm timestamp_window=-${config.maxAgeMs / 1000}s..+${config.maxFutureMs / 1000}s ` +
    `max_labels=${config.maxLabels} max_label_value_bytes=${config.maxLabelValueBytes}`,
  ];
}
