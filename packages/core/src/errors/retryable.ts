import { isCqrsError } from './cqrs-error.ts';

/** Codes of errors that fail the same way however often they are retried. */
const PERMANENT = new Set<string>([
  'CQRS_VALIDATION',
  'CQRS_AUTHORIZATION',
  'CQRS_HANDLER_NOT_FOUND',
  'CQRS_DUPLICATE_HANDLER',
  'CQRS_MISSING_HANDLER',
  'CQRS_WRONG_MESSAGE_KIND',
  'CQRS_INVALID_MESSAGE',
  'CQRS_CANCELLED',
  'CQRS_SERIALIZATION',
  'CQRS_UNKNOWN_MESSAGE_TYPE',
  'CQRS_CONFIGURATION',
  'CQRS_EVENT_DEPTH_EXCEEDED',
  'CQRS_NO_HANDLER_ANSWERED',
  'CQRS_PAYLOAD_TOO_LARGE',
  'CQRS_ENVELOPE',
  'CQRS_IDEMPOTENCY_CONFLICT',
  // The caller asked not to wait for the first run (retrying in process would be waiting).
  'CQRS_IDEMPOTENCY_IN_FLIGHT',
  'CQRS_NOT_FOUND',
]);

/**
 * The one retryability rule, shared by the `retry` behavior, the broker message processor and the saga engine:
 * an error is worth retrying unless it is a cqrs-ts error that fails the same way every time (validation,
 * authorization, a missing handler, a wrong or undecodable message, a configuration mistake, a cancellation).
 * A cqrs-ts error that says it itself (`retryable: false`, e.g. a unique violation in a {@link StorageError})
 * is believed. An {@link EventDispatchError} is retryable when one of its handlers' errors is, a
 * {@link ProcessingError} when its cause is. Anything else (a driver error, a `TypeError` thrown by a handler)
 * is retried.
 */
export function isRetryable(error: unknown): boolean {
  return retryable(error, 0);
}

function retryable(error: unknown, depth: number): boolean {
  if (!isCqrsError(error)) return true;
  const own = (error as { retryable?: unknown }).retryable;
  if (typeof own === 'boolean') return own;
  if (PERMANENT.has(error.code)) return false;
  if (depth > 8) return true;
  if (error.code === 'CQRS_EVENT_DISPATCH') {
    const errors = (error as { errors?: readonly unknown[] }).errors ?? [];
    return errors.length === 0 || errors.some((e) => retryable(e, depth + 1));
  }
  if (error.code === 'CQRS_PROCESSING') return retryable(error.cause, depth + 1);
  return true;
}
