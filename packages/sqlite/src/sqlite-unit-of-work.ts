import { ConfigurationError, type UnitOfWork } from '@cqrs-ts/core';
import {
  createUnitOfWork,
  type IdempotencyStore,
  type OutboxStore,
  type TransactionRunner,
} from '@cqrs-ts/core/spi';
import { serialize } from './sqlite-connection-lock.ts';
import { toStorageError } from './sqlite-errors.ts';
import { createSqliteIdempotencyStore } from './sqlite-idempotency-store.ts';
import type { SqliteDatabase, SqliteTables } from './sqlite-options.ts';

/** Options of {@link createSqliteUnitOfWork}. */
export interface SqliteUnitOfWorkOptions<TDatabase extends SqliteDatabase> {
  /**
   * The connection handlers write with (a node:sqlite `DatabaseSync`, with `PRAGMA busy_timeout` set when other
   * processes write the file). Commands' transactions run on it one after another.
   */
  readonly database: TDatabase;
  /** The outbox the events are appended to: a `createSqliteOutboxStore` store over the same file. */
  readonly outbox: OutboxStore<SqliteDatabase>;
  /**
   * Where the results of commands with an idempotency key are kept; `false` refuses such commands.
   * @default a `createSqliteIdempotencyStore` over `database` and `tables.inbox`
   */
  readonly idempotency?: IdempotencyStore<SqliteDatabase> | false;
  /** `inbox` names the table of the default idempotency store. */
  readonly tables?: SqliteTables;
  /** Largest serialized result kept for replay, in UTF-8 bytes. @default 1 MiB */
  readonly maxResultBytes?: number;
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
  const exec = (sql: string, what: string) => {
    try {
      db.exec(sql);
    } catch (error) {
      throw toStorageError(error, what);
    }
  };
  const transactions: TransactionRunner<SqliteDatabase> = {
    exclusive: true,
    run: (work) =>
      serialize(db, async () => {
        exec('BEGIN IMMEDIATE', 'unit of work begin');
        let result: Awaited<ReturnType<typeof work>>;
        try {
          result = await work(db);
        } catch (error) {
          try {
            db.exec('ROLLBACK');
          } catch {
            // the transaction is already gone
          }
          throw error;
        }
        try {
          db.exec('COMMIT');
        } catch (error) {
          try {
            db.exec('ROLLBACK');
          } catch {
            // the transaction is already gone
          }
          throw toStorageError(error, 'unit of work commit');
        }
        return result;
      }),
  };
  const idempotency =
    options.idempotency === false
      ? undefined
      : (options.idempotency ??
        createSqliteIdempotencyStore({
          database: db,
          ...(options.tables !== undefined ? { tables: options.tables } : {}),
        }));
  return createUnitOfWork({
    name: 'sqlite unit of work',
    transactions,
    outbox: options.outbox,
    ...(idempotency !== undefined ? { idempotency } : {}),
    ...(options.maxResultBytes !== undefined ? { maxResultBytes: options.maxResultBytes } : {}),
  }) as unknown as UnitOfWork<TDatabase>;
}
