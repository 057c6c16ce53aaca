import { createInboxGuard, type InboxGuard, type InboxStore } from '@cqrs-ts/core/spi';
import { toStorageError } from './mysql-errors.ts';
import { inTransaction } from './mysql-executor.ts';
import { createMysqlInboxStore } from './mysql-inbox-store.ts';
import type { MysqlClient, MysqlTables, MysqlTransaction } from './mysql-options.ts';

/** Options of {@link createMysqlInboxGuard}. */
export interface MysqlInboxGuardOptions {
  /** A mysql2/promise pool or a Kysely instance; transactions are opened on it. */
  readonly client: MysqlClient;
  readonly tables?: MysqlTables;
  /** Use this store instead of creating one from `client` and `tables`. */
  readonly store?: InboxStore<MysqlTransaction>;
}

/**
 * An {@link InboxGuard} for broker consumers on MySQL/MariaDB: each message's handler runs in one transaction
 * with its inbox mark, so a redelivered message has no second effect. Handlers reach the transaction (a mysql2
 * connection or a Kysely `Transaction`) with `consumerTransaction()`.
 */
export function createMysqlInboxGuard(options: MysqlInboxGuardOptions): InboxGuard<MysqlTransaction> {
  const client = options.client;
  const store =
    options.store ??
    createMysqlInboxStore({ client, ...(options.tables !== undefined ? { tables: options.tables } : {}) });
  return createInboxGuard({
    store,
    transaction: (fn) => inTransaction(client, (_execute, tx) => fn(tx)),
    toStorageError,
  });
}
