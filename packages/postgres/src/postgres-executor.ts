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

/** A pg transaction of {@link transactionOf}: statements for its COMMIT's round trip, and what stores keep in it. */
interface PgTransaction {
  readonly tail: string[];
  readonly locals: Map<object, unknown>;
}

/** The open pg transactions of {@link transactionOf}, by connection. */
const transactions = new WeakMap<object, PgTransaction>();

/**
 * Queues `sql` (a statement with its values inlined, see {@link pgLiteral}) to run in the same round trip as
 * the COMMIT of the pg transaction `tx`, and is `true`; is `false` when `tx` is no such transaction, so the
 * caller runs the statement itself. A failing statement fails the commit: the transaction rolls back. @internal
 */
export function sendWithCommit(tx: PostgresClient, sql: string): boolean {
  const open = transactions.get(tx as object);
  if (open === undefined) return false;
  open.tail.push(sql);
  return true;
}

/**
 * What `owner` keeps for the length of the pg transaction `tx` of {@link transactionOf}, made by `init` on first
 * use; `undefined` when `tx` is no such transaction. @internal
 */
export function transactionLocal<T>(tx: PostgresClient, owner: object, init: () => T): T | undefined {
  const open = transactions.get(tx as object);
  if (open === undefined) return undefined;
  let local = open.locals.get(owner) as T | undefined;
  if (local === undefined) {
    local = init();
    open.locals.set(owner, local);
  }
  return local;
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

/**
 * `value` as a PostgreSQL string literal, safe whatever `standard_conforming_strings` is (the rule of pg's
 * `escapeLiteral`). @internal
 */
export function pgLiteral(value: string): string {
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/** A value {@link createInlineStatements} inlines: a text, or an integer. @internal */
export type InlineValue = string | number;

/** A statement for a multi-statement query, from its text with each `$n` written by `param(n)`. @internal */
export interface InlineStatementSpec {
  /** The PostgreSQL types of the parameters, in order. */
  readonly types: readonly string[];
  readonly sql: (param: (n: number) => string) => string;
}

/**
 * Statements a store sends inside multi-statement queries (simple protocol, no parameters) on pg connections.
 * On a connection where the group is `PREPARE`d, each runs as `EXECUTE name(literals)`: parsed and planned once
 * per connection, like node-postgres's named statements. Elsewhere (and on a connection marked
 * {@link InlineStatements.failed}, e.g. one that lost its prepared statements) the values are inlined in the
 * statement's text. @internal
 */
export interface InlineStatements {
  /**
   * The `PREPARE …; ` statements of the group when `conn` has not prepared it yet (the group counts as prepared
   * there from now on; call {@link InlineStatements.failed} when the query carrying them fails), or `''`.
   */
  prepare(conn: PostgresClient): string;
  /** A query carrying {@link InlineStatements.prepare}'s text failed: `conn` inlines values from now on. */
  failed(conn: PostgresClient): void;
  /** Statement `index` of the group with `values`, for a query on `conn`. */
  text(conn: PostgresClient, index: number, values: readonly InlineValue[]): string;
}

const preparedGroups = new WeakMap<object, Set<number>>();
// Names differ between copies of this module sharing a connection (two versions of the package in one app).
const namePrefix = `cqrs_inline_${Math.random().toString(36).slice(2, 8)}`;
const inlineOnly = new WeakSet<object>();
let groupCount = 0;
const MAX_GROUPS = 64;

const inlineLiteral = (value: InlineValue): string =>
  typeof value === 'number' ? String(Math.trunc(value)) : pgLiteral(value);

/** Builds an {@link InlineStatements} group (past 64 groups in a process, new ones always inline). @internal */
export function createInlineStatements(specs: readonly InlineStatementSpec[]): InlineStatements {
  const group = groupCount < MAX_GROUPS ? groupCount++ : undefined;
  const names = specs.map((_, i) => `${namePrefix}_${group}_${i}`);
  const prepares = specs
    .map((s, i) => `PREPARE ${names[i]} (${s.types.join(', ')}) AS ${s.sql((n) => `$${n}`)}; `)
    .join('');
  const prepared = (conn: object) =>
    group !== undefined && !inlineOnly.has(conn) && preparedGroups.get(conn)?.has(group) === true;
  return {
    prepare(conn) {
      const c = conn as object;
      if (group === undefined || inlineOnly.has(c) || prepared(c)) return '';
      let set = preparedGroups.get(c);
      if (set === undefined) {
        set = new Set();
        preparedGroups.set(c, set);
      }
      set.add(group);
      return prepares;
    },
    failed(conn) {
      inlineOnly.add(conn as object);
    },
    text(conn, index, values) {
      if (prepared(conn as object)) return `EXECUTE ${names[index]}(${values.map(inlineLiteral).join(', ')})`;
      return specs[index]!.sql((n) => inlineLiteral(values[n - 1]!));
    },
  };
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
        transactions.set(conn, { tail, locals: new Map() });
        const result = await fn(executorOf(conn), conn);
        transactions.delete(conn);
        if (takeBegin(conn)) throw new Error('a pg transaction ended before its first statement sent BEGIN');
        // Writes queued by sendWithCommit (an idempotency result) go in the COMMIT's round trip.
        await conn.query(tail.length === 0 ? 'COMMIT' : `${tail.join('; ')}; COMMIT`);
        return result;
      } catch (error) {
        transactions.delete(conn);
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
