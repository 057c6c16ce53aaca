import type { AnyCommandDefinition, AnyQueryDefinition, AnyStreamQueryDefinition } from '@cqrs-ts/core';
import { ConfigurationError } from '@cqrs-ts/core';

/** HTTP methods a route can answer. */
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** Options every route takes. */
export interface RouteOptions {
  /**
   * The path, with `:name` segments for path parameters (they join the payload, coerced as its schema says).
   * @default the message type with `.` and `:` as `/`, e.g. `/orders/place-order` for `orders.place-order`
   */
  readonly path?: string;
  /** @default `POST` for a command, `GET` for a query or stream */
  readonly method?: HttpMethod;
  /** Time budget of each dispatch in ms (needs the `timeout()` behavior in the pipeline). */
  readonly timeout?: number;
  /** OpenAPI summary. @default the definition's description */
  readonly summary?: string;
  /**
   * The `ETag` of a result, e.g. `(order) => order.version` for an aggregate's version: sent as `"<value>"`.
   * Clients send it back in `If-Match` (see {@link CommandRouteOptions.ifMatch}).
   */
  readonly etag?: (result: never) => string | number | undefined;
}

/** Options of {@link commandRoute}. */
export interface CommandRouteOptions extends RouteOptions {
  /** Status of a success that has a result (a command without one answers 204). @default 200 */
  readonly status?: 200 | 201 | 202;
  /**
   * `Idempotency-Key` header: `required` answers 400 without one. Needs the `idempotency` policy (a unit of
   * work) in the command's pipeline. @default `optional` when the pipeline enforces `idempotency`, else the
   * header is refused with 400 (it would be ignored).
   */
  readonly idempotencyKey?: 'required' | 'optional';
  /**
   * Payload field that receives the version of an `If-Match: "<version>"` header (optimistic concurrency: the
   * handler passes it to its repository as the expected version). A `ConcurrencyError` of such a request answers
   * 412 instead of 409. Routes without it refuse `If-Match` (400) rather than ignore it.
   */
  readonly ifMatch?: string;
}

/** Options of {@link streamRoute}. */
export interface StreamRouteOptions<TItem = unknown> extends RouteOptions {
  /** The SSE `id:` of an item. @default its `position` (a string or number), else none */
  readonly eventId?: (item: TItem) => string | undefined;
  /** Payload field that receives the `Last-Event-ID` header of a resuming client (coerced as the schema says). */
  readonly resumeField?: string;
}

/** A route: a definition and how it is mounted. Built by {@link commandRoute}, {@link queryRoute}, {@link streamRoute}. */
export type HttpRoute =
  | {
      readonly kind: 'command';
      readonly definition: AnyCommandDefinition;
      readonly options: CommandRouteOptions;
    }
  | { readonly kind: 'query'; readonly definition: AnyQueryDefinition; readonly options: RouteOptions }
  | {
      readonly kind: 'stream';
      readonly definition: AnyStreamQueryDefinition;
      readonly options: StreamRouteOptions<never>;
    };

function checkDefinition(definition: unknown, kind: 'command' | 'query', streaming: boolean): void {
  const d = definition as { kind?: unknown; streaming?: unknown; type?: unknown } | undefined;
  if (typeof d !== 'object' || d === null || d.kind !== kind || (d.streaming === true) !== streaming)
    throw new ConfigurationError(
      `${streaming ? 'streamRoute' : `${kind}Route`} takes a ${streaming ? 'stream query' : kind} definition, got ${String(d?.kind)} ${String(d?.type)}`,
    );
}

/** Mounts a command: its payload is the JSON body (plus path parameters); answers its result as JSON. */
export function commandRoute(definition: AnyCommandDefinition, options: CommandRouteOptions = {}): HttpRoute {
  checkDefinition(definition, 'command', false);
  return Object.freeze({ kind: 'command', definition, options: Object.freeze({ ...options }) });
}

/**
 * Mounts a query: its payload comes from path parameters and the query string, coerced as the schema implies
 * (numbers, integers, booleans, arrays by repeated keys; `page` and `pageSize` on paginated queries).
 */
export function queryRoute(definition: AnyQueryDefinition, options: RouteOptions = {}): HttpRoute {
  checkDefinition(definition, 'query', false);
  return Object.freeze({ kind: 'query', definition, options: Object.freeze({ ...options }) });
}

/**
 * Mounts a stream query as Server-Sent Events: one event per item (JSON `data:`), an `id:` from the item's
 * position, heartbeat comments, and a client disconnect aborting the handler's signal.
 */
export function streamRoute<TItem = unknown>(
  definition: AnyStreamQueryDefinition,
  options: StreamRouteOptions<TItem> = {},
): HttpRoute {
  checkDefinition(definition, 'query', true);
  return Object.freeze({
    kind: 'stream',
    definition,
    options: Object.freeze({ ...options }) as StreamRouteOptions<never>,
  });
}
