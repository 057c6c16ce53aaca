import type { HttpHandler, HttpHandlerOptions, MountedRoute } from './http-handler.ts';
import { createHttpHandler } from './http-handler.ts';
import type { HealthMountOptions, PlainRoute } from './http-health.ts';
import { healthRoutes } from './http-health.ts';
import type { OpenApiDocument, OpenApiInfo } from './http-openapi.ts';
import { createOpenApiDocument } from './http-openapi.ts';

/** Options every framework package takes: the handler's, and where to serve the OpenAPI document and health. */
export interface AdapterOptions extends HttpHandlerOptions {
  /** Serves the OpenAPI 3.1 document of the routes with `GET path` (e.g. `/openapi.json`). */
  readonly openapi?: { readonly path: string; readonly info: OpenApiInfo };
  /** Serves `GET /health/live` and `GET /health/ready` (200, or 503 on `fail`) from a `createHealth` model. */
  readonly health?: HealthMountOptions;
}

/** What a framework package mounts: the handler's routes and, when asked for, the OpenAPI document. */
export interface AdapterMount {
  readonly handler: HttpHandler;
  readonly routes: readonly MountedRoute[];
  readonly openapi: { readonly path: string; readonly body: string } | undefined;
  /** `GET` routes without input (health), to mount as they are. */
  readonly plain: readonly PlainRoute[];
}

/** Builds the handler and the OpenAPI document once, for a framework package (`@cqrs-ts/fastify`, ...). */
export function prepareMount(options: AdapterOptions): AdapterMount {
  const handler = createHttpHandler(options);
  let openapi: AdapterMount['openapi'];
  if (options.openapi !== undefined) {
    const document: OpenApiDocument = createOpenApiDocument(handler, { info: options.openapi.info });
    openapi = { path: options.openapi.path, body: JSON.stringify(document) };
  }
  const plain = options.health === undefined ? [] : healthRoutes(options.health);
  return { handler, routes: handler.routes, openapi, plain };
}
