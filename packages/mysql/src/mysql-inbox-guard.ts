import type { InboxGuard, InboxStore } from '@cqrs-ts/core';
import { processOnce } from '@cqrs-ts/core';
import { toStorageError } from './mysql-errors.ts';
import { createMysqlInboxStore } from './mysql-inbox-store.ts';
import type { KyselyMysql, Mysql2Pool, MysqlTables, MysqlTransaction } from './mysql-options.ts';

/** Options of {@link createMysqlInboxGuard}. */
export interface MysqlInboxGuardOptions {
  /** A mysql2/promise pool or a Kysely instance; transactions are opened on it. */
  readonly client: Mysql2Pool | KyselyMysql;
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
  const once = async (
    tx: MysqlTransaction,
    id: string,
    consumer: string,
    work: (tx: MysqlTransaction) => Promise<void>,
  ) => (await processOnce(store, tx, id, consumer, work)).status === 'processed';

  if ('transaction' in client && typeof client.transaction === 'function') {
    const k = client;
    return { once: (id, consumer, work) => k.transaction().execute((trx) => once(trx, id, consumer, work)) };
  }
  const pool = client as Mysql2Pool;
  return {
    async once(id, consumer, work) {
      let conn: Awaited<ReturnType<Mysql2Pool['getConnection']>>;
      try {
        conn = await pool.getConnection();
      } catch (error) {
        throw toStorageError(error, 'inbox connect');
      }
      try {
        await conn.query('START TRANSACTION');
        const ran = await once(conn, id, consumer, work);
        await conn.query('COMMIT');
        return ran;
      } catch (error) {
        await conn.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        conn.release();
      }
    },
  };
}
