import type { AdapterOptions } from '@cqrs-ts/http';

/**
 * Options of `mountCqrs` on Hono: those of `createHttpHandler` (mediator, routes, authenticate, limits, ...) and
 * `openapi` to serve the document.
 */
export type CqrsHonoOptions = AdapterOptions;
