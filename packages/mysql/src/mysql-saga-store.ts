import type { SagaStore } from '@cqrs-ts/core/spi';
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
import { classifyMysqlError, toStorageError } from './mysql-errors.ts';
import { execOf, inTransaction } from './mysql-executor.ts';
import type { MysqlSagaStoreOptions } from './mysql-options.ts';
import { resolveTables } from './schema.ts';

const COLUMNS =
  'id, name, definition_version, status, context, `cursor`, version, attempts, error, lease_owner, lease_until, deadline_at, created_at, updated_at';

/**
 * The MariaDB/MySQL {@link SagaStore} for mysql2 and Kysely (tables from `migrate`).
 *
 * A `commit` is one transaction on a connection of the store's own: the guarded `UPDATE … WHERE id = ? AND
 * version = ? AND lease_owner = ?` (InnoDB serializes concurrent updates of the row and the loser re-checks the
 * guard against the committed row, so exactly one wins), one multi-row `INSERT` of the log rows and, with
 * `events`, the outbox append; a commit without log rows or events is a single autocommit `UPDATE`. Leases are
 * columns changed by guarded updates: no row lock outlives a statement's transaction. `acquire` is the guarded
 * update plus a read of the row in one short transaction. Recovery reads the `(status, updated_at, id)` index.
 */
export function createMysqlSagaStore(options: MysqlSagaStoreOptions): SagaStore {
  const { saga: t, sagaLog: lt } = resolveTables(options.tables);
  const client = options.client;
  const exec = execOf(client);
  const outbox = options.outbox;
  const createSql = `INSERT INTO ${t} (${COLUMNS}) VALUES (?, ?, ?, 'running', ?, 0, 1, 1, NULL, ?, ?, ?, ?, ?)`;
  const updateSql = `UPDATE ${t} SET status = ?, context = ?, \`cursor\` = ?, error = ?, version = version + 1,
    updated_at = ?, lease_owner = IF(?, lease_owner, NULL), lease_until = ?
    WHERE id = ? AND version = ? AND lease_owner = ?`;
  const logSqls: string[] = [];
  const logSql = (n: number) => {
    let sql = logSqls[n];
    if (sql === undefined) {
      sql = `INSERT INTO ${lt} (saga_id, step_id, slot, action, status, attempts, result, error, started_at, at) VALUES ${Array.from({ length: n }, () => '(?,?,?,?,?,?,?,?,?,?)').join(',')}`;
      logSqls[n] = sql;
    }
    return sql;
  };
  const acquireSql = `UPDATE ${t} SET lease_owner = ?, lease_until = ?, version = version + 1,
    attempts = attempts + 1, updated_at = ?
    WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?) AND (? IS NULL OR version = ?)`;
  const rowSql = sagaPositionalStatements(t, lt, COLUMNS);

  const rowsOf = async (sql: string, params: readonly unknown[]) => (await exec(sql, params)).rows;
  const changed = async (sql: string, params: readonly unknown[]) => (await exec(sql, params)).count === 1;

  return createSqlSagaStore({
    ...options,
    adapter: 'mysql',
    outbox: outbox !== undefined,
    toStorageError,
    statements: {
      async create(input) {
        try {
          await exec(createSql, sagaInsertParams(input));
          return true;
        } catch (error) {
          if (classifyMysqlError(error) === 'unique-violation') return false;
          throw error;
        }
      },
      async commit(w, events) {
        const lease = sagaCommitLease(w);
        const params = [
          w.status,
          w.context,
          w.cursor,
          w.error,
          w.now,
          lease.keepOwner ? 1 : 0,
          lease.until,
          w.id,
          w.expectedVersion,
          w.owner,
        ];
        if (w.log.length === 0 && events.length === 0) return changed(updateSql, params);
        const logParams: unknown[] = [];
        for (const e of w.log) {
          logParams.push(w.id, e.stepId, e.slot, e.action, e.status, e.attempts, e.result, e.error);
          logParams.push(e.startedAt, e.at);
        }
        const refused = new Error('guard failed');
        try {
          await inTransaction(client, async (execute, tx) => {
            if ((await execute(updateSql, params)).count !== 1) throw refused;
            if (w.log.length > 0) await execute(logSql(w.log.length), logParams);
            if (events.length > 0) await outbox!.append(tx, events);
          });
          return true;
        } catch (error) {
          if (error === refused) return false;
          throw error;
        }
      },
      acquire: (request) =>
        inTransaction(client, async (execute) => {
          const { count } = await execute(acquireSql, sagaAcquireParams(request));
          return count === 1 ? (await execute(rowSql.load, [request.id])).rows[0] : undefined;
        }),
      renew: (r) => changed(rowSql.renew, [r.now + r.leaseMs, r.id, r.owner, r.expectedVersion]),
      release: (r) => changed(rowSql.release, [r.id, r.owner, r.expectedVersion]),
      load: async (id) => (await rowsOf(rowSql.load, [id]))[0],
      history: (id) => rowsOf(rowSql.history, [id]),
      recoverable(q) {
        const { sql, params } = sagaRecoverableQuery(t, COLUMNS, q);
        return rowsOf(sql, params);
      },
      list(q) {
        const { sql, params } = sagaListQuery(t, COLUMNS, q);
        return rowsOf(sql, params);
      },
      count(q) {
        const { sql, params } = sagaCountQuery(t, q);
        return rowsOf(sql, params);
      },
    },
  });
}
