import { CancelledError, ConfigurationError, TimeoutError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware, Next } from '../mediator/behavior.ts';
import { policyBehavior } from '../mediator/behavior.ts';
import type { DispatchContext } from '../mediator/dispatch-context.ts';
import { Dispatch } from '../mediator/dispatch-context.ts';
import { timeoutProblem } from '../mediator/handler.ts';
import type { AnyMessage } from '../messages/message.ts';
import { NEVER_ABORTED } from '../shared/abort.ts';

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /** Default budget in ms for handlers without their own `timeout`. Omit for no default. */
  readonly defaultMs?: number;
  readonly target?: BehaviorTarget;
}

/**
 * Gives each attempt a time budget: the dispatch's `timeout` option, else the handler's `timeout`, else
 * `defaultMs`. The handler's `context.signal` aborts when the budget expires or the caller aborts; the dispatch
 * then fails with a {@link TimeoutError} (or {@link CancelledError}) at once, without waiting for a handler that
 * ignores the signal. Dispatches with the same budget share one timer, and the signal is only made when the
 * handler reads it; as with a timer per dispatch, a budget is never cut short. Place it inside `retry` to bound
 * each attempt. Enforces the `timeout` policy.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a `defaultMs` that is not a number of ms in 1..2147483647.
 */
export function timeout(options: TimeoutOptions = {}): Behavior {
  if (options.defaultMs !== undefined) {
    const problem = timeoutProblem(options.defaultMs);
    if (problem) throw new ConfigurationError(`timeout: defaultMs: ${problem}`);
  }
  return policyBehavior(
    'timeout',
    (handler) => {
      const handlerMs = handler.options.timeout ?? options.defaultMs;
      const what = `${handler.messageType} (${handler.name})`;
      const own = handlerMs === undefined ? undefined : wheelFor(handlerMs);
      const middleware: Middleware = (message, context, next) => {
        const ms = context.timeout ?? handlerMs;
        const outer = context.signal;
        if (outer === NEVER_ABORTED && context instanceof Dispatch && context.canTime()) {
          if (ms === undefined) return next(message, context);
          return timed(ms === handlerMs ? own! : wheelFor(ms), what, message, context, next);
        }
        if (ms === undefined && outer === NEVER_ABORTED) return next(message, context);
        return guarded(ms, what, message, context, next);
      };
      return middleware;
    },
    options.target,
  );
}

/*
 * Deadlines without a timer per dispatch. Dispatches with the same budget share a wheel: a list in deadline
 * order (a dispatch reads the clock once and joins at the end) and one unref'd timer armed for the earliest
 * deadline. A dispatch that ends unlinks itself, so nothing is kept once it is done; the timer, when it fires,
 * expires what is due and re-arms itself for the next deadline. As with a timer of its own, a budget is never cut
 * short, and runs over only by as much as the event loop is late. The timer does not keep the process alive by
 * itself.
 */

class Wheel {
  readonly ms: number;
  head: Deadline | undefined = undefined;
  tail: Deadline | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  readonly tick = () => this.#tick();

  constructor(ms: number) {
    this.ms = ms;
  }

  add(entry: Deadline): void {
    entry.deadline = performance.now() + this.ms;
    entry.wheel = this;
    entry.prev = this.tail;
    if (this.tail === undefined) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    if (this.timer === undefined) this.#arm(this.ms);
  }

  remove(entry: Deadline): void {
    if (entry.prev === undefined) this.head = entry.next;
    else entry.prev.next = entry.next;
    if (entry.next === undefined) this.tail = entry.prev;
    else entry.next.prev = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
  }

  #arm(delay: number): void {
    this.timer = setTimeout(this.tick, delay);
    this.timer.unref();
  }

  #tick(): void {
    this.timer = undefined;
    const now = performance.now();
    for (let entry = this.head; entry !== undefined && entry.deadline <= now; entry = this.head)
      entry.expire();
    if (this.head !== undefined) this.#arm(Math.max(1, Math.ceil(this.head.deadline - now)));
  }
}

const wheels = new Map<number, Wheel>();

function wheelFor(ms: number): Wheel {
  let wheel = wheels.get(ms);
  if (wheel === undefined) {
    wheel = new Wheel(ms);
    wheels.set(ms, wheel);
  }
  return wheel;
}

/** One timed attempt. */
class Deadline {
  prev: Deadline | undefined = undefined;
  next: Deadline | undefined = undefined;
  /** The wheel it is linked into; `undefined` once it ended or expired. */
  wheel: Wheel | undefined = undefined;
  deadline = 0;
  controller: AbortController | undefined = undefined;
  readonly ms: number;
  readonly what: string;
  readonly context: Dispatch;
  resolve: (value: unknown) => void = noop;
  reject: (error: unknown) => void = noop;

  constructor(ms: number, what: string, context: Dispatch) {
    this.ms = ms;
    this.what = what;
    this.context = context;
  }

  /** The handler's signal, made only when it asks for it. */
  signal(): AbortSignal {
    if (this.controller === undefined) this.controller = new AbortController();
    return this.controller.signal;
  }

  #end(): boolean {
    const wheel = this.wheel;
    if (wheel === undefined) return false;
    this.wheel = undefined;
    wheel.remove(this);
    this.context.endDeadline(this);
    return true;
  }

  readonly settle = (value: unknown): void => {
    if (this.#end()) this.resolve(value);
  };

  readonly fail = (error: unknown): void => {
    if (this.#end()) this.reject(error);
  };

  expire(): void {
    const wheel = this.wheel;
    if (wheel === undefined) return;
    this.wheel = undefined;
    wheel.remove(this);
    const error = new TimeoutError(this.what, this.ms);
    this.controller?.abort(error);
    this.context.endDeadline(this);
    this.reject(error);
  }
}

function noop(): void {}

// The resolving functions of the promise being built, taken without a closure per dispatch.
const captured: { resolve: (value: unknown) => void; reject: (error: unknown) => void } = {
  resolve: noop,
  reject: noop,
};
function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

function timed(
  wheel: Wheel,
  what: string,
  message: AnyMessage,
  context: Dispatch,
  next: Next,
): Promise<unknown> {
  const entry = new Deadline(wheel.ms, what, context);
  const race = new Promise<unknown>(capture);
  entry.resolve = captured.resolve;
  entry.reject = captured.reject;
  captured.resolve = noop;
  captured.reject = noop;
  wheel.add(entry);
  context.beginDeadline(entry);
  let pending: Promise<unknown>;
  try {
    pending = next(message, context);
  } catch (error) {
    entry.fail(error);
    return race;
  }
  // a middleware written in JavaScript may return a plain value: Promise.resolve keeps it
  if (!(pending instanceof Promise)) pending = Promise.resolve(pending);
  pending.then(entry.settle, entry.fail);
  return race;
}

/** The general path: a caller's signal to follow, or a context this behavior cannot time lazily. */
function guarded(
  ms: number | undefined,
  what: string,
  message: AnyMessage,
  context: DispatchContext,
  next: Next,
): Promise<unknown> {
  const outer = context.signal;
  const controller = new AbortController();
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onOuterAbort = () => {
      const error = new CancelledError(message.type, { cause: outer.reason });
      controller.abort(error);
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer);
      outer.removeEventListener('abort', onOuterAbort);
      context.signal = outer;
    };
    if (outer.aborted) {
      onOuterAbort();
      return;
    }
    outer.addEventListener('abort', onOuterAbort, { once: true });
    if (ms !== undefined) {
      timer = setTimeout(() => {
        const error = new TimeoutError(what, ms);
        controller.abort(error);
        cleanup();
        reject(error);
      }, ms);
    }
    context.signal = controller.signal;
    let pending: Promise<unknown>;
    try {
      pending = next(message, context);
    } catch (error) {
      cleanup();
      reject(error);
      return;
    }
    pending.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error);
      },
    );
  });
}

/** @internal What a {@link Dispatch} needs from a timed attempt. */
export type { Deadline };
