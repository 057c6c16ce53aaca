import { currentContext } from '../context/ambient-context.ts';
import type { ExecutionContext } from '../context/execution-context.ts';
import { EMPTY_EXECUTION_CONTEXT } from '../context/execution-context.ts';
import type { AnyMessageDefinition } from '../messages/define-message.ts';
import type { AnyMessage, MessageKind } from '../messages/message.ts';
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
}

/** Per-dispatch options. */
export interface DispatchOptions {
  /** Who, where, how. Defaults to the ambient execution context (nested dispatch) or an empty one. */
  readonly context?: ExecutionContext;
  /** Aborts the dispatch; handlers receive it (combined with any timeout) as `context.signal`. */
  readonly signal?: AbortSignal;
  /** Time budget in ms for this dispatch, overriding the handler's (needs the timeout behavior). */
  readonly timeout?: number;
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
  get<TValue>(key: ContextKey<TValue>): TValue;
  set<TValue>(key: ContextKey<TValue>, value: TValue): void;
}

/** A signal that never aborts; shared to avoid allocating one per dispatch. */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** @internal */
export class Dispatch implements DispatchContext {
  readonly message: AnyMessage;
  readonly handler: HandlerDescriptor;
  signal: AbortSignal;
  attempt: number;
  readonly timeout: number | undefined;
  #execution: ExecutionContext | undefined;
  #values: Map<symbol, unknown> | undefined;

  constructor(handler: HandlerDescriptor, message: AnyMessage, options: DispatchOptions | undefined) {
    this.message = message;
    this.handler = handler;
    this.attempt = 1;
    this.#values = undefined;
    if (options === undefined) {
      this.signal = NEVER_ABORTED;
      this.timeout = undefined;
      this.#execution = undefined;
    } else {
      this.signal = options.signal ?? NEVER_ABORTED;
      this.timeout = options.timeout;
      this.#execution = options.context;
    }
  }

  get execution(): ExecutionContext {
    if (this.#execution === undefined) {
      this.#execution = currentContext()?.execution ?? EMPTY_EXECUTION_CONTEXT;
    }
    return this.#execution;
  }

  get<TValue>(key: ContextKey<TValue>): TValue {
    const values = this.#values;
    if (values === undefined || !values.has(key.id)) return key.defaultValue;
    return values.get(key.id) as TValue;
  }

  set<TValue>(key: ContextKey<TValue>, value: TValue): void {
    if (this.#values === undefined) this.#values = new Map();
    this.#values.set(key.id, value);
  }
}
