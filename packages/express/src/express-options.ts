import type { DependencyScope } from '@cqrs-ts/core';
import type { AdapterOptions } from '@cqrs-ts/http';
import type { Request } from 'express';

/**
 * Options of `mountCqrs` on Express: those of `createHttpHandler` (mediator, routes, authenticate, limits, ...),
 * `openapi` to serve the document, and `scope` for a request-scoped container.
 */
export interface CqrsExpressOptions extends AdapterOptions {
  /**
   * The request's dependency scope, which every dispatch of the request adopts (e.g. a scope a middleware made
   * earlier and keeps on the request). The caller owns and disposes it.
   */
  readonly scope?: (request: Request) => DependencyScope | undefined;
}
