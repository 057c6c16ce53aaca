import type { StorageFailureReason } from '@cqrs-ts/core';
import { createStorageErrorMapper } from '@cqrs-ts/core/spi';

/** Classifies a node:sqlite error into a core {@link StorageFailureReason}. */
export function classifySqliteError(error: unknown): StorageFailureReason {
  const e = error as { message?: unknown; errcode?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' ? e.message : '';
  if (/no such table/i.test(message)) return 'missing-table';
  if (/database is locked|SQLITE_BUSY/i.test(message) || e?.errcode === 5) return 'timeout';
  if (/UNIQUE constraint failed/i.test(message)) return 'unique-violation';
  if (/database is not open|closed/i.test(message)) return 'closed-transaction';
  return 'unknown';
}

/**
 * Wraps a native error as a `StorageError` classified by {@link classifySqliteError}; passes cqrs-ts errors
 * through. @internal
 */
export const toStorageError: (error: unknown, what: string) => Error = createStorageErrorMapper(
  'sqlite',
  classifySqliteError,
);
