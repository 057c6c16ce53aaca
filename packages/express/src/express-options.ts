import type { AdapterOptions } from '@cqrs-ts/http';

/**
 * Options of `mountCqrs` on Express: those of `createHttpHandler` (mediator, routes, authenticate, limits, ...)
 * and `openapi` to serve the document.
 */
export type CqrsExpressOptions = AdapterOptions;
