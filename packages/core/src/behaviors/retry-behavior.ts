import { ConfigurationError } from '../errors/cqrs-error.ts';
import { isRetryable } from '../errors/retryable.ts';
import type { Behavior, BehaviorTarget, Middleware, Next } from '../mediator/behavior.ts';
import { policyBehavior } from '../mediator/behavior.ts';
import type { DispatchContext } from '../mediator/dispatch-context.ts';
import { checkBackoff, MAX_RETRIES } from '../mediator/handler.ts';
import type { AnyMessage } from '../messages/message.ts';
import { sleep } from '../shared/abort.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import { backoffDelay } from '../shared/backoff.ts';

/**
 * Options of {@link retry}. A handler's `retries` (retries after the first attempt), `backoff` and `retryOn`
 * override them.
 */
export interface RetryOptions {
  /**
   * Attempts in all, the first included, for handlers that set no `retries` (`maxAttempts: 3` is the same as a
   * handler's `retries: 2`). @default 1 (no retry)
   */
  readonly maxAttempts?: number;
  readonly backoff?: BackoffOptions;
  /** Decides which errors are retried. @default {@link isRetryable} (the rule the broker consumers use too) */
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

/**
 * Retries failed attempts with exponential backoff and jitter: a handler's `retries: N` gives N retries after
 * the first attempt (N + 1 calls at most). Each attempt runs every inner behavior and the handler again;
 * `context.attempt` tells which one it is. Errors for which `retryOn` is false (by default {@link isRetryable}:
 * validation, authorization and other permanent failures) fail at once. Waiting stops when the dispatch is
 * aborted. Handlers with no retry to do skip this behavior entirely. Enforces the `retry` policy.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a `maxAttempts` that is not an integer in 1..1001, or
 *   a malformed `backoff`.
 */
export function retry(options: RetryOptions = {}): Behavior {
  const random = options.random ?? Math.random;
  const max = options.maxAttempts;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1 && max <= MAX_RETRIES + 1)) {
    throw new ConfigurationError(
      `retry: maxAttempts must be an integer from 1 to ${MAX_RETRIES + 1} (attempts, the first included), got ${String(max)}`,
    );
  }
  if (options.backoff !== undefined) checkBackoff('retry', options.backoff);
  if (options.retryOn !== undefined && typeof options.retryOn !== 'function')
    throw new ConfigurationError('retry: retryOn must be a function (error) => boolean');
  return policyBehavior(
    'retry',
    (handler) => {
      const retries = handler.options.retries;
      const attempts = retries !== undefined ? retries + 1 : (max ?? 1);
      if (attempts <= 1) return undefined;
      const backoff = handler.options.backoff ?? options.backoff;
      const retryOn = handler.options.retryOn ?? options.retryOn ?? isRetryable;
      /** The attempts after a failed one (`failed` is its number): the slow path, once something failed. */
      const again = async (
        failed: number,
        error: unknown,
        message: AnyMessage,
        context: DispatchContext,
        next: Next,
      ): Promise<unknown> => {
        for (let attempt = failed; ; ) {
          if (attempt >= attempts || !retryOn(error) || context.signal.aborted) throw error;
          const delayMs = backoffDelay(attempt, backoff, random);
          options.onRetry?.({ messageType: message.type, attempt, delayMs, error });
          await sleep(delayMs, context.signal);
          context.attempt = ++attempt;
          try {
            return await next(message, context);
          } catch (failure) {
            error = failure;
          }
        }
      };
      // The first attempt is not an async function: a dispatch that succeeds at once pays one reaction, not an
      // async frame with its awaits.
      const middleware: Middleware = (message, context, next) => {
        context.attempt = 1;
        let pending: Promise<unknown>;
        try {
          pending = next(message, context);
        } catch (error) {
          return again(1, error, message, context, next);
        }
        // a middleware written in JavaScript may return a plain value: Promise.resolve keeps it
        if (!(pending instanceof Promise)) pending = Promise.resolve(pending);
        return pending.then(undefined, (error: unknown) => again(1, error, message, context, next));
      };
      return middleware;
    },
    options.target,
  );
}
