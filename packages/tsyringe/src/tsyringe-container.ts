import {
  ConfigurationError,
  type DependencyContainer,
  type DependencyScope,
  type DependencyToken,
  type DispatchContext,
  type HandlerRegistration,
  type ScopeInit,
} from '@cqrs-ts/core';
import { type ContainerAdapterOptions, containerAdapter, handlerClassesOf } from '@cqrs-ts/core/spi';
import { Lifecycle, type DependencyContainer as TsyringeContainer } from 'tsyringe';

/** Options of {@link tsyringeContainer}. */
export interface TsyringeContainerOptions extends ContainerAdapterOptions<TsyringeContainer> {
  /**
   * Called with each new child container before the dispatch runs: register per-dispatch values there, e.g.
   * `child.register('execution', { useValue: init.execution })`. Must not throw.
   */
  readonly onScope?: (child: TsyringeContainer, init: ScopeInit) => void;
}

/** A dispatch's dependency scope over a tsyringe child container. */
class TsyringeDependencyScope implements DependencyScope {
  readonly container: TsyringeContainer;
  readonly #owned: boolean;

  constructor(container: TsyringeContainer, owned: boolean) {
    this.container = container;
    this.#owned = owned;
  }

  resolve<TValue>(token: DependencyToken<TValue>): TValue {
    return this.container.resolve<TValue>(token as never);
  }

  /** Disposes the child container (the `dispose()` of its disposable instances); only one the mediator opened. */
  dispose(): void | Promise<void> {
    return this.#owned ? this.container.dispose() : undefined;
  }
}

function checkTsyringe(container: unknown, where: string): asserts container is TsyringeContainer {
  const c = container as Partial<TsyringeContainer> | null;
  if (
    typeof c?.createChildContainer !== 'function' ||
    typeof c.resolve !== 'function' ||
    typeof c.register !== 'function' ||
    typeof c.dispose !== 'function'
  )
    throw new ConfigurationError(
      `${where} needs a tsyringe container (\`container\` from tsyringe 4.8 or later)`,
    );
}

/**
 * The mediator's `container` over tsyringe: each top-level dispatch runs in `container.createChildContainer()`,
 * which its nested dispatches share, so `Lifecycle.ContainerScoped` registrations are one instance per top-level
 * dispatch; the child is disposed when the dispatch settles.
 * @throws ConfigurationError when `container` is not a tsyringe container.
 *
 * @example
 * container.register(UnitOfWork, { useClass: UnitOfWork }, { lifecycle: Lifecycle.ContainerScoped });
 * const mediator = createMediator({ handlers, container: tsyringeContainer(container) });
 */
export function tsyringeContainer(
  container: TsyringeContainer,
  options: TsyringeContainerOptions = {},
): DependencyContainer {
  checkTsyringe(container, 'tsyringeContainer()');
  return containerAdapter(
    'tsyringeContainer()',
    options,
    () => container.createChildContainer(),
    (child, owned) => new TsyringeDependencyScope(child, owned),
  );
}

/**
 * Adopts a child container made elsewhere (e.g. per HTTP request): pass it as a dispatch's `scope`. The mediator
 * does not dispose it; its owner does.
 */
export function tsyringeScope(child: TsyringeContainer): DependencyScope {
  checkTsyringe(child, 'tsyringeScope()');
  return new TsyringeDependencyScope(child, false);
}

/**
 * The tsyringe child container of a dispatch (`tsyringeScopeOf(ctx).resolve(UnitOfWork)`).
 * @throws ConfigurationError when the dispatch has no tsyringe scope.
 */
export function tsyringeScopeOf(context: DispatchContext): TsyringeContainer {
  const scope = context?.scope;
  if (!(scope instanceof TsyringeDependencyScope))
    throw new ConfigurationError(
      'this dispatch has no tsyringe scope: give createMediator the container tsyringeContainer(container), or the dispatch a scope from tsyringeScope()',
    );
  return scope.container;
}

/** Options of {@link registerHandlers}. */
export interface RegisterHandlersOptions {
  /** @default Lifecycle.ContainerScoped (one instance per top-level dispatch) */
  readonly lifecycle?: Lifecycle.Transient | Lifecycle.ContainerScoped | Lifecycle.ResolutionScoped;
}

const LIFECYCLES: readonly Lifecycle[] = [
  Lifecycle.Transient,
  Lifecycle.ContainerScoped,
  Lifecycle.ResolutionScoped,
];

/**
 * Registers the class handlers among `registrations` in the tsyringe container (`useClass`, `ContainerScoped` by
 * default) and returns `registrations` for `createMediator`'s `handlers`. Classes need tsyringe's
 * `@injectable()` (its constructor metadata); function handlers are skipped.
 * @throws ConfigurationError for a wrong lifecycle.
 */
export function registerHandlers<TRegistrations extends readonly HandlerRegistration[]>(
  container: TsyringeContainer,
  registrations: TRegistrations,
  options: RegisterHandlersOptions = {},
): TRegistrations {
  checkTsyringe(container, 'registerHandlers()');
  const handlers = handlerClassesOf('registerHandlers(container, registrations)', registrations);
  const lifecycle = options?.lifecycle ?? Lifecycle.ContainerScoped;
  if (!LIFECYCLES.includes(lifecycle))
    throw new ConfigurationError(
      'registerHandlers(): lifecycle must be Lifecycle.Transient, ContainerScoped or ResolutionScoped',
    );
  for (const handler of handlers) {
    if (container.isRegistered(handler as never, true)) continue;
    container.register(handler as never, { useClass: handler as never }, { lifecycle: lifecycle as never });
  }
  return registrations;
}

/** What `@cqrs-ts/saga`'s runner asks of a step resolver (structural, so this package needs no saga import). */
export interface TsyringeStepResolver {
  resolve<TInstance>(
    token: abstract new (...args: never[]) => TInstance,
    info: { readonly sagaId: string; readonly stepId: string },
  ): TInstance;
}

/**
 * A step resolver for `createSagaRunner({ resolver })`: resolves each step class in a new child container, so a
 * run gets a new instance per step. A step registered as a singleton would serve every run: the resolver
 * notices an instance it handed out before and refuses it. The runner keeps the instance for the run, so the
 * instance that acted is the one that compensates.
 */
export function tsyringeStepResolver(container: TsyringeContainer): TsyringeStepResolver {
  checkTsyringe(container, 'tsyringeStepResolver()');
  const handedOut = new WeakSet<object>();
  return Object.freeze({
    resolve<TInstance>(token: abstract new (...args: never[]) => TInstance): TInstance {
      if (typeof token !== 'function')
        throw new ConfigurationError('tsyringeStepResolver(): a step to resolve must be a class');
      const instance = container.createChildContainer().resolve(token as never) as TInstance & object;
      if (handedOut.has(instance))
        throw new ConfigurationError(
          `saga step ${token.name} resolved to an instance another run has: register it as transient (or not at all), not as a singleton`,
        );
      handedOut.add(instance);
      return instance;
    },
  });
}
