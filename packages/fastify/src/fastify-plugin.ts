import type { HttpHandler, JsonSchema, MountedRoute } from '@cqrs-ts/http';
import { nodeRouteInput, prepareMount, sendNodeReply } from '@cqrs-ts/http';
import type { FastifyInstance, FastifySchema } from 'fastify';
import type { CqrsFastifyOptions } from './fastify-options.ts';

function pick(
  schema: JsonSchema | undefined,
  names: readonly string[],
  keep: boolean,
): JsonSchema | undefined {
  const properties = schema?.properties as Record<string, unknown> | undefined;
  if (properties === undefined) return undefined;
  const chosen = Object.fromEntries(Object.entries(properties).filter(([k]) => names.includes(k) === keep));
  const required = Array.isArray(schema?.required)
    ? (schema.required as string[]).filter((k) => k in chosen)
    : [];
  return { type: 'object', properties: chosen, required };
}

/** The route's schemas as Fastify's `schema` option, so Fastify's tooling (e.g. `@fastify/swagger`) sees them. */
function fastifySchema(route: MountedRoute): FastifySchema {
  const { definition, kind } = route.route;
  const schema: Record<string, unknown> = { operationId: definition.type };
  if (definition.description !== undefined) schema.summary = definition.description;
  if (definition.tags.length > 0) schema.tags = [...definition.tags];
  const params = pick(route.payloadSchema, route.params, true);
  if (route.params.length > 0 && params !== undefined) schema.params = params;
  if (kind === 'command') {
    if (route.payloadSchema !== undefined) schema.body = route.payloadSchema;
  } else {
    const query = pick(route.payloadSchema, route.params, false);
    if (query !== undefined) schema.querystring = query;
  }
  if (route.resultSchema !== undefined && kind !== 'stream') schema.response = { 200: route.resultSchema };
  return schema as FastifySchema;
}

const accept = () => () => true;
const serialize = () => (data: unknown) => JSON.stringify(data);

/**
 * Fastify 5 plugin: registers each route of `@cqrs-ts/http` as a Fastify route with its schemas (for Fastify's
 * tooling; the route itself validates, answers problem details and reads the body within its limit), and the
 * OpenAPI document when `openapi` is given. Register it without `fastify-plugin`: its body parsing stays inside
 * its own encapsulation context.
 *
 * ```ts
 * await app.register(cqrsFastify, { mediator, routes: [commandRoute(PlaceOrder)] });
 * ```
 */
export async function cqrsFastify(fastify: FastifyInstance, options: CqrsFastifyOptions): Promise<void> {
  const mount = prepareMount(options);
  const scopeOf = options.scope;
  // The route reads the raw body itself, within maxBodyBytes, whatever its content type.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  for (const route of mount.routes) {
    fastify.route({
      method: route.method,
      url: route.path,
      schema: fastifySchema(route),
      validatorCompiler: accept,
      serializerCompiler: serialize,
      handler: async (request, reply) => {
        reply.hijack();
        const input = nodeRouteInput(
          request.raw,
          reply.raw,
          request.params as Record<string, string>,
          scopeOf?.(request),
        );
        await sendNodeReply(reply.raw, await route.handle(input));
      },
    });
  }
  const openapi = mount.openapi;
  if (openapi !== undefined)
    fastify.get(openapi.path, async (_request, reply) =>
      reply.type('application/json; charset=utf-8').send(openapi.body),
    );
  for (const route of mount.plain)
    fastify.get(route.path, async (_request, reply) => {
      reply.hijack();
      await sendNodeReply(reply.raw, await route.handle());
    });
  fastify.decorate('cqrs', mount.handler);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The `@cqrs-ts/http` handler the cqrs-ts plugin mounted (in its encapsulation context). */
    cqrs: HttpHandler;
  }
}
