import type { IncomingHttpHeaders } from 'node:http';
import type { HttpHandler } from '@cqrs-ts/http';
import { fetchRouteInput, nodeHeaders, prepareMount, toResponse } from '@cqrs-ts/http';
import type { Hono } from 'hono';
import type { CqrsHonoOptions } from './hono-options.ts';

/**
 * Mounts each route of `@cqrs-ts/http` on a Hono 4 app (Hono matches; the route reads the Fetch request, answers
 * problem details and streams SSE as a `ReadableStream`), and the OpenAPI document when `openapi` is given.
 * Returns the handler.
 *
 * ```ts
 * const app = new Hono();
 * mountCqrs(app, { mediator, routes: [commandRoute(PlaceOrder)] });
 * ```
 */
export function mountCqrs(app: Hono, options: CqrsHonoOptions): HttpHandler {
  const mount = prepareMount(options);
  const scopeOf = options.scope;
  for (const route of mount.routes) {
    const withParams = route.params.length > 0;
    app.on(route.method, route.path, async (c) => {
      const url = c.req.url;
      const q = url.indexOf('?');
      // Under @hono/node-server, Node's own header object: reading it builds no Fetch Headers.
      const incoming = (c.env as { incoming?: { headers?: IncomingHttpHeaders } } | undefined)?.incoming;
      const input = fetchRouteInput(c.req.raw, {
        headers: typeof incoming?.headers === 'object' ? nodeHeaders(incoming.headers) : undefined,
        path: c.req.path,
        search: q === -1 ? '' : url.slice(q + 1),
        params: withParams ? (c.req.param() as Record<string, string>) : undefined,
        scope: scopeOf?.(c),
      });
      return toResponse(await route.handle(input));
    });
  }
  const openapi = mount.openapi;
  if (openapi !== undefined)
    app.get(openapi.path, (c) =>
      c.body(openapi.body, 200, { 'content-type': 'application/json; charset=utf-8' }),
    );
  for (const route of mount.plain) app.get(route.path, async () => toResponse(await route.handle()));
  return mount.handler;
}
