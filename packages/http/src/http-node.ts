import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { DependencyScope } from '@cqrs-ts/core';
import type { HeaderReader, HttpReply, RouteInput } from './http-handler.ts';

/** A {@link HeaderReader} over Node's lower-cased headers (a repeated header reads as its first value). */
export function nodeHeaders(headers: IncomingHttpHeaders): HeaderReader {
  return {
    get(name) {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    },
  };
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
  const url = request.url ?? '/';
  const q = url.indexOf('?');
  let controller: AbortController | undefined;
  const input: { -readonly [K in keyof RouteInput]: RouteInput[K] } = {
    method: request.method ?? 'GET',
    path: q === -1 ? url : url.slice(0, q),
    headers: nodeHeaders(request.headers),
    search: q === -1 ? '' : url.slice(q + 1),
    body: request,
    // made when a stream route asks for it: most requests never need one
    get signal(): AbortSignal {
      if (controller === undefined) {
        const c = new AbortController();
        controller = c;
        if (response.destroyed && !response.writableFinished) c.abort();
        else
          response.once('close', () => {
            if (!response.writableFinished) c.abort();
          });
      }
      return controller.signal;
    },
    raw: request,
  };
  if (params !== undefined) input.params = params;
  if (scope !== undefined) input.scope = scope;
  return input;
}

/**
 * Writes a reply to a Node response. A stream is written one event at a time, waiting for `drain` when the
 * socket's buffer is full, and closed when the client goes away (its handler's `finally` runs).
 */
export async function sendNodeReply(response: ServerResponse, reply: HttpReply): Promise<void> {
  const body = reply.body;
  // A body the route did not read whole (refused as too large) is not drained: the connection closes instead.
  const request = (response as { req?: IncomingMessage }).req;
  if (request !== undefined && !request.complete) response.setHeader('connection', 'close');
  if (body === undefined || typeof body === 'string') {
    // a known length: one write of head and body, no chunked encoding
    if (body !== undefined) response.setHeader('content-length', Buffer.byteLength(body));
    response.writeHead(reply.status, reply.headers);
    response.end(body);
    return;
  }
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
