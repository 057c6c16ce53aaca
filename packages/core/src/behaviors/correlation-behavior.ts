import type { Behavior, BehaviorTarget } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';

/** Options of {@link correlation}. */
export interface CorrelationOptions {
  readonly target?: BehaviorTarget;
}

/**
 * Kept so that existing pipelines still build: the mediator itself now establishes the ambient context of every
 * dispatch (AsyncLocalStorage), before any behavior runs, so this behavior joins no pipeline and costs nothing.
 * Messages created or dispatched inside a handler inherit the correlation id, the execution context (user,
 * tenant) and the trace context, and record the handled message's request id as their causation id.
 * @deprecated Context propagation is built into the mediator; remove `correlation()` from `behaviors`.
 */
export function correlation(options: CorrelationOptions = {}): Behavior {
  return createBehavior('correlation', () => undefined, options.target);
}
