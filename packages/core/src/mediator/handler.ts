import { ConfigurationError } from '../errors/cqrs-error.ts';
import type {
  AnyEventDefinition,
  AnyMessageDefinition,
  AnyRequestDefinition,
  AnyStreamQueryDefinition,
  AuthorizeHook,
  InferMessage,
  ValidateHook,
} from '../messages/define-message.ts';
import type { AnyMessage, InferItem, InferResult, MessageKind } from '../messages/message.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import type { DispatchContext } from './dispatch-context.ts';

/** Options of one handler; they configure the built-in behaviors for that handler. */
export interface HandlerOptions<TMessage extends AnyMessage = AnyMessage> {
  /** Name shown in logs, errors and diagrams. Defaults to the function or class name. */
  readonly name?: string;
  /** Time budget per attempt in ms (timeout behavior). */
  readonly timeout?: number;
  /** Total attempts including the first (retry behavior). `1` disables retries. */
  readonly retries?: number;
  readonly backoff?: BackoffOptions;
  /** Which errors the retry behavior retries for this handler. */
  readonly retryOn?: (error: unknown) => boolean;
  readonly tags?: readonly string[];
  readonly description?: string;
  /** Business-rule check, run after the definition's own (validation behavior). */
  readonly validate?: ValidateHook<TMessage['payload']>;
  /** Authorization hook, run after the definition's own (authorization behavior). */
  readonly authorize?: AuthorizeHook<TMessage>;
  /** Replace a handler registered earlier for the same type instead of failing the build. */
  readonly override?: boolean;
  /** Events this handler may record; used by diagrams and the application map. */
  readonly emits?: readonly { readonly type: string; readonly kind: 'event' }[];
}

/** A function handler. May return the result or a promise of it. */
export type HandlerFunction<TMessage extends AnyMessage, TResult> = (
  message: TMessage,
  context: DispatchContext,
) => TResult | Promise<TResult>;

/** An object handler, as created per dispatch from a class by the resolver. */
export interface HandlerObject<TMessage extends AnyMessage, TResult> {
  handle(message: TMessage, context: DispatchContext): TResult | Promise<TResult>;
}

/** A handler class. Instances are created per dispatch by the mediator's {@link HandlerResolver}. */
export type HandlerClass<TMessage extends AnyMessage = AnyMessage, TResult = unknown> = abstract new (
  ...args: never[]
) => HandlerObject<TMessage, TResult>;

/** Creates class handlers per dispatch; adapters for DI containers implement it. */
export interface HandlerResolver {
  resolve<TInstance>(
    token: abstract new (...args: never[]) => TInstance,
    context: DispatchContext,
  ): TInstance;
}

/** The built-in resolver: `new Token()` per dispatch. */
export const defaultResolver: HandlerResolver = Object.freeze({
  resolve<TInstance>(token: abstract new (...args: never[]) => TInstance): TInstance {
    return new (token as unknown as new () => TInstance)();
  },
});

/** What a registration binds: a message type to an implementation, with options. */
export interface HandlerBinding {
  readonly definition: AnyMessageDefinition;
  readonly implementation: HandlerFunction<never, unknown> | HandlerClass<never, unknown>;
  readonly isClass: boolean;
  readonly options: HandlerOptions<never>;
  /** `request` (command or query), `stream` (streaming query) or `event`. */
  readonly mode: 'request' | 'stream' | 'event';
}

type RequestResult<TDefinition> = InferResult<InferMessage<TDefinition>>;

function isClass(value: unknown): boolean {
  return (
    typeof value === 'function' &&
    typeof (value as { prototype?: { handle?: unknown } }).prototype?.handle === 'function'
  );
}

/**
 * Binds a command or query definition to its handler: a function `(message, context) => result`, or a class
 * with a `handle` method (created per dispatch by the resolver).
 */
export function handle<TDefinition extends AnyRequestDefinition>(
  definition: TDefinition,
  implementation:
    | HandlerFunction<InferMessage<TDefinition>, RequestResult<TDefinition>>
    | HandlerClass<InferMessage<TDefinition>, RequestResult<TDefinition>>,
  options?: HandlerOptions<InferMessage<TDefinition>>,
): HandlerBinding {
  if (definition?.streaming) {
    throw new ConfigurationError(`${definition.type} is a streaming query: bind it with handleStream()`);
  }
  return bind(definition, implementation, options, ['command', 'query']);
}

/** A streaming handler: an async generator (or any function returning an async iterable). */
export type StreamHandlerFunction<TMessage extends AnyMessage, TItem> = (
  message: TMessage,
  context: DispatchContext,
) => AsyncIterable<TItem>;

/**
 * Binds a streaming query to an async generator. Items reach the consumer one at a time (no buffering); events
 * recorded while producing an item are dispatched before the item is handed out.
 */
export function handleStream<TDefinition extends AnyStreamQueryDefinition>(
  definition: TDefinition,
  implementation: StreamHandlerFunction<InferMessage<TDefinition>, InferItem<InferMessage<TDefinition>>>,
  options?: HandlerOptions<InferMessage<TDefinition>>,
): HandlerBinding {
  if (!definition?.streaming) {
    throw new ConfigurationError(
      `${String(definition?.type)} is not a streaming query: define it with defineStreamQuery()`,
    );
  }
  return bind(definition, implementation, options, ['query'], 'stream');
}

/** An event handler: a function, or a class with `handle(event, ctx)` created per dispatch by the resolver. */
export type EventHandlerFunction<TEvent extends AnyMessage> = (
  event: TEvent,
  context: DispatchContext,
) => unknown;

/** Binds an event to one of its handlers. Any number of handlers may be bound to one event. */
export function on<TDefinition extends AnyEventDefinition>(
  definition: TDefinition,
  implementation:
    | EventHandlerFunction<InferMessage<TDefinition>>
    | HandlerClass<InferMessage<TDefinition>, unknown>,
  options?: HandlerOptions<InferMessage<TDefinition>>,
): HandlerBinding {
  return bind(definition, implementation, options, ['event'], 'event');
}

/** @internal */
export function bind(
  definition: AnyMessageDefinition,
  implementation: unknown,
  options: HandlerOptions<never> | undefined,
  kinds: readonly MessageKind[],
  mode: HandlerBinding['mode'] = 'request',
): HandlerBinding {
  if (typeof definition !== 'object' || definition === null || typeof definition.type !== 'string') {
    throw new ConfigurationError(
      'handle() needs a message definition created by defineCommand/defineQuery/defineEvent',
    );
  }
  if (!kinds.includes(definition.kind)) {
    throw new ConfigurationError(`${definition.type} is a ${definition.kind}; it cannot be bound here`);
  }
  if (typeof implementation !== 'function') {
    throw new ConfigurationError(`handler of ${definition.type} must be a function or a class with handle()`);
  }
  const opts = options ?? {};
  if (opts.timeout !== undefined && !(Number.isFinite(opts.timeout) && opts.timeout > 0)) {
    throw new ConfigurationError(`${definition.type}: timeout must be a positive number of ms`);
  }
  if (opts.retries !== undefined && !(Number.isInteger(opts.retries) && opts.retries >= 1)) {
    throw new ConfigurationError(`${definition.type}: retries must be an integer >= 1 (total attempts)`);
  }
  return Object.freeze({
    definition,
    implementation: implementation as HandlerFunction<never, unknown>,
    isClass: isClass(implementation),
    options: Object.freeze({ ...opts }),
    mode,
  });
}

const decorated = new WeakMap<object, HandlerBinding>();

/**
 * TC39 standard class decorator: marks a class as the handler of a command or query. Pass the class itself in
 * the mediator's `handlers`. No `reflect-metadata` needed.
 *
 * @example
 * @handles(PlaceOrder, { timeout: 2_000 })
 * class PlaceOrderHandler { handle(cmd: InferMessage<typeof PlaceOrder>) { ... } }
 */
export function handles<TDefinition extends AnyRequestDefinition>(
  definition: TDefinition,
  options?: HandlerOptions<InferMessage<TDefinition>>,
) {
  return <TClass extends HandlerClass<InferMessage<TDefinition>, RequestResult<TDefinition>>>(
    target: TClass,
    context: ClassDecoratorContext<TClass>,
  ): void => {
    if (context.kind !== 'class') throw new ConfigurationError('@handles decorates classes only');
    decorated.set(target, bind(definition, target, options as HandlerOptions<never>, ['command', 'query']));
  };
}

/** @internal The binding recorded by a decorator on a class, if any. */
export function decoratedBinding(target: unknown): HandlerBinding | undefined {
  return typeof target === 'function' ? decorated.get(target) : undefined;
}

/** @internal Registers a binding for a decorator defined in another module (events). */
export function recordDecoratedBinding(target: object, binding: HandlerBinding): void {
  decorated.set(target, binding);
}
