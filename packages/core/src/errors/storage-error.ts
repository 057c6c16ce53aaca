import { CqrsError, isCqrsError } from './cqrs-error.ts';

/** Why a storage operation failed, as classified by the adapter from the driver's native error. */
export const STORAGE_FAILURE_REASONS = [
  'connection',
  'deadlock',
  'unique-violation',
  'missing-table',
  'closed-transaction',
  'timeout',
  'unknown',
] as const;
export type StorageFailureReason = (typeof STORAGE_FAILURE_REASONS)[number];

/**
 * A database operation of a store (outbox, inbox, saga) failed. `reason` and `retryable` are the adapter's
 * classification of the native error (kept as `cause`); callers branch on them, never on driver codes.
 */
export class StorageError extends CqrsError {
  readonly reason: StorageFailureReason;
  readonly retryable: boolean;
  constructor(
    reason: StorageFailureReason,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super('CQRS_STORAGE', message, options);
    this.name = 'StorageError';
    this.reason = reason;
    this.retryable =
      options?.retryable ?? (reason === 'connection' || reason === 'deadlock' || reason === 'timeout');
  }
}

/** An event's serialized payload exceeds the store's `maxPayloadBytes`. Nothing was written. */
export class PayloadTooLargeError extends CqrsError {
  readonly messageType: string;
  readonly bytes: number;
  readonly maxBytes: number;
  constructor(messageType: string, bytes: number, maxBytes: number) {
    super(
      'CQRS_PAYLOAD_TOO_LARGE',
      `${messageType} serializes to ${bytes} bytes, more than the ${maxBytes} allowed`,
    );
    this.name = 'PayloadTooLargeError';
    this.messageType = messageType;
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

/**
 * Builds an adapter's `toStorageError(error, what)`: cqrs-ts errors pass through unchanged; anything else
 * becomes a {@link StorageError} whose reason comes from `classify`, named `<adapter> <what> failed (<reason>)`,
 * with the native error as `cause`.
 * @param adapter - names the adapter in messages, e.g. `postgres`.
 */
export function createStorageErrorMapper(
  adapter: string,
  classify: (error: unknown) => StorageFailureReason,
): (error: unknown, what: string) => Error {
  return (error, what) => {
    if (isCqrsError(error)) return error;
    const reason = classify(error);
    const message = error instanceof Error ? error.message : String(error);
    return new StorageError(reason, `${adapter} ${what} failed (${reason}): ${message}`, { cause: error });
  };
}
