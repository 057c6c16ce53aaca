import type { AmbientContext, AmbientSource } from '../context/ambient-context.ts';
import { currentSource, runInSource } from '../context/ambient-context.ts';
import type { DependencyScope } from '../context/dependency-scope.ts';
import { EMPTY_EXECUTION_CONTEXT } from '../context/execution-context.ts';
import {
  CancelledError,
  ConfigurationError,
  CqrsError,
  DuplicateHandlerError,
  HandlerNotFoundError,
  MissingHandlerError,
} from '../errors/cqrs-error.ts';
import {
  EventDepthExceededError,
  EventDispatchError,
  type EventHandlerFailure,
} from '../events/event-errors.ts';
import type { AnyMessageDefinition } from '../messages/define-message.ts';
import type {
  AnyCommand,
  AnyEvent,
  AnyMessage,
  AnyQuery,
  AnyStreamQuery,
  InferItem,
  InferResult,
  MessageKind,
} from '../messages/message.ts';
import { type DispatchTraceContext, dispatchChannel } from '../shared/tracing.ts';
import type { Behavior, BehaviorInput, Middleware, Next, Policy } from './behavior.ts';
import { compose, matches, POLICIES, toBehavior } from './behavior.ts';
import type { ChainInfo } from './chain.ts';
import { chainOf } from './chain.ts';
import type { DependencyContainer } from './dependency-container.ts';
import { checkContainer, disposeScope, scopeProblem } from './dependency-container.ts';
import type { DispatchContext, DispatchOptions, HandlerDescriptor } from './dispatch-context.ts';
import { ambientOf, Dispatch } from './dispatch-context.ts';
import type { HandlerBinding, HandlerFunction, HandlerObject, HandlerResolver } from './handler.ts';
import { decoratedBinding, defaultResolver, describeValue, timeoutProblem } from './handler.ts';

/** A registration: a binding (`handle`, `on`, `handleStream`, `handleChain`), a decorated class, or a nested list. */
export type HandlerRegistration =
  | HandlerBinding
  | (abstract new (
      ...args: never[]
    ) => unknown)
  | readonly HandlerRegistration[];

/** How the handlers of one event run. */
export const PUBLISH_STRATEGIES = ['parallel', 'sequential', 'fire-and-forget'] as const;
export type PublishStrategy = (typeof PUBLISH_STRATEGIES)[number];

/** Event dispatch defaults of a mediator. */
export interface EventOptions {
  /** Default `parallel`. */
  readonly strategy?: PublishStrategy;
  /** Most handlers of one event running at once in `parallel` mode. Default 16. */
  readonly concurrency?: number;
  /** Stop starting handlers (and abort running ones) after the first failure. Default `false` (all settled). */
  readonly failFast?: boolean;
  /** Deepest nesting of events produced by event handlers. Default 8. */
  readonly maxDepth?: number;
  /**
   * What a failing event handler does to the command, query or stream that produced the event: `report` (default)
   * answers the caller with the result and reports the failure to `onError`; `fail` rejects the dispatch with an
   * {@link EventDispatchError} (the handler's own work is done either way).
   */
  readonly failurePolicy?: 'report' | 'fail';
}

/** Where a failure reported to `onError` happened. */
export interface ErrorInfo {
  readonly event: AnyEvent;
  readonly handler: string;
  /** `awaited` when the caller also receives it in an {@link EventDispatchError}, `background` otherwise. */
  readonly phase: 'awaited' | 'background';
}

/** Options of {@link createMediator}. */
export interface MediatorOptions {
  /** Handler bindings. Exactly one per command or query type; any number per event type. */
  readonly handlers?: readonly HandlerRegistration[];
  /** Definitions that must have a handler; a missing one fails the build. */
  readonly messages?: readonly AnyMessageDefinition[];
  /** Pipeline behaviors, outermost first. They apply to requests, streams and event handlers unless targeted. */
  readonly behaviors?: readonly BehaviorInput[];
  /**
   * Creates class handlers per dispatch when the dispatch has no dependency scope. Default: `new Class()`. Not
   * together with `container`.
   */
  readonly resolver?: HandlerResolver;
  /**
   * A DI container (`awilixContainer(...)` of `@cqrs-ts/awilix`, the `@cqrs-ts/nestjs` module): the mediator
   * opens one scope per top-level dispatch, which nested dispatches share and handlers and behaviors read as
   * `context.scope`; class handlers are resolved from it; it is disposed when the top-level dispatch settles.
   * Without it, dispatch allocates nothing for DI.
   */
  readonly container?: DependencyContainer;
  readonly events?: EventOptions;
  /** Receives every event handler failure. Default: a process warning. Never throws into dispatch. */
  readonly onError?: (error: unknown, info: ErrorInfo) => void;
  /**
   * Policies that may stay unenforced. A handler or definition that declares a policy (a `schema` or `validate`
   * hook, an `authorize` hook, a `timeout`, `retries`, a `circuit`) needs a behavior in its pipeline that
   * enforces it (`validation()`, `authorization()`, `timeout()`, `retry()`, a circuit breaker): otherwise
   * `createMediator` fails with an {@link UnenforcedPolicyError} naming each handler and what is missing. Listing
   * a policy here is the explicit opt-out (e.g. `['authorization']` in a test that checks business logic only);
   * its declarations are then ignored where no behavior enforces them. @default []
   */
  readonly unenforced?: readonly Policy[];
}

/** Per-publish options. */
export interface PublishOptions extends DispatchOptions {
  readonly strategy?: PublishStrategy;
  readonly concurrency?: number;
  readonly failFast?: boolean;
}

/** A handler as listed by {@link Mediator.describe}. */
export interface HandlerInfo {
  readonly messageType: string;
  readonly kind: MessageKind;
  readonly mode: 'request' | 'stream' | 'event';
  readonly handler: string;
  readonly behaviors: readonly string[];
  /** The policies a behavior of the pipeline enforces (see {@link POLICIES}). */
  readonly policies: readonly Policy[];
  readonly tags: readonly string[];
  readonly description: string | undefined;
  /** Event types the handler declared in `emits`. */
  readonly emits: readonly string[];
  readonly chain: ChainInfo | undefined;
}

/** Dispatches commands, queries, streams and events through the composed pipeline. Instances share no state. */
export interface Mediator extends AsyncDisposable {
  /** Sends a command to its handler; resolves to the handler's result. */
  send<TCommand extends AnyCommand>(
    command: TCommand,
    options?: DispatchOptions,
  ): Promise<InferResult<TCommand>>;
  /** Sends a query to its handler; resolves to the handler's result. */
  query<TQuery extends AnyQuery>(query: TQuery, options?: DispatchOptions): Promise<InferResult<TQuery>>;
  /**
   * Publishes an event to all its handlers. Awaited strategies resolve when every handler settled and reject with
   * an {@link EventDispatchError} naming each failed handler; `fire-and-forget` resolves at once.
   */
  publish(event: AnyEvent, options?: PublishOptions): Promise<void>;
  /**
   * Runs a streaming query. Items are produced on demand (a slow consumer slows the producer); breaking out of
   * the loop, `return()`, or aborting `options.signal` cancels the handler and runs its cleanup.
   */
  stream<TQuery extends AnyStreamQuery>(
    query: TQuery,
    options?: DispatchOptions,
  ): AsyncIterableIterator<InferItem<TQuery>>;
  /** Resolves once all background work (fire-and-forget publishes and what they triggered) has finished. */
  whenIdle(): Promise<void>;
  /** True when a handler is registered for the type. */
  has(messageType: string): boolean;
  /** Lists handlers with the behaviors in their pipeline, outermost first. */
  describe(): readonly HandlerInfo[];
}

/** @internal A compiled handler: its descriptor and its composed pipeline. */
export interface CompiledHandler {
  readonly descriptor: HandlerDescriptor;
  readonly pipeline: Next;
  readonly info: HandlerInfo;
  /** The policies some behavior of the pipeline enforces. */
  readonly enforced: ReadonlySet<Policy>;
}

/** A handler declares a policy its pipeline does not enforce (raised by `createMediator`). */
export class UnenforcedPolicyError extends ConfigurationError {
  /** One entry per handler and missing policy. */
  readonly unenforced: readonly {
    readonly messageType: string;
    readonly handler: string;
    readonly policy: Policy;
  }[];
  constructor(unenforced: UnenforcedPolicyError['unenforced']) {
    const lines = unenforced.map(
      (u) =>
        `${u.messageType} (${u.handler}) declares ${u.policy} but its pipeline has no ${POLICY_BEHAVIOR[u.policy]}`,
    );
    super(
      `policies declared but not enforced: ${lines.join('; ')}. Add the behavior to createMediator's behaviors, or list the policy in its unenforced option to ignore it on purpose`,
    );
    this.name = 'UnenforcedPolicyError';
    this.unenforced = Object.freeze(unenforced.map((u) => Object.freeze({ ...u })));
  }
}

const POLICY_BEHAVIOR: Record<Policy, string> = {
  validation: 'validation() behavior',
  authorization: 'authorization() behavior',
  timeout: 'timeout() behavior',
  idempotency: 'unit of work with an idempotency store',
  retry: 'retry() behavior',
  circuit: 'circuit breaker behavior (circuitBreaker() of @cqrs-ts/resilience)',
};

/** The policies a handler or its definition declares. */
function declaredPolicies(descriptor: HandlerDescriptor): Policy[] {
  const d = descriptor.definition;
  const o = descriptor.options;
  const out: Policy[] = [];
  if (d.schema !== undefined || d.validate !== undefined || o.validate !== undefined) out.push('validation');
  if (d.authorize !== undefined || o.authorize !== undefined) out.push('authorization');
  if (o.timeout !== undefined) out.push('timeout');
  if (o.retries !== undefined && o.retries > 0) out.push('retry');
  if (o.circuit !== undefined) out.push('circuit');
  return out;
}

/** @internal Flattens registrations, resolving decorated classes. */
export function flattenRegistrations(input: readonly HandlerRegistration[] | undefined): HandlerBinding[] {
  const out: HandlerBinding[] = [];
  const walk = (items: readonly HandlerRegistration[]) => {
    for (const item of items) {
      if (Array.isArray(item)) walk(item);
      else if (typeof item === 'function') {
        const binding = decoratedBinding(item);
        if (!binding) {
          throw new ConfigurationError(
            `${(item as { name?: string }).name || 'a class'} is not decorated with @handles(); use handle(Definition, Class)`,
          );
        }
        out.push(binding);
      } else if (typeof item === 'object' && item !== null && 'definition' in item)
        out.push(item as HandlerBinding);
      else
        throw new ConfigurationError(
          'handlers must be bindings from handle()/on()/handleStream(), decorated classes, or lists of them',
        );
    }
  };
  walk(input ?? []);
  return out;
}

const NOT_ITERABLE = 'a stream handler must return an async iterable (use an async generator)';

/** @internal Builds the terminal step that calls the handler. */
export function terminalFor(binding: HandlerBinding, resolver: HandlerResolver): Next {
  if (binding.mode === 'stream') {
    const fn = binding.implementation as unknown as (
      m: AnyMessage,
      c: DispatchContext,
    ) => AsyncIterable<unknown>;
    return (message, context) => {
      try {
        const iterable = fn(message, context);
        if (typeof iterable?.[Symbol.asyncIterator] !== 'function') {
          return Promise.reject(new CqrsError('CQRS_CONFIGURATION', `${message.type}: ${NOT_ITERABLE}`));
        }
        return Promise.resolve(iterable);
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  if (binding.isClass) {
    const token = binding.implementation as abstract new (
      ...args: never[]
    ) => HandlerObject<AnyMessage, unknown>;
    return (message, context) => {
      try {
        const scope = context.scope;
        if (scope === undefined)
          return Promise.resolve(resolver.resolve(token, context).handle(message, context));
        const instance = scope.resolve(token);
        if (isThenable(instance)) return Promise.resolve(instance).then((h) => h.handle(message, context));
        return Promise.resolve(instance.handle(message, context));
      } catch (error) {
        return Promise.reject(error);
      }
    };
  }
  const fn = binding.implementation as unknown as HandlerFunction<AnyMessage, unknown>;
  return (message, context) => {
    try {
      return Promise.resolve(fn(message, context));
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

function isThenable<TValue>(value: TValue | Promise<TValue>): value is Promise<TValue> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Resolves to `pending`'s outcome once the scope the mediator opened for it is disposed. */
function settleScope<TValue>(pending: Promise<TValue>, scope: DependencyScope): Promise<TValue> {
  return Promise.resolve(pending).then(
    (value) => {
      const disposing = disposeScope(scope);
      return disposing === undefined ? value : disposing.then(() => value);
    },
    (error: unknown) => {
      const disposing = disposeScope(scope);
      if (disposing === undefined) throw error;
      return disposing.then(() => {
        throw error;
      });
    },
  );
}

/** @internal */
export function describeBinding(binding: HandlerBinding): HandlerDescriptor {
  const impl = binding.implementation as { name?: string };
  const tags = [...new Set([...binding.definition.tags, ...(binding.options.tags ?? [])])];
  return Object.freeze({
    messageType: binding.definition.type,
    kind: binding.definition.kind,
    definition: binding.definition,
    name: binding.options.name ?? (impl.name || `${binding.definition.type} handler`),
    options: binding.options,
    tags: Object.freeze(tags),
    streaming: binding.mode === 'stream',
  });
}

/** @internal Picks and compiles the behaviors for one handler. */
export function compileHandler(
  binding: HandlerBinding,
  behaviors: readonly Behavior[],
  resolver: HandlerResolver,
): CompiledHandler {
  const descriptor = describeBinding(binding);
  const middlewares: Middleware[] = [];
  const names: string[] = [];
  const enforced = new Set<Policy>();
  const joined: Behavior[] = [];
  for (const behavior of behaviors) {
    if (!matches(behavior.target, descriptor)) continue;
    const middleware = behavior.forHandler(descriptor);
    if (middleware === undefined) continue;
    if (typeof middleware !== 'function') {
      throw new ConfigurationError(
        `behavior ${behavior.name} returned a non-function for ${descriptor.messageType}`,
      );
    }
    middlewares.push(middleware);
    names.push(behavior.name);
    for (const policy of behavior.enforces ?? []) enforced.add(policy);
    joined.push(behavior);
  }
  for (let i = 0; i < joined.length; i++) joined[i]!.checkPipeline?.(joined, i, descriptor);
  const info: HandlerInfo = Object.freeze({
    messageType: descriptor.messageType,
    kind: descriptor.kind,
    mode: binding.mode,
    handler: descriptor.name,
    behaviors: Object.freeze(names),
    policies: Object.freeze([...enforced]),
    tags: descriptor.tags,
    description: descriptor.options.description ?? descriptor.definition.description,
    emits: Object.freeze((binding.options.emits ?? []).map((e) => e.type)),
    chain: chainOf(binding),
  });
  return { descriptor, pipeline: compose(middlewares, terminalFor(binding, resolver)), info, enforced };
}

const METHOD_FOR: Record<MessageKind, string> = { command: 'send()', query: 'query()', event: 'publish()' };

function wrongKind(message: AnyMessage | undefined, kind: MessageKind): CqrsError {
  const actual = (message as { kind?: unknown } | undefined)?.kind;
  if (
    typeof message !== 'object' ||
    message === null ||
    typeof message.type !== 'string' ||
    !(typeof actual === 'string' && actual in METHOD_FOR)
  ) {
    return new CqrsError(
      'CQRS_INVALID_MESSAGE',
      `${METHOD_FOR[kind]} needs a ${kind} created by its definition (Definition.create(payload)), got ${describeValue(message)}`,
    );
  }
  return new CqrsError(
    'CQRS_WRONG_MESSAGE_KIND',
    `${message.type} is a ${message.kind}, not a ${kind}: use ${METHOD_FOR[message.kind]}`,
  );
}

/** A message of the right kind but without metadata (made by hand, or a JSON object never rebuilt). */
function noMetadata(message: AnyMessage): CqrsError {
  return new CqrsError(
    'CQRS_INVALID_MESSAGE',
    `${message.type.slice(0, 200)} has no metadata: create it with its definition's create(payload), or rebuild it from JSON with fromJSON(json)`,
  );
}

function hasMetadata(message: AnyMessage): boolean {
  const m = message.metadata as { requestId?: unknown } | null | undefined;
  return typeof m === 'object' && m !== null && typeof m.requestId === 'string';
}

function isAbortSignal(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true;
  const s = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown } | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.aborted === 'boolean' &&
    typeof s.addEventListener === 'function' &&
    typeof s.removeEventListener === 'function'
  );
}

/** Checks per-dispatch options; returns the error to reject with, or `undefined`. */
function optionsProblem(options: unknown, messageType: string): ConfigurationError | undefined {
  const fail = (problem: string) => new ConfigurationError(`${messageType.slice(0, 200)}: ${problem}`);
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    return fail(
      `dispatch options must be an object { context?, signal?, timeout? }, got ${describeValue(options)}`,
    );
  const o = options as DispatchOptions;
  if (o.timeout !== undefined) {
    const problem = timeoutProblem(o.timeout);
    if (problem) return fail(problem);
  }
  if (o.signal !== undefined && !isAbortSignal(o.signal))
    return fail(
      `signal must be an AbortSignal (e.g. AbortSignal.timeout(ms) or controller.signal), got ${describeValue(o.signal)}`,
    );
  const c = o.context;
  if (c !== undefined && (typeof c !== 'object' || c === null || Array.isArray(c)))
    return fail(
      `context must be an execution context object ({ user, tenantId, ... }), got ${describeValue(c)}`,
    );
  const i = o.idempotency;
  if (i !== undefined) {
    if (typeof i !== 'object' || i === null || Array.isArray(i))
      return fail(`idempotency must be an object { inFlight?, onReplay? }, got ${describeValue(i)}`);
    if (i.inFlight !== undefined && i.inFlight !== 'wait' && i.inFlight !== 'reject')
      return fail(`idempotency.inFlight must be 'wait' or 'reject', got ${describeValue(i.inFlight)}`);
    if (i.onReplay !== undefined && typeof i.onReplay !== 'function')
      return fail(`idempotency.onReplay must be a function, got ${describeValue(i.onReplay)}`);
  }
  if (o.scope !== undefined) {
    const problem = scopeProblem(o.scope);
    if (problem) return fail(`${problem}, got ${describeValue(o.scope)}`);
  }
  return undefined;
}

interface ResolvedPublish {
  readonly strategy: PublishStrategy;
  readonly concurrency: number;
  readonly failFast: boolean;
  readonly dispatch: DispatchOptions | undefined;
  /** Shared by the handlers of one fail-fast publish. */
  readonly abort: AbortController | undefined;
  readonly phase: ErrorInfo['phase'];
}

type Failures = EventHandlerFailure[] | undefined;

const RESOLVED: Promise<void> = Promise.resolve();
const MAX_CONCURRENCY = 10_000;

/** Marks a failed handler without a rejected promise (so none can go unhandled while others are awaited). */
class HandlerFailed {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

function toFailed(error: unknown): HandlerFailed {
  return new HandlerFailed(error);
}

/**
 * Runs the pipeline of the handler awaited first: its promise as it is (it rejects when the handler fails), else
 * as {@link settle} does. Resolves to a {@link HandlerFailed} when the pipeline throws at once.
 */
function start(entry: CompiledHandler, context: Dispatch): Promise<unknown> {
  try {
    const pending = entry.pipeline(context.message, context);
    return pending instanceof Promise ? pending : (pending as Promise<unknown>).then(undefined, toFailed);
  } catch (error) {
    return Promise.resolve(new HandlerFailed(error));
  }
}

/** Runs one handler's pipeline; resolves to its result, or to a {@link HandlerFailed}. Never rejects. */
function settle(entry: CompiledHandler, context: Dispatch): Promise<unknown> {
  try {
    return entry.pipeline(context.message, context).then(undefined, toFailed);
  } catch (error) {
    return Promise.resolve(new HandlerFailed(error));
  }
}

const NO_FAILURES: Promise<Failures> = Promise.resolve(undefined);

/**
 * @internal The ambient source shared by the handlers of one event, and what its dispatch needs. Its ambient
 * context is that of a dispatch of the event (see {@link ambientOf}), built when read.
 */
class EventScope implements AmbientSource {
  readonly event: AnyEvent;
  readonly settings: ResolvedPublish;
  readonly depth: number;
  readonly entries: readonly CompiledHandler[];
  readonly throwOnFailure: boolean;
  readonly parent: AmbientSource | undefined;
  resource: AmbientSource['resource'] = undefined;
  /** The dependency scope the handlers of the event share. */
  scope: DependencyScope | undefined;
  #ambient: AmbientContext | undefined = undefined;

  constructor(
    event: AnyEvent,
    settings: ResolvedPublish,
    depth: number,
    entries: readonly CompiledHandler[],
    throwOnFailure: boolean,
    parent: AmbientSource | undefined,
    scope: DependencyScope | undefined,
  ) {
    this.event = event;
    this.settings = settings;
    this.depth = depth;
    this.entries = entries;
    this.throwOnFailure = throwOnFailure;
    this.parent = parent;
    this.scope = scope;
  }

  get ambient(): AmbientContext {
    if (this.#ambient === undefined) {
      const parent = this.parent?.ambient;
      const execution = this.settings.dispatch?.context ?? parent?.execution ?? EMPTY_EXECUTION_CONTEXT;
      this.#ambient = ambientOf(this.event, execution, parent);
    }
    return this.#ambient;
  }
}

function defaultOnError(error: unknown, info: ErrorInfo): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`event handler ${info.handler} failed on ${info.event.type}: ${message}`, {
    type: 'CqrsEventHandlerWarning',
    code: 'CQRS_EVENT_DISPATCH',
  });
}

class MediatorImpl implements Mediator {
  readonly #requests: Map<string, CompiledHandler>;
  readonly #streams: Map<string, CompiledHandler>;
  readonly #events: Map<string, CompiledHandler[]>;
  readonly #hasEventHandlers: boolean;
  readonly #defaults: ResolvedPublish;
  readonly #maxDepth: number;
  readonly #failurePolicy: 'report' | 'fail';
  readonly #onError: (error: unknown, info: ErrorInfo) => void;
  readonly #unenforced: ReadonlySet<Policy>;
  readonly #container: DependencyContainer | undefined;
  readonly #background = new Set<Promise<unknown>>();
  #disposed = false;

  constructor(
    requests: Map<string, CompiledHandler>,
    streams: Map<string, CompiledHandler>,
    events: Map<string, CompiledHandler[]>,
    options: MediatorOptions,
  ) {
    this.#requests = requests;
    this.#streams = streams;
    this.#events = events;
    this.#hasEventHandlers = events.size > 0;
    const e = options.events ?? {};
    this.#defaults = {
      strategy: e.strategy ?? 'parallel',
      concurrency: e.concurrency ?? 16,
      failFast: e.failFast ?? false,
      dispatch: undefined,
      abort: undefined,
      phase: 'awaited',
    };
    this.#maxDepth = e.maxDepth ?? 8;
    this.#failurePolicy = e.failurePolicy ?? 'report';
    this.#onError = options.onError ?? defaultOnError;
    this.#unenforced = new Set(options.unenforced ?? []);
    this.#container = options.container;
  }

  send<TCommand extends AnyCommand>(
    command: TCommand,
    options?: DispatchOptions,
  ): Promise<InferResult<TCommand>> {
    return this.#dispatch(command, 'command', options) as Promise<InferResult<TCommand>>;
  }

  query<TQuery extends AnyQuery>(query: TQuery, options?: DispatchOptions): Promise<InferResult<TQuery>> {
    return this.#dispatch(query, 'query', options) as Promise<InferResult<TQuery>>;
  }

  #dispatch(message: AnyMessage, kind: MessageKind, options: DispatchOptions | undefined): Promise<unknown> {
    if (message?.kind !== kind || typeof message.type !== 'string')
      return Promise.reject(wrongKind(message, kind));
    if (!hasMetadata(message)) return Promise.reject(noMetadata(message));
    const entry = this.#requests.get(message.type);
    if (entry === undefined || entry.descriptor.kind !== kind) {
      return Promise.reject(
        this.#streams.has(message.type)
          ? new CqrsError('CQRS_WRONG_MESSAGE_KIND', `${message.type} is a streaming query: use stream()`)
          : new HandlerNotFoundError(message.type),
      );
    }
    if (this.#disposed)
      return Promise.reject(new CqrsError('CQRS_CONFIGURATION', 'the mediator was disposed'));
    if (
      message.metadata.idempotencyKey !== undefined &&
      !entry.enforced.has('idempotency') &&
      !this.#unenforced.has('idempotency')
    ) {
      return Promise.reject(
        new ConfigurationError(
          `${message.type}: the message carries an idempotency key, but the pipeline of ${entry.descriptor.name} has no unit of work with an idempotency store to keep it`,
        ),
      );
    }
    if (options !== undefined) {
      const problem = this.#checkOptions(options, entry);
      if (problem !== undefined) return Promise.reject(problem);
      if (options.signal?.aborted)
        return Promise.reject(new CancelledError(message.type, { cause: options.signal.reason }));
    }
    if (!dispatchChannel.hasSubscribers) return this.#run(entry, message, options);
    const trace: DispatchTraceContext = {
      messageType: message.type,
      kind: kind as DispatchTraceContext['kind'],
      handler: entry.descriptor.name,
      requestId: message.metadata.requestId,
      correlationId: message.metadata.correlationId,
      traceparent: message.metadata.traceparent,
      tracestate: message.metadata.tracestate,
      carrier: {},
    };
    return dispatchChannel.tracePromise(() => this.#run(entry, message, options, trace.carrier), trace);
  }

  /** A checked dispatch: runs the pipeline (in a scope of its own when the mediator has a container). */
  #run(
    entry: CompiledHandler,
    message: AnyMessage,
    options: DispatchOptions | undefined,
    carrier?: Readonly<Record<string, string>>,
  ): Promise<unknown> {
    const context = new Dispatch(entry.descriptor, message, options);
    if (carrier !== undefined) context.traceWith(carrier);
    if (options?.scope !== undefined) context.scope = options.scope;
    else if (context.scope === undefined && this.#container !== undefined)
      return this.#dispatchScoped(entry, message, context, options);
    let pending: Promise<unknown>;
    try {
      pending = runInSource(context, entry.pipeline, message, context);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.#hasEventHandlers) return pending;
    return pending.then((result) => this.#afterSuccess(result, context, options));
  }

  /** A top-level dispatch with a container: it runs in a scope of its own, disposed once it settled. */
  #dispatchScoped(
    entry: CompiledHandler,
    message: AnyMessage,
    context: Dispatch,
    options: DispatchOptions | undefined,
  ): Promise<unknown> {
    let scope: DependencyScope;
    try {
      scope = this.#openScope(message, context.execution);
    } catch (error) {
      return Promise.reject(error);
    }
    context.scope = scope;
    let pending: Promise<unknown>;
    try {
      pending = runInSource(context, entry.pipeline, message, context);
    } catch (error) {
      pending = Promise.reject(error);
    }
    if (this.#hasEventHandlers)
      pending = pending.then((result) => this.#afterSuccess(result, context, options));
    return settleScope(pending, scope);
  }

  /** Opens the scope of a top-level dispatch through the container. */
  #openScope(message: AnyMessage, execution: DispatchContext['execution']): DependencyScope {
    const scope = this.#container!.createScope({ message, execution });
    const problem = scopeProblem(scope);
    if (problem !== undefined)
      throw new ConfigurationError(
        `${message.type}: the container's createScope() returned no scope: ${problem}`,
      );
    return scope;
  }

  /** Checks per-dispatch options, and refuses a timeout no behavior of the handler's pipeline enforces. */
  #checkOptions(options: DispatchOptions, entry: CompiledHandler): CqrsError | undefined {
    const problem = optionsProblem(options, entry.descriptor.messageType);
    if (problem !== undefined) return problem;
    if (options.timeout !== undefined && !entry.enforced.has('timeout') && !this.#unenforced.has('timeout')) {
      return new ConfigurationError(
        `${entry.descriptor.messageType}: the dispatch sets a timeout, but the pipeline of ${entry.descriptor.name} has no timeout() behavior to enforce it; add timeout() to the mediator's behaviors`,
      );
    }
    return undefined;
  }

  #afterSuccess(result: unknown, context: Dispatch, options: DispatchOptions | undefined): unknown {
    const events = context.takeEvents();
    if (events === undefined) return result;
    const settings = this.#settings(options, undefined);
    if (settings.strategy === 'fire-and-forget') {
      // Background work outlives the dispatch, and so its scope: it gets one of its own.
      this.#track(this.#publishAll(events, settings, 1, undefined));
      return result;
    }
    return this.#publishAll(events, settings, 1, context.scope).then((failures) => {
      if (failures !== undefined && this.#failurePolicy === 'fail') throw new EventDispatchError(failures);
      return result;
    });
  }

  publish(event: AnyEvent, options?: PublishOptions): Promise<void> {
    if (event?.kind !== 'event' || typeof event.type !== 'string')
      return Promise.reject(wrongKind(event, 'event'));
    if (!hasMetadata(event)) return Promise.reject(noMetadata(event));
    if (this.#disposed)
      return Promise.reject(new CqrsError('CQRS_CONFIGURATION', 'the mediator was disposed'));
    let settings: ResolvedPublish;
    if (options === undefined) settings = this.#defaults;
    else {
      try {
        settings = this.#settings(options, options, event.type);
      } catch (error) {
        return Promise.reject(error);
      }
      if (options.timeout !== undefined) {
        for (const entry of this.#events.get(event.type) ?? []) {
          const problem = this.#checkOptions(options, entry);
          if (problem !== undefined) return Promise.reject(problem);
        }
      }
      if (options.signal?.aborted)
        return Promise.reject(new CancelledError(event.type, { cause: options.signal.reason }));
    }
    // A nested publish shares the scope of the dispatch it is made in; background work never does.
    const given = options?.scope;
    if (settings.strategy === 'fire-and-forget') {
      this.#track(this.#dispatchEvent(event, settings, 1, false, given));
      return RESOLVED;
    }
    return this.#dispatchEvent(event, settings, 1, true, given, true) as Promise<never>;
  }

  #settings(
    options: DispatchOptions | undefined,
    publish: PublishOptions | undefined,
    messageType = 'publish',
  ): ResolvedPublish {
    const d = this.#defaults;
    if (publish !== undefined) {
      const problem = optionsProblem(publish, messageType);
      if (problem !== undefined) throw problem;
      if (publish.failFast !== undefined && typeof publish.failFast !== 'boolean')
        throw new ConfigurationError(
          `${messageType}: failFast must be true or false, got ${describeValue(publish.failFast)}`,
        );
    }
    const strategy = publish?.strategy ?? d.strategy;
    if (!PUBLISH_STRATEGIES.includes(strategy))
      throw new ConfigurationError(
        `${messageType}: unknown publish strategy ${describeValue(strategy)}; use ${PUBLISH_STRATEGIES.join(', ')}`,
      );
    const concurrency = publish?.concurrency ?? d.concurrency;
    if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= MAX_CONCURRENCY)) {
      throw new ConfigurationError(
        `${messageType}: publish concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got ${describeValue(concurrency)}`,
      );
    }
    return {
      strategy,
      concurrency,
      failFast: publish?.failFast ?? d.failFast,
      dispatch: options,
      abort: undefined,
      phase: strategy === 'fire-and-forget' ? 'background' : 'awaited',
    };
  }

  #track(work: Promise<unknown>): void {
    this.#background.add(work);
    work.then(
      () => this.#background.delete(work),
      () => this.#background.delete(work),
    );
  }

  /** Publishes events in order; each event's handlers run by the strategy. Never rejects. */
  async #publishAll(
    events: readonly AnyEvent[],
    settings: ResolvedPublish,
    depth: number,
    scope: DependencyScope | undefined,
  ): Promise<Failures> {
    let failures: Failures;
    for (const event of events) {
      const found = await this.#dispatchEvent(event, settings, depth, false, scope);
      if (found !== undefined) {
        failures ??= [];
        failures.push(...found);
        if (settings.failFast) break;
      }
    }
    return failures;
  }

  /**
   * Runs the handlers of one event, then the events they recorded. Never rejects: failures are reported and
   * returned (or thrown as one {@link EventDispatchError} when `throwOnFailure`). The handlers share one ambient
   * source (the event, the dispatch options, the caller's context), entered once: everything below runs in it.
   * Their dependency scope is `di`, else with `inherit` the caller's; without either (and with a container) the
   * dispatch opens one of its own.
   */
  #dispatchEvent(
    event: AnyEvent,
    settings: ResolvedPublish,
    depth: number,
    throwOnFailure: boolean,
    di: DependencyScope | undefined,
    inherit = false,
  ): Promise<Failures> {
    const entries = this.#events.get(event.type);
    if (entries === undefined) return NO_FAILURES;
    const parent = currentSource();
    if (inherit && di === undefined) di = parent?.scope;
    const scope = new EventScope(event, settings, depth, entries, throwOnFailure, parent, di);
    if (di === undefined && this.#container !== undefined) return this.#dispatchEventScoped(scope);
    return runInSource(scope, MediatorImpl.#runHandlers, this, scope);
  }

  /** An event dispatch that is top-level (or in the background) with a container: it opens its own scope. */
  #dispatchEventScoped(scope: EventScope): Promise<Failures> {
    let di: DependencyScope;
    try {
      di = this.#openScope(scope.event, scope.ambient.execution);
    } catch (error) {
      const failures = [this.#fail(scope.event, 'container', error, scope.settings)];
      return scope.throwOnFailure
        ? Promise.reject(new EventDispatchError(failures))
        : Promise.resolve(failures);
    }
    scope.scope = di;
    return settleScope(runInSource(scope, MediatorImpl.#runHandlers, this, scope), di);
  }

  static #runHandlers(mediator: MediatorImpl, scope: EventScope): Promise<Failures> {
    return mediator.#handleEvent(scope);
  }

  /** The body of {@link #dispatchEvent}, inside the event's ambient source. */
  async #handleEvent(scope: EventScope): Promise<Failures> {
    const { event, entries, depth } = scope;
    let settings = scope.settings;
    let failures: Failures;
    if (depth > this.#maxDepth) {
      failures = [
        this.#fail(event, 'mediator', new EventDepthExceededError(event.type, this.#maxDepth), settings),
      ];
    } else {
      if (settings.failFast && settings.abort === undefined)
        settings = { ...settings, abort: new AbortController() };
      const n = entries.length;
      if (n === 1 || settings.strategy === 'sequential') {
        for (let i = 0; i < n; i++) {
          const entry = entries[i]!;
          const context = this.#eventContext(entry, event, settings, depth, scope);
          if (context === undefined) break;
          let outcome: unknown;
          try {
            outcome = await entry.pipeline(event, context);
          } catch (error) {
            outcome = new HandlerFailed(error);
          }
          let found = this.#after(outcome, entry, event, context, settings, depth, scope.scope);
          if (found instanceof Promise) found = await found;
          if (found !== undefined) {
            failures ??= [];
            failures.push(...found);
            if (settings.failFast) break;
          }
        }
      } else if (n <= settings.concurrency) {
        // Handlers start at once; each outcome is collected in order. The first is awaited before anything else
        // runs, so its promise is awaited as it is; every later one is wrapped so that it never rejects (none is
        // left unhandled while an earlier one is awaited).
        const contexts: (Dispatch | undefined)[] = new Array(n);
        const running: Promise<unknown>[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const context = this.#eventContext(entries[i]!, event, settings, depth, scope);
          contexts[i] = context;
          running[i] =
            context === undefined
              ? RESOLVED
              : i === 0
                ? start(entries[0]!, context)
                : settle(entries[i]!, context);
        }
        for (let i = 0; i < n; i++) {
          const context = contexts[i];
          if (context === undefined) continue;
          let outcome: unknown;
          try {
            outcome = await running[i];
          } catch (error) {
            outcome = new HandlerFailed(error);
          }
          let found = this.#after(outcome, entries[i]!, event, context, settings, depth, scope.scope);
          if (found instanceof Promise) found = await found;
          if (found !== undefined) {
            failures ??= [];
            failures.push(...found);
          }
        }
      } else {
        failures = await this.#runLimited(entries, event, settings, depth, scope);
      }
    }
    if (failures !== undefined && scope.throwOnFailure) throw new EventDispatchError(failures);
    return failures;
  }

  #eventContext(
    entry: CompiledHandler,
    event: AnyEvent,
    settings: ResolvedPublish,
    depth: number,
    parent: AmbientSource | undefined,
  ): Dispatch | undefined {
    const context = new Dispatch(entry.descriptor, event, settings.dispatch, depth, parent);
    if (settings.abort !== undefined) {
      if (settings.abort.signal.aborted) return undefined;
      context.signal = settings.abort.signal;
    }
    return context;
  }

  /** Turns a settled handler into failures: its own, or those of the events it recorded. */
  #after(
    outcome: unknown,
    entry: CompiledHandler,
    event: AnyEvent,
    context: Dispatch,
    settings: ResolvedPublish,
    depth: number,
    di: DependencyScope | undefined,
  ): Failures | Promise<Failures> {
    if (outcome instanceof HandlerFailed) {
      settings.abort?.abort(outcome.error);
      return [this.#fail(event, entry.descriptor.name, outcome.error, settings)];
    }
    const produced = context.takeEvents();
    return produced === undefined ? undefined : this.#publishAll(produced, settings, depth + 1, di);
  }

  #runLimited(
    entries: readonly CompiledHandler[],
    event: AnyEvent,
    settings: ResolvedPublish,
    depth: number,
    scope: EventScope,
  ): Promise<Failures> {
    const total = entries.length;
    return new Promise((resolve) => {
      let started = 0;
      let settled = 0;
      let failures: Failures;
      const done = (found: Failures): void => {
        if (found !== undefined) {
          failures ??= [];
          failures.push(...found);
        }
        settled++;
        if (started < total && !(failures !== undefined && settings.failFast)) launch();
        else if (settled === started) resolve(failures);
      };
      const launch = (): void => {
        const entry = entries[started++]!;
        const context = this.#eventContext(entry, event, settings, depth, scope);
        if (context === undefined) {
          done(undefined);
          return;
        }
        settle(entry, context)
          .then((outcome) => this.#after(outcome, entry, event, context, settings, depth, scope.scope))
          .then(done);
      };
      for (let i = 0; i < settings.concurrency; i++) launch();
    });
  }

  #fail(event: AnyEvent, handler: string, error: unknown, settings: ResolvedPublish): EventHandlerFailure {
    try {
      this.#onError(error, { event, handler, phase: settings.phase });
    } catch (hookError) {
      process.emitWarning(`cqrs-ts onError hook threw: ${String(hookError)}`, {
        code: 'CQRS_EVENT_DISPATCH',
      });
    }
    return { eventType: event.type, eventId: event.metadata.requestId, handler, error };
  }

  stream<TQuery extends AnyStreamQuery>(
    query: TQuery,
    options?: DispatchOptions,
  ): AsyncIterableIterator<InferItem<TQuery>> {
    return this.#iterate(query, options) as AsyncIterableIterator<InferItem<TQuery>>;
  }

  async *#iterate(
    query: AnyMessage,
    options: DispatchOptions | undefined,
  ): AsyncGenerator<unknown, void, undefined> {
    if (query?.kind !== 'query' || typeof query.type !== 'string') throw wrongKind(query, 'query');
    if (!hasMetadata(query)) throw noMetadata(query);
    const entry = this.#streams.get(query.type);
    if (entry === undefined) {
      throw this.#requests.has(query.type)
        ? new CqrsError('CQRS_WRONG_MESSAGE_KIND', `${query.type} is not a streaming query: use query()`)
        : new HandlerNotFoundError(query.type);
    }
    if (this.#disposed) throw new CqrsError('CQRS_CONFIGURATION', 'the mediator was disposed');
    if (options !== undefined) {
      const problem = this.#checkOptions(options, entry);
      if (problem !== undefined) throw problem;
    }
    const outer = options?.signal;
    if (outer?.aborted) throw new CancelledError(query.type, { cause: outer.reason });
    const controller = new AbortController();
    // One abort listener for the whole stream: it rejects the step being awaited (no listener per step).
    let rejectStep: ((reason: unknown) => void) | undefined;
    const onAbort = () => {
      controller.abort(new CancelledError(query.type, { cause: outer?.reason }));
      rejectStep?.(controller.signal.reason);
    };
    const untilAborted = (next: Promise<IteratorResult<unknown>>): Promise<IteratorResult<unknown>> => {
      if (controller.signal.aborted) {
        next.catch(() => {});
        return Promise.reject(controller.signal.reason);
      }
      return new Promise<IteratorResult<unknown>>((resolve, reject) => {
        rejectStep = reject;
        next.then(resolve, reject);
      });
    };
    outer?.addEventListener('abort', onAbort, { once: true });
    const context = new Dispatch(entry.descriptor, query, options);
    context.signal = controller.signal;
    if (options?.scope !== undefined) context.scope = options.scope;
    let owned: DependencyScope | undefined;
    let iterator: AsyncIterator<unknown> | undefined;
    let finished = false;
    let stepping = false;
    try {
      if (context.scope === undefined && this.#container !== undefined) {
        owned = this.#openScope(query, context.execution);
        context.scope = owned;
      }
      // The handler's generator runs in the dispatch's ambient source, each step too.
      const iterable = (await runInSource(
        context,
        entry.pipeline,
        query,
        context,
        true,
      )) as AsyncIterable<unknown>;
      iterator = runInSource(context, iterate, iterable, undefined);
      while (true) {
        stepping = true;
        const next = runInSource(context, step, iterator, undefined);
        const result = await (outer === undefined ? next : untilAborted(next));
        rejectStep = undefined;
        stepping = false;
        if (result.done) {
          finished = true;
          break;
        }
        if (this.#hasEventHandlers) await this.#flush(context, options);
        yield result.value;
      }
      if (this.#hasEventHandlers) await this.#flush(context, options);
    } finally {
      outer?.removeEventListener('abort', onAbort);
      if (!finished) {
        if (!controller.signal.aborted) controller.abort(new CancelledError(query.type));
        // A generator still inside a step runs its cleanup once that step ends (when it honours ctx.signal);
        // waiting for it here could hang on a handler that ignores the signal.
        const it = iterator;
        const closing = it?.return === undefined ? undefined : runInSource(context, close, it, undefined);
        if (stepping) closing?.catch(() => {});
        else await closing;
      }
      if (owned !== undefined) await disposeScope(owned);
    }
  }

  async #flush(context: Dispatch, options: DispatchOptions | undefined): Promise<void> {
    if (!this.#hasEventHandlers) return;
    const events = context.takeEvents();
    if (events === undefined) return;
    const settings = this.#settings(options, undefined);
    if (settings.strategy === 'fire-and-forget') {
      this.#track(this.#publishAll(events, settings, 1, undefined));
      return;
    }
    const failures = await this.#publishAll(events, settings, 1, context.scope);
    if (failures !== undefined && this.#failurePolicy === 'fail') throw new EventDispatchError(failures);
  }

  async whenIdle(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  has(messageType: string): boolean {
    return this.#requests.has(messageType) || this.#streams.has(messageType) || this.#events.has(messageType);
  }

  describe(): readonly HandlerInfo[] {
    return [
      ...[...this.#requests.values()].map((e) => e.info),
      ...[...this.#streams.values()].map((e) => e.info),
      ...[...this.#events.values()].flat().map((e) => e.info),
    ];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    await this.whenIdle();
  }
}

function iterate(iterable: AsyncIterable<unknown>): AsyncIterator<unknown> {
  return iterable[Symbol.asyncIterator]();
}

function step(iterator: AsyncIterator<unknown>): Promise<IteratorResult<unknown>> {
  return iterator.next();
}

function close(iterator: AsyncIterator<unknown>): Promise<IteratorResult<unknown>> | undefined {
  return iterator.return?.();
}

/**
 * Builds a mediator. Handlers are checked now: a duplicate command or query handler, a declared message
 * without one, or a policy a handler declares that no behavior of its pipeline enforces (fail closed, see
 * {@link MediatorOptions.unenforced}), throws. Behaviors are composed now, once per handler. Every dispatch
 * runs in its own ambient context (AsyncLocalStorage), so messages created and dispatched by handlers inherit
 * the correlation id, the user and tenant, and record the handled message as their cause.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`, {@link UnenforcedPolicyError} for an unenforced policy),
 *   DuplicateHandlerError, MissingHandlerError.
 *
 * @example
 * const mediator = createMediator({
 *   handlers: [handle(PlaceOrder, placeOrder), on(OrderPlaced, sendReceipt), on(OrderPlaced, updateStats)],
 *   behaviors: [correlation(), validation(), logging({ logger })],
 *   events: { strategy: 'parallel', concurrency: 8 },
 * });
 */
export function createMediator(options: MediatorOptions = {}): Mediator {
  checkMediatorOptions(options);
  const resolver = options.resolver ?? defaultResolver;
  const behaviors = (options.behaviors ?? []).map(toBehavior);
  const single = new Map<string, HandlerBinding>();
  const eventBindings = new Map<string, HandlerBinding[]>();
  const duplicates = new Set<string>();
  for (const binding of flattenRegistrations(options.handlers)) {
    const type = binding.definition.type;
    if (binding.mode === 'event') {
      const list = eventBindings.get(type);
      if (list) list.push(binding);
      else eventBindings.set(type, [binding]);
      continue;
    }
    if (single.has(type) && !binding.options.override) duplicates.add(type);
    else single.set(type, binding);
  }
  for (const type of eventBindings.keys()) if (single.has(type)) duplicates.add(type);
  if (duplicates.size > 0) throw new DuplicateHandlerError([...duplicates]);
  const missing = (options.messages ?? [])
    .filter((d) => d.kind !== 'event' && !single.has(d.type))
    .map((d) => d.type);
  if (missing.length > 0) throw new MissingHandlerError(missing);

  const requests = new Map<string, CompiledHandler>();
  const streams = new Map<string, CompiledHandler>();
  const compiled: CompiledHandler[] = [];
  for (const binding of single.values()) {
    const handler = compileHandler(binding, behaviors, resolver);
    compiled.push(handler);
    (binding.mode === 'stream' ? streams : requests).set(binding.definition.type, handler);
  }
  const events = new Map<string, CompiledHandler[]>();
  for (const [type, list] of eventBindings) {
    const handlers = list.map((b) => compileHandler(b, behaviors, resolver));
    compiled.push(...handlers);
    events.set(type, handlers);
  }
  const unenforced = new Set(options.unenforced ?? []);
  const gaps: UnenforcedPolicyError['unenforced'][number][] = [];
  for (const handler of compiled) {
    for (const policy of declaredPolicies(handler.descriptor)) {
      if (!handler.enforced.has(policy) && !unenforced.has(policy))
        gaps.push({ messageType: handler.descriptor.messageType, handler: handler.descriptor.name, policy });
    }
  }
  if (gaps.length > 0) throw new UnenforcedPolicyError(gaps);
  return new MediatorImpl(requests, streams, events, options);
}

function checkList(name: string, value: unknown): void {
  if (value !== undefined && !Array.isArray(value))
    throw new ConfigurationError(`${name} must be an array, got ${describeValue(value)}`);
}

function checkMediatorOptions(options: MediatorOptions): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new ConfigurationError(
      `createMediator takes an options object { handlers, behaviors, ... }, got ${describeValue(options)}`,
    );
  checkList('handlers', options.handlers);
  checkList('behaviors', options.behaviors);
  checkList('messages', options.messages);
  checkList('unenforced', options.unenforced);
  for (const policy of options.unenforced ?? []) {
    if (!(POLICIES as readonly string[]).includes(policy))
      throw new ConfigurationError(
        `unenforced lists ${describeValue(policy)}, which is not a policy; use ${POLICIES.join(', ')}`,
      );
  }
  for (const [i, d] of (options.messages ?? []).entries()) {
    if (typeof d?.type !== 'string' || typeof d.kind !== 'string')
      throw new ConfigurationError(
        `messages[${i}] is not a message definition (defineCommand, defineQuery, ...)`,
      );
  }
  const resolver = options.resolver;
  if (resolver !== undefined && typeof resolver?.resolve !== 'function')
    throw new ConfigurationError('resolver must have a resolve(Class, context) method');
  checkContainer(options.container);
  if (resolver !== undefined && options.container !== undefined)
    throw new ConfigurationError(
      'give createMediator a resolver or a container, not both: with a container, class handlers are resolved from the dispatch scope',
    );
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new ConfigurationError('onError must be a function (error, info) => void');
  const e = options.events;
  if (e !== undefined && (typeof e !== 'object' || e === null || Array.isArray(e)))
    throw new ConfigurationError(
      `events must be an object { strategy, concurrency, ... }, got ${describeValue(e)}`,
    );
  if (e?.strategy !== undefined && !PUBLISH_STRATEGIES.includes(e.strategy)) {
    throw new ConfigurationError(
      `unknown events.strategy ${describeValue(e.strategy)}; use ${PUBLISH_STRATEGIES.join(', ')}`,
    );
  }
  if (
    e?.concurrency !== undefined &&
    !(Number.isInteger(e.concurrency) && e.concurrency >= 1 && e.concurrency <= MAX_CONCURRENCY)
  ) {
    throw new ConfigurationError(`events.concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  if (e?.maxDepth !== undefined && !(Number.isInteger(e.maxDepth) && e.maxDepth >= 1 && e.maxDepth <= 1000)) {
    throw new ConfigurationError('events.maxDepth must be an integer from 1 to 1000');
  }
  if (e?.failFast !== undefined && typeof e.failFast !== 'boolean')
    throw new ConfigurationError('events.failFast must be true or false');
  if (e?.failurePolicy !== undefined && e.failurePolicy !== 'report' && e.failurePolicy !== 'fail')
    throw new ConfigurationError("events.failurePolicy must be 'report' or 'fail'");
}

export type { DispatchContext };
