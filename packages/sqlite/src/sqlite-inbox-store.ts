import type { InboxStore } from '@cqrs-ts/core/spi';
import { createSqlInboxStore } from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { toStorageError } from './sqlite-errors.ts';
import type { SqliteDatabase, SqliteInboxStoreOptions } from './sqlite-options.ts';

/**
 * The SQLite {@link InboxStore}: `markProcessed(db, …)` inserts into the inbox table on the caller's
 * connection, inside the transaction that also holds the handler's effects.
 */
export function createSqliteInboxStore(options: SqliteInboxStoreOptions): InboxStore<SqliteDatabase> {
  const t = resolveTables(options.tables).inbox;
  const insert = `INSERT INTO ${t} (message_id, consumer, processed_at, source) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`;
  const purgeSql = `DELETE FROM ${t} WHERE processed_at < ?`;
  return createSqlInboxStore({
    insert: (tx, messageId, consumer, now, source) =>
      Number(tx.prepare(insert).run(messageId, consumer, now, source).changes),
    purge: (before) => Number(options.database.prepare(purgeSql).run(before).changes),
    toStorageError,
  });
}
