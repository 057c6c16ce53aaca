import type { HttpHandler } from '@cqrs-ts/http';
import { nodeRouteInput, prepareMount, sendNodeReply } from '@cqrs-ts/http';
import type { NextFunction, Request, Response, Router } from 'express';
import type { CqrsExpressOptions } from './express-options.ts';

/**
 * Mounts each route of `@cqrs-ts/http` on an Express 5 app or router (Express matches; the route reads the raw
 * body within its limit, so mount no body parser before it), and the OpenAPI document when `openapi` is given.
 * Returns the handler.
 *
 * ```ts
 * const app = express();
 * mountCqrs(app, { mediator, routes: [commandRoute(PlaceOrder)] });
 * ```
 */
export function mountCqrs(
  app: Pick<Router, 'get' | 'post' | 'put' | 'patch' | 'delete'>,
  options: CqrsExpressOptions,
): HttpHandler {
  const mount = prepareMount(options);
  const scopeOf = options.scope;
  for (const route of mount.routes) {
    const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
    app[method](route.path, (request: Request, response: Response, next: NextFunction) => {
      const input = nodeRouteInput(
        request,
        response,
        request.params as Record<string, string>,
        scopeOf?.(request),
      );
      route
        .handle(input)
        .then((reply) => sendNodeReply(response, reply))
        .catch(next);
    });
  }
  const openapi = mount.openapi;
  if (openapi !== undefined)
    app.get(openapi.path, (_request: Request, response: Response) => {
      response.type('application/json; charset=utf-8').send(openapi.body);
    });
  for (const route of mount.plain)
    app.get(route.path, (_request: Request, response: Response, next: NextFunction) => {
      route
        .handle()
        .then((reply) => sendNodeReply(response, reply))
        .catch(next);
    });
  return mount.handler;
}
