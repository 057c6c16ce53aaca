import type { StorageFailureReason } from '@cqrs-ts/core';
import { createStorageErrorMapper } from '@cqrs-ts/core/spi';

/** Classifies a mysql2 / Kysely error into a core {@link StorageFailureReason}. */
export function classifyMysqlError(error: unknown): StorageFailureReason {
  const e = error as { code?: unknown; errno?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (e?.errno === 1146 || code === 'ER_NO_SUCH_TABLE') return 'missing-table';
  if (e?.errno === 1213 || code === 'ER_LOCK_DEADLOCK') return 'deadlock';
  if (e?.errno === 1205 || code === 'ER_LOCK_WAIT_TIMEOUT') return 'timeout';
  if (e?.errno === 1062 || code === 'ER_DUP_ENTRY') return 'unique-violation';
  if (/closed state|already (been )?(committed|rolled back)|released/i.test(message))
    return 'closed-transaction';
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|PROTOCOL_CONNECTION_LOST|ER_SERVER_SHUTDOWN)$/.test(code)) {
    return 'connection';
  }
  return 'unknown';
}

/**
 * Wraps a native error as a `StorageError` classified by {@link classifyMysqlError}; passes cqrs-ts errors
 * through. @internal
 */
export const toStorageError: (error: unknown, what: string) => Error = createStorageErrorMapper(
  'mysql',
  classifyMysqlError,
);
