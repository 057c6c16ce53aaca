import { defaultPageSize, type HttpHandler, type MountedRoute } from './http-handler.ts';
import type { JsonSchema } from './http-schema.ts';

/** The `info` object of an OpenAPI document. */
export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
}

/** Options of {@link createOpenApiDocument}. */
export interface OpenApiOptions {
  readonly info: OpenApiInfo;
  /** `servers` of the document, e.g. `[{ url: 'https://api.example.com' }]`. */
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
}

/** An OpenAPI 3.1 document (plain JSON). */
export type OpenApiDocument = Readonly<Record<string, unknown>>;

const PROBLEM_SCHEMA = {
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string', description: 'the request id (also in x-request-id)' },
    code: { type: 'string', description: 'the cqrs-ts error code' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { pointer: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } },
        required: ['pointer', 'message', 'code'],
      },
    },
    retryAfter: { type: 'integer' },
  },
  required: ['type', 'title', 'status', 'instance', 'code'],
} as const;

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function properties(schema: JsonSchema | undefined): Record<string, JsonSchema> {
  const p = schema?.properties;
  return typeof p === 'object' && p !== null ? (p as Record<string, JsonSchema>) : {};
}

function required(schema: JsonSchema | undefined): readonly string[] {
  return Array.isArray(schema?.required) ? (schema.required as string[]) : [];
}

function operation(route: MountedRoute): Record<string, unknown> {
  const { definition, kind, options } = route.route;
  const op: Record<string, unknown> = { operationId: definition.type };
  const summary = options.summary ?? definition.description;
  if (summary !== undefined) op.summary = summary;
  if (definition.tags.length > 0) op.tags = [...definition.tags];
  const parameters: Record<string, unknown>[] = route.params.map((name) => ({
    name,
    in: 'path',
    required: true,
    schema: properties(route.payloadSchema)[name] ?? { type: 'string' },
  }));
  const responses: Record<string, unknown> = {
    '400': problem('invalid request: every field issue is listed in errors'),
    '401': problem('authentication required'),
    '403': problem('not allowed'),
    '404': problem('not found'),
    '500': problem('unexpected error: no detail, instance is the request id'),
    '503': problem('a dependency is unavailable (Retry-After)'),
    '504': problem('timed out'),
  };
  const result = route.resultSchema ?? {};
  if (kind === 'command') {
    op.requestBody = {
      required: true,
      content: { 'application/json': { schema: route.payloadSchema ?? { type: 'object' } } },
    };
    const status = String((options as { status?: number }).status ?? 200);
    responses[status] = {
      description: 'the command result',
      content: { 'application/json': { schema: result } },
    };
    responses['204'] = { description: 'the command has no result' };
    responses['409'] = problem('changed by another request, or the Idempotency-Key is still in flight');
    responses['413'] = problem('the body is too large');
    if (route.idempotencyKey !== undefined) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: route.idempotencyKey === 'required',
        schema: { type: 'string', minLength: 1, maxLength: 200 },
      });
      responses['422'] = problem('the Idempotency-Key was used with another request');
    }
    if ((options as { ifMatch?: string }).ifMatch !== undefined) {
      parameters.push({
        name: 'If-Match',
        in: 'header',
        required: false,
        description: 'the ETag of the version the change expects',
        schema: { type: 'string' },
      });
      responses['412'] = problem('the resource changed since the version in If-Match');
    }
  } else {
    const need = new Set(required(route.payloadSchema));
    for (const [name, schema] of Object.entries(properties(route.payloadSchema))) {
      if (route.params.includes(name)) continue;
      if (definition.paging !== undefined && (name === 'page' || name === 'pageSize')) continue;
      parameters.push({ name, in: 'query', required: need.has(name), schema });
    }
    if (definition.paging !== undefined) {
      parameters.push({
        name: 'page',
        in: 'query',
        required: false,
        schema: { type: 'integer', minimum: 1, default: 1 },
      });
      parameters.push({
        name: 'pageSize',
        in: 'query',
        required: false,
        schema: {
          type: 'integer',
          minimum: 1,
          maximum: definition.paging.maxPageSize,
          default: defaultPageSize(definition.paging),
        },
      });
    }
    if (kind === 'query')
      responses['200'] = {
        description: 'the query result',
        content: { 'application/json': { schema: result } },
      };
    else
      responses['200'] = {
        description:
          'Server-Sent Events: one `data:` event per item (JSON), heartbeat comments, `event: problem` on a failure',
        content: { 'text/event-stream': { schema: { type: 'string' }, 'x-item-schema': result } },
      };
  }
  if (parameters.length > 0) op.parameters = parameters;
  op.responses = responses;
  return op;
}

/**
 * An OpenAPI 3.1 document of the mounted routes, from the definitions' Standard Schemas (JSON Schema where the
 * schema library provides it: zod 4 and arktype do, others through the `jsonSchema` option), with every error
 * answer as problem details.
 */
export function createOpenApiDocument(
  handler: Pick<HttpHandler, 'routes'>,
  options: OpenApiOptions,
): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of handler.routes) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation(route);
  }
  const doc: Record<string, unknown> = {
    openapi: '3.1.0',
    info: { ...options.info },
    paths,
    components: { schemas: { Problem: PROBLEM_SCHEMA } },
  };
  if (options.servers !== undefined) doc.servers = options.servers.map((s) => ({ ...s }));
  return JSON.parse(JSON.stringify(doc)) as OpenApiDocument;
}
