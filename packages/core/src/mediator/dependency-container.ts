import type { DependencyScope } from '../context/dependency-scope.ts';
import type { ExecutionContext } from '../context/execution-context.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { AnyMessage } from '../messages/message.ts';

/** What a container learns when the mediator opens the scope of a top-level dispatch. */
export interface ScopeInit {
  /** The top-level message: the command, query or stream query sent, or the event published. */
  readonly message: AnyMessage;
  /** The execution context of the dispatch (user, tenant, ...). */
  readonly execution: ExecutionContext;
}

/**
 * A DI container as the mediator sees it (the `container` option of `createMediator`): it opens one
 * {@link DependencyScope} per top-level dispatch. Nested dispatches (a `send`, `query` or `publish` made inside
 * a handler, and the events a dispatch records) share it; the mediator disposes it when the top-level dispatch
 * settles. Fire-and-forget work outlives its caller, so it gets a scope of its own.
 */
export interface DependencyContainer {
  /** Opens the scope of one top-level dispatch. Must not throw for a healthy container. */
  createScope(init: ScopeInit): DependencyScope;
}

/** @internal Checks the `container` option. */
export function checkContainer(container: unknown): void {
  if (container === undefined) return;
  if (typeof (container as DependencyContainer | null)?.createScope !== 'function')
    throw new ConfigurationError(
      'container must have a createScope(init) method (e.g. awilixContainer(container) from @cqrs-ts/awilix)',
    );
}

/** @internal Checks a scope given in dispatch options; returns the problem, or `undefined`. */
export function scopeProblem(scope: unknown): string | undefined {
  if (typeof (scope as DependencyScope | null)?.resolve !== 'function')
    return 'scope must be a dependency scope with a resolve(token) method';
  return undefined;
}

/**
 * @internal Disposes a scope the mediator opened. A failing dispose never changes the dispatch's outcome (the
 * handler's work is done): it is reported as a process warning.
 */
export function disposeScope(scope: DependencyScope): Promise<void> | undefined {
  let pending: void | Promise<void>;
  try {
    pending = scope.dispose?.();
  } catch (error) {
    warnDispose(error);
    return undefined;
  }
  if (typeof (pending as PromiseLike<void> | undefined)?.then !== 'function') return undefined;
  return Promise.resolve(pending).then(undefined, warnDispose);
}

function warnDispose(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`disposing a dispatch's dependency scope failed: ${message}`, {
    type: 'CqrsScopeWarning',
    code: 'CQRS_SCOPE_DISPOSE',
  });
}
