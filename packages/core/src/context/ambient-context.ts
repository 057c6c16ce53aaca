import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { DependencyScope } from './dependency-scope.ts';
import type { ExecutionContext } from './execution-context.ts';
import { EMPTY_EXECUTION_CONTEXT } from './execution-context.ts';

/**
 * The ambient dispatch context, carried through `await` by AsyncLocalStorage. Messages created inside a
 * dispatch take their correlation id, causation id, tenant and requester from it.
 */
export interface AmbientContext {
  /** Request id of the message being handled (the causation id of anything created inside). */
  readonly requestId: string | undefined;
  readonly correlationId: string;
  readonly causationId: string | undefined;
  readonly execution: ExecutionContext;
  /** Tenant of the current operation (from the execution context, else the message being handled). */
  readonly tenantId: string | undefined;
  /** Who asked for the current operation (the user id, else the message's `requestedBy`). */
  readonly requestedBy: string | undefined;
  /** W3C trace context of the current operation, if any. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** W3C `baggage` the application opted into carrying, if any. */
  readonly baggage?: string | undefined;
}

/**
 * @internal What the async storage holds: a dispatch, whose ambient context is built the first time something
 * reads it, or a scope opened by {@link runWithContext}.
 */
export interface AmbientSource {
  readonly ambient: AmbientContext;
  /** @internal The async resource that re-enters this source's frame, once it was entered. */
  resource?: AsyncResource | undefined;
  /** @internal The dependency scope of the dispatch, which dispatches started inside it share. */
  readonly scope?: DependencyScope | undefined;
}

const storage = new AsyncLocalStorage<AmbientSource>();

/** The ambient context, or `undefined` outside any dispatch or {@link runWithContext} scope. */
export function currentContext(): AmbientContext | undefined {
  return storage.getStore()?.ambient;
}

/** @internal The ambient source of the caller, or `undefined`. */
export function currentSource(): AmbientSource | undefined {
  return storage.getStore();
}

function enter<TA, TB, TResult>(source: AmbientSource, fn: (a: TA, b: TB) => TResult, a: TA, b: TB): TResult {
  storage.enterWith(source);
  return fn(a, b);
}

function enterAndKeep<TA, TB, TResult>(
  source: AmbientSource,
  fn: (a: TA, b: TB) => TResult,
  a: TA,
  b: TB,
): TResult {
  storage.enterWith(source);
  // Captures the frame just entered, so later calls for this source switch to it without building another.
  source.resource = new AsyncResource('cqrs-ts.scope');
  return fn(a, b);
}

/**
 * @internal Runs `fn(a, b)` with `source` as the ambient source, then restores the caller's context exactly
 * (an `AsyncResource` made in the caller's frame switches back to it). The source's frame is a copy of the
 * caller's with the source added; `AsyncLocalStorage.run` builds two such copies, one to enter and one to
 * leave. Everything `fn` starts (promises, timers) carries the source. With `keep`, the frame is kept on the
 * source and later calls for it re-enter it without building another (several event handlers, stream steps).
 */
export function runInSource<TA, TB, TResult>(
  source: AmbientSource,
  fn: (a: TA, b: TB) => TResult,
  a: TA,
  b: TB,
  keep = false,
): TResult {
  const resource = source.resource;
  if (resource !== undefined) return resource.runInAsyncScope(fn, undefined, a, b);
  return new AsyncResource('cqrs-ts.dispatch').runInAsyncScope(
    keep ? enterAndKeep : enter,
    undefined,
    source,
    fn,
    a,
    b,
  ) as TResult;
}

/** Options of {@link runWithContext}. */
export interface ContextInit {
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly requestId?: string;
  readonly execution?: ExecutionContext;
  readonly tenantId?: string;
  readonly requestedBy?: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  /**
   * W3C `baggage` to carry with the messages created inside (opt-in: only what is given here, or by an HTTP edge
   * with `baggage: true`, travels): 1 to 8192 printable ASCII characters.
   */
  readonly baggage?: string;
}

/**
 * Runs `fn` inside an ambient context, e.g. one built from an HTTP request's headers, so that messages
 * created and dispatched inside inherit its correlation id and execution context. The previous context
 * is restored afterwards, also when `fn` throws.
 */
export function runWithContext<TResult>(init: ContextInit, fn: () => TResult): TResult {
  if (typeof fn !== 'function')
    throw new ConfigurationError(
      'runWithContext(init, fn): fn must be the function to run inside the context',
    );
  if (typeof init !== 'object' || init === null || Array.isArray(init))
    throw new ConfigurationError(
      'runWithContext(init, fn): init must be an object such as { correlationId }',
    );
  const parent = storage.getStore()?.ambient;
  const correlationId = init.correlationId ?? parent?.correlationId;
  if (correlationId === undefined) {
    throw new ConfigurationError(
      'runWithContext needs init.correlationId outside any dispatch (e.g. extractContext(request.headers), or { correlationId: uuidv7() })',
    );
  }
  checkInit(init);
  const execution = init.execution ?? parent?.execution ?? EMPTY_EXECUTION_CONTEXT;
  const ambient: AmbientContext = {
    requestId: init.requestId ?? parent?.requestId,
    correlationId,
    causationId: init.causationId ?? parent?.causationId,
    execution,
    tenantId: init.tenantId ?? execution.tenantId ?? parent?.tenantId,
    requestedBy: init.requestedBy ?? execution.user?.id ?? parent?.requestedBy,
    traceparent: init.traceparent ?? parent?.traceparent,
    tracestate: init.tracestate ?? parent?.tracestate,
    baggage: init.baggage ?? parent?.baggage,
  };
  return storage.run({ ambient }, fn);
}

const ID_KEYS = ['correlationId', 'causationId', 'requestId', 'tenantId', 'requestedBy'] as const;
// Printable ASCII without spaces, as isSafeId in headers.ts (kept here to avoid an import cycle).
const SAFE_ID_RE = /^[\x21-\x7e]{1,256}$/;
const TRACEPARENT_RE = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

function checkInit(init: ContextInit): void {
  for (const key of ID_KEYS) {
    const value = init[key];
    if (value !== undefined && !(typeof value === 'string' && SAFE_ID_RE.test(value))) {
      throw new ConfigurationError(
        `runWithContext: ${key} must be 1 to 256 printable ASCII characters without spaces`,
      );
    }
  }
  if (
    init.traceparent !== undefined &&
    !(typeof init.traceparent === 'string' && TRACEPARENT_RE.test(init.traceparent))
  )
    throw new ConfigurationError(
      'runWithContext: traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)',
    );
  if (
    init.tracestate !== undefined &&
    !(typeof init.tracestate === 'string' && init.tracestate.length <= 512)
  )
    throw new ConfigurationError('runWithContext: tracestate must be a string of at most 512 characters');
  if (
    init.baggage !== undefined &&
    !(
      typeof init.baggage === 'string' &&
      init.baggage.length > 0 &&
      init.baggage.length <= 8192 &&
      /^[\x20-\x7e]+$/.test(init.baggage)
    )
  )
    throw new ConfigurationError(
      'runWithContext: baggage must be a W3C baggage value of 1 to 8192 printable ASCII characters',
    );
  const e = init.execution;
  if (e !== undefined && (typeof e !== 'object' || e === null || Array.isArray(e)))
    throw new ConfigurationError(
      'runWithContext: execution must be an execution context object ({ user, tenantId, ... })',
    );
}
