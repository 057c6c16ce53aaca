import type { DependencyScope } from '@cqrs-ts/core';
import type { AdapterOptions } from '@cqrs-ts/http';
import type { FastifyRequest } from 'fastify';

/**
 * Options of the Fastify plugin: those of `createHttpHandler` (mediator, routes, authenticate, limits, ...),
 * `openapi` to serve the document, and `scope` for a request-scoped container.
 */
export interface CqrsFastifyOptions extends AdapterOptions {
  /**
   * The request's dependency scope, which every dispatch of the request adopts (e.g. `@fastify/awilix`'s
   * `request.diScope` through `awilixScope` of `@cqrs-ts/awilix`). The caller owns and disposes it.
   */
  readonly scope?: (request: FastifyRequest) => DependencyScope | undefined;
}
