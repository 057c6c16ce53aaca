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

/** A statement and its values, for mysql2's client-side `?` placeholders. @internal */
export interface Statement {
  readonly sql: string;
  readonly values: readonly unknown[];
}

/** mysql2 transactions of {@link inTransaction} whose START TRANSACTION was left to their first statement. */
const pendingBegins = new WeakSet<object>();
/** Statements a mysql2 transaction of {@link inTransaction} sends with its COMMIT (MariaDB), by connection. */
const commitTails = new WeakMap<object, Statement[]>();
/** mysql2 transactions of {@link inTransaction} a statement already committed. */
const ended = new WeakSet<object>();

/**
 * `true` once for a mysql2 transaction of {@link inTransaction} opened with `beginWithFirst` and no statement
 * yet: the caller then starts the transaction with its statement, in the same round trip. @internal
 */
export function takeBegin(tx: MysqlTransaction): boolean {
  return pendingBegins.delete(tx);
}

/** Tells {@link inTransaction} that a statement of `tx` committed it: no COMMIT follows. @internal */
export function markCommitted(tx: MysqlTransaction): void {
  ended.add(tx);
}

/**
 * Queues `statement` to run in the COMMIT's round trip of the mysql2 transaction `tx`, in a MariaDB compound
 * statement (`BEGIN NOT ATOMIC … COMMIT; END`), and is `true`; is `false` when `tx` is no such transaction, so
 * the caller runs the statement itself. Only for a server known to take compound statements. A failing
 * statement fails the commit: the transaction rolls back. @internal
 */
export function sendWithCommit(tx: MysqlTransaction, statement: Statement): boolean {
  const tail = commitTails.get(tx);
  if (tail === undefined) return false;
  tail.push(statement);
  return true;
}

/** Runs now the statements queued by {@link sendWithCommit} on `tx`, so a read in `tx` sees them. @internal */
export async function flushCommitTail(tx: MysqlTransaction): Promise<void> {
  const tail = commitTails.get(tx);
  if (tail === undefined || tail.length === 0) return;
  const statements = tail.splice(0);
  for (const st of statements) await execOf(tx)(st.sql, st.values);
}

/**
 * Runs `fn` in a transaction on a connection of the client's own; `fn` also gets the transaction itself (a
 * mysql2 connection or a Kysely `Transaction`), e.g. for an outbox store's `append`. With `beginWithFirst`, the
 * first statement of `fn` goes through {@link takeBegin} (an idempotency claim) and starts the transaction on a
 * mysql2 connection. @internal
 */
export async function inTransaction<T>(
  client: MysqlClient,
  fn: (execute: Execute, tx: MysqlTransaction) => Promise<T>,
  beginWithFirst = false,
): Promise<T> {
  if ('transaction' in client && typeof client.transaction === 'function') {
    return client.transaction().execute((trx) => fn(execOf(trx), trx));
  }
  const conn = await (
    client as { getConnection(): Promise<Mysql2Queryable & { release(): void }> }
  ).getConnection();
  const tail: Statement[] = [];
  try {
    if (beginWithFirst) pendingBegins.add(conn);
    else await conn.query('START TRANSACTION');
    commitTails.set(conn, tail);
    const r = await fn(execOf(conn), conn);
    commitTails.delete(conn);
    if (takeBegin(conn)) throw new Error('a mysql2 transaction ended before its first statement started it');
    if (ended.delete(conn)) return r;
    if (tail.length === 0) await conn.query('COMMIT');
    else {
      // The result of an idempotent command goes in the COMMIT's round trip.
      await conn.query(
        `BEGIN NOT ATOMIC ${tail.map((st) => `${st.sql};`).join(' ')} COMMIT; END`,
        tail.flatMap((st) => st.values),
      );
    }
    return r;
  } catch (error) {
    commitTails.delete(conn);
    ended.delete(conn);
    if (!takeBegin(conn)) await conn.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    conn.release();
  }
}
