import { CancelledError, isCqrsError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';
import type { BackoffOptions } from '../mediator/handler.ts';

/** Options of {@link retry}. Per-handler `retries`, `backoff` and `retryOn` override them. */
export interface RetryOptions {
  /** Total attempts including the first. Default 1 (no retry) unless the handler sets `retries`. */
  readonly maxAttempts?: number;
  readonly backoff?: BackoffOptions;
  /** Decides which errors are retried. Default: everything except validation, authorization, not-found and cancellation. */
  readonly retryOn?: (error: unknown) => boolean;
  /** Called before each new attempt. */
  readonly onRetry?: (info: {
    messageType: string;
    attempt: number;
    delayMs: number;
    error: unknown;
  }) => void;
  readonly target?: BehaviorTarget;
  /** @internal Source of randomness, for tests. */
  readonly random?: () => number;
}

const NOT_RETRIED = new Set([
  'CQRS_VALIDATION',
  'CQRS_AUTHORIZATION',
  'CQRS_HANDLER_NOT_FOUND',
  'CQRS_CANCELLED',
  'CQRS_WRONG_MESSAGE_KIND',
  'CQRS_INVALID_MESSAGE',
]);

/** The default retry filter. */
export function isRetryable(error: unknown): boolean {
  return !(isCqrsError(error) && NOT_RETRIED.has(error.code));
}

/** Delay before attempt `attempt + 1`, in ms. */
export function backoffDelay(
  attempt: number,
  backoff: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = backoff.initialMs ?? 100;
  const max = backoff.maxMs ?? 10_000;
  const factor = backoff.factor ?? 2;
  const computed = Math.min(max, initial * factor ** (attempt - 1));
  return backoff.jitter === 'none' ? computed : Math.floor(random() * computed);
}

/** Waits `ms`, or rejects with a CancelledError when the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CancelledError('wait', { cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError('wait', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Retries failed attempts with exponential backoff and jitter. Each attempt runs every inner behavior and the
 * handler again; `context.attempt` tells which one it is. Waiting stops when the dispatch is aborted. Handlers
 * whose attempts resolve to 1 skip this behavior entirely.
 */
export function retry(options: RetryOptions = {}): Behavior {
  const random = options.random ?? Math.random;
  return createBehavior(
    'retry',
    (handler) => {
      const attempts = handler.options.retries ?? options.maxAttempts ?? 1;
      if (attempts <= 1) return undefined;
      const backoff = handler.options.backoff ?? options.backoff;
      const retryOn = handler.options.retryOn ?? options.retryOn ?? isRetryable;
      const middleware: Middleware = async (message, context, next) => {
        for (let attempt = 1; ; attempt++) {
          context.attempt = attempt;
          try {
            return await next(message, context);
          } catch (error) {
            if (attempt >= attempts || !retryOn(error) || context.signal.aborted) throw error;
            const delayMs = backoffDelay(attempt, backoff, random);
            options.onRetry?.({ messageType: message.type, attempt, delayMs, error });
            await sleep(delayMs, context.signal);
          }
        }
      };
      return middleware;
    },
    options.target,
  );
}
