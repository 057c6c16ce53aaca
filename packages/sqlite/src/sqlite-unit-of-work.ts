import { ConfigurationError, type UnitOfWork } from '@cqrs-ts/core';
import { createUnitOfWork, type TransactionRunner, type UnitOfWorkStoreOptions } from '@cqrs-ts/core/spi';
import { serialize } from './sqlite-connection-lock.ts';
import { toStorageError } from './sqlite-errors.ts';
import { createSqliteIdempotencyStore } from './sqlite-idempotency-store.ts';
import type { SqliteDatabase, SqliteTables } from './sqlite-options.ts';

/** Options of {@link createSqliteUnitOfWork}. */
export interface SqliteUnitOfWorkOptions<TDatabase extends SqliteDatabase>
  extends UnitOfWorkStoreOptions<SqliteDatabase> {
  /**
   * The connection handlers write with (a node:sqlite `DatabaseSync`, with `PRAGMA busy_timeout` set when other
   * processes write the file). Commands' transactions run on it one after another.
   */
  readonly database: TDatabase;
  /** `inbox` names the table of the default idempotency store. */
  readonly tables?: SqliteTables;
}

/**
 * The transaction behavior on SQLite: each command runs in `BEGIN IMMEDIATE … COMMIT` on `database`, which
 * the handler reaches as `unitOfWork.transaction(ctx)`; the events the handler recorded are appended to `outbox`
 * before the commit. A connection holds one transaction at a time, so commands' transactions are queued on it
 * (shared with every unit of work on the same connection). Idempotency keys are kept in the inbox table. Add it
 * to the mediator's behaviors inside `retry()` and `timeout()`.
 * @throws ConfigurationError when `database` is not a node:sqlite database, or `outbox` is missing
 */
export function createSqliteUnitOfWork<TDatabase extends SqliteDatabase>(
  options: SqliteUnitOfWorkOptions<TDatabase>,
): UnitOfWork<TDatabase> {
  const db = options?.database;
  if (typeof db?.exec !== 'function' || typeof db.prepare !== 'function') {
    throw new ConfigurationError('sqlite unit of work: database must be a node:sqlite DatabaseSync');
  }
  const transactions: TransactionRunner<SqliteDatabase> = {
    exclusive: true,
    run: (work) =>
      serialize(db, async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(db);
          db.exec('COMMIT');
          return result;
        } catch (error) {
          try {
            if (db.isTransaction !== false) db.exec('ROLLBACK');
          } catch {
            // the transaction is already gone
          }
          throw error;
        }
      }),
  };
  const tables = options.tables;
  return createUnitOfWork<SqliteDatabase>({
    ...options,
    name: 'sqlite unit of work',
    resource: db as object,
    transactions,
    toStorageError,
    idempotency:
      options.idempotency ??
      createSqliteIdempotencyStore({ database: db, ...(tables !== undefined ? { tables } : {}) }),
  }) as unknown as UnitOfWork<TDatabase>;
}
