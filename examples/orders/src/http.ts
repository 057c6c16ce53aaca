import type { Mediator, Principal } from '@cqrs-ts/core';
import { AuthorizationError } from '@cqrs-ts/core';
import type { AdapterOptions, HttpRequestInfo } from '@cqrs-ts/http';
import { commandRoute, queryRoute, streamRoute } from '@cqrs-ts/http';
import { CancelOrder, ExportOrders, GetOrder, ListOrders, PlaceOrder } from './orders.ts';

/**
 * A demo sign-in: `authorization: Demo <user>[:<role>,<role>]`. A real service verifies a token here; a request
 * without the header is anonymous (authorization failures then answer 401).
 */
function authenticate(request: HttpRequestInfo): Principal | undefined {
  const header = request.headers.get('authorization');
  if (header == null) return undefined;
  const m = /^Demo ([a-z0-9-]{1,64})(?::([a-z,]{1,200}))?$/.exec(header);
  if (m === null) throw new AuthorizationError('request', 'malformed credentials', 'unauthenticated');
  return { id: m[1]!, roles: m[2]?.split(',') ?? [] };
}

/**
 * The orders service's HTTP routes, for any framework package: place, cancel, read and list orders, export a
 * customer's orders as Server-Sent Events, and the OpenAPI document at `/openapi.json`.
 */
export function ordersHttp(mediator: Mediator): AdapterOptions {
  return {
    mediator,
    authenticate,
    routes: [
      commandRoute(PlaceOrder, { path: '/orders', status: 201 }),
      commandRoute(CancelOrder, { path: '/orders/:orderId/cancel' }),
      queryRoute(GetOrder, { path: '/orders/:orderId' }),
      queryRoute(ListOrders, { path: '/orders' }),
      streamRoute(ExportOrders, { path: '/customers/:customerId/orders' }),
    ],
    openapi: { path: '/openapi.json', info: { title: 'orders', version: '1.0.0' } },
  };
}
