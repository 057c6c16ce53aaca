import { executeKyselyQuery } from '@cqrs-ts/core/sql';
import type { KyselyExecutor, PgQueryable, PostgresClient, PostgresJsSql } from './postgres-options.ts';

/** Uniform query function over the supported clients. @internal */
export type Execute = (
  sql: string,
  params: readonly unknown[],
  /** Hot, fixed-shape statements: node-postgres prepares them once per connection (named statement). */
  prepare?: boolean,
) => Promise<{ rows: Record<string, unknown>[]; count: number }>;

const names = new Map<string, string>();
const MAX_NAMES = 512;
const plannedEachTime = new Set<string>();

/**
 * Marks `sql` to run unnamed, so PostgreSQL plans it with its values on every execution instead of reusing a
 * generic plan made when the table was small (the plan of a claim must follow the backlog). Returns `sql`.
 * @internal
 */
export function planEachTime(sql: string): string {
  plannedEachTime.add(sql);
  return sql;
}

/**
 * A stable prepared-statement name per SQL text, so node-postgres parses and plans each statement once per
 * connection (none for a statement of {@link planEachTime}). Bounded: past {@link MAX_NAMES} distinct texts, new
 * ones run unnamed. @internal
 */
export function statementName(sql: string): string | undefined {
  if (plannedEachTime.has(sql)) return undefined;
  let name = names.get(sql);
  if (name === undefined) {
    if (names.size >= MAX_NAMES) return undefined;
    name = `cqrs_${names.size}`;
    names.set(sql, name);
  }
  return name;
}

/** Adapts pg, postgres.js or Kysely to {@link Execute}, by shape. @internal */
export function executorOf(client: PostgresClient): Execute {
  if (typeof (client as KyselyExecutor).executeQuery === 'function') {
    const k = client as KyselyExecutor;
    return (sql, parameters) => executeKyselyQuery(k, sql, parameters);
  }
  if (typeof (client as PostgresJsSql).unsafe === 'function') {
    const s = client as PostgresJsSql;
    return async (sql, parameters) => {
      const r = await s.unsafe(sql, parameters as unknown[]);
      return { rows: r as unknown as Record<string, unknown>[], count: r.count };
    };
  }
  const p = client as PgQueryable;
  return async (sql, parameters) => {
    const r = await p.query({
      name: statementName(sql),
      text: sql,
      values: parameters as unknown[],
    } as never);
    return { rows: r.rows as Record<string, unknown>[], count: r.rowCount ?? 0 };
  };
}

/** Statements a pg transaction of {@link transactionOf} sends with its COMMIT, by connection. */
const commitTails = new WeakMap<object, string[]>();

/**
 * Queues `sql` (a statement with its values inlined, see {@link pgLiteral}) to run in the same round trip as
 * the COMMIT of the pg transaction `tx`, and is `true`; is `false` when `tx` is no such transaction, so the
 * caller runs the statement itself. A failing statement fails the commit: the transaction rolls back. @internal
 */
export function sendWithCommit(tx: PostgresClient, sql: string): boolean {
  const tail = commitTails.get(tx as object);
  if (tail === undefined) return false;
  tail.push(sql);
  return true;
}

/** pg transactions of {@link transactionOf} whose BEGIN was left to their first statement. */
const pendingBegins = new WeakSet<object>();

/**
 * `true` once for a pg transaction of {@link transactionOf} opened with `beginWithFirst` and no statement yet:
 * the caller then sends `BEGIN` in front of its statement, in the same round trip. @internal
 */
export function takeBegin(tx: PostgresClient): boolean {
  return pendingBegins.delete(tx as object);
}

/** Runs now the statements queued by {@link sendWithCommit} on `tx`, so a read in `tx` sees them. @internal */
export async function flushCommitTail(tx: PostgresClient): Promise<void> {
  const tail = commitTails.get(tx as object);
  if (tail === undefined || tail.length === 0) return;
  const text = tail.join('; ');
  tail.length = 0;
  await (tx as PgQueryable).query(text);
}

/**
 * `value` as a PostgreSQL string literal, safe whatever `standard_conforming_strings` is (the rule of pg's
 * `escapeLiteral`). @internal
 */
export function pgLiteral(value: string): string {
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * Runs `fn` in a transaction on a connection of its own, or is `undefined` when the client cannot. `fn` also
 * gets the transaction as a client (a pg `PoolClient`, a postgres.js transaction `sql` or a Kysely
 * `Transaction`), e.g. to hand it to an outbox store's `append`. @internal
 */
export type Transact = <T>(
  fn: (execute: Execute, tx: PostgresClient) => Promise<T>,
  /**
   * The first statement of `fn` goes through {@link takeBegin} (an idempotency claim): on a pg pool, `BEGIN`
   * is sent with it instead of in a round trip of its own. @default false
   */
  beginWithFirst?: boolean,
) => Promise<T>;

/** A transaction runner for a pg `Pool`, a postgres.js `sql` or a Kysely instance; `undefined` otherwise. @internal */
export function transactionOf(client: PostgresClient): Transact | undefined {
  const c = client as unknown as {
    transaction?: () => { execute<T>(fn: (trx: unknown) => Promise<T>): Promise<T> };
    begin?: <T>(fn: (sql: unknown) => Promise<T>) => Promise<T>;
    connect?: () => Promise<PgQueryable & { release(error?: Error | boolean): void }>;
    executeQuery?: unknown;
    release?: unknown;
  };
  if (typeof c.executeQuery === 'function') {
    if (typeof c.transaction !== 'function') return undefined;
    const k = c as Required<Pick<typeof c, 'transaction'>>;
    return (fn) =>
      k.transaction().execute((trx) => fn(executorOf(trx as KyselyExecutor), trx as KyselyExecutor));
  }
  if (typeof c.begin === 'function') {
    const begin = c.begin.bind(c);
    return (fn) => begin((sql) => fn(executorOf(sql as PostgresJsSql), sql as PostgresJsSql));
  }
  // A pg Pool has connect() and no release(); a checked-out PoolClient or a Client is not a pool.
  if (typeof c.connect === 'function' && typeof c.release !== 'function' && !('connection' in c)) {
    const connect = c.connect.bind(c);
    return async (fn, beginWithFirst) => {
      const conn = await connect();
      let broken = false;
      // pg hands out a checked-out client with no 'error' listener: a connection that drops between two queries
      // (a server restart, a killed backend) would be an uncaught 'error' event and end the process. The next
      // query fails instead, and the broken client is discarded on release.
      const onError = () => {
        broken = true;
      };
      const events = conn as {
        on?(event: 'error', l: () => void): unknown;
        off?(event: 'error', l: () => void): unknown;
      };
      events.on?.('error', onError);
      const tail: string[] = [];
      try {
        if (beginWithFirst === true) pendingBegins.add(conn);
        else await conn.query('BEGIN');
        commitTails.set(conn, tail);
        const result = await fn(executorOf(conn), conn);
        commitTails.delete(conn);
        if (takeBegin(conn)) throw new Error('a pg transaction ended before its first statement sent BEGIN');
        // Writes queued by sendWithCommit (an idempotency result) go in the COMMIT's round trip.
        await conn.query(tail.length === 0 ? 'COMMIT' : `${tail.join('; ')}; COMMIT`);
        return result;
      } catch (error) {
        commitTails.delete(conn);
        try {
          // Not begun (its first statement never ran): nothing to roll back.
          if (!takeBegin(conn)) await conn.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw error;
      } finally {
        events.off?.('error', onError);
        conn.release(broken);
      }
    };
  }
  return undefined;
}
