import {
  type AnyMessageDefinition,
  ConfigurationError,
  createMediator,
  type HandlerBinding,
  type HandlerOptions,
  type HandlerRegistration,
  handle,
  type Mediator,
  type MediatorOptions,
  on,
} from '@cqrs-ts/core';
import type { DynamicModule } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, ModuleRef } from '@nestjs/core';
import { nestContainer, nestStepResolver } from './nestjs-scope.ts';

/** Injection token of the mediator the module builds: `@Inject(CQRS_MEDIATOR) mediator: Mediator`. */
export const CQRS_MEDIATOR = Symbol.for('@cqrs-ts/nestjs:mediator');
/**
 * Injection token of a saga step resolver for `createSagaRunner({ resolver })` (`@cqrs-ts/saga`): each step of
 * each run is a new instance, from a transient or request-scoped provider, or built by Nest when the step class
 * is not a provider. A singleton provider is refused (one instance would serve every run).
 */
export const CQRS_STEP_RESOLVER = Symbol.for('@cqrs-ts/nestjs:step-resolver');

/** Options of {@link CqrsModule.forRoot}: those of `createMediator`, except how handlers are found and built. */
export interface CqrsModuleOptions extends Omit<MediatorOptions, 'container' | 'resolver'> {
  /**
   * Handlers besides the discovered providers: function handlers (`handle(Def, fn)`, `handleStream`, `on`). A
   * class listed here is resolved from Nest too, so it must be a provider.
   */
  readonly handlers?: readonly HandlerRegistration[];
}

interface Marked {
  readonly definition: AnyMessageDefinition;
  readonly options: HandlerOptions<never> | undefined;
}

const marks = new WeakMap<Function, Marked[]>();

/**
 * Marks a Nest provider class as the handler of a command, query or event (a class with
 * `handle(message, context)`). `CqrsModule` finds it among the application's providers and resolves it from
 * Nest per dispatch, so its scope applies: a request-scoped handler (or one depending on a request-scoped
 * provider) is a new instance per top-level dispatch. A class may handle several events. This is a TypeScript
 * experimental (legacy) class decorator, as Nest uses; core's `@handles` is the standard-decorator form.
 *
 * @example
 * \@Injectable()
 * \@MessageHandler(PlaceOrder, { timeout: 2_000 })
 * class PlaceOrderHandler { constructor(private readonly orders: OrderRepository) {} handle(cmd) { ... } }
 */
export function MessageHandler<TDefinition extends AnyMessageDefinition>(
  definition: TDefinition,
  options?: HandlerOptions<never>,
): (target: Function) => void {
  if (typeof definition?.type !== 'string' || typeof definition.kind !== 'string')
    throw new ConfigurationError(
      '@MessageHandler(definition) needs a definition from defineCommand, defineQuery or defineEvent',
    );
  return (target: Function): void => {
    if (typeof target !== 'function' || typeof target.prototype?.handle !== 'function')
      throw new ConfigurationError(
        `@MessageHandler(${definition.type}) decorates classes with a handle(message, context) method`,
      );
    const list = marks.get(target) ?? [];
    list.push({ definition, options });
    marks.set(target, list);
  };
}

/** The bindings of the marked classes among the application's providers (each class once). */
function discover(discovery: DiscoveryService): HandlerBinding[] {
  const seen = new Set<Function>();
  const out: HandlerBinding[] = [];
  for (const wrapper of discovery.getProviders()) {
    const type = wrapper.metatype;
    if (typeof type !== 'function' || wrapper.inject || seen.has(type)) continue;
    const list = marks.get(type);
    if (list === undefined) continue;
    seen.add(type);
    for (const { definition, options } of list) {
      const implementation = type as never;
      out.push(
        definition.kind === 'event'
          ? on(definition as never, implementation, options as never)
          : handle(definition as never, implementation, options as never),
      );
    }
  }
  return out;
}

/**
 * The cqrs-ts mediator as a Nest module. `CqrsModule.forRoot(options)` (global) builds one mediator from the
 * providers marked with {@link MessageHandler} and `options.handlers`, with a dependency scope per top-level
 * dispatch: nested dispatches share it, handlers are resolved from Nest in it, and request-scoped providers get
 * one instance per scope. Inject the mediator with `@Inject(CQRS_MEDIATOR)`; it is disposed when the
 * application closes.
 */
// biome-ignore lint/complexity/noStaticOnlyClass: Nest identifies a module by its class; forRoot is the entry
export class CqrsModule {
  /** The module, with the mediator built once Nest has scanned the application's providers. */
  static forRoot(options: CqrsModuleOptions = {}): DynamicModule {
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw new ConfigurationError('CqrsModule.forRoot(options): options must be an object');
    const given = options as MediatorOptions;
    if (given.container !== undefined || given.resolver !== undefined)
      throw new ConfigurationError(
        'CqrsModule.forRoot(): handlers are resolved from Nest; container and resolver cannot be set',
      );
    return {
      module: CqrsModule,
      global: true,
      imports: [DiscoveryModule],
      providers: [
        {
          provide: CQRS_MEDIATOR,
          inject: [DiscoveryService, ModuleRef],
          useFactory: (discovery: DiscoveryService, moduleRef: ModuleRef): Mediator =>
            createMediator({
              ...options,
              handlers: [...discover(discovery), ...(options.handlers ?? [])],
              container: nestContainer(moduleRef),
            }),
        },
        {
          provide: CQRS_STEP_RESOLVER,
          inject: [ModuleRef],
          useFactory: nestStepResolver,
        },
        {
          // Disposes the mediator (waits for background event handlers) when the application closes.
          provide: Symbol.for('@cqrs-ts/nestjs:lifecycle'),
          inject: [CQRS_MEDIATOR],
          useFactory: (mediator: Mediator) => ({
            onApplicationShutdown: () => mediator[Symbol.asyncDispose](),
          }),
        },
      ],
      exports: [CQRS_MEDIATOR, CQRS_STEP_RESOLVER],
    };
  }
}
