import { ConfigurationError, SagaConflictError, type StorageError } from '@cqrs-ts/core';
import type {
  SagaAcquire,
  SagaCommit,
  SagaCreate,
  SagaListQuery,
  SagaRecoveryQuery,
  SagaRelease,
  SagaRenew,
  SagaStore,
} from '@cqrs-ts/core/spi';
import {
  checkSagaQuery,
  checkSagaWrite,
  mapSagaRows,
  resolveSqlSagaStoreOptions,
  sagaCommitLease,
  sagaConflictError,
  sagaListQuery,
  sagaLogEntryFromRow,
  sagaRecordFromRow,
  sagaRecoverableQuery,
} from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { toStorageError } from './sqlite-errors.ts';
import type {
  SqliteDatabase,
  SqliteSagaStoreOptions,
  SqliteStatement,
  SqliteValue,
} from './sqlite-options.ts';

const COLUMNS =
  'id, name, definition_version, status, context, cursor, version, attempts, error, lease_owner, lease_until, deadline_at, created_at, updated_at';
const LOG_COLUMNS = 'seq, saga_id, step_id, slot, action, status, attempts, result, error, started_at, at';

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
  const { maxTextBytes, onCorruptRow } = resolveSqlSagaStoreOptions(options, 'sqlite');
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
  const exclusive = async <T>(what: string, fn: () => T): Promise<T> => {
    for (let b = busy.get(db); b !== undefined; b = busy.get(db)) await b;
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, `saga ${what}`);
    }
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
  const renewSql = `UPDATE ${t} SET lease_until = ? WHERE id = ? AND lease_owner = ? AND version = ?`;
  const releaseSql = `UPDATE ${t} SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND version = ?`;
  const loadSql = `SELECT ${COLUMNS} FROM ${t} WHERE id = ?`;
  const historySql = `SELECT ${LOG_COLUMNS} FROM ${lt} WHERE saga_id = ? ORDER BY seq`;

  const conflict = (w: { id: string; owner: string; expectedVersion: number }) => {
    try {
      return sagaConflictError(w, stmt(loadSql, true).all(w.id)[0] as Record<string, unknown> | undefined);
    } catch {
      return sagaConflictError(w, 'unread'); // the refusal stands; only the detail is missing
    }
  };
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

  return {
    capabilities: Object.freeze({ outbox: outbox !== undefined }),
    async create(input: SagaCreate) {
      checkSagaWrite('create', input, maxTextBytes);
      try {
        await exclusive('create', () =>
          stmt(createSql).run(
            input.id,
            input.name,
            input.definitionVersion,
            input.context,
            input.owner,
            input.now + input.leaseMs,
            input.deadlineAt,
            input.now,
            input.now,
          ),
        );
      } catch (error) {
        if ((error as StorageError).reason === 'unique-violation') {
          throw new SagaConflictError(input.id, 'already exists');
        }
        throw error;
      }
    },
    async commit(w: SagaCommit) {
      checkSagaWrite('commit', w, maxTextBytes);
      const events = w.events ?? [];
      if (events.length > 0 && outbox === undefined) {
        throw new ConfigurationError('this saga store has no outbox: configure one to commit step events');
      }
      if (events.length === 0) {
        const ok = await exclusive('commit', () => {
          if (!write(w)) return false;
          db.exec('COMMIT');
          return true;
        });
        if (!ok) throw conflict(w);
        return w.expectedVersion + 1;
      }
      // Hold the connection until the transaction ended: queued behind earlier commits with events, and every
      // other call on the connection waits (set synchronously, so nothing slips in).
      const prev = busy.get(db);
      let release!: () => void;
      const hold = new Promise<void>((resolve) => {
        release = resolve;
      });
      busy.set(db, hold);
      let ok: boolean;
      try {
        if (prev !== undefined) await prev;
        try {
          ok = write(w);
        } catch (error) {
          throw toStorageError(error, 'saga commit');
        }
        if (ok) {
          try {
            await outbox!.append(db, events);
            db.exec('COMMIT');
          } catch (error) {
            rollback();
            throw toStorageError(error, 'saga commit');
          }
        }
      } finally {
        release();
        if (busy.get(db) === hold) busy.delete(db);
      }
      if (!ok) throw conflict(w);
      return w.expectedVersion + 1;
    },
    async acquire(request: SagaAcquire) {
      checkSagaWrite('acquire', request, maxTextBytes);
      return exclusive('acquire', () => {
        const row = stmt(acquireSql, true).all(
          request.owner,
          request.now + request.leaseMs,
          request.now,
          request.id,
          request.owner,
          request.now,
          request.expectedVersion ?? null,
          request.expectedVersion ?? null,
        )[0] as Record<string, unknown> | undefined;
        return row === undefined ? undefined : sagaRecordFromRow(row);
      });
    },
    renew(request: SagaRenew) {
      return exclusive(
        'renew',
        () =>
          Number(
            stmt(renewSql).run(
              request.now + request.leaseMs,
              request.id,
              request.owner,
              request.expectedVersion,
            ).changes,
          ) === 1,
      );
    },
    release(request: SagaRelease) {
      return exclusive(
        'release',
        () => Number(stmt(releaseSql).run(request.id, request.owner, request.expectedVersion).changes) === 1,
      );
    },
    async load(id: string) {
      const row = await exclusive(
        'load',
        () => stmt(loadSql, true).all(id)[0] as Record<string, unknown> | undefined,
      );
      return row === undefined ? undefined : sagaRecordFromRow(row);
    },
    async history(id: string) {
      const rows = await exclusive(
        'history',
        () => stmt(historySql, true).all(id) as Record<string, unknown>[],
      );
      return rows.map(sagaLogEntryFromRow);
    },
    async findRecoverable(q: SagaRecoveryQuery) {
      checkSagaQuery('findRecoverable', q);
      if (q.names !== undefined && q.names.length === 0) return [];
      const { sql, params } = sagaRecoverableQuery(t, COLUMNS, q);
      const rows = await exclusive('findRecoverable', () => stmt(sql, true).all(...params));
      return mapSagaRows(rows as Record<string, unknown>[], sagaRecordFromRow, onCorruptRow);
    },
    async list(q: SagaListQuery) {
      checkSagaQuery('list', q);
      if (q.statuses?.length === 0 || q.names?.length === 0) return [];
      const { sql, params } = sagaListQuery(t, COLUMNS, q);
      const rows = await exclusive('list', () => stmt(sql, true).all(...params));
      return mapSagaRows(rows as Record<string, unknown>[], sagaRecordFromRow, onCorruptRow);
    },
  };
}
