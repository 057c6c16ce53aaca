/**
 * `@cqrs-ts/fastify`: the cqrs-ts HTTP edge (`@cqrs-ts/http`) as a Fastify 5 plugin.
 * @module
 */

export type { CqrsFastifyOptions } from './fastify-options.ts';
export { cqrsFastify } from './fastify-plugin.ts';
