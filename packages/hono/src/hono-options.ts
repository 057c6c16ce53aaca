import type { DependencyScope } from '@cqrs-ts/core';
import type { AdapterOptions } from '@cqrs-ts/http';
import type { Context } from 'hono';

/**
 * Options of `mountCqrs` on Hono: those of `createHttpHandler` (mediator, routes, authenticate, limits, ...),
 * `openapi` to serve the document, and `scope` for a request-scoped container.
 */
export interface CqrsHonoOptions extends AdapterOptions {
  /**
   * The request's dependency scope, which every dispatch of the request adopts (e.g. one a middleware set with
   * `c.set(...)`). The caller owns and disposes it.
   */
  readonly scope?: (c: Context) => DependencyScope | undefined;
}
