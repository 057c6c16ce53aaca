/**
 * `@cqrs-ts/express`: the cqrs-ts HTTP edge (`@cqrs-ts/http`) on an Express 5 app or router.
 * @module
 */

export type { CqrsExpressOptions } from './express-options.ts';
export { mountCqrs } from './express-routes.ts';
