import type {
  AnyMessage,
  DependencyScope,
  DispatchOptions,
  ExecutionContext,
  InvalidHeader,
  Logger,
  Mediator,
  MetadataInit,
  Principal,
} from '@cqrs-ts/core';
import {
  ConfigurationError,
  extractContext,
  formatTraceparent,
  isIdempotencyKey,
  isSafeId,
  NotFoundError,
  noopLogger,
  ValidationError,
} from '@cqrs-ts/core';
import { uuidv7 } from '@cqrs-ts/core/spi';
import type { BodySource } from './http-body.ts';
import { DEFAULT_MAX_BODY_BYTES, isForbiddenKey, parseJsonBody, readBody } from './http-body.ts';
import type { ProblemReply } from './http-problem.ts';
import { toProblem } from './http-problem.ts';
import type { CommandRouteOptions, HttpMethod, HttpRoute, StreamRouteOptions } from './http-routes.ts';
import { HTTP_METHODS } from './http-routes.ts';
import type { CoercionPlan, JsonSchema, JsonSchemaConverter } from './http-schema.ts';
import { coercionPlan, queryPayload, toJsonSchema } from './http-schema.ts';
import { DEFAULT_HEARTBEAT_MS, positionOf, sseBody } from './http-sse.ts';

/** Reads request headers by lower-case name. */
export interface HeaderReader {
  get(name: string): string | null | undefined;
}

/** What `authenticate` and `tenant` see of a request. */
export interface HttpRequestInfo {
  readonly method: string;
  readonly path: string;
  readonly headers: HeaderReader;
  /** The framework's own request object (a Fetch `Request`, Node `IncomingMessage`, ...). */
  readonly raw: unknown;
}

/** A request handed to a mounted route by an adapter, after the framework matched it. */
export interface RouteInput {
  readonly method: string;
  readonly path: string;
  readonly headers: HeaderReader;
  /** Path parameters, by name. */
  readonly params?: Readonly<Record<string, string>> | undefined;
  /** The query string, without `?`. */
  readonly search: string;
  readonly body: BodySource;
  /** Aborted when the client goes away; a stream's handler then sees its signal aborted. */
  readonly signal?: AbortSignal | undefined;
  readonly raw?: unknown;
  /**
   * The request's dependency scope (e.g. a request-scoped container): every dispatch of the request runs in it
   * (dispatch option `scope`), so handlers, behaviors and nested dispatches share its instances. Its owner (the
   * framework integration) disposes it; the mediator never does.
   */
  readonly scope?: DependencyScope | undefined;
}

/** An answer for the adapter to write. A stream's `body` is pulled one event at a time. */
export interface HttpReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined | AsyncGenerator<string, void, undefined>;
}

/** A route as mounted: the framework registers `method` and `path`, and calls `handle`. */
export interface MountedRoute {
  readonly route: HttpRoute;
  readonly method: HttpMethod;
  /** The full path, with `:name` parameters. */
  readonly path: string;
  /** Names of the path parameters, in order. */
  readonly params: readonly string[];
  /** JSON Schema of the payload (input) and result (output), when the schema library provides it. */
  readonly payloadSchema: JsonSchema | undefined;
  readonly resultSchema: JsonSchema | undefined;
  /** The `Idempotency-Key` rule of a command route, `undefined` where the header is refused. */
  readonly idempotencyKey: 'required' | 'optional' | undefined;
  handle(input: RouteInput): Promise<HttpReply>;
}

/** Options of {@link createHttpHandler}. */
export interface HttpHandlerOptions {
  readonly mediator: Mediator;
  readonly routes: readonly HttpRoute[];
  /** Prefix of every route's path, e.g. `/api`. */
  readonly basePath?: string;
  /**
   * Who is calling: a principal, or `undefined` for an anonymous request (authorization failures then answer
   * 401, not 403). Throw an `AuthorizationError` to refuse the credentials (401).
   */
  readonly authenticate?: (
    request: HttpRequestInfo,
  ) => Principal | undefined | Promise<Principal | undefined>;
  /** The tenant of a request (e.g. from the principal or a header); must be a safe id (see `isSafeId`). */
  readonly tenant?: (request: HttpRequestInfo, user: Principal | undefined) => string | undefined;
  /** Largest request body, in bytes: past it, 413. @default 1 MiB */
  readonly maxBodyBytes?: number;
  /** Interval of SSE heartbeat comments. @default 15000 */
  readonly heartbeatMs?: number;
  /**
   * How long a stream route waits for its first item before it sends the SSE headers: a failure within this
   * window (validation, authorization) is answered with its status; a later one as an `event: problem`.
   * @default 250
   */
  readonly streamOpenMs?: number;
  /** Prefix of the `type` of the problems of the closed table. @default 'urn:cqrs-ts:problem:' */
  readonly problemTypeBase?: string;
  /**
   * Carry the request's W3C `baggage` header with the messages it creates, through the outbox and the brokers to
   * every consumer (opt-in: baggage is data the client chose). An invalid one is reported and left out.
   * @default false
   */
  readonly baggage?: boolean;
  /** Reports an inbound correlation or trace header that was invalid and replaced. */
  readonly onInvalidHeader?: (invalid: InvalidHeader, request: HttpRequestInfo) => void;
  /** Reports an unexpected error (answered 500 without details), with the request id it was answered with. */
  readonly onError?: (error: unknown, info: { readonly requestId: string; readonly route: string }) => void;
  /** Gets warnings (invalid headers) and unexpected errors when no hook is given. @default no logging */
  readonly logger?: Logger;
  /** JSON Schema for schema libraries without Standard JSON Schema (OpenAPI, query coercion). */
  readonly jsonSchema?: JsonSchemaConverter;
}

/** The framework-neutral HTTP edge: mounted routes for adapters, and a Fetch handler. */
export interface HttpHandler {
  readonly routes: readonly MountedRoute[];
  /** Answers a Fetch `Request` (Hono, Bun, Deno, workers, `node:http` through a bridge). */
  fetch(request: Request): Promise<Response>;
  /** Finds the mounted route and answers; 404 problem when none matches. */
  handle(input: RouteInput): Promise<HttpReply>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';
const JSON_CONTENT_RE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const PARAM_RE = /^:([A-Za-z_][A-Za-z0-9_]*)$/;
const IF_MATCH_RE = /^\s*"(0|[1-9]\d{0,14})"\s*$/;

function setEtag(headers: Record<string, string>, value: string | number | undefined): void {
  if (value === undefined) return;
  const text = String(value);
  // an ETag is opaque but must stay a valid header: printable ASCII without quotes
  if (/^[\x21\x23-\x7e]{1,200}$/.test(text)) headers.etag = `"${text}"`;
}

function defaultPath(type: string): string {
  return `/${type.replaceAll('.', '/').replaceAll(':', '/')}`.replace(/\/{2,}/g, '/');
}

function joinPath(base: string | undefined, path: string): string {
  const b = (base ?? '').replace(/\/+$/, '');
  const p = path.startsWith('/') ? path : `/${path}`;
  return b + p;
}

function randomHex(bytes: number): string {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Buffer.from(a).toString('hex');
}

function contentLengthOf(headers: HeaderReader): number | undefined {
  const raw = headers.get('content-length');
  if (raw === null || raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

interface Begun {
  readonly metadata: MetadataInit;
  readonly execution: ExecutionContext;
}

interface RequestScope {
  readonly requestId: string;
  /** The path parameters the route was matched with. */
  readonly params: Readonly<Record<string, string>> | undefined;
  readonly responseHeaders: Record<string, string>;
  anonymous: boolean;
  precondition: boolean;
}

/**
 * Builds the HTTP edge over a mediator: each route answers from its definition, errors are RFC 9457 problem
 * details from one table, and each request's context (principal, tenant, correlation and trace headers) goes
 * into the dispatch and back out on the response. Everything per route is composed here, once.
 * @throws ConfigurationError for a route whose handler is not registered, a duplicate method and path, an
 *   `idempotencyKey` rule on a command whose pipeline has no `idempotency` policy, or invalid options.
 */
export function createHttpHandler(options: HttpHandlerOptions): HttpHandler {
  const { mediator } = options;
  if (typeof mediator?.describe !== 'function')
    throw new ConfigurationError('createHttpHandler needs the mediator ({ mediator, routes })');
  if (!Array.isArray(options.routes))
    throw new ConfigurationError('createHttpHandler needs routes: commandRoute(...), queryRoute(...), ...');
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1)
    throw new ConfigurationError(`maxBodyBytes must be a positive integer, got ${String(maxBodyBytes)}`);
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const streamOpenMs = options.streamOpenMs ?? 250;
  for (const [name, value] of [
    ['heartbeatMs', heartbeatMs],
    ['streamOpenMs', streamOpenMs],
  ] as const)
    if (!Number.isInteger(value) || value < 0 || value > 2_147_483_647)
      throw new ConfigurationError(`${name} must be an integer number of ms, got ${String(value)}`);
  const logger = options.logger ?? noopLogger;
  const problemOptions = { typeBase: options.problemTypeBase ?? 'urn:cqrs-ts:problem:' };
  const handlers = new Map(mediator.describe().map((h) => [h.messageType, h]));

  const onInvalid = options.onInvalidHeader;
  if (options.baggage !== undefined && typeof options.baggage !== 'boolean')
    throw new ConfigurationError('baggage must be true or false');
  const baggage = options.baggage === true;
  const onError =
    options.onError ??
    ((error: unknown, info: { requestId: string; route: string }) =>
      logger.error({ ...info, error }, 'unexpected error answered with 500'));

  function problemReply(error: unknown, scope: RequestScope, route: string): HttpReply {
    const reply: ProblemReply = toProblem(error, scope.requestId, {
      typeBase: problemOptions.typeBase,
      anonymous: scope.anonymous,
      precondition: scope.precondition,
    });
    if (reply.unexpected) {
      try {
        onError(error, { requestId: scope.requestId, route });
      } catch {
        // a failing report must not change the answer
      }
    }
    // the request's own headers object: nothing reads it after this answer
    const headers = scope.responseHeaders;
    headers['content-type'] = PROBLEM_TYPE;
    if (reply.headers !== undefined) Object.assign(headers, reply.headers);
    // The rest of a refused body is not read: the connection cannot carry another request.
    if (reply.problem.status === 413) headers.connection = 'close';
    return { status: reply.problem.status, headers, body: JSON.stringify(reply.problem) };
  }

  /**
   * Reads the request's context; the response headers echo it. Synchronous unless `authenticate` answers with a
   * promise (no await, hence no extra turn, for the common request).
   */
  function begin(input: RouteInput, scope: RequestScope): Begun | Promise<Begun> {
    let info: HttpRequestInfo | undefined;
    const infoOf = (): HttpRequestInfo =>
      (info ??= { method: input.method, path: input.path, headers: input.headers, raw: input.raw });
    const invalid: InvalidHeader[] = [];
    const h = input.headers;
    // Without any context header the request starts a correlation of its own, named by its request id.
    const ctx =
      h.get('x-correlation-id') == null &&
      h.get('traceparent') == null &&
      h.get('x-causation-id') == null &&
      h.get('tracestate') == null &&
      (!baggage || h.get('baggage') == null)
        ? {
            correlationId: scope.requestId,
            causationId: undefined,
            traceparent: undefined,
            tracestate: undefined,
            baggage: undefined,
          }
        : extractContext(h, { onInvalid: (i) => invalid.push(i), baggage });
    let traceparent = ctx.traceparent;
    let tracestate = ctx.tracestate;
    for (const i of invalid) {
      if (i.header === 'traceparent') {
        traceparent = formatTraceparent({ traceId: randomHex(16), parentId: randomHex(8), flags: 0 });
        tracestate = undefined;
      }
      if (onInvalid !== undefined) onInvalid(i, infoOf());
      else logger.warn({ header: i.header, reason: i.reason }, 'invalid inbound header replaced');
    }
    const headers = scope.responseHeaders;
    headers['x-correlation-id'] = ctx.correlationId;
    if (traceparent !== undefined) headers.traceparent = traceparent;
    if (tracestate !== undefined) headers.tracestate = tracestate;
    const authenticate = options.authenticate;
    if (authenticate === undefined) return context(input, scope, undefined, infoOf, ctx, traceparent);
    const user = authenticate(infoOf());
    return typeof (user as PromiseLike<unknown> | undefined)?.then === 'function'
      ? Promise.resolve(user).then((u) => context(input, scope, u, infoOf, ctx, traceparent))
      : context(input, scope, user as Principal | undefined, infoOf, ctx, traceparent);
  }

  function context(
    input: RouteInput,
    scope: RequestScope,
    user: Principal | undefined,
    infoOf: () => HttpRequestInfo,
    ctx: { correlationId: string; causationId?: string | undefined; baggage?: string | undefined },
    traceparent: string | undefined,
  ): Begun {
    scope.anonymous = user === undefined;
    const tenantId = options.tenant?.(infoOf(), user);
    if (tenantId !== undefined && !isSafeId(tenantId))
      throw new ValidationError('request', [
        { path: ['tenant'], message: 'the tenant is not a safe id', code: 'invalid_tenant' },
      ]);
    const execution: { -readonly [K in keyof ExecutionContext]: ExecutionContext[K] } = { source: 'http' };
    if (user !== undefined) execution.user = user;
    if (tenantId !== undefined) execution.tenantId = tenantId;
    const ua = input.headers.get('user-agent');
    if (typeof ua === 'string') execution.userAgent = ua.slice(0, 256);
    const metadata: { -readonly [K in keyof MetadataInit]: MetadataInit[K] } = {
      requestId: scope.requestId,
      correlationId: ctx.correlationId,
    };
    if (ctx.causationId !== undefined) metadata.causationId = ctx.causationId;
    if (traceparent !== undefined) metadata.traceparent = traceparent;
    if (ctx.baggage !== undefined) metadata.baggage = ctx.baggage;
    if (tenantId !== undefined) metadata.tenantId = tenantId;
    if (user !== undefined) metadata.requestedBy = user.id;
    return { metadata, execution };
  }

  function mount(route: HttpRoute): MountedRoute {
    const { definition } = route;
    const info = handlers.get(definition.type);
    if (info === undefined)
      throw new ConfigurationError(`route for ${definition.type}: the mediator has no handler for it`);
    if ((route.kind === 'stream') !== (info.mode === 'stream'))
      throw new ConfigurationError(
        `route for ${definition.type}: its handler is ${info.mode === 'stream' ? 'a stream handler' : 'not a stream handler'}`,
      );
    const method = route.options.method ?? (route.kind === 'command' ? 'POST' : 'GET');
    if (!HTTP_METHODS.includes(method))
      throw new ConfigurationError(`route for ${definition.type}: unknown method ${String(method)}`);
    const path = joinPath(options.basePath, route.options.path ?? defaultPath(definition.type));
    const params: string[] = [];
    for (const segment of path.split('/')) {
      if (segment.startsWith(':')) {
        const m = PARAM_RE.exec(segment);
        if (m === null) throw new ConfigurationError(`route ${path}: invalid path parameter ${segment}`);
        params.push(m[1]!);
      }
    }
    const payloadSchema = toJsonSchema(definition.schema, 'input', options.jsonSchema);
    const resultSchema = toJsonSchema(definition.result, 'output', options.jsonSchema);
    const validates = info.policies.includes('validation');
    const idempotent = info.policies.includes('idempotency');
    let idempotencyKey: 'required' | 'optional' | undefined;
    if (route.kind === 'command') {
      const rule = (route.options as CommandRouteOptions).idempotencyKey;
      if (rule !== undefined && !idempotent)
        throw new ConfigurationError(
          `route for ${definition.type}: idempotencyKey needs the idempotency policy (a unit of work) in its pipeline`,
        );
      idempotencyKey = idempotent ? (rule ?? 'optional') : undefined;
    }
    const plan: CoercionPlan = coercionPlan(payloadSchema, definition.paging !== undefined);
    const paging =
      definition.paging === undefined ? undefined : { defaultPageSize: defaultPageSize(definition.paging) };
    const timeout = route.options.timeout;
    const etag = route.options.etag;
    if (route.kind === 'command') {
      const field = (route.options as CommandRouteOptions).ifMatch;
      if (field !== undefined && (typeof field !== 'string' || isForbiddenKey(field)))
        throw new ConfigurationError(`route for ${definition.type}: ifMatch must name a payload field`);
    }
    const routeName = `${method} ${path}`;
    // Without the validation policy, the route validates (schema and hook) before it dispatches.
    const build = validates
      ? (payload: unknown, metadata: MetadataInit) =>
          (definition as unknown as { create(p: unknown, m: MetadataInit): AnyMessage }).create(
            payload,
            metadata,
          )
      : (payload: unknown, metadata: MetadataInit) =>
          (definition as unknown as { parse(p: unknown, m: MetadataInit): Promise<AnyMessage> }).parse(
            payload,
            metadata,
          );

    function dispatchOptions(
      execution: ExecutionContext,
      input: RouteInput,
    ): { -readonly [K in keyof DispatchOptions]: DispatchOptions[K] } {
      const dispatch: { -readonly [K in keyof DispatchOptions]: DispatchOptions[K] } = { context: execution };
      if (input.scope !== undefined) dispatch.scope = input.scope;
      if (timeout !== undefined) dispatch.timeout = timeout;
      return dispatch;
    }

    function withParams(
      payload: Record<string, unknown>,
      input: Readonly<Record<string, string>> | undefined,
    ): Record<string, unknown> {
      if (params.length === 0 || input === undefined) return payload;
      const fromPath = queryPayload(input, new URLSearchParams(), plan);
      for (const [key, value] of Object.entries(fromPath)) {
        if (key in payload && payload[key] !== value)
          throw new ValidationError(definition.type, [
            { path: [key], message: `${key} differs from the path`, code: 'path_mismatch' },
          ]);
        payload[key] = value;
      }
      return payload;
    }

    async function command(input: RouteInput, scope: RequestScope): Promise<HttpReply> {
      const begun = begin(input, scope);
      const { metadata, execution } = begun instanceof Promise ? await begun : begun;
      const key = input.headers.get('idempotency-key');
      if (key !== null && key !== undefined) {
        if (idempotencyKey === undefined)
          throw new ValidationError(definition.type, [
            {
              path: ['headers', 'idempotency-key'],
              message: 'this route does not take an Idempotency-Key',
              code: 'unexpected_header',
            },
          ]);
        if (!isIdempotencyKey(key))
          throw new ValidationError(definition.type, [
            {
              path: ['headers', 'idempotency-key'],
              message: 'Idempotency-Key must be 1 to 200 characters without control characters',
              code: 'invalid_header',
            },
          ]);
        (metadata as { idempotencyKey?: string }).idempotencyKey = key;
      } else if (idempotencyKey === 'required')
        throw new ValidationError(definition.type, [
          { path: ['headers', 'idempotency-key'], message: 'Idempotency-Key is required', code: 'required' },
        ]);
      const raw = await readBody(input.body, maxBodyBytes, contentLengthOf(input.headers));
      const type = input.headers.get('content-type');
      if (raw.length > 0 && (typeof type !== 'string' || !JSON_CONTENT_RE.test(type)))
        throw new ValidationError(definition.type, [
          {
            path: ['headers', 'content-type'],
            message: 'the body must be application/json',
            code: 'unsupported_media_type',
          },
        ]);
      const payload = withParams(parseJsonBody(raw), scope.params);
      const ifMatch = input.headers.get('if-match');
      if (ifMatch !== null && ifMatch !== undefined) {
        const field = (route.options as CommandRouteOptions).ifMatch;
        const m = IF_MATCH_RE.exec(ifMatch);
        if (field === undefined || m === null)
          throw new ValidationError(definition.type, [
            {
              path: ['headers', 'if-match'],
              message:
                field === undefined
                  ? 'this route does not take If-Match'
                  : 'If-Match must be one strong ETag of a version, e.g. "3"',
              code: 'invalid_header',
            },
          ]);
        const version = Number(m[1]);
        if (field in payload && payload[field] !== version)
          throw new ValidationError(definition.type, [
            { path: [field], message: `${field} differs from If-Match`, code: 'if_match_mismatch' },
          ]);
        payload[field] = version;
        scope.precondition = true;
      }
      const message = await build(payload, metadata);
      let replayed = false;
      const dispatch = dispatchOptions(execution, input);
      if (key !== null && key !== undefined)
        dispatch.idempotency = {
          inFlight: 'reject',
          onReplay: () => {
            replayed = true;
          },
        };
      const result = await mediator.send(message as never, dispatch);
      const headers = scope.responseHeaders;
      if (replayed) headers['idempotency-replayed'] = 'true';
      if (result === undefined) return { status: 204, headers, body: undefined };
      headers['content-type'] = JSON_TYPE;
      if (etag !== undefined) setEtag(headers, etag(result as never));
      return {
        status: (route.options as CommandRouteOptions).status ?? 200,
        headers,
        body: JSON.stringify(result),
      };
    }

    async function query(input: RouteInput, scope: RequestScope): Promise<HttpReply> {
      const begun = begin(input, scope);
      const { metadata, execution } = begun instanceof Promise ? await begun : begun;
      const payload = queryPayload(scope.params, new URLSearchParams(input.search), plan);
      if (paging !== undefined) {
        // a list without page parameters is its first page, in the default size
        payload.page ??= 1;
        payload.pageSize ??= paging.defaultPageSize;
      }
      const message = await build(payload, metadata);
      const result = await mediator.query(message as never, dispatchOptions(execution, input));
      const headers = scope.responseHeaders;
      headers['content-type'] = JSON_TYPE;
      if (etag !== undefined) setEtag(headers, etag(result as never));
      return { status: 200, headers, body: JSON.stringify(result ?? null) };
    }

    const streamOptions = route.options as StreamRouteOptions<unknown>;
    const eventId = streamOptions.eventId ?? positionOf;

    async function stream(input: RouteInput, scope: RequestScope): Promise<HttpReply> {
      const begun = begin(input, scope);
      const { metadata, execution } = begun instanceof Promise ? await begun : begun;
      const payload = queryPayload(scope.params, new URLSearchParams(input.search), plan);
      const last = input.headers.get('last-event-id');
      if (streamOptions.resumeField !== undefined && typeof last === 'string' && last.length > 0) {
        if (last.length > 256 || !isSafeId(last))
          throw new ValidationError(definition.type, [
            {
              path: ['headers', 'last-event-id'],
              message: 'Last-Event-ID is not a safe id',
              code: 'invalid_header',
            },
          ]);
        Object.assign(
          payload,
          queryPayload({ [streamOptions.resumeField]: last }, new URLSearchParams(), plan),
        );
      }
      const message = await build(payload, metadata);
      const dispatch = dispatchOptions(execution, input);
      const signal = input.signal;
      if (signal !== undefined) dispatch.signal = signal;
      const items = mediator.stream(message as never, dispatch);
      // Failures before the first item (validation, authorization) still get their status.
      let first: IteratorResult<unknown> | undefined;
      if (streamOpenMs > 0) {
        const next = items.next();
        let timer: NodeJS.Timeout | undefined;
        const opened = new Promise<undefined>((resolve) => {
          timer = setTimeout(resolve, streamOpenMs, undefined);
        });
        try {
          first = await Promise.race([next, opened]);
        } catch (error) {
          await items.return?.(undefined).catch(() => {});
          throw error;
        } finally {
          clearTimeout(timer);
        }
        if (first === undefined) {
          // the first step is still running: the body's first pull takes it over
          next.catch(() => {});
          let held: Promise<IteratorResult<unknown>> | undefined = next;
          const rest: AsyncIterator<unknown> = {
            next: () => {
              const step = held ?? items.next();
              held = undefined;
              return step;
            },
            return: (value?: unknown) =>
              items.return?.(value) ?? Promise.resolve({ done: true as const, value: undefined }),
          };
          return sseReply(rest, undefined, scope);
        }
      }
      return sseReply(items, first, scope);
    }

    function sseReply(
      items: AsyncIterator<unknown>,
      first: IteratorResult<unknown> | undefined,
      scope: RequestScope,
    ): HttpReply {
      const headers = scope.responseHeaders;
      headers['content-type'] = 'text/event-stream; charset=utf-8';
      headers['cache-control'] = 'no-cache';
      headers['x-accel-buffering'] = 'no';
      const body = sseBody(items, first, {
        heartbeatMs: heartbeatMs === 0 ? DEFAULT_HEARTBEAT_MS : heartbeatMs,
        eventId,
        problem: (error) =>
          toProblem(error, scope.requestId, { ...problemOptions, anonymous: scope.anonymous }).problem,
      });
      return { status: 200, headers, body };
    }

    const run = route.kind === 'command' ? command : route.kind === 'query' ? query : stream;

    async function answer(input: RouteInput, params: RouteInput['params']): Promise<HttpReply> {
      const requestId = uuidv7();
      const scope: RequestScope = {
        requestId,
        params,
        responseHeaders: { 'x-request-id': requestId },
        anonymous: true,
        precondition: false,
      };
      try {
        return await run(input, scope);
      } catch (error) {
        return problemReply(error, scope, routeName);
      }
    }

    const mountedRoute: MountedRoute = Object.freeze({
      route,
      method,
      path,
      params: Object.freeze(params),
      payloadSchema,
      resultSchema,
      idempotencyKey,
      handle: (input: RouteInput) => answer(input, input.params),
    });
    answers.set(mountedRoute, answer);
    return mountedRoute;
  }

  const answers = new Map<
    MountedRoute,
    (input: RouteInput, params: RouteInput['params']) => Promise<HttpReply>
  >();

  const rank = (path: string) =>
    path
      .split('/')
      .map((x) => (x.startsWith(':') ? '1' : '0'))
      .join('');
  // A literal segment wins over a parameter at the same place (/orders/live before /orders/:id), also for
  // frameworks that match in registration order.
  const mounted = options.routes
    .map(mount)
    .sort((a, b) => (rank(a.path) < rank(b.path) ? -1 : rank(a.path) > rank(b.path) ? 1 : 0));
  const table = new Map<
    string,
    {
      segments: string[];
      route: MountedRoute;
      answer: (input: RouteInput, params: RouteInput['params']) => Promise<HttpReply>;
    }[]
  >();
  for (const m of mounted) {
    const list = table.get(m.method) ?? [];
    const segments = m.path.split('/');
    const clash = list.find(
      (o) =>
        o.segments.length === segments.length &&
        o.segments.every((s, i) => s === segments[i] || (s.startsWith(':') && segments[i]!.startsWith(':'))),
    );
    if (clash !== undefined)
      throw new ConfigurationError(
        `two routes answer ${m.method} ${m.path}: ${clash.route.route.definition.type} and ${m.route.definition.type}`,
      );
    list.push({ segments, route: m, answer: answers.get(m)! });
    // a literal segment wins over a parameter at the same place: /orders/live before /orders/:id
    const rank = (segments: readonly string[]) =>
      segments.map((x) => (x.startsWith(':') ? '1' : '0')).join('');
    list.sort((a, b) =>
      rank(a.segments) < rank(b.segments) ? -1 : rank(a.segments) > rank(b.segments) ? 1 : 0,
    );
    table.set(m.method, list);
  }

  function match(
    method: string,
    path: string,
  ):
    | {
        answer: (input: RouteInput, params: RouteInput['params']) => Promise<HttpReply>;
        params: Record<string, string>;
      }
    | undefined {
    const list = table.get(method);
    if (list === undefined) return undefined;
    const parts = path.split('/');
    for (const { segments, answer } of list) {
      if (segments.length !== parts.length) continue;
      let params: Record<string, string> | undefined;
      let ok = true;
      for (let i = 0; i < segments.length; i++) {
        const s = segments[i]!;
        if (s.startsWith(':')) {
          let value: string;
          try {
            value = decodeURIComponent(parts[i]!);
          } catch {
            ok = false;
            break;
          }
          if (value.length === 0) {
            ok = false;
            break;
          }
          params ??= {};
          params[s.slice(1)] = value;
        } else if (s !== parts[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return { answer, params: params ?? {} };
    }
    return undefined;
  }

  async function handle(input: RouteInput): Promise<HttpReply> {
    const found = match(input.method.toUpperCase(), input.path);
    if (found === undefined) {
      const requestId = uuidv7();
      const reply = toProblem(
        new NotFoundError('route', `${input.method} ${input.path}`),
        requestId,
        problemOptions,
      );
      return {
        status: 404,
        headers: { 'x-request-id': requestId, 'content-type': PROBLEM_TYPE },
        body: JSON.stringify(reply.problem),
      };
    }
    // not a spread: an input's lazy getters (signal) stay unread
    return found.answer(input, found.params);
  }

  return Object.freeze({
    routes: Object.freeze(mounted),
    handle,
    async fetch(request: Request): Promise<Response> {
      return toResponse(await handle(fetchRouteInput(request)));
    },
  });
}

/** Options of {@link fetchRouteInput}. */
export interface FetchRouteInputOptions {
  /** The path the framework matched, without the query string. @default the pathname of the request's URL */
  readonly path?: string;
  /** The query string, without `?`. @default that of the request's URL */
  readonly search?: string;
  /** Path parameters, by name. */
  readonly params?: Readonly<Record<string, string>> | undefined;
  /**
   * A cheaper reader of the same headers, e.g. `nodeHeaders(incoming.headers)` where the runtime hands over the
   * Node request too. @default the request's `headers`
   */
  readonly headers?: HeaderReader | undefined;
  /** The request's dependency scope (see {@link RouteInput.scope}). */
  readonly scope?: DependencyScope | undefined;
}

// One class for every request: one shape, and the signal read only when a stream route asks for it.
class FetchRouteInput implements RouteInput {
  readonly method: string;
  readonly path: string;
  readonly headers: HeaderReader;
  readonly params: Readonly<Record<string, string>> | undefined;
  readonly search: string;
  readonly body: Request;
  readonly raw: Request;
  readonly scope: DependencyScope | undefined;

  constructor(request: Request, path: string, search: string, options: FetchRouteInputOptions) {
    this.method = request.method;
    this.path = path;
    this.headers = options.headers ?? request.headers;
    this.params = options.params;
    this.search = search;
    this.body = request;
    this.raw = request;
    this.scope = options.scope;
  }

  get signal(): AbortSignal {
    return this.raw.signal;
  }
}

/**
 * The input of a mounted route from a Fetch `Request`: its body is read whole in one call when its length is
 * declared (within the route's limit), else as a stream; its `signal` is read only by stream routes.
 * @throws ConfigurationError when `request` is not a Fetch `Request`.
 */
export function fetchRouteInput(request: Request, options: FetchRouteInputOptions = {}): RouteInput {
  if (
    typeof request?.method !== 'string' ||
    typeof request.url !== 'string' ||
    typeof request.headers?.get !== 'function'
  )
    throw new ConfigurationError('fetchRouteInput needs a Fetch Request');
  let { path, search } = options;
  if (path === undefined || search === undefined) {
    const url = new URL(request.url);
    path ??= url.pathname;
    search ??= url.search.length > 1 ? url.search.slice(1) : '';
  }
  return new FetchRouteInput(request, path, search, options);
}

/** Turns a reply into a Fetch `Response`; a stream becomes a `ReadableStream` pulled one event at a time. */
export function toResponse(reply: HttpReply): Response {
  const body = reply.body;
  if (body === undefined || typeof body === 'string')
    return new Response(body ?? null, { status: reply.status, headers: reply.headers });
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await body.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      },
      async cancel() {
        await body.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(stream, { status: reply.status, headers: reply.headers });
}

/** The page size of a paginated query's route when the request names none: 20, or the query's maximum if smaller. */
export function defaultPageSize(paging: { readonly maxPageSize: number }): number {
  return Math.min(DEFAULT_PAGE_SIZE, paging.maxPageSize);
}

const DEFAULT_PAGE_SIZE = 20;
