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
import { type AwilixContainer, asClass, type Constructor, type LifetimeType } from 'awilix';

/** Options of {@link awilixContainer}. */
export interface AwilixContainerOptions extends ContainerAdapterOptions<AwilixContainer> {
  /**
   * Called with each new scope before the dispatch runs: register per-dispatch values there, e.g.
   * `scope.register({ execution: asValue(init.execution) })`. Must not throw.
   */
  readonly onScope?: (scope: AwilixContainer, init: ScopeInit) => void;
}

/** The awilix registrations {@link registerHandlers} made, and the handler class of each. */
const registered = new WeakMap<object, Function>();

/**
 * A dispatch's dependency scope over an awilix container. Class tokens resolve to their registration (see
 * {@link registerHandlers}), else are built from the scope (a new instance whose dependencies come from it);
 * names and symbols resolve as awilix registrations.
 */
class AwilixDependencyScope implements DependencyScope {
  readonly container: AwilixContainer;
  readonly #owned: boolean;

  constructor(container: AwilixContainer, owned: boolean) {
    this.container = container;
    this.#owned = owned;
  }

  resolve<TValue>(token: DependencyToken<TValue>): TValue {
    if (typeof token !== 'function') return this.container.resolve<TValue>(token);
    const name = token.name.length > 0 ? registrationName(token) : undefined;
    const registration = name === undefined ? null : this.container.getRegistration(name);
    if (registration !== null && registered.get(registration) === token)
      return this.container.resolve<TValue>(name!);
    return this.container.build(token as unknown as Constructor<TValue>);
  }

  /** Disposes the awilix scope (its `SCOPED` registrations' disposers run); only for a scope the mediator opened. */
  dispose(): Promise<void> | undefined {
    return this.#owned ? this.container.dispose() : undefined;
  }
}

function checkAwilix(container: unknown, where: string): asserts container is AwilixContainer {
  const c = container as Partial<AwilixContainer> | null;
  if (
    typeof c?.createScope !== 'function' ||
    typeof c.resolve !== 'function' ||
    typeof c.build !== 'function' ||
    typeof c.getRegistration !== 'function'
  )
    throw new ConfigurationError(`${where} needs an awilix container (createContainer() from awilix)`);
}

/**
 * The mediator's `container` over awilix: each top-level dispatch runs in `container.createScope()`, which its
 * nested dispatches share and which is disposed when it settles (awilix runs the disposers of its `SCOPED`
 * registrations). Handlers and behaviors read it as `context.scope` (or the awilix scope as
 * {@link awilixScopeOf}`(context)`).
 * @throws ConfigurationError when `container` is not an awilix container.
 *
 * @example
 * const container = createContainer({ injectionMode: InjectionMode.PROXY, strict: true });
 * container.register({ orders: asClass(OrderRepository).scoped() });
 * const handlers = registerHandlers(container, [handle(PlaceOrder, PlaceOrderHandler)]);
 * const mediator = createMediator({ handlers, container: awilixContainer(container) });
 */
export function awilixContainer(
  container: AwilixContainer,
  options: AwilixContainerOptions = {},
): DependencyContainer {
  checkAwilix(container, 'awilixContainer()');
  return containerAdapter(
    'awilixContainer()',
    options,
    () => container.createScope(),
    (scope, owned) => new AwilixDependencyScope(scope, owned),
  );
}

/**
 * Adopts an awilix scope made elsewhere (e.g. an HTTP request's `req.container`): pass it as the `scope` of a
 * dispatch. The mediator does not dispose it; its owner does.
 */
export function awilixScope(scope: AwilixContainer): DependencyScope {
  checkAwilix(scope, 'awilixScope()');
  return new AwilixDependencyScope(scope, false);
}

/**
 * The awilix scope of a dispatch, for typed synchronous access (`awilixScopeOf(ctx).cradle.orders`).
 * @throws ConfigurationError when the dispatch has no awilix scope (no `awilixContainer` on the mediator and
 *   none given in the dispatch options).
 */
export function awilixScopeOf<TCradle extends object = object>(
  context: DispatchContext,
): AwilixContainer<TCradle> {
  const scope = context?.scope;
  if (!(scope instanceof AwilixDependencyScope))
    throw new ConfigurationError(
      'this dispatch has no awilix scope: give createMediator the container awilixContainer(container), or the dispatch a scope from awilixScope()',
    );
  return scope.container as AwilixContainer<TCradle>;
}

/** Options of {@link registerHandlers}. */
export interface RegisterHandlersOptions {
  /** Lifetime of the handler registrations. @default 'SCOPED' (one instance per top-level dispatch) */
  readonly lifetime?: LifetimeType;
}

const LIFETIMES: readonly string[] = ['SCOPED', 'TRANSIENT', 'SINGLETON'];

/**
 * Registers the class handlers among `registrations` (bindings from `handle`/`on`, classes decorated with
 * `@handles`, lists of them) in the awilix container, each under its class name in camelCase
 * (`PlaceOrderHandler` as `placeOrderHandler`), and returns `registrations` for `createMediator`'s `handlers`.
 * Function handlers are skipped. The mediator then resolves each class handler from the dispatch's scope, so
 * the container's lifetime applies (`SCOPED` by default).
 * @throws ConfigurationError when a name is already registered to something else, or for a wrong lifetime.
 */
export function registerHandlers<TRegistrations extends readonly HandlerRegistration[]>(
  container: AwilixContainer,
  registrations: TRegistrations,
  options: RegisterHandlersOptions = {},
): TRegistrations {
  checkAwilix(container, 'registerHandlers()');
  const handlers = handlerClassesOf('registerHandlers(container, registrations)', registrations);
  const lifetime = options?.lifetime ?? 'SCOPED';
  if (!LIFETIMES.includes(lifetime))
    throw new ConfigurationError(`registerHandlers(): lifetime must be one of ${LIFETIMES.join(', ')}`);
  for (const handler of handlers) {
    if (handler.name.length === 0)
      throw new ConfigurationError(
        'registerHandlers(): a handler class has no name; declare it as a named class',
      );
    const name = registrationName(handler);
    const existing = container.getRegistration(name);
    if (existing !== null && registered.get(existing) === handler) continue;
    if (existing !== null)
      throw new ConfigurationError(
        `registerHandlers(): ${name} is already registered in the container; rename the handler class`,
      );
    const registration = asClass(handler as Constructor<object>, { lifetime });
    container.register(name, registration);
    registered.set(registration, handler);
  }
  return registrations;
}

/** The registration name of a handler class: its name in camelCase. */
function registrationName(handler: Function): string {
  const name = handler.name;
  return name[0]!.toLowerCase() + name.slice(1);
}

/** What `@cqrs-ts/saga`'s runner asks of a step resolver (structural, so this package needs no saga import). */
export interface AwilixStepResolver {
  resolve<TInstance>(
    token: abstract new (...args: never[]) => TInstance,
    info: { readonly sagaId: string; readonly stepId: string },
  ): TInstance;
}

/**
 * A step resolver for `createSagaRunner({ resolver })`: builds each step class from a fresh scope of the
 * container, so a saga run gets a new instance per step, whose dependencies come from the container. The runner
 * asks once per step and run, so the instance that acted is the one that compensates.
 */
export function awilixStepResolver(container: AwilixContainer): AwilixStepResolver {
  checkAwilix(container, 'awilixStepResolver()');
  return Object.freeze({
    resolve<TInstance>(token: abstract new (...args: never[]) => TInstance): TInstance {
      if (typeof token !== 'function')
        throw new ConfigurationError('awilixStepResolver(): a step to resolve must be a class');
      return container.createScope().build(token as unknown as Constructor<TInstance>);
    },
  });
}
