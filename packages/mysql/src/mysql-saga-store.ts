import { ConfigurationError, SagaConflictError } from '@cqrs-ts/core';
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
import { classifyMysqlError, toStorageError } from './mysql-errors.ts';
import { type Execute, execOf, inTransaction } from './mysql-executor.ts';
import type { MysqlSagaStoreOptions } from './mysql-options.ts';
import { resolveTables } from './schema.ts';

const COLUMNS =
  'id, name, definition_version, status, context, `cursor`, version, attempts, error, lease_owner, lease_until, deadline_at, created_at, updated_at';
const LOG_COLUMNS = 'seq, saga_id, step_id, slot, action, status, attempts, result, error, started_at, at';

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
  const { maxTextBytes, onCorruptRow } = resolveSqlSagaStoreOptions(options, 'mysql');
  const run = async (what: string, sql: string, params: readonly unknown[], execute: Execute = exec) => {
    try {
      return await execute(sql, params);
    } catch (error) {
      throw toStorageError(error, `saga ${what}`);
    }
  };

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
  const renewSql = `UPDATE ${t} SET lease_until = ? WHERE id = ? AND lease_owner = ? AND version = ?`;
  const releaseSql = `UPDATE ${t} SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND version = ?`;
  const loadSql = `SELECT ${COLUMNS} FROM ${t} WHERE id = ?`;
  const historySql = `SELECT ${LOG_COLUMNS} FROM ${lt} WHERE saga_id = ? ORDER BY seq`;

  const conflict = async (w: { id: string; owner: string; expectedVersion: number }) => {
    try {
      return sagaConflictError(w, (await exec(loadSql, [w.id])).rows[0]);
    } catch {
      return sagaConflictError(w, 'unread'); // the refusal stands; only the detail is missing
    }
  };

  return {
    capabilities: Object.freeze({ outbox: outbox !== undefined }),
    async create(input: SagaCreate) {
      checkSagaWrite('create', input, maxTextBytes);
      try {
        await exec(createSql, [
          input.id,
          input.name,
          input.definitionVersion,
          input.context,
          input.owner,
          input.now + input.leaseMs,
          input.deadlineAt,
          input.now,
          input.now,
        ]);
      } catch (error) {
        if (classifyMysqlError(error) === 'unique-violation') {
          throw new SagaConflictError(input.id, 'already exists');
        }
        throw toStorageError(error, 'saga create');
      }
    },
    async commit(w: SagaCommit) {
      checkSagaWrite('commit', w, maxTextBytes);
      const events = w.events ?? [];
      if (events.length > 0 && outbox === undefined) {
        throw new ConfigurationError('this saga store has no outbox: configure one to commit step events');
      }
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
      if (w.log.length === 0 && events.length === 0) {
        if ((await run('commit', updateSql, params)).count !== 1) throw await conflict(w);
        return w.expectedVersion + 1;
      }
      const logParams: unknown[] = [];
      for (const e of w.log) {
        logParams.push(
          w.id,
          e.stepId,
          e.slot,
          e.action,
          e.status,
          e.attempts,
          e.result,
          e.error,
          e.startedAt,
        );
        logParams.push(e.at);
      }
      const refused = new Error('guard failed');
      try {
        await inTransaction(client, async (execute, tx) => {
          if ((await execute(updateSql, params)).count !== 1) throw refused;
          if (w.log.length > 0) await execute(logSql(w.log.length), logParams);
          if (events.length > 0) await outbox!.append(tx, events);
        });
      } catch (error) {
        if (error === refused) throw await conflict(w);
        throw toStorageError(error, 'saga commit');
      }
      return w.expectedVersion + 1;
    },
    async acquire(request: SagaAcquire) {
      checkSagaWrite('acquire', request, maxTextBytes);
      try {
        return await inTransaction(client, async (execute) => {
          const { count } = await execute(acquireSql, [
            request.owner,
            request.now + request.leaseMs,
            request.now,
            request.id,
            request.owner,
            request.now,
            request.expectedVersion ?? null,
            request.expectedVersion ?? null,
          ]);
          if (count !== 1) return undefined;
          const row = (await execute(loadSql, [request.id])).rows[0];
          return row === undefined ? undefined : sagaRecordFromRow(row);
        });
      } catch (error) {
        throw toStorageError(error, 'saga acquire');
      }
    },
    async renew(request: SagaRenew) {
      const r = await run('renew', renewSql, [
        request.now + request.leaseMs,
        request.id,
        request.owner,
        request.expectedVersion,
      ]);
      return r.count === 1;
    },
    async release(request: SagaRelease) {
      const r = await run('release', releaseSql, [request.id, request.owner, request.expectedVersion]);
      return r.count === 1;
    },
    async load(id: string) {
      const row = (await run('load', loadSql, [id])).rows[0];
      return row === undefined ? undefined : sagaRecordFromRow(row);
    },
    async history(id: string) {
      return (await run('history', historySql, [id])).rows.map(sagaLogEntryFromRow);
    },
    async findRecoverable(q: SagaRecoveryQuery) {
      checkSagaQuery('findRecoverable', q);
      if (q.names !== undefined && q.names.length === 0) return [];
      const { sql, params } = sagaRecoverableQuery(t, COLUMNS, q);
      const r = await run('findRecoverable', sql, params);
      return mapSagaRows(r.rows, sagaRecordFromRow, onCorruptRow);
    },
    async list(q: SagaListQuery) {
      checkSagaQuery('list', q);
      if (q.statuses?.length === 0 || q.names?.length === 0) return [];
      const { sql, params } = sagaListQuery(t, COLUMNS, q);
      const r = await run('list', sql, params);
      return mapSagaRows(r.rows, sagaRecordFromRow, onCorruptRow);
    },
  };
}
