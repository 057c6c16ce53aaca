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
 * ignores the signal. The budget is never cut short; it may run over by a sixteenth of itself (at most 1 s).
 * Place it inside `retry` to bound each attempt. Enforces the `timeout` policy.
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
 * Deadlines without a timer or a clock reading per dispatch. Dispatches with the same budget share a wheel: a
 * new one joins the wheel's open bucket; one unref'd timer seals the open bucket every `grain` ms (reading the
 * clock once), and a sealed bucket's dispatches expire together `ms` after it was sealed. Every dispatch was
 * added before its bucket was sealed, so none expires early; none expires more than `grain` ms late (plus the
 * timer's own lateness). A dispatch that ends unlinks itself from its bucket, so nothing is kept once it is done.
 * The timer does not keep the process alive by itself.
 */

class Bucket {
  sealedAt = 0;
  head: Deadline | undefined = undefined;
  tail: Deadline | undefined = undefined;
  next: Bucket | undefined = undefined;
}

class Wheel {
  readonly ms: number;
  readonly grain: number;
  open = new Bucket();
  /** Sealed buckets, oldest first. */
  first: Bucket | undefined = undefined;
  last: Bucket | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  readonly tick = () => this.#tick();

  constructor(ms: number) {
    this.ms = ms;
    this.grain = Math.min(1000, Math.max(1, Math.round(ms / 16)));
  }

  add(entry: Deadline): void {
    const bucket = this.open;
    entry.bucket = bucket;
    entry.prev = bucket.tail;
    if (bucket.tail === undefined) bucket.head = entry;
    else bucket.tail.next = entry;
    bucket.tail = entry;
    if (this.timer === undefined) this.#arm(this.grain);
  }

  #arm(delay: number): void {
    this.timer = setTimeout(this.tick, delay);
    this.timer.unref();
  }

  #tick(): void {
    this.timer = undefined;
    const now = performance.now();
    const open = this.open;
    if (open.head !== undefined) {
      open.sealedAt = now;
      if (this.last === undefined) this.first = open;
      else this.last.next = open;
      this.last = open;
      this.open = new Bucket();
    }
    while (this.first !== undefined && this.first.sealedAt + this.ms <= now) {
      const expired = this.first;
      this.first = expired.next;
      if (this.first === undefined) this.last = undefined;
      for (let entry = expired.head; entry !== undefined; ) {
        const next = entry.next;
        entry.expire();
        entry = next;
      }
    }
    // Empty sealed buckets (every dispatch done) need no expiry: drop them from the front.
    while (this.first !== undefined && this.first.head === undefined) {
      this.first = this.first.next;
      if (this.first === undefined) this.last = undefined;
    }
    if (this.first !== undefined) {
      const due = this.first.sealedAt + this.ms - now;
      this.#arm(Math.max(1, Math.min(this.grain, Math.ceil(due))));
    } else if (this.open.head !== undefined) {
      this.#arm(this.grain);
    }
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
  bucket: Bucket | undefined = undefined;
  controller: AbortController | undefined = undefined;
  readonly wheel: Wheel;
  readonly what: string;
  readonly context: Dispatch;
  resolve: (value: unknown) => void = noop;
  reject: (error: unknown) => void = noop;

  constructor(wheel: Wheel, what: string, context: Dispatch) {
    this.wheel = wheel;
    this.what = what;
    this.context = context;
  }

  /** The handler's signal, made only when it asks for it. */
  signal(): AbortSignal {
    if (this.controller === undefined) this.controller = new AbortController();
    return this.controller.signal;
  }

  #unlink(): boolean {
    const bucket = this.bucket;
    if (bucket === undefined) return false;
    this.bucket = undefined;
    if (this.prev === undefined) bucket.head = this.next;
    else this.prev.next = this.next;
    if (this.next === undefined) bucket.tail = this.prev;
    else this.next.prev = this.prev;
    this.prev = undefined;
    this.next = undefined;
    this.context.endDeadline(this);
    return true;
  }

  readonly settle = (value: unknown): void => {
    if (this.#unlink()) this.resolve(value);
  };

  readonly fail = (error: unknown): void => {
    if (this.#unlink()) this.reject(error);
  };

  expire(): void {
    const error = new TimeoutError(this.what, this.wheel.ms);
    this.prev = undefined;
    this.next = undefined;
    this.bucket = undefined;
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
  const entry = new Deadline(wheel, what, context);
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
