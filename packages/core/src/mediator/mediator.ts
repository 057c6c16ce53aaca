import {
  CancelledError,
  ConfigurationError,
  CqrsError,
  DuplicateHandlerError,
  HandlerNotFoundError,
  MissingHandlerError,
} from '../errors/cqrs-error.ts';
import type { AnyMessageDefinition } from '../messages/define-message.ts';
import type { AnyCommand, AnyMessage, AnyQuery, InferResult, MessageKind } from '../messages/message.ts';
import type { Behavior, BehaviorInput, Middleware, Next } from './behavior.ts';
import { compose, matches, toBehavior } from './behavior.ts';
import type { DispatchContext, DispatchOptions, HandlerDescriptor } from './dispatch-context.ts';
import { Dispatch } from './dispatch-context.ts';
import type { HandlerBinding, HandlerFunction, HandlerObject, HandlerResolver } from './handler.ts';
import { decoratedBinding, defaultResolver } from './handler.ts';

/** A registration: a binding from `handle()`, a class decorated with `@handles`, or a nested list (a module). */
export type HandlerRegistration =
  | HandlerBinding
  | (abstract new (
      ...args: never[]
    ) => unknown)
  | readonly HandlerRegistration[];

/** Options of {@link createMediator}. */
export interface MediatorOptions {
  /** Handler bindings. Exactly one per command or query type. */
  readonly handlers?: readonly HandlerRegistration[];
  /** Definitions that must have a handler; a missing one fails the build. */
  readonly messages?: readonly AnyMessageDefinition[];
  /** Pipeline behaviors, outermost first. */
  readonly behaviors?: readonly BehaviorInput[];
  /** Creates class handlers per dispatch. Default: `new Class()`. */
  readonly resolver?: HandlerResolver;
}

/** A handler as listed by {@link Mediator.describe}. */
export interface HandlerInfo {
  readonly messageType: string;
  readonly kind: MessageKind;
  readonly handler: string;
  readonly behaviors: readonly string[];
  readonly tags: readonly string[];
  readonly description: string | undefined;
}

/** Dispatches commands and queries through the composed pipeline. Instances share no state. */
export interface Mediator extends AsyncDisposable {
  /** Sends a command to its handler; resolves to the handler's result. */
  send<TCommand extends AnyCommand>(
    command: TCommand,
    options?: DispatchOptions,
  ): Promise<InferResult<TCommand>>;
  /** Sends a query to its handler; resolves to the handler's result. */
  query<TQuery extends AnyQuery>(query: TQuery, options?: DispatchOptions): Promise<InferResult<TQuery>>;
  /** True when a handler is registered for the type. */
  has(messageType: string): boolean;
  /** Lists handlers with the behaviors in their pipeline, outermost first. */
  describe(): readonly HandlerInfo[];
}

/** @internal A compiled handler: its descriptor and its composed pipeline. */
export interface RequestEntry {
  readonly descriptor: HandlerDescriptor;
  readonly pipeline: Next;
  readonly behaviors: readonly string[];
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
          'handlers must be bindings from handle(), decorated classes, or lists of them',
        );
    }
  };
  walk(input ?? []);
  return out;
}

/** @internal Builds the terminal step that calls the handler. */
export function terminalFor(binding: HandlerBinding, resolver: HandlerResolver): Next {
  if (binding.isClass) {
    const token = binding.implementation as abstract new (
      ...args: never[]
    ) => HandlerObject<AnyMessage, unknown>;
    return (message, context) => {
      try {
        return Promise.resolve(resolver.resolve(token, context).handle(message, context));
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

/** @internal */
export function describeBinding(binding: HandlerBinding): HandlerDescriptor {
  const impl = binding.implementation as { name?: string };
  const tags = [...new Set([...binding.definition.tags, ...(binding.options.tags ?? [])])];
  return Object.freeze({
    messageType: binding.definition.type,
    kind: binding.definition.kind,
    definition: binding.definition,
    name: binding.options.name ?? (impl.name || 'anonymous'),
    options: binding.options,
    tags: Object.freeze(tags),
  });
}

/** @internal Picks and compiles the behaviors for one handler. */
export function pipelineFor(
  descriptor: HandlerDescriptor,
  behaviors: readonly Behavior[],
  terminal: Next,
): { pipeline: Next; names: string[] } {
  const middlewares: Middleware[] = [];
  const names: string[] = [];
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
  }
  return { pipeline: compose(middlewares, terminal), names };
}

function rejectNotFound(type: string): Promise<never> {
  return Promise.reject(new HandlerNotFoundError(type));
}

const METHOD_FOR: Record<MessageKind, string> = { command: 'send()', query: 'query()', event: 'publish()' };

function rejectWrongKind(message: AnyMessage | undefined, kind: MessageKind): Promise<never> {
  const actual = (message as { kind?: unknown } | undefined)?.kind;
  if (
    typeof message !== 'object' ||
    message === null ||
    typeof message.type !== 'string' ||
    !(typeof actual === 'string' && actual in METHOD_FOR)
  ) {
    return Promise.reject(
      new CqrsError('CQRS_INVALID_MESSAGE', `${METHOD_FOR[kind]} needs a ${kind} created by its definition`),
    );
  }
  return Promise.reject(
    new CqrsError(
      'CQRS_WRONG_MESSAGE_KIND',
      `${message.type} is a ${message.kind}, not a ${kind}: use ${METHOD_FOR[message.kind]}`,
    ),
  );
}

class MediatorImpl implements Mediator {
  readonly #requests: Map<string, RequestEntry>;
  #disposed = false;

  constructor(requests: Map<string, RequestEntry>) {
    this.#requests = requests;
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
    if (message?.kind !== kind) return rejectWrongKind(message, kind);
    const entry = this.#requests.get(message.type);
    if (entry === undefined || entry.descriptor.kind !== kind) return rejectNotFound(message.type);
    if (this.#disposed)
      return Promise.reject(new CqrsError('CQRS_CONFIGURATION', 'the mediator was disposed'));
    if (options?.signal?.aborted) {
      return Promise.reject(new CancelledError(message.type, { cause: options.signal.reason }));
    }
    try {
      return entry.pipeline(message, new Dispatch(entry.descriptor, message, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  has(messageType: string): boolean {
    return this.#requests.has(messageType);
  }

  describe(): readonly HandlerInfo[] {
    return [...this.#requests.values()].map((e) =>
      Object.freeze({
        messageType: e.descriptor.messageType,
        kind: e.descriptor.kind,
        handler: e.descriptor.name,
        behaviors: e.behaviors,
        tags: e.descriptor.tags,
        description: e.descriptor.options.description ?? e.descriptor.definition.description,
      }),
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
  }
}

/**
 * Builds a mediator. Handlers are checked now: a duplicate handler, or a declared message without one, throws.
 * Behaviors are composed now, once per handler.
 *
 * @example
 * const mediator = createMediator({
 *   handlers: [handle(PlaceOrder, async (cmd) => ({ orderId: cmd.payload.sku }))],
 *   behaviors: [correlation(), validation(), logging({ logger })],
 * });
 */
export function createMediator(options: MediatorOptions = {}): Mediator {
  const resolver = options.resolver ?? defaultResolver;
  if (typeof resolver.resolve !== 'function')
    throw new ConfigurationError('resolver must have a resolve() method');
  const behaviors = (options.behaviors ?? []).map(toBehavior);
  const bindings = new Map<string, HandlerBinding>();
  const duplicates = new Set<string>();
  for (const binding of flattenRegistrations(options.handlers)) {
    if (binding.definition.kind === 'event') continue;
    const existing = bindings.get(binding.definition.type);
    if (existing !== undefined && !binding.options.override) duplicates.add(binding.definition.type);
    else bindings.set(binding.definition.type, binding);
  }
  if (duplicates.size > 0) throw new DuplicateHandlerError([...duplicates]);
  const missing = (options.messages ?? [])
    .filter((d) => d.kind !== 'event' && !bindings.has(d.type))
    .map((d) => d.type);
  if (missing.length > 0) throw new MissingHandlerError(missing);

  const requests = new Map<string, RequestEntry>();
  for (const binding of bindings.values()) {
    const descriptor = describeBinding(binding);
    const { pipeline, names } = pipelineFor(descriptor, behaviors, terminalFor(binding, resolver));
    requests.set(descriptor.messageType, { descriptor, pipeline, behaviors: Object.freeze(names) });
  }
  return new MediatorImpl(requests);
}

export type { DispatchContext };
