import type { InboxStore } from '@cqrs-ts/core/spi';
import { createSqlInboxStore } from '@cqrs-ts/core/sql';
import { toStorageError } from './mysql-errors.ts';
import { execOf } from './mysql-executor.ts';
import type { MysqlInboxStoreOptions, MysqlTransaction } from './mysql-options.ts';
import { resolveTables } from './schema.ts';

/**
 * The MariaDB/MySQL {@link InboxStore}: `markProcessed(tx, …)` is `INSERT IGNORE` on the caller's transaction;
 * a concurrent duplicate waits on the primary-key lock and is then skipped.
 */
export function createMysqlInboxStore(options: MysqlInboxStoreOptions): InboxStore<MysqlTransaction> {
  const t = resolveTables(options.tables).inbox;
  const insert = `INSERT IGNORE INTO ${t} (message_id, consumer, processed_at, source) VALUES (?, ?, ?, ?)`;
  const purgeSql = `DELETE FROM ${t} WHERE processed_at < ?`;
  return createSqlInboxStore({
    insert: async (tx, messageId, consumer, now, source) =>
      (await execOf(tx)(insert, [messageId, consumer, now, source])).count,
    purge: async (before) => (await execOf(options.client)(purgeSql, [before])).count,
    toStorageError,
  });
}
