import type { InboxStore } from '@cqrs-ts/core/spi';
import { resolveTables } from './schema.ts';
import { toStorageError } from './sqlite-errors.ts';
import type { SqliteDatabase, SqliteInboxStoreOptions } from './sqlite-options.ts';

/**
 * The SQLite {@link InboxStore}: `markProcessed(db, …)` inserts into the inbox table on the caller's
 * connection, inside the transaction that also holds the handler's effects.
 */
export function createSqliteInboxStore(options: SqliteInboxStoreOptions): InboxStore<SqliteDatabase> {
  const t = resolveTables(options.tables).inbox;
  const insert = `INSERT INTO ${t} (message_id, consumer, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`;
  return {
    async markProcessed(tx, messageId, consumer, now) {
      try {
        return Number(tx.prepare(insert).run(messageId, consumer, now).changes) === 1;
      } catch (error) {
        throw toStorageError(error, 'inbox markProcessed');
      }
    },
    async purge(before) {
      try {
        return Number(
          options.database.prepare(`DELETE FROM ${t} WHERE processed_at < ?`).run(before).changes,
        );
      } catch (error) {
        throw toStorageError(error, 'inbox purge');
      }
    },
  };
}
