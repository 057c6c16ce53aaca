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

/**
 * Options of one handler; they configure the built-in behaviors for that handler. `timeout`, `retries`
 * (`backoff`, `retryOn`), `validate`, `authorize` and `circuit` are policies: `createMediator` refuses a
 * handler whose pipeline has no behavior enforcing one it declares (see {@link MediatorOptions.unenforced}).
 */
export interface HandlerOptions<TMessage extends AnyMessage = AnyMessage> {
  /** Name shown in logs, errors and diagrams. Defaults to the function or class name. */
  readonly name?: string;
  /** Time budget per attempt in ms, 1 to 2147483647 (timeout behavior). */
  readonly timeout?: number;
  /**
   * Retries after the first attempt (retry behavior): `retries: 3` calls the handler at most 4 times. `0` means
   * no retry. At most 1000.
   */
  readonly retries?: number;
  /** Delays between retries (retry behavior). */
  readonly backoff?: BackoffOptions;
  /** Which errors the retry behavior retries for this handler. @default isRetryable */
  readonly retryOn?: (error: unknown) => boolean;
  /**
   * Guards the handler with a circuit breaker (e.g. the `circuitBreaker()` behavior of `@cqrs-ts/resilience`):
   * a name shares one circuit between every handler that calls the same dependency (`'payments-api'`), `true`
   * gives the handler a circuit of its own.
   */
  readonly circuit?: string | true;
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
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new ConfigurationError(`${definition.type}: handler options must be an object`);
  }
  checkHandlerOptions(definition.type, opts);
  return Object.freeze({
    definition,
    implementation: implementation as HandlerFunction<never, unknown>,
    isClass: isClass(implementation),
    options: Object.freeze({ ...opts }),
    mode,
  });
}

/** Largest `timeout` in ms: a longer one would overflow the timer and fire at once. */
export const MAX_TIMEOUT_MS = 2_147_483_647;
/** Largest `retries`. */
export const MAX_RETRIES = 1000;
const CIRCUIT_NAME_RE = /^[\x21-\x7e]{1,200}$/;

function isFunction(value: unknown): boolean {
  return typeof value === 'function';
}

/** @internal Checks a per-dispatch or per-handler timeout; returns the problem, or `undefined`. */
export function timeoutProblem(value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MS)
    return `timeout must be a number of ms from 1 to ${MAX_TIMEOUT_MS}, got ${describeValue(value)}`;
  return undefined;
}

/** @internal A short, safe description of a wrong value for an error message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null)
    return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** @internal Checks backoff options; `where` names the owner in the message. */
export function checkBackoff(where: string, backoff: unknown): void {
  const fail = (problem: string) => {
    throw new ConfigurationError(`${where}: backoff.${problem}`);
  };
  if (typeof backoff !== 'object' || backoff === null || Array.isArray(backoff))
    throw new ConfigurationError(`${where}: backoff must be an object { initialMs, maxMs, factor, jitter }`);
  const b = backoff as BackoffOptions;
  const ms = (name: 'initialMs' | 'maxMs', v: unknown) => {
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_TIMEOUT_MS))
      fail(`${name} must be a number of ms from 0 to ${MAX_TIMEOUT_MS}, got ${describeValue(v)}`);
  };
  ms('initialMs', b.initialMs);
  ms('maxMs', b.maxMs);
  if (b.factor !== undefined && !(typeof b.factor === 'number' && Number.isFinite(b.factor) && b.factor >= 1))
    fail(`factor must be a number >= 1, got ${describeValue(b.factor)}`);
  if (b.jitter !== undefined && b.jitter !== 'full' && b.jitter !== 'none')
    fail(`jitter must be 'full' or 'none', got ${describeValue(b.jitter)}`);
}

function checkHandlerOptions(type: string, opts: HandlerOptions<never>): void {
  const fail = (problem: string) => {
    throw new ConfigurationError(`${type}: ${problem}`);
  };
  if (opts.timeout !== undefined) {
    const problem = timeoutProblem(opts.timeout);
    if (problem) fail(problem);
  }
  const r = opts.retries;
  if (r !== undefined && !(Number.isInteger(r) && r >= 0 && r <= MAX_RETRIES)) {
    fail(
      `retries must be an integer from 0 to ${MAX_RETRIES} (retries after the first attempt: 2 means 3 calls at most), got ${describeValue(r)}`,
    );
  }
  if (opts.backoff !== undefined) checkBackoff(type, opts.backoff);
  if (opts.retryOn !== undefined && !isFunction(opts.retryOn))
    fail('retryOn must be a function (error) => boolean');
  if (opts.validate !== undefined && !isFunction(opts.validate))
    fail('validate must be a function (payload, context) => result');
  if (opts.authorize !== undefined && !isFunction(opts.authorize))
    fail('authorize must be a function (message, context) => decision');
  const c = opts.circuit;
  if (c !== undefined && c !== true && !(typeof c === 'string' && CIRCUIT_NAME_RE.test(c))) {
    fail(
      `circuit must be true (a circuit of its own) or the name of the dependency (1 to 200 printable characters), got ${describeValue(c)}`,
    );
  }
  if (
    opts.name !== undefined &&
    !(typeof opts.name === 'string' && opts.name.length > 0 && opts.name.length <= 200)
  )
    fail(`name must be a string of 1 to 200 characters, got ${describeValue(opts.name)}`);
  if (opts.tags !== undefined && !(Array.isArray(opts.tags) && opts.tags.every((t) => typeof t === 'string')))
    fail('tags must be an array of strings');
  if (
    opts.emits !== undefined &&
    !(Array.isArray(opts.emits) && opts.emits.every((e) => e?.kind === 'event' && typeof e.type === 'string'))
  )
    fail('emits must be an array of event definitions');
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
