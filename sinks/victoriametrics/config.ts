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

import type { BatchLimits } from "../../lib/sink.ts";
import { matchesPattern } from "../../lib/fields.ts";
import { declareVariables, type VarReader } from "../../lib/variables.ts";

/** How requests authenticate. */
export type VictoriaMetricsAuth =
  | { kind: "none" }
  | { kind: "basic"; username: string; password: string }
  | { kind: "bearer"; token: string };

/** The resolved VictoriaMetrics configuration; each field names its variable. */
export interface VictoriaMetricsConfig {
  /** Base URL without credentials and without a trailing slash (`VM_URL`). */
  url: string;
  /** Where lines are imported: `url` and `VM_IMPORT_PATH` joined with one slash. */
  importUrl: string;
  /** Where the health check asks: `${url}/health`. */
  healthUrl: string;
  /** Verify the server's TLS certificate (`VM_SSL_VERIFY`). */
  tlsVerify: boolean;
  /** PEM file of the CA that signed the server certificate (`VM_CA_FILE`). */
  caFile?: string;
  /** Value of the `job` label of every series (`VM_JOB`). */
  job: string;
  /** Value of the `instance` label of every series (`VM_INSTANCE`). */
  instance: string;
  /** Record fields sent as metrics, each also the metric name (`VM_METRICS_NAMES`, else `VM_METRIC_NAME`). */
  metricNames: string[];
  /**
   * Field patterns that do not become labels (`VM_AVOID_LABELS`); `name*`
   * matches a prefix. Ignored when {@link labels} is set. The metric fields
   * and the timestamp field never become labels.
   */
  avoidLabels: string[];
  /** Field patterns that alone become labels, when set (`VM_LABELS`). */
  labels?: string[];
  /** Field holding each record's time (`VM_TIMESTAMP_FIELD`). */
  timestampField: string;
  /** Records older than this (milliseconds before now) are set aside (`VM_TIMESTAMP_MAX_AGE`). */
  maxAgeMs: number;
  /** Records further ahead than this (milliseconds after now) are set aside (`VM_TIMESTAMP_MAX_FUTURE`). */
  maxFutureMs: number;
  /** Most labels per series, `__name__`, `job` and `instance` included (`VM_MAX_LABELS`). */
  maxLabels: number;
  /** Longest label value in UTF-8 bytes (`VM_MAX_LABEL_VALUE_LENGTH`). */
  maxLabelValueBytes: number;
  /** Request timeout in milliseconds (`VM_REQUEST_TIMEOUT`). */
  requestTimeoutMs: number;
  /** Gzip request bodies (`VM_COMPRESSION`). */
  compression: boolean;
  /** Credentials: `VM_USERNAME`/`VM_PASSWORD`, `VM_BEARER_TOKEN`, or from `VM_URL`. */
  auth: VictoriaMetricsAuth;
  /** How long after a 204 the offsets of a batch are committed, in milliseconds (`VM_COMMIT_DELAY`). */
  commitDelayMs: number;
}

/** The default of `VM_AVOID_LABELS`: metric fields and fields that change on every purge. */
export const DEFAULT_AVOID_LABELS =
  "bytes,packets,flows,stamp_inserted,stamp_updated,timestamp_*,writer_id,event_type";

/** Metric names as Prometheus and VictoriaMetrics define them. */
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Every variable the VictoriaMetrics sink reads. */
export const VICTORIAMETRICS = declareVariables("VictoriaMetrics", {
  VM_URL: {
    type: "url",
    required: true,
    connection: true,
    selects: true,
    example: "http://127.0.0.1:8428",
    doc: "Base http(s):// URL of VictoriaMetrics (single node, vminsert or vmauth), " +
      "optionally with a path prefix",
  },
  VM_IMPORT_PATH: {
    type: "string",
    default: "/api/v1/import",
    doc: "Path of the JSON line import API, appended to VM_URL with one slash " +
      "(e.g. /insert/0/prometheus/api/v1/import for a cluster)",
  },
  VM_SSL_VERIFY: {
    type: "bool",
    default: "YES",
    doc: "Verify the server's TLS certificate and host name (NO accepts any certificate)",
  },
  VM_CA_FILE: {
    type: "file",
    pem: true,
    doc: "PEM file with the CA certificate(s) that signed the server certificate, " +
      "in addition to the system CAs",
  },
  VM_USERNAME: {
    type: "string",
    doc: "User name for HTTP basic authentication (vmauth, -httpAuth.username)",
  },
  VM_PASSWORD: {
    type: "string",
    secret: true,
    doc: "Password for HTTP basic authentication, with VM_USERNAME",
  },
  VM_BEARER_TOKEN: {
    type: "string",
    secret: true,
    doc: "Bearer token sent as Authorization: Bearer (instead of VM_USERNAME/VM_PASSWORD)",
  },
  VM_JOB: {
    type: "string",
    required: true,
    example: "pmacct",
    doc: "Value of the job label of every series",
  },
  VM_INSTANCE: {
    type: "string",
    required: true,
    example: "nfacctd-1",
    doc: "Value of the instance label of every series",
  },
  VM_METRICS_NAMES: {
    type: "list",
    default: "bytes,packets",
    doc: "Comma-separated record fields sent as metrics, each under its own name " +
      "(one line per field per record)",
  },
  VM_METRIC_NAME: {
    type: "string",
    doc: "A single metric field, as the original README documented it; " +
      "used only when VM_METRICS_NAMES is unset",
  },
  VM_AVOID_LABELS: {
    type: "list",
    default: DEFAULT_AVOID_LABELS,
    doc: "Comma-separated record fields that do not become labels (name* matches a prefix); " +
      "the metric and timestamp fields never do",
  },
  VM_LABELS: {
    type: "list",
    doc: "Comma-separated record fields that alone become labels (name* matches a prefix), " +
      "instead of every field not in VM_AVOID_LABELS",
  },
  VM_TIMESTAMP_FIELD: {
    type: "string",
    default: "stamp_updated",
    doc:
      "Record field holding the sample time, in any pmacct form (local times in PMACCT_TIMEZONE)",
  },
  VM_TIMESTAMP_MAX_AGE: {
    type: "seconds",
    default: "2678400",
    doc: "Set aside records older than this many seconds (default 31 days, the server's " +
      "default -retentionPeriod, which drops older samples silently); raise it with the retention",
  },
  VM_TIMESTAMP_MAX_FUTURE: {
    type: "seconds",
    default: "600",
    min: 0,
    doc: "Set aside records more than this many seconds in the future " +
      "(a sign of a wrong PMACCT_TIMEZONE or clock)",
  },
  VM_MAX_LABELS: {
    type: "int",
    default: "30",
    min: 3,
    doc: "Set aside records with more labels than this per series (`__name__`, job and instance " +
      "included); match the server's -maxLabelsPerTimeseries, beyond which it drops labels silently",
  },
  VM_MAX_LABEL_VALUE_LENGTH: {
    type: "int",
    default: "16384",
    min: 1,
    doc: "Set aside records with a label value longer than this many UTF-8 bytes; match the " +
      "server's -maxLabelValueLen, beyond which it truncates values silently",
  },
  VM_MAX_SAMPLES_PER_SEND: {
    type: "int",
    default: "1000",
    min: 1,
    doc: "Import a batch when it holds this many records (one line per metric name each)",
  },
  VM_MAX_BYTES_PER_SEND: {
    type: "int",
    default: "10485760",
    min: 1,
    doc: "Import a batch when its JSON lines reach this many bytes (before compression)",
  },
  VM_MAX_TIME_TO_SEND: {
    type: "seconds",
    default: "10",
    doc: "Import a batch when its oldest record has waited this many seconds " +
      "(decimals allowed, > 0)",
  },
  VM_REQUEST_TIMEOUT: {
    type: "seconds",
    default: "30",
    doc: "Give up on one VictoriaMetrics request after this many seconds (decimals allowed, > 0)",
  },
  VM_COMMIT_DELAY: {
    type: "seconds",
    default: "15",
    min: 0,
    doc: "Commit a batch's Kafka offsets this many seconds after the 204: VictoriaMetrics " +
      "acknowledges before its samples are on disk (a crash within about 8 s lost them in tests)",
  },
  VM_COMPRESSION: { type: "bool", default: "YES", doc: "Gzip the bodies of import requests" },
});

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
 * Reads and validates the VictoriaMetrics variables; every problem goes to
 * `reader.problems`, nothing is thrown.
 *
 * @param reader The reader holding the environment.
 * @returns The resolved configuration and the batch limits.
 */
export function parseVictoriaMetricsConfig(
  reader: VarReader,
): { config: VictoriaMetricsConfig; batch: BatchLimits } {
  const v = VICTORIAMETRICS.read(reader);
  const base = v.VM_URL;
  const importPath = v.VM_IMPORT_PATH;
  if (
    importPath.includes("#") || /\s/.test(importPath) || /^[a-z][a-z0-9+.-]*:/i.test(importPath)
  ) {
    reader.problem("VM_IMPORT_PATH", importPath, "must be a path such as /api/v1/import");
  }
  if (base.url !== "") reader.requireTls("VM_CA_FILE", base.secure, "give VM_URL as https://");

  // The original read only VM_METRICS_NAMES; its README documented
  // VM_METRIC_NAME, which is honoured when VM_METRICS_NAMES is unset.
  const single = !reader.isSet("VM_METRICS_NAMES") && v.VM_METRIC_NAME !== undefined;
  const metricVariable = single ? "VM_METRIC_NAME" : "VM_METRICS_NAMES";
  const metricNames = single ? [v.VM_METRIC_NAME!] : v.VM_METRICS_NAMES;
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
  if (metricNames.includes(v.VM_TIMESTAMP_FIELD)) {
    reader.problem("VM_TIMESTAMP_FIELD", v.VM_TIMESTAMP_FIELD, "must not be a metric field too");
  }

  const labels = v.VM_LABELS;
  for (const [name, patterns] of [["VM_AVOID_LABELS", v.VM_AVOID_LABELS], ["VM_LABELS", labels]]) {
    const bad = (patterns as string[] | undefined)?.find((p) =>
      p.indexOf("*") !== -1 && p.indexOf("*") !== p.length - 1
    );
    if (bad !== undefined) {
      reader.problem(name as string, bad, "may use * only at the end of a name (a prefix)");
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
    for (const field of [...metricNames, v.VM_TIMESTAMP_FIELD]) {
      if (matchesPattern(field, labels)) {
        reader.problem(
          "VM_LABELS",
          reader.raw("VM_LABELS"),
          `must not include the metric or timestamp field "${field}"`,
        );
      }
    }
  }

  const config: VictoriaMetricsConfig = {
    url: base.url,
    importUrl: base.url === "" ? "" : joinUrl(base.url, importPath),
    healthUrl: base.url === "" ? "" : joinUrl(base.url, "/health"),
    tlsVerify: v.VM_SSL_VERIFY,
    caFile: v.VM_CA_FILE,
    job: v.VM_JOB,
    instance: v.VM_INSTANCE,
    metricNames,
    avoidLabels: v.VM_AVOID_LABELS,
    labels,
    timestampField: v.VM_TIMESTAMP_FIELD,
    maxAgeMs: v.VM_TIMESTAMP_MAX_AGE,
    maxFutureMs: v.VM_TIMESTAMP_MAX_FUTURE,
    maxLabels: v.VM_MAX_LABELS,
    maxLabelValueBytes: v.VM_MAX_LABEL_VALUE_LENGTH,
    requestTimeoutMs: v.VM_REQUEST_TIMEOUT,
    compression: v.VM_COMPRESSION,
    auth: readAuth(reader, base, v.VM_USERNAME, v.VM_PASSWORD, v.VM_BEARER_TOKEN),
    commitDelayMs: v.VM_COMMIT_DELAY,
  };
  const batch: BatchLimits = {
    maxRows: v.VM_MAX_SAMPLES_PER_SEND,
    maxBytes: v.VM_MAX_BYTES_PER_SEND,
    maxAgeMs: v.VM_MAX_TIME_TO_SEND,
  };
  return { config, batch };
}

/** Credentials from the variables or from `VM_URL`, but not both, and one kind only. */
function readAuth(
  reader: VarReader,
  base: { username?: string; password?: string },
  username: string | undefined,
  password: string | undefined,
  token: string | undefined,
): VictoriaMetricsAuth {
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
