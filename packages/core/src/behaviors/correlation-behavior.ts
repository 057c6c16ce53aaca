import type { AmbientContext } from '../context/ambient-context.ts';
import { currentContext, runInContext } from '../context/ambient-context.ts';
import type { Behavior, BehaviorTarget } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';

/** Options of {@link correlation}. */
export interface CorrelationOptions {
  readonly target?: BehaviorTarget;
}

/**
 * Establishes the ambient context for the dispatch (AsyncLocalStorage): the message's request id, its
 * correlation id, its causation id and the execution context. Messages created inside the handler inherit
 * the correlation id and record this message's request id as their causation id. A message created outside
 * any dispatch but sent from inside one is linked to the enclosing dispatch. The outer context is restored
 * afterwards, also on error. Put it first.
 */
export function correlation(options: CorrelationOptions = {}): Behavior {
  return createBehavior(
    'correlation',
    () => (message, context, next) => {
      const metadata = message.metadata;
      const parent = currentContext();
      let correlationId = metadata.correlationId;
      let causationId = metadata.causationId;
      if (parent !== undefined && causationId === undefined && parent.requestId !== metadata.requestId) {
        correlationId = parent.correlationId;
        causationId = parent.requestId;
      }
      const execution = context.execution;
      const store: AmbientContext = {
        requestId: metadata.requestId,
        correlationId,
        causationId,
        execution,
        tenantId: execution.tenantId ?? metadata.tenantId ?? parent?.tenantId,
        requestedBy: execution.user?.id ?? metadata.requestedBy ?? parent?.requestedBy,
        traceparent: metadata.traceparent ?? parent?.traceparent,
        tracestate: parent?.tracestate,
      };
      return runInContext(store, next, message, context);
    },
    options.target,
  );
}
