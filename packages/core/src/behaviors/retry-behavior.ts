import { isCqrsError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';
import { sleep } from '../shared/abort.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import { backoffDelay } from '../shared/backoff.ts';

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
