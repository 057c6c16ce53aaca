import type { SagaCommit, SagaStore } from '@cqrs-ts/core/spi';
import {
  createSqlSagaStore,
  sagaAcquireParams,
  sagaCommitLease,
  sagaCountQuery,
  sagaInsertParams,
  sagaListQuery,
  sagaPositionalStatements,
  sagaRecoverableQuery,
} from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { classifySqliteError, toStorageError } from './sqlite-errors.ts';
import type {
  SqliteDatabase,
  SqliteSagaStoreOptions,
  SqliteStatement,
  SqliteValue,
} from './sqlite-options.ts';

const COLUMNS =
  'id, name, definition_version, status, context, cursor, version, attempts, error, lease_owner, lease_until, deadline_at, created_at, updated_at';

/**
 * Saga stores of one connection share this: a commit with events awaits the outbox append inside its
 * transaction, and no other saga store call may run on the connection meanwhile.
 */
const busy = new WeakMap<SqliteDatabase, Promise<unknown>>();

/**
 * The SQLite {@link SagaStore} over node:sqlite (tables from `migrate`).
 *
 * Every write is synchronous on the connection: a `commit` is `BEGIN IMMEDIATE`, the guarded `UPDATE … WHERE
 * id = ? AND version = ? AND lease_owner = ?`, one multi-row `INSERT` of the log rows and `COMMIT`, with
 * nothing else able to run in between; `acquire` is one `UPDATE … RETURNING`. SQLite's single writer makes
 * guarded writes of several connections or processes exclusive (set `PRAGMA busy_timeout`). A commit with
 * `events` also awaits the outbox append inside the transaction; other calls of saga stores on the same
 * connection wait for it. INTEGER columns are read as `bigint` so an out-of-range value is a typed error.
 */
export function createSqliteSagaStore(options: SqliteSagaStoreOptions): SagaStore {
  const db = options.database;
  const { saga: t, sagaLog: lt } = resolveTables(options.tables);
  const outbox = options.outbox;
  const cache = new Map<string, SqliteStatement>();
  const stmt = (sql: string, read = false) => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      if (read) s.setReadBigInts?.(true);
      cache.set(sql, s);
    }
    return s;
  };
  /** Runs `fn` once no commit with events of this connection is in flight. */
  const exclusive = async <T>(fn: () => T): Promise<T> => {
    for (let b = busy.get(db); b !== undefined; b = busy.get(db)) await b;
    return fn();
  };
  const rollback = () => {
    try {
      db.exec('ROLLBACK');
    } catch {
      // no transaction left
    }
  };

  const createSql = `INSERT INTO ${t} (${COLUMNS}) VALUES (?, ?, ?, 'running', ?, 0, 1, 1, NULL, ?, ?, ?, ?, ?)`;
  const updateSql = `UPDATE ${t} SET status = ?2, context = ?3, cursor = ?4, error = ?5, version = version + 1,
    updated_at = ?6, lease_owner = CASE WHEN ?10 THEN lease_owner ELSE NULL END, lease_until = ?1
    WHERE id = ?7 AND version = ?8 AND lease_owner = ?9`;
  const logSql = (n: number) =>
    `INSERT INTO ${lt} (saga_id, step_id, slot, action, status, attempts, result, error, started_at, at) VALUES ${Array.from({ length: n }, () => '(?,?,?,?,?,?,?,?,?,?)').join(',')}`;
  const acquireSql = `UPDATE ${t} SET lease_owner = ?, lease_until = ?, version = version + 1,
    attempts = attempts + 1, updated_at = ?
    WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?) AND (? IS NULL OR version = ?)
    RETURNING ${COLUMNS}`;
  const rowSql = sagaPositionalStatements(t, lt, COLUMNS);

  /** BEGIN IMMEDIATE, guarded update and log rows; returns false (rolled back) when the guard fails. */
  const write = (w: SagaCommit): boolean => {
    const lease = sagaCommitLease(w);
    db.exec('BEGIN IMMEDIATE');
    try {
      const changes = stmt(updateSql).run(
        lease.until,
        w.status,
        w.context,
        w.cursor,
        w.error,
        w.now,
        w.id,
        w.expectedVersion,
        w.owner,
        lease.keepOwner ? 1 : 0,
      ).changes;
      if (Number(changes) !== 1) {
        rollback();
        return false;
      }
      if (w.log.length > 0) {
        const p: SqliteValue[] = [];
        for (const e of w.log) {
          p.push(
            w.id,
            e.stepId,
            e.slot,
            e.action,
            e.status,
            e.attempts,
            e.result,
            e.error,
            e.startedAt,
            e.at,
          );
        }
        stmt(logSql(w.log.length)).run(...p);
      }
      return true;
    } catch (error) {
      rollback();
      throw error;
    }
  };

  const rows = (sql: string, params: readonly SqliteValue[]) =>
    exclusive(() => stmt(sql, true).all(...params) as Record<string, unknown>[]);
  const changed = (sql: string, params: readonly SqliteValue[]) =>
    exclusive(() => Number(stmt(sql).run(...params).changes) === 1);

  return createSqlSagaStore({
    ...options,
    adapter: 'sqlite',
    outbox: outbox !== undefined,
    toStorageError,
    statements: {
      async create(input) {
        try {
          await exclusive(() => stmt(createSql).run(...(sagaInsertParams(input) as SqliteValue[])));
          return true;
        } catch (error) {
          if (classifySqliteError(error) === 'unique-violation') return false;
          throw error;
        }
      },
      async commit(w, events) {
        if (events.length === 0) {
          return exclusive(() => {
            if (!write(w)) return false;
            db.exec('COMMIT');
            return true;
          });
        }
        // Hold the connection until the transaction ended: queued behind earlier commits with events, and every
        // other call on the connection waits (set synchronously, so nothing slips in).
        const prev = busy.get(db);
        let release!: () => void;
        const hold = new Promise<void>((resolve) => {
          release = resolve;
        });
        busy.set(db, hold);
        try {
          if (prev !== undefined) await prev;
          if (!write(w)) return false;
          try {
            await outbox!.append(db, events);
            db.exec('COMMIT');
          } catch (error) {
            rollback();
            throw error;
          }
          return true;
        } finally {
          release();
          if (busy.get(db) === hold) busy.delete(db);
        }
      },
      acquire: async (request) => (await rows(acquireSql, sagaAcquireParams(request) as SqliteValue[]))[0],
      renew: (r) => changed(rowSql.renew, [r.now + r.leaseMs, r.id, r.owner, r.expectedVersion]),
      release: (r) => changed(rowSql.release, [r.id, r.owner, r.expectedVersion]),
      load: async (id) => (await rows(rowSql.load, [id]))[0],
      history: (id) => rows(rowSql.history, [id]),
      recoverable(q) {
        const { sql, params } = sagaRecoverableQuery(t, COLUMNS, q);
        return rows(sql, params as SqliteValue[]);
      },
      list(q) {
        const { sql, params } = sagaListQuery(t, COLUMNS, q);
        return rows(sql, params as SqliteValue[]);
      },
      count(q) {
        const { sql, params } = sagaCountQuery(t, q);
        return rows(sql, params as SqliteValue[]);
      },
    },
  });
}
