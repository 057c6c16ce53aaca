import type { InboxStore } from '@cqrs-ts/core/spi';
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
  const insert = `INSERT INTO ${t} (message_id, consumer, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`;
  return {
    async markProcessed(tx, messageId, consumer, now) {
      try {
        return (await execOf(tx)(insert, [messageId, consumer, now])).count === 1;
      } catch (error) {
        throw toStorageError(error, 'inbox markProcessed');
      }
    },
    async purge(before) {
      try {
        return (await execOf(options.client)(`DELETE FROM ${t} WHERE processed_at < $1`, [before])).count;
      } catch (error) {
        throw toStorageError(error, 'inbox purge');
      }
    },
  };
}
