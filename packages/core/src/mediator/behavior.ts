import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { AnyMessage, MessageKind } from '../messages/message.ts';
import type { DispatchContext, HandlerDescriptor } from './dispatch-context.ts';

/** Calls the rest of the pipeline (inner behaviors, then the handler). May be called more than once. */
export type Next = (message: AnyMessage, context: DispatchContext) => Promise<unknown>;

/**
 * A pipeline step: `(message, context, next) => result`. Call `next(message, context)` to continue (its promise
 * resolves to the handler's result), return a value to short-circuit, or throw to fail. Calling `next` again
 * (a retry) runs every inner behavior again.
 */
export type Middleware = (message: AnyMessage, context: DispatchContext, next: Next) => Promise<unknown>;

/** Which handlers a behavior applies to. All given criteria must match; omitted ones match everything. */
export interface BehaviorTarget {
  readonly kinds?: readonly MessageKind[];
  readonly types?: readonly string[];
  /** Matches when the handler or its definition has at least one of these tags. */
  readonly tags?: readonly string[];
}

/**
 * The policies a handler or its definition can declare, and the behavior that enforces each:
 * `validation` (a `schema` or a `validate` hook: `validation()`), `authorization` (an `authorize` hook:
 * `authorization()`), `timeout` (a handler's `timeout`, or a dispatch's: `timeout()`), `retry` (a handler's
 * `retries`, `backoff` or `retryOn`: `retry()`), `circuit` (a handler's `circuit`: a circuit-breaker behavior
 * such as `@cqrs-ts/resilience`'s `circuitBreaker()`), `idempotency` (a command's `metadata.idempotencyKey`: a
 * unit of work with an idempotency store, e.g. `createPostgresUnitOfWork()`).
 */
export const POLICIES = [
  'validation',
  'authorization',
  'timeout',
  'retry',
  'circuit',
  'idempotency',
] as const;
export type Policy = (typeof POLICIES)[number];

/**
 * A named behavior. `forHandler` runs once per handler when the mediator is built and returns the middleware
 * for that handler, or `undefined` to leave the handler's pipeline without it (zero cost).
 */
export interface Behavior {
  readonly name: string;
  readonly target?: BehaviorTarget;
  /**
   * The policies this behavior enforces for each handler whose pipeline it joins. `createMediator` refuses a
   * handler that declares a policy no behavior of its pipeline enforces.
   */
  readonly enforces?: readonly Policy[];
  forHandler(handler: HandlerDescriptor): Middleware | undefined;
  /**
   * Checked when the mediator is built, once per handler whose pipeline this behavior joined: `pipeline` lists
   * that pipeline's behaviors, outermost first, and `index` is this one's place in it. Throw a
   * ConfigurationError to refuse a place where the behavior cannot work (e.g. a transaction around a retry).
   */
  readonly checkPipeline?: (pipeline: readonly Behavior[], index: number, handler: HandlerDescriptor) => void;
}

/** What the mediator's `behaviors` option accepts. */
export type BehaviorInput = Behavior | Middleware;

/**
 * Creates a behavior from a per-handler factory, run once per handler when the mediator is built. Return
 * `undefined` to leave a handler's pipeline without it.
 */
export function createBehavior(
  name: string,
  forHandler: (handler: HandlerDescriptor) => Middleware | undefined,
  target?: BehaviorTarget,
): Behavior {
  return Object.freeze(target ? { name, target, forHandler } : { name, forHandler });
}

/** Wraps a middleware as a named behavior, optionally targeted. */
export function defineBehavior(name: string, middleware: Middleware, target?: BehaviorTarget): Behavior {
  if (typeof middleware !== 'function')
    throw new ConfigurationError(`behavior ${name}: middleware must be a function`);
  return createBehavior(name, () => middleware, target);
}

/** Restricts an existing behavior to some handlers. It still enforces what it enforced, for those handlers. */
export function targetBehavior(behavior: Behavior, target: BehaviorTarget): Behavior {
  const forHandler = (h: HandlerDescriptor) => behavior.forHandler(h);
  const copy: { -readonly [K in keyof Behavior]: Behavior[K] } = { name: behavior.name, target, forHandler };
  if (behavior.enforces !== undefined) copy.enforces = behavior.enforces;
  if (behavior.checkPipeline !== undefined) copy.checkPipeline = behavior.checkPipeline;
  return Object.freeze(copy);
}

/** @internal A built-in behavior that enforces one policy. */
export function policyBehavior(
  policy: Policy,
  forHandler: (handler: HandlerDescriptor) => Middleware | undefined,
  target: BehaviorTarget | undefined,
): Behavior {
  const enforces = Object.freeze([policy]);
  return Object.freeze(
    target ? { name: policy, target, enforces, forHandler } : { name: policy, enforces, forHandler },
  );
}

/** @internal */
export function toBehavior(input: BehaviorInput, index: number): Behavior {
  if (typeof input === 'function') {
    return defineBehavior(input.name || `behavior#${index}`, input);
  }
  if (typeof input !== 'object' || input === null || typeof input.forHandler !== 'function') {
    throw new ConfigurationError(
      `behaviors[${index}] is neither a middleware function (message, context, next) => result nor a behavior { name, forHandler }`,
    );
  }
  if (typeof input.name !== 'string' || input.name.length === 0)
    throw new ConfigurationError(`behaviors[${index}] needs a name`);
  if (input.enforces !== undefined) {
    const bad =
      !Array.isArray(input.enforces) ||
      input.enforces.some((p) => !(POLICIES as readonly string[]).includes(p));
    if (bad)
      throw new ConfigurationError(
        `behavior ${input.name}: enforces must list policies among ${POLICIES.join(', ')}`,
      );
  }
  return input;
}

/** @internal */
export function matches(target: BehaviorTarget | undefined, handler: HandlerDescriptor): boolean {
  if (target === undefined) return true;
  if (target.kinds && !target.kinds.includes(handler.kind)) return false;
  if (target.types && !target.types.includes(handler.messageType)) return false;
  if (target.tags && !target.tags.some((t) => handler.tags.includes(t))) return false;
  return true;
}

/**
 * @internal Composes middlewares around a terminal step once. Each layer's `next` is built here, so a dispatch
 * allocates no closure per behavior. The first middleware is the outermost.
 */
export function compose(middlewares: readonly Middleware[], terminal: Next): Next {
  let next = terminal;
  for (let i = middlewares.length - 1; i >= 0; i--) {
    const middleware = middlewares[i]!;
    const inner = next;
    next = (message, context) => middleware(message, context, inner);
  }
  return next;
}
