/**
 * `@cqrs-ts/hono`: the cqrs-ts HTTP edge (`@cqrs-ts/http`) on a Hono 4 app.
 * @module
 */

export type { CqrsHonoOptions } from './hono-options.ts';
export { mountCqrs } from './hono-routes.ts';
