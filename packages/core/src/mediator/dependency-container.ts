import type { DependencyScope } from '../context/dependency-scope.ts';
import type { ExecutionContext } from '../context/execution-context.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { AnyMessage } from '../messages/message.ts';
import type { HandlerRegistration } from './mediator.ts';

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

/** Options every container adapter takes: a hook that sees each new native scope before the dispatch runs. */
export interface ContainerAdapterOptions<TNative> {
  /** Called with each new native scope before the dispatch runs, to register per-dispatch values. Must not throw. */
  readonly onScope?: (scope: TNative, init: ScopeInit) => void;
}

/**
 * For container adapters: a {@link DependencyContainer} that opens a native child scope per top-level dispatch
 * (`open`), shows it to `options.onScope`, and wraps it (`wrap`, told the mediator owns it). Checks the options.
 * @param where The adapter's entry point, for error messages (`'awilixContainer()'`).
 * @throws ConfigurationError when options or `onScope` have the wrong type.
 */
export function containerAdapter<TNative>(
  where: string,
  options: ContainerAdapterOptions<TNative>,
  open: () => TNative,
  wrap: (scope: TNative, owned: true) => DependencyScope,
): DependencyContainer {
  if (typeof options !== 'object' || options === null)
    throw new ConfigurationError(`${where}: options must be an object { onScope? }`);
  const onScope = options.onScope;
  if (onScope !== undefined && typeof onScope !== 'function')
    throw new ConfigurationError(`${where}: onScope must be a function (scope, init) => void`);
  return Object.freeze({
    createScope(init: ScopeInit): DependencyScope {
      const scope = open();
      onScope?.(scope, init);
      return wrap(scope, true);
    },
  });
}

/**
 * For container adapters: the handler classes among `registrations` (classes bound by `handle`/`on`, classes
 * decorated with `@handles`, nested lists), each once; function handlers are left out.
 * @throws ConfigurationError when `registrations` is not an array.
 */
export function handlerClassesOf(where: string, registrations: readonly HandlerRegistration[]): Function[] {
  if (!Array.isArray(registrations)) throw new ConfigurationError(`${where}: registrations must be an array`);
  const out = new Set<Function>();
  const walk = (items: readonly HandlerRegistration[]) => {
    for (const item of items) {
      if (Array.isArray(item)) walk(item);
      else if (typeof item === 'function') out.add(item);
      else if (typeof item === 'object' && item !== null && 'isClass' in item && item.isClass)
        out.add(item.implementation as Function);
    }
  };
  walk(registrations);
  return [...out];
}
