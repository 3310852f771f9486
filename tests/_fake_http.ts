/**
 * The one fake HTTP server of the unit tests (`Deno.serve({ port: 0 })`):
 * it records every request and answers with a handler the test gives (and
 * may swap). Only for tests of request building and error handling; what a
 * real server does with the data is tested against the real server in
 * tests/integration/.
 *
 * @module
 */

/** A request as the fake server saw it. */
export interface SeenRequest {
  /** The method. */
  method: string;
  /** The path, without the query. */
  path: string;
  /** The query with its `?`, `""` when none. */
  search: string;
  /** The query parameters. */
  query: Record<string, string>;
  /** The request headers. */
  headers: Headers;
  /** The body as sent (still compressed when it was). */
  body: Uint8Array;
  /** The body as text, decompressed when `Content-Encoding: gzip`. */
  text: string;
}

/** Answers the n-th request (from 1). */
export type FakeHandler = (request: SeenRequest, n: number) => Response | Promise<Response>;

/** A running fake server. */
export interface FakeServer {
  /** Its base URL, `http(s)://127.0.0.1:PORT`. */
  url: string;
  /** Every request so far, in order. */
  seen: SeenRequest[];
  /** The handler; a test may replace it. */
  handler: FakeHandler;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Starts a fake server on a free loopback port.
 *
 * @param handler How to answer.
 * @param tls A certificate and key to serve https with.
 * @returns The server.
 */
export function fakeHttpServer(
  handler: FakeHandler,
  tls?: { cert: string; key: string },
): FakeServer {
  const fake: FakeServer = {
    url: "",
    seen: [],
    handler,
    close: async () => await server.shutdown(),
  };
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {}, ...tls },
    async (request) => {
      const url = new URL(request.url);
      const body = new Uint8Array(await request.arrayBuffer());
      const seen: SeenRequest = {
        method: request.method,
        path: url.pathname,
        search: url.search,
        query: Object.fromEntries(url.searchParams),
        headers: new Headers(request.headers),
        body,
        text: request.headers.get("content-encoding") === "gzip"
          ? await gunzip(body)
          : new TextDecoder().decode(body),
      };
      fake.seen.push(seen);
      return await fake.handler(seen, fake.seen.length);
    },
  );
  fake.url = `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`;
  return fake;
}

/**
 * Runs `body` with a fake server, then closes it.
 *
 * @param handler How to answer.
 * @param body The test.
 * @returns Resolves when the test and the server are done.
 */
export async function withFakeHttpServer(
  handler: FakeHandler,
  body: (server: FakeServer) => Promise<void>,
): Promise<void> {
  const server = fakeHttpServer(handler);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/**
 * Decompresses a gzip body.
 *
 * @param body The bytes.
 * @returns The text.
 */
export async function gunzip(body: Uint8Array): Promise<string> {
  const stream = new Blob([body as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return await new Response(stream).text();
}

/**
 * A JSON answer.
 *
 * @param body The value to send.
 * @param status The status.
 * @param headers More headers.
 * @returns The response.
 */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * A port nothing listens on (a listener opened and closed at once).
 *
 * @returns The port.
 */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
