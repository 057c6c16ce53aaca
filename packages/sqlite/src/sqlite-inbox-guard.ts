import { createInboxGuard, type InboxGuard, type InboxStore } from '@cqrs-ts/core/spi';
import { toStorageError } from './sqlite-errors.ts';
import { createSqliteInboxStore } from './sqlite-inbox-store.ts';
import type { SqliteDatabase, SqliteTables } from './sqlite-options.ts';

/** Options of {@link createSqliteInboxGuard}. */
export interface SqliteInboxGuardOptions {
  /** The connection the handlers write with; the guard opens its transactions on it. */
  readonly database: SqliteDatabase;
  readonly tables?: SqliteTables;
  /** Use this store instead of creating one from `database` and `tables`. */
  readonly store?: InboxStore<SqliteDatabase>;
}

/**
 * An {@link InboxGuard} for broker consumers on SQLite: each message's handler runs inside `BEGIN IMMEDIATE …
 * COMMIT` on `database`, together with its inbox mark, so a redelivered message has no second effect.
 *
 * A SQLite connection has one transaction at a time, so the guard runs messages one after another (a queue per
 * guard); handlers must write through this same connection (`consumerTransaction()` returns it) and should not
 * share it with unrelated concurrent work while a message is being handled.
 */
export function createSqliteInboxGuard(options: SqliteInboxGuardOptions): InboxGuard<SqliteDatabase> {
  const db = options.database;
  const store =
    options.store ??
    createSqliteInboxStore({
      database: db,
      ...(options.tables !== undefined ? { tables: options.tables } : {}),
    });
  return createInboxGuard({
    store,
    async transaction(fn) {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(db);
        db.exec('COMMIT');
        return result;
      } catch (error) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // the transaction is already gone
        }
        throw error;
      }
    },
    toStorageError,
    serial: true,
  });
}
