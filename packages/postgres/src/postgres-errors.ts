import type { StorageFailureReason } from '@cqrs-ts/core';
import { createStorageErrorMapper } from '@cqrs-ts/core/spi';

/** Classifies a pg / postgres.js / Kysely error into a core {@link StorageFailureReason}. */
export function classifyPostgresError(error: unknown): StorageFailureReason {
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  if (code === '42P01') return 'missing-table';
  if (code === '40P01' || code === '40001') return 'deadlock';
  if (code === '23505') return 'unique-violation';
  if (code === '57014' || code === '55P03') return 'timeout';
  if (
    code === '25P02' ||
    /already (been )?(committed|rolled back)|released|after calling end/i.test(message)
  ) {
    return 'closed-transaction';
  }
  if (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|CONNECTION_\w+)$/.test(code) ||
    /Connection terminated|connection (closed|ended)|terminating connection|is not queryable/i.test(message)
  ) {
    return 'connection';
  }
  return 'unknown';
}

/**
 * Wraps a native error as a `StorageError` classified by {@link classifyPostgresError}; passes cqrs-ts errors
 * through. @internal
 */
export const toStorageError: (error: unknown, what: string) => Error = createStorageErrorMapper(
  'postgres',
  classifyPostgresError,
);
