import { AsyncLocalStorage } from 'node:async_hooks';
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
}

const storage = new AsyncLocalStorage<AmbientContext>();

/** The ambient context, or `undefined` outside any dispatch or {@link runWithContext} scope. */
export function currentContext(): AmbientContext | undefined {
  return storage.getStore();
}

/** @internal Runs `fn(a, b)` with `context` as the ambient context, without allocating a closure. */
export function runInContext<TA, TB, TResult>(
  context: AmbientContext,
  fn: (a: TA, b: TB) => TResult,
  a: TA,
  b: TB,
): TResult {
  return storage.run(context, fn, a, b);
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
}

/**
 * Runs `fn` inside an ambient context, e.g. one built from an HTTP request's headers, so that messages
 * created and dispatched inside inherit its correlation id and execution context. The previous context
 * is restored afterwards, also when `fn` throws.
 */
export function runWithContext<TResult>(init: ContextInit, fn: () => TResult): TResult {
  const parent = storage.getStore();
  const correlationId = init.correlationId ?? parent?.correlationId;
  if (correlationId === undefined) {
    throw new TypeError('runWithContext needs a correlationId when there is no ambient context');
  }
  const execution = init.execution ?? parent?.execution ?? EMPTY_EXECUTION_CONTEXT;
  const context: AmbientContext = {
    requestId: init.requestId ?? parent?.requestId,
    correlationId,
    causationId: init.causationId ?? parent?.causationId,
    execution,
    tenantId: init.tenantId ?? execution.tenantId ?? parent?.tenantId,
    requestedBy: init.requestedBy ?? execution.user?.id ?? parent?.requestedBy,
    traceparent: init.traceparent ?? parent?.traceparent,
    tracestate: init.tracestate ?? parent?.tracestate,
  };
  return storage.run(context, fn);
}
