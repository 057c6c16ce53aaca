import {
  ConfigurationError,
  type DependencyContainer,
  type DependencyScope,
  type DependencyToken,
  type ScopeInit,
} from '@cqrs-ts/core';
import { Scope } from '@nestjs/common';
import { type ContextId, ContextIdFactory, type ModuleRef } from '@nestjs/core';
// Where Nest's router keeps a request's context id (not on Nest's main entry).
import { REQUEST_CONTEXT_ID } from '@nestjs/core/router/request/request-constants.js';

/** The providers that are static (one instance for the application), as Nest's introspection tells. */
function isStatic(moduleRef: ModuleRef, token: DependencyToken): boolean | undefined {
  try {
    return moduleRef.introspect(token as string).scope === Scope.DEFAULT;
  } catch {
    return undefined; // not a provider
  }
}

/**
 * A dispatch's dependency scope over Nest: one `ContextId`, so request-scoped providers (and those that depend on
 * them) get one instance per top-level dispatch, or per HTTP request when adopted with {@link requestScope}.
 */
class NestDependencyScope implements DependencyScope {
  readonly moduleRef: ModuleRef;
  readonly contextId: ContextId;
  readonly #static: Map<DependencyToken, boolean>;

  constructor(moduleRef: ModuleRef, contextId: ContextId, statics: Map<DependencyToken, boolean>) {
    this.moduleRef = moduleRef;
    this.contextId = contextId;
    this.#static = statics;
  }

  /** Static providers come synchronously from the application; scoped ones are built for this context. */
  resolve<TValue>(token: DependencyToken<TValue>): TValue | Promise<TValue> {
    let known = this.#static.get(token);
    if (known === undefined) {
      known = isStatic(this.moduleRef, token) ?? false;
      this.#static.set(token, known);
    }
    if (known) return this.moduleRef.get<TValue>(token as string, { strict: false });
    return this.moduleRef.resolve<TValue>(token as string, this.contextId, { strict: false });
  }
}

/** @internal The mediator's container over Nest: a new `ContextId` per top-level dispatch. */
export function nestContainer(moduleRef: ModuleRef): DependencyContainer {
  const statics = new Map<DependencyToken, boolean>();
  return Object.freeze({
    createScope(init: ScopeInit): DependencyScope {
      const contextId = ContextIdFactory.create();
      // What `@Inject(REQUEST)` gives a request-scoped provider inside a dispatch: the top-level message and
      // its execution context.
      moduleRef.registerRequestByContextId(init, contextId);
      return new NestDependencyScope(moduleRef, contextId, statics);
    },
  });
}

const adopted = new WeakMap<ModuleRef, Map<DependencyToken, boolean>>();

/**
 * The dependency scope of an HTTP request, to pass as a dispatch's `scope`: the handlers then share the
 * request-scoped providers of the request (one `ContextId` per request). A request Nest's router handles
 * already has its context id, so a controller and the handlers it sends to share one instance of each
 * request-scoped provider; any other request object (e.g. from a route outside Nest) gets one here, as Nest's
 * router would attach it, and is what `@Inject(REQUEST)` gives. Nest owns the scope; nothing is disposed.
 *
 * @example
 * \@Post() place(\@Body() body: PlaceOrderBody, \@Req() req: Request) {
 *   return this.mediator.send(PlaceOrder.create(body), { scope: requestScope(this.moduleRef, req) });
 * }
 */
export function requestScope(moduleRef: ModuleRef, request: object): DependencyScope {
  if (typeof moduleRef?.resolve !== 'function' || typeof moduleRef.introspect !== 'function')
    throw new ConfigurationError('requestScope(moduleRef, request) needs the ModuleRef Nest injects');
  if (typeof request !== 'object' || request === null)
    throw new ConfigurationError('requestScope(moduleRef, request): request must be the HTTP request object');
  let statics = adopted.get(moduleRef);
  if (statics === undefined) {
    statics = new Map();
    adopted.set(moduleRef, statics);
  }
  return new NestDependencyScope(moduleRef, contextIdOf(moduleRef, request), statics);
}

/** The request's context id, attached (and the request registered for `REQUEST`) as Nest's router does. */
function contextIdOf(moduleRef: ModuleRef, request: object): ContextId {
  const attached = (request as Record<symbol, ContextId | undefined>)[REQUEST_CONTEXT_ID];
  if (attached !== undefined) return attached;
  const contextId = ContextIdFactory.getByRequest(request);
  Object.defineProperty(request, REQUEST_CONTEXT_ID, {
    value: contextId,
    enumerable: false,
    writable: false,
    configurable: false,
  });
  moduleRef.registerRequestByContextId(request, contextId);
  return contextId;
}

/**
 * The Nest `ModuleRef` and `ContextId` of a dependency scope made by this package, or `undefined` for any other
 * scope (e.g. to resolve with `moduleRef.resolve(Token, contextId, { strict: false })`).
 */
export function nestScopeOf(
  scope: DependencyScope | undefined,
): { readonly moduleRef: ModuleRef; readonly contextId: ContextId } | undefined {
  return scope instanceof NestDependencyScope ? scope : undefined;
}

/** What `@cqrs-ts/saga`'s runner asks of a step resolver (structural: this package needs no saga import). */
export interface NestStepResolver {
  resolve<TInstance>(
    token: abstract new (...args: never[]) => TInstance,
    info: { readonly sagaId: string; readonly stepId: string },
  ): Promise<TInstance>;
}

/** @internal Saga steps from Nest: a transient or request-scoped provider, or a class Nest builds. */
export function nestStepResolver(moduleRef: ModuleRef): NestStepResolver {
  return Object.freeze({
    async resolve<TInstance>(token: abstract new (...args: never[]) => TInstance): Promise<TInstance> {
      if (typeof token !== 'function')
        throw new ConfigurationError('the saga step resolver resolves step classes only');
      const staticProvider = isStatic(moduleRef, token);
      if (staticProvider === true)
        throw new ConfigurationError(
          `saga step ${token.name} is a singleton provider: one instance would serve every saga run; declare it @Injectable({ scope: Scope.TRANSIENT }), or do not register it (Nest then builds a new one per run)`,
        );
      // One context per step and run: a new instance, whose request-scoped dependencies are its own.
      const contextId = ContextIdFactory.create();
      if (staticProvider === false)
        return moduleRef.resolve<TInstance>(token as never, contextId, { strict: false });
      return moduleRef.create(token as never, contextId);
    },
  });
}
