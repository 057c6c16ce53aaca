/**
 * `@cqrs-ts/http`: the framework-neutral HTTP edge of cqrs-ts. Routes from message definitions (a command from
 * the JSON body, a query from path and query string, a stream query as Server-Sent Events), RFC 9457 problem
 * details from one table of error codes, the request's context into each dispatch, `Idempotency-Key`, and an
 * OpenAPI 3.1 document. `fetch(request)` answers Fetch requests; `@cqrs-ts/fastify`, `@cqrs-ts/hono` and
 * `@cqrs-ts/express` mount the same routes on those frameworks.
 * @module
 */

export type { AdapterMount, AdapterOptions } from './http-adapter.ts';
export { prepareMount } from './http-adapter.ts';
export type { BodySource, FetchBody } from './http-body.ts';
export { DEFAULT_MAX_BODY_BYTES, parseJsonBody, readBody } from './http-body.ts';
export type {
  FetchRouteInputOptions,
  HeaderReader,
  HttpHandler,
  HttpHandlerOptions,
  HttpReply,
  HttpRequestInfo,
  MountedRoute,
  RouteInput,
} from './http-handler.ts';
export { createHttpHandler, fetchRouteInput, toResponse } from './http-handler.ts';
export type { HealthMountOptions, PlainRoute } from './http-health.ts';
export { HEALTH_CONTENT_TYPE, healthReply, healthRoutes } from './http-health.ts';
export { nodeHeaders, nodeRouteInput, sendNodeReply } from './http-node.ts';
export type { OpenApiDocument, OpenApiInfo, OpenApiOptions } from './http-openapi.ts';
export { createOpenApiDocument } from './http-openapi.ts';
export type {
  ProblemDeclaration,
  ProblemDetails,
  ProblemEntry,
  ProblemIssue,
  ProblemReply,
  ToProblemOptions,
} from './http-problem.ts';
export { HTTP_PROBLEMS, toProblem } from './http-problem.ts';
export type {
  CommandRouteOptions,
  HttpMethod,
  HttpRoute,
  RouteOptions,
  StreamRouteOptions,
} from './http-routes.ts';
export { commandRoute, HTTP_METHODS, queryRoute, streamRoute } from './http-routes.ts';
export type { CoercionPlan, JsonSchema, JsonSchemaConverter } from './http-schema.ts';
export { coercionPlan, MAX_QUERY_PARAMETERS, queryPayload, toJsonSchema } from './http-schema.ts';
export { DEFAULT_HEARTBEAT_MS, positionOf, sseEvent } from './http-sse.ts';
