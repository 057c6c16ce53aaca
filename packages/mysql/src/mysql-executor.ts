import { executeKyselyQuery } from '@cqrs-ts/core/sql';
import type { KyselyMysqlExecutor, Mysql2Queryable, MysqlClient, MysqlTransaction } from './mysql-options.ts';

/** Uniform query function. @internal */
export type Execute = (
  sql: string,
  params: readonly unknown[],
) => Promise<{ rows: Record<string, unknown>[]; count: number }>;

const cache = new WeakMap<object, Execute>();

/** Adapts mysql2 or Kysely to {@link Execute}, by shape; cached per client. @internal */
export function execOf(client: MysqlTransaction | MysqlClient): Execute {
  let e = cache.get(client);
  if (e) return e;
  if (typeof (client as KyselyMysqlExecutor).executeQuery === 'function') {
    const k = client as KyselyMysqlExecutor;
    e = (sql, parameters) => executeKyselyQuery(k, sql, parameters);
  } else {
    const m = client as Mysql2Queryable;
    e = async (sql, parameters) => {
      const [result] = await m.query(sql, parameters as unknown[]);
      if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], count: result.length };
      return { rows: [], count: Number((result as { affectedRows?: number }).affectedRows ?? 0) };
    };
  }
  cache.set(client, e);
  return e;
}

/**
 * Runs `fn` in a transaction on a connection of the client's own; `fn` also gets the transaction itself (a
 * mysql2 connection or a Kysely `Transaction`), e.g. for an outbox store's `append`. @internal
 */
export async function inTransaction<T>(
  client: MysqlClient,
  fn: (execute: Execute, tx: MysqlTransaction) => Promise<T>,
): Promise<T> {
  if ('transaction' in client && typeof client.transaction === 'function') {
    return client.transaction().execute((trx) => fn(execOf(trx), trx));
  }
  const conn = await (
    client as { getConnection(): Promise<Mysql2Queryable & { release(): void }> }
  ).getConnection();
  try {
    await conn.query('START TRANSACTION');
    const r = await fn(execOf(conn), conn);
    await conn.query('COMMIT');
    return r;
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    conn.release();
  }
}
