import type { AmbientContext, AmbientSource } from '../context/ambient-context.ts';
import { currentSource } from '../context/ambient-context.ts';
import type { DependencyScope } from '../context/dependency-scope.ts';
import type { ExecutionContext } from '../context/execution-context.ts';
import { EMPTY_EXECUTION_CONTEXT } from '../context/execution-context.ts';
import { isTraceparent } from '../context/headers.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { EventSource } from '../events/aggregate-root.ts';
import type { AnyMessageDefinition, InferMessage } from '../messages/define-message.ts';
import type { AnyEvent, AnyMessage, MessageKind } from '../messages/message.ts';
import type { MetadataInit } from '../messages/metadata.ts';
import { NEVER_ABORTED } from '../shared/abort.ts';
import type { ContextKey } from './context-key.ts';
import type { HandlerOptions } from './handler.ts';

/** What behaviors learn about a handler when the mediator is built. */
export interface HandlerDescriptor {
  readonly messageType: string;
  readonly kind: MessageKind;
  readonly definition: AnyMessageDefinition;
  /** Handler name (function or class name, or `options.name`). */
  readonly name: string;
  readonly options: HandlerOptions<never>;
  /** Tags of the definition and of the handler. */
  readonly tags: readonly string[];
  /** True for streaming handlers. */
  readonly streaming: boolean;
}

/** An event definition, as `emit` needs it. */
export interface EmittableEvent {
  readonly kind: 'event';
  create(payload: never, metadata?: MetadataInit): AnyEvent;
}

/** How one dispatch treats its command's idempotency key (read by the unit of work). */
export interface IdempotencyDispatchOptions {
  /**
   * A repeat whose first command (same key) is still running in this process: `wait` for it to end and replay its
   * result, or `reject` at once with an `IdempotencyInFlightError` (`CQRS_IDEMPOTENCY_IN_FLIGHT`), e.g. to answer
   * an HTTP client with 409. A first command running in another process is waited for either way (on the
   * database's lock). @default 'wait'
   */
  readonly inFlight?: 'wait' | 'reject';
  /** Called when the dispatch returns a stored result without running the handler (a replay). */
  readonly onReplay?: () => void;
}

/** Per-dispatch options. */
export interface DispatchOptions {
  /** Who, where, how. Defaults to the ambient execution context (nested dispatch) or an empty one. */
  readonly context?: ExecutionContext;
  /** Aborts the dispatch; handlers receive it (combined with any timeout) as `context.signal`. */
  readonly signal?: AbortSignal;
  /**
   * Time budget in ms for this dispatch (1 to 2147483647), overriding the handler's. A dispatch that sets it
   * to a handler whose pipeline has no `timeout()` behavior is refused (`CQRS_CONFIGURATION`), unless the
   * mediator lists `timeout` in `unenforced`.
   */
  readonly timeout?: number;
  /** How the command's idempotency key is treated (see {@link IdempotencyDispatchOptions}). */
  readonly idempotency?: IdempotencyDispatchOptions;
  /**
   * Runs the dispatch in a dependency scope made by its owner, e.g. an HTTP request's scope: the handlers, the
   * behaviors and the nested dispatches resolve from it instead of a scope the mediator's `container` would open.
   * The mediator never disposes it: its owner does, once the dispatch settled.
   */
  readonly scope?: DependencyScope;
}

/**
 * The per-dispatch context handed to behaviors and handlers. One object per dispatch; behaviors may replace
 * `signal` (restoring it afterwards) and store typed values with {@link DispatchContext.set}.
 */
export interface DispatchContext {
  readonly message: AnyMessage;
  readonly handler: HandlerDescriptor;
  readonly execution: ExecutionContext;
  /** Aborted when the caller aborts or a timeout expires. */
  signal: AbortSignal;
  /** 1 for the first attempt; the retry behavior increments it. */
  attempt: number;
  /** Timeout requested for this dispatch, if any. */
  readonly timeout: number | undefined;
  /** The dispatch's idempotency options, if any. */
  readonly idempotency: IdempotencyDispatchOptions | undefined;
  /**
   * The dependency scope of the top-level dispatch, shared by the dispatches made inside it: opened by the
   * mediator's `container`, or given in the dispatch options. `undefined` when neither is set.
   */
  readonly scope: DependencyScope | undefined;
  get<TValue>(key: ContextKey<TValue>): TValue;
  set<TValue>(key: ContextKey<TValue>, value: TValue): void;
  /**
   * Records events to dispatch once the handler and the whole pipeline around it succeeded (for a stream:
   * as soon as the current item is produced). Events recorded by a failed attempt are discarded.
   */
  record(...events: readonly AnyEvent[]): void;
  /** Creates an event linked to the message being handled (same correlation id, causation id = its request id) and records it. */
  emit<TDefinition extends EmittableEvent>(
    definition: TDefinition,
    payload: Parameters<TDefinition['create']>[0],
  ): InferMessage<TDefinition>;
  /** Pulls the aggregate's events after success (see {@link EventSource}). */
  track(source: EventSource): void;
  /** Event nesting depth: 0 for a command or query, n for a handler of an event published at depth n-1. */
  readonly depth: number;
}

/**
 * @internal The ambient context inside a dispatch of `message`: its request id; its correlation and causation
 * ids (a message created outside any dispatch but sent from inside one is linked to the enclosing one); the
 * execution context; tenant and requester from the execution context, else the message, else the enclosing
 * dispatch; the trace context of the message, else the enclosing one.
 */
export function ambientOf(
  message: AnyMessage,
  execution: ExecutionContext,
  parent: AmbientContext | undefined,
): AmbientContext {
  const metadata = message.metadata;
  let correlationId = metadata.correlationId;
  let causationId = metadata.causationId;
  if (parent !== undefined && causationId === undefined && parent.requestId !== metadata.requestId) {
    correlationId = parent.correlationId;
    causationId = parent.requestId;
  }
  return {
    requestId: metadata.requestId,
    correlationId,
    causationId,
    execution,
    tenantId: execution.tenantId ?? metadata.tenantId ?? parent?.tenantId,
    requestedBy: execution.user?.id ?? metadata.requestedBy ?? parent?.requestedBy,
    traceparent: metadata.traceparent ?? parent?.traceparent,
    tracestate: metadata.traceparent !== undefined ? metadata.tracestate : parent?.tracestate,
    baggage: metadata.baggage ?? parent?.baggage,
  };
}

/** @internal A time budget whose signal is only made when the handler reads `context.signal`. */
export interface LazySignal {
  signal(): AbortSignal;
}

/**
 * @internal One dispatch to one handler. It is also the ambient source of the dispatch: what handlers create
 * or dispatch inside it is linked to its message, and its ambient context is only built when read.
 */
export class Dispatch implements DispatchContext, AmbientSource {
  readonly message: AnyMessage;
  readonly handler: HandlerDescriptor;
  attempt: number;
  readonly timeout: number | undefined;
  readonly idempotency: IdempotencyDispatchOptions | undefined;
  depth: number;
  resource: AmbientSource['resource'];
  scope: DependencyScope | undefined;
  #signal: AbortSignal;
  #deadline: LazySignal | undefined;
  #parent: AmbientSource | undefined;
  #execution: ExecutionContext | undefined;
  #ambient: AmbientContext | undefined;
  /** The trace context a tracing subscriber gave this dispatch (its span), carried by the messages it creates. */
  #trace: { readonly traceparent: string; readonly tracestate: string | undefined } | undefined;
  /** A `cqrs-ts:dispatch` subscriber's carrier, checked into `#trace` when first needed. */
  #carrier: Readonly<Record<string, string>> | undefined;
  /** Typed values and recorded events, made on first use: most dispatches need neither. */
  #extra: Extra | undefined;

  constructor(
    handler: HandlerDescriptor,
    message: AnyMessage,
    options: DispatchOptions | undefined,
    depth = 0,
    parent: AmbientSource | undefined = currentSource(),
  ) {
    this.message = message;
    this.handler = handler;
    this.attempt = 1;
    this.depth = depth;
    this.resource = undefined;
    // A dispatch started inside another shares its scope; the mediator sets a given or opened one afterwards.
    this.scope = parent?.scope;
    this.#deadline = undefined;
    this.#parent = parent;
    this.#ambient = undefined;
    this.#trace = undefined;
    this.#carrier = undefined;
    this.#extra = undefined;
    if (options === undefined) {
      this.#signal = NEVER_ABORTED;
      this.timeout = undefined;
      this.idempotency = undefined;
      this.#execution = undefined;
    } else {
      this.#signal = options.signal ?? NEVER_ABORTED;
      this.timeout = options.timeout;
      this.idempotency = options.idempotency;
      this.#execution = options.context;
    }
  }

  get signal(): AbortSignal {
    const deadline = this.#deadline;
    return deadline === undefined ? this.#signal : deadline.signal();
  }

  set signal(signal: AbortSignal) {
    this.#signal = signal;
    this.#deadline = undefined;
  }

  /** @internal True when a time budget can be set lazily: no caller signal and no budget running. */
  canTime(): boolean {
    return this.#deadline === undefined && this.#signal === NEVER_ABORTED;
  }

  /** @internal */
  beginDeadline(deadline: LazySignal): void {
    this.#deadline = deadline;
  }

  /** @internal */
  endDeadline(deadline: LazySignal): void {
    if (this.#deadline === deadline) this.#deadline = undefined;
  }

  get execution(): ExecutionContext {
    if (this.#execution === undefined) {
      this.#execution = this.#parent?.ambient.execution ?? EMPTY_EXECUTION_CONTEXT;
    }
    return this.#execution;
  }

  /** @internal The ambient context inside this dispatch (see {@link ambientOf}), built when first read. */
  get ambient(): AmbientContext {
    if (this.#ambient === undefined) {
      const ambient = ambientOf(this.message, this.execution, this.#parent?.ambient);
      const trace = this.#traceContext();
      this.#ambient =
        trace === undefined
          ? ambient
          : { ...ambient, traceparent: trace.traceparent, tracestate: trace.tracestate };
    }
    return this.#ambient;
  }

  get<TValue>(key: ContextKey<TValue>): TValue {
    const values = this.#extra?.values;
    if (values === undefined || !values.has(key.id)) return key.defaultValue;
    return values.get(key.id) as TValue;
  }

  set<TValue>(key: ContextKey<TValue>, value: TValue): void {
    this.#extra ??= new Extra();
    const extra = this.#extra;
    if (extra.values === undefined) extra.values = new Map();
    extra.values.set(key.id, value);
  }

  /** The recorded events and tracked sources of the current attempt (those of an earlier attempt are dropped). */
  #forAttempt(): Extra {
    this.#extra ??= new Extra();
    const extra = this.#extra;
    if (extra.eventsAttempt !== this.attempt) {
      extra.eventsAttempt = this.attempt;
      extra.events = undefined;
      extra.sources = undefined;
    }
    return extra;
  }

  record(...events: readonly AnyEvent[]): void {
    for (const event of events) {
      if (event?.kind !== 'event') {
        throw new ConfigurationError(
          `record() takes events; got ${String((event as AnyMessage | undefined)?.kind)}`,
        );
      }
    }
    const extra = this.#forAttempt();
    if (extra.events === undefined) extra.events = [...events];
    else extra.events.push(...events);
  }

  emit<TDefinition extends EmittableEvent>(
    definition: TDefinition,
    payload: Parameters<TDefinition['create']>[0],
  ): InferMessage<TDefinition> {
    const m = this.message.metadata;
    const init: { -readonly [K in keyof MetadataInit]: MetadataInit[K] } = {
      correlationId: m.correlationId,
      causationId: m.requestId,
    };
    if (m.tenantId !== undefined) init.tenantId = m.tenantId;
    if (m.requestedBy !== undefined) init.requestedBy = m.requestedBy;
    const trace = this.#traceContext();
    const traceparent = trace?.traceparent ?? m.traceparent;
    if (traceparent !== undefined) init.traceparent = traceparent;
    const tracestate = trace === undefined ? undefined : trace.tracestate;
    if (tracestate !== undefined) init.tracestate = tracestate;
    const event = definition.create(payload as never, init) as InferMessage<TDefinition>;
    this.record(event);
    return event;
  }

  /**
   * @internal Sets the trace context of what this dispatch creates or emits: the `traceparent` (and `tracestate`) a
   * `cqrs-ts:dispatch` subscriber wrote into its carrier on `start`, checked when first needed (a malformed one is
   * ignored), so a dispatch that creates nothing pays no check.
   */
  traceWith(carrier: Readonly<Record<string, string>>): void {
    this.#carrier = carrier;
    this.#trace = undefined;
    this.#ambient = undefined;
  }

  #traceContext(): { readonly traceparent: string; readonly tracestate: string | undefined } | undefined {
    const carrier = this.#carrier;
    if (carrier !== undefined) {
      this.#carrier = undefined;
      const traceparent = carrier.traceparent;
      if (traceparent !== undefined && isTraceparent(traceparent)) {
        const tracestate = carrier.tracestate;
        this.#trace = {
          traceparent,
          tracestate: tracestate !== undefined && tracestate.length <= 512 ? tracestate : undefined,
        };
      }
    }
    return this.#trace;
  }

  track(source: EventSource): void {
    if (typeof source?.pullEvents !== 'function')
      throw new ConfigurationError('track() needs an object with pullEvents()');
    const extra = this.#forAttempt();
    if (extra.sources === undefined) extra.sources = [source];
    else if (!extra.sources.includes(source)) extra.sources.push(source);
  }

  /** @internal Hands out the events of the last attempt (recorded, then pulled from tracked sources), once. */
  takeEvents(): AnyEvent[] | undefined {
    const extra = this.#extra;
    if (extra === undefined || extra.eventsAttempt !== this.attempt) return undefined;
    let events = extra.events;
    extra.events = undefined;
    if (extra.sources !== undefined) {
      for (const source of extra.sources) {
        const pulled = source.pullEvents();
        if (pulled.length > 0) {
          events ??= [];
          events.push(...pulled);
        }
      }
    }
    return events;
  }
}

/** What a dispatch stores besides its fixed fields. */
class Extra {
  values: Map<symbol, unknown> | undefined = undefined;
  events: AnyEvent[] | undefined = undefined;
  sources: EventSource[] | undefined = undefined;
  eventsAttempt = 0;
}
