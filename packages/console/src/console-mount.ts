import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Console } from './console-handler.ts';
import { createConsole } from './console-handler.ts';
import type { ConsoleOptions } from './console-options.ts';

const consoleOf = (c: Console | ConsoleOptions): Console =>
  typeof (c as Console).fetch === 'function' ? (c as Console) : createConsole(c as ConsoleOptions);

/**
 * A Node request as a Fetch `Request`: the URL from `Host` and the original URL (`originalUrl` under Express's
 * `app.use`), the body streamed (read only by actions, within their limit).
 */
export function toFetchRequest(request: IncomingMessage): Request {
  const path = (request as { originalUrl?: string }).originalUrl ?? request.url ?? '/';
  const host = request.headers.host ?? 'localhost';
  const tls = (request.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  const headers = new Headers();
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i]!;
    if (name.startsWith(':')) continue; // HTTP/2 pseudo-headers
    headers.append(name, request.rawHeaders[i + 1]!);
  }
  const method = request.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = { method, headers };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = Readable.toWeb(request) as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  let url: string;
  try {
    url = new URL(path, `${tls ? 'https' : 'http'}://${host}`).href;
  } catch {
    url = `${tls ? 'https' : 'http'}://localhost/%invalid`;
  }
  return new Request(url, init);
}

/** Writes a Fetch `Response` (the console's are small and whole) to a Node response. */
export async function sendFetchResponse(response: Response, out: ServerResponse): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  headers['content-length'] = String(body.byteLength);
  out.writeHead(response.status, headers);
  out.end(body);
}

/**
 * The console as a Node `(request, response)` listener, for `http.createServer` or Express's `app.use(path, ...)`.
 * Accepts a console or its options (then creates it, throwing a ConfigurationError for bad options).
 */
export function toNodeListener(
  console: Console | ConsoleOptions,
): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const c = consoleOf(console);
  return async (request, response) => {
    let answer: Response;
    try {
      answer = await c.fetch(toFetchRequest(request));
    } catch {
      answer = new Response(null, { status: 400 });
    }
    await sendFetchResponse(answer, response);
  };
}

/**
 * Mounts the console on a Hono 4 app, at its `basePath`. Returns the console.
 *
 * ```ts
 * mountConsoleHono(app, { mediator, outbox: { store }, authorize });
 * ```
 */
export function mountConsoleHono(
  app: { all(path: string, handler: (ctx: { req: { raw: Request } }) => Promise<Response>): unknown },
  console: Console | ConsoleOptions,
): Console {
  const c = consoleOf(console);
  const handler = (ctx: { req: { raw: Request } }) => c.fetch(ctx.req.raw);
  app.all(c.basePath, handler);
  app.all(`${c.basePath}/*`, handler);
  return c;
}

/**
 * Mounts the console on an Express 5 app or router, at its `basePath` (mount no body parser before it on that
 * path: actions read their own body within a limit). Returns the console.
 *
 * ```ts
 * mountConsoleExpress(app, { mediator, outbox: { store }, authorize });
 * ```
 */
export function mountConsoleExpress(
  app: {
    use(
      path: string,
      handler: (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void,
    ): unknown;
  },
  console: Console | ConsoleOptions,
): Console {
  const c = consoleOf(console);
  const listener = toNodeListener(c);
  app.use(c.basePath, (request, response, next) => {
    listener(request, response).catch(next);
  });
  return c;
}

/** Options of {@link consoleFastify}: the console or its options. */
export interface ConsoleFastifyOptions {
  readonly console: Console | ConsoleOptions;
}

/**
 * Fastify 5 plugin serving the console at its `basePath`. Register it without `fastify-plugin` (its body
 * handling stays in its own encapsulation context):
 *
 * ```ts
 * await app.register(consoleFastify, { console: { mediator, outbox: { store }, authorize } });
 * ```
 */
export async function consoleFastify(
  fastify: {
    removeAllContentTypeParsers(): void;
    addContentTypeParser(
      type: string,
      parser: (
        request: unknown,
        payload: unknown,
        done: (error: Error | null, body?: unknown) => void,
      ) => void,
    ): void;
    all(
      path: string,
      handler: (
        request: { raw: IncomingMessage },
        reply: { raw: ServerResponse; hijack(): void },
      ) => Promise<void>,
    ): unknown;
  },
  options: ConsoleFastifyOptions,
): Promise<void> {
  const c = consoleOf(options.console);
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  const listener = toNodeListener(c);
  const handler = async (
    request: { raw: IncomingMessage },
    reply: { raw: ServerResponse; hijack(): void },
  ) => {
    reply.hijack();
    await listener(request.raw, reply.raw);
  };
  fastify.all(c.basePath, handler);
  fastify.all(`${c.basePath}/*`, handler);
}
