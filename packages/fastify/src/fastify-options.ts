import type { AdapterOptions } from '@cqrs-ts/http';

/**
 * Options of the Fastify plugin: those of `createHttpHandler` (mediator, routes, authenticate, limits, ...)
 * and `openapi` to serve the document.
 */
export type CqrsFastifyOptions = AdapterOptions;
