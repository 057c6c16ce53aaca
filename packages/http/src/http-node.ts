import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { DependencyScope } from '@cqrs-ts/core';
import type { HeaderReader, HttpReply, RouteInput } from './http-handler.ts';

class NodeHeaderReader implements HeaderReader {
  readonly #headers: IncomingHttpHeaders;
  constructor(headers: IncomingHttpHeaders) {
    this.#headers = headers;
  }
  get(name: string): string | undefined {
    const v = this.#headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}

/** A {@link HeaderReader} over Node's lower-cased headers (a repeated header reads as its first value). */
export function nodeHeaders(headers: IncomingHttpHeaders): HeaderReader {
  return new NodeHeaderReader(headers);
}

// A class, not an object literal with a getter: one shape for every request, and no closure per request.
class NodeRouteInput implements RouteInput {
  readonly method: string;
  readonly path: string;
  readonly headers: HeaderReader;
  readonly params: Readonly<Record<string, string>> | undefined;
  readonly search: string;
  readonly body: IncomingMessage;
  readonly raw: IncomingMessage;
  readonly scope: DependencyScope | undefined;
  readonly #response: ServerResponse;
  #controller: AbortController | undefined;

  constructor(
    request: IncomingMessage,
    response: ServerResponse,
    params: Readonly<Record<string, string>> | undefined,
    scope: DependencyScope | undefined,
  ) {
    const url = request.url ?? '/';
    const q = url.indexOf('?');
    this.method = request.method ?? 'GET';
    this.path = q === -1 ? url : url.slice(0, q);
    this.headers = new NodeHeaderReader(request.headers);
    this.params = params;
    this.search = q === -1 ? '' : url.slice(q + 1);
    this.body = request;
    this.raw = request;
    this.scope = scope;
    this.#response = response;
    this.#controller = undefined;
  }

  // made when a stream route asks for it: most requests never need one
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const c = new AbortController();
      this.#controller = c;
      const response = this.#response;
      if (response.destroyed && !response.writableFinished) c.abort();
      else
        response.once('close', () => {
          if (!response.writableFinished) c.abort();
        });
    }
    return this.#controller.signal;
  }
}

/**
 * The input of a mounted route from a Node request: the body is read from the request stream (so the route's
 * size limit applies), and `signal` aborts when the response closes before it ended (the client went away).
 */
export function nodeRouteInput(
  request: IncomingMessage,
  response: ServerResponse,
  params: Readonly<Record<string, string>> | undefined,
  scope?: DependencyScope,
): RouteInput {
  return new NodeRouteInput(request, response, params, scope);
}

/**
 * Writes a reply to a Node response. A stream is written one event at a time, waiting for `drain` when the
 * socket's buffer is full, and closed when the client goes away (its handler's `finally` runs).
 */
export async function sendNodeReply(response: ServerResponse, reply: HttpReply): Promise<void> {
  const body = reply.body;
  // A body the route did not read whole (refused as too large) is not drained: the connection closes instead.
  const request = (response as { req?: IncomingMessage }).req;
  const close = request !== undefined && !request.complete;
  if (body === undefined || typeof body === 'string') {
    // a known length: one write of head and body, no chunked encoding
    const headers: Record<string, string | number> = { ...reply.headers };
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    if (close) headers.connection = 'close';
    response.writeHead(reply.status, headers);
    response.end(body);
    return;
  }
  if (close) response.setHeader('connection', 'close');
  response.writeHead(reply.status, reply.headers);
  response.flushHeaders();
  let closed = false;
  let wake: (() => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.();
    body.return(undefined).catch(() => {});
  };
  const onDrain = () => wake?.();
  response.once('close', onClose);
  response.on('drain', onDrain);
  try {
    while (!closed) {
      const next = await body.next();
      if (next.done || closed) break;
      if (!response.write(next.value) && !closed)
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      wake = undefined;
    }
  } finally {
    response.off('close', onClose);
    response.off('drain', onDrain);
    if (!closed) response.end();
    else await body.return(undefined).catch(() => {});
  }
}
