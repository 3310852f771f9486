/**
 * What sluice needs to know about the server it talks to, read from `GET /`,
 * and the request that installs the index template on it.
 *
 * Elasticsearch answers `{"version":{"number":"8.15.0","build_flavor":"default",...},
 * "tagline":"You Know, for Search"}`; OpenSearch answers
 * `{"version":{"distribution":"opensearch","number":"2.17.1",...}}` (its
 * `number` may be `7.10.2` when `compatibility.override_main_response_version`
 * is on, its `distribution` stays). Composable index templates
 * (`PUT /_index_template/<name>`) exist since Elasticsearch 7.8 and in every
 * OpenSearch; older Elasticsearch 7 releases only have legacy templates
 * (`PUT /_template/<name>`).
 * https://www.elastic.co/guide/en/elasticsearch/reference/current/index-templates.html
 *
 * @module
 */

import type { IndexTemplate } from "./config.ts";

/** The server's product and version. */
export interface ServerInfo {
  /** `elasticsearch`, `opensearch`, or `unknown` when `GET /` was not allowed. */
  flavour: "elasticsearch" | "opensearch" | "unknown";
  /** The version text, e.g. `8.15.0`; `""` when unknown. */
  version: string;
  /** Major version, 0 when unknown. */
  major: number;
  /** Minor version, 0 when unknown. */
  minor: number;
}

/** A server sluice could not ask (`GET /` refused with 403). */
export const UNKNOWN_SERVER: ServerInfo = { flavour: "unknown", version: "", major: 0, minor: 0 };

/**
 * Reads the answer of `GET /`.
 *
 * @param body The parsed JSON.
 * @returns The product and version; `unknown` when the answer has no version.
 */
export function readServerInfo(body: unknown): ServerInfo {
  const version = isObject(body) && isObject(body.version) ? body.version : undefined;
  const number = typeof version?.number === "string" ? version.number : "";
  if (number === "") return UNKNOWN_SERVER;
  const [major = 0, minor = 0] = number.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  const flavour = version?.distribution === "opensearch" ? "opensearch" : "elasticsearch";
  return { flavour, version: number, major, minor };
}

/**
 * Whether sluice can write to the server: without mapping types, which
 * Elasticsearch needs from 7 on and OpenSearch always.
 *
 * @param server The server.
 * @returns What is wrong, or `undefined`.
 */
export function serverProblem(server: ServerInfo): string | undefined {
  if (server.flavour === "elasticsearch" && server.major < 7) {
    return `sluice needs Elasticsearch 7 or later (or OpenSearch), the server is ${server.version}`;
  }
  return undefined;
}

/** The request that installs the index template. */
export interface TemplateRequest {
  /** The API used: `_index_template` (composable) or `_template` (legacy). */
  api: "_index_template" | "_template";
  /** Request path. */
  path: string;
  /** JSON body. */
  body: Record<string, unknown>;
}

/**
 * The `PUT` that installs an index template named after the prefix for the
 * indexes `<prefix>-*`, with the template file's settings and mappings.
 *
 * @param server The server (picks composable or legacy templates).
 * @param prefix `ELASTIC_INDEX_PREFIX`.
 * @param template The settings and mappings.
 * @returns The path and body.
 */
export function templateRequest(
  server: ServerInfo,
  prefix: string,
  template: IndexTemplate,
): TemplateRequest {
  const patterns = [`${prefix}-*`];
  const legacy = server.flavour === "elasticsearch" && server.major === 7 && server.minor < 8;
  if (legacy) {
    return {
      api: "_template",
      path: `/_template/${prefix}`,
      body: { index_patterns: patterns, settings: template.settings, mappings: template.mappings },
    };
  }
  return {
    api: "_index_template",
    path: `/_index_template/${prefix}`,
    body: {
      index_patterns: patterns,
      template: { settings: template.settings, mappings: template.mappings },
      _meta: { managed_by: "sluice", source: template.source },
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
