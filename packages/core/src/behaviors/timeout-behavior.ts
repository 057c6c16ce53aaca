import { CancelledError, TimeoutError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';
import { NEVER_ABORTED } from '../shared/abort.ts';

/** Options of {@link timeout}. */
export interface TimeoutOptions {
  /** Default budget in ms for handlers without their own `timeout`. Omit for no default. */
  readonly defaultMs?: number;
  readonly target?: BehaviorTarget;
}

/**
 * Gives each attempt a time budget: the handler's `timeout`, the dispatch's `timeout` option, or `defaultMs`.
 * The handler receives an AbortSignal (`context.signal`) that aborts when the budget expires or the caller
 * aborts; the dispatch then fails with a {@link TimeoutError} (or {@link CancelledError}) at once, without
 * waiting for a handler that ignores the signal. Place it inside `retry` to bound each attempt.
 */
export function timeout(options: TimeoutOptions = {}): Behavior {
  return createBehavior(
    'timeout',
    (handler) => {
      const handlerMs = handler.options.timeout ?? options.defaultMs;
      const what = `${handler.messageType} (${handler.name})`;
      const middleware: Middleware = (message, context, next) => {
        const ms = context.timeout ?? handlerMs;
        const outer = context.signal;
        if (ms === undefined && outer === NEVER_ABORTED) return next(message, context);
        const controller = new AbortController();
        return new Promise((resolve, reject) => {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const onOuterAbort = () => {
            const error = new CancelledError(message.type, { cause: outer.reason });
            controller.abort(error);
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
      };
      return middleware;
    },
    options.target,
  );
}
