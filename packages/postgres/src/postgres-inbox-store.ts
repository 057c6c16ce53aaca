import type { InboxStore } from '@cqrs-ts/core/spi';
import { createSqlInboxStore } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import type { PostgresClient, PostgresInboxStoreOptions } from './postgres-options.ts';
import { execOf } from './postgres-outbox-store.ts';
import { resolveTables } from './schema.ts';

/**
 * The PostgreSQL {@link InboxStore}: `markProcessed(tx, …)` is `INSERT … ON CONFLICT DO NOTHING` on the
 * caller's transaction; a concurrent duplicate waits for the first transaction and is then skipped.
 */
export function createPostgresInboxStore(options: PostgresInboxStoreOptions): InboxStore<PostgresClient> {
  const t = resolveTables(options.tables).inbox;
  const insert = `INSERT INTO ${t} (message_id, consumer, processed_at, source) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`;
  const purgeSql = `DELETE FROM ${t} WHERE processed_at < $1`;
  return createSqlInboxStore({
    insert: async (tx, messageId, consumer, now, source) =>
      (await execOf(tx)(insert, [messageId, consumer, now, source])).count,
    purge: async (before) => (await execOf(options.client)(purgeSql, [before])).count,
    toStorageError,
  });
}
