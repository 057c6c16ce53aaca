import { ConfigurationError } from '@cqrs-ts/core';
import type { SagaCommit, SagaLogEntryInput, SagaStore } from '@cqrs-ts/core/spi';
import { createSqlSagaStore, SAGA_LOG_COLUMNS, sagaCommitLease, sagaInsertParams } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import { transactionOf } from './postgres-executor.ts';
import type { PostgresSagaStoreOptions } from './postgres-options.ts';
import { execOf } from './postgres-outbox-store.ts';
import { resolveTables } from './schema.ts';

const COLUMNS =
  'id, name, definition_version, status, context, cursor, version, attempts, error, lease_owner, lease_until, deadline_at, created_at, updated_at';
const LOG_WIDTH = 9;
/** Parameters of a commit before its log rows. */
const COMMIT_WIDTH = 10;

/**
 * The PostgreSQL {@link SagaStore} for pg, postgres.js and Kysely (tables from `migrate`).
 *
 * Every method is one statement, except a `commit` with `events`, which is one transaction (guarded update and
 * log rows in one statement, then the outbox append). A `commit` is a data-modifying CTE: the `UPDATE … WHERE
 * id = $1 AND version = $2 AND lease_owner = $3` and the `INSERT` of the log rows, which joins the updated row,
 * so a failed guard inserts nothing. Concurrent guarded updates of one row serialize on its row lock and the
 * loser re-checks the guard against the committed row (READ COMMITTED), so exactly one wins. Leases are columns
 * (`lease_owner`, `lease_until`) changed by guarded updates: no row lock is held between statements.
 * Recovery reads the partial index `(updated_at, id) WHERE status IN ('running', 'compensating')`.
 */
export function createPostgresSagaStore(options: PostgresSagaStoreOptions): SagaStore {
  const { saga: t, sagaLog: lt } = resolveTables(options.tables);
  const client = options.client;
  const exec = execOf(client);
  const outbox = options.outbox;
  const transact = outbox === undefined ? undefined : transactionOf(client);
  if (outbox !== undefined && transact === undefined) {
    throw new ConfigurationError(
      'postgres saga store: an outbox needs a client that can open transactions (pg Pool, postgres.js sql, Kysely)',
    );
  }
  const createSql = `INSERT INTO ${t} (${COLUMNS}) VALUES ($1::text, $2::text, $3::int, 'running', $4::text, 0, 1, 1, NULL, $5::text, $6::bigint, $7::bigint, $8::bigint, $9::bigint) ON CONFLICT (id) DO NOTHING`;
  const update = `UPDATE ${t} SET status = $4::text, context = $5::text, cursor = $6::int, error = $7::text,
    version = version + 1, updated_at = $8::bigint,
    lease_owner = CASE WHEN $10::boolean THEN lease_owner ELSE NULL END, lease_until = $9::bigint
    WHERE id = $1::text AND version = $2::bigint AND lease_owner = $3::text`;
  // One statement per log length (prepared once per connection each): the guarded update and the log rows.
  const commitSqls: string[] = [];
  const commitSql = (n: number): string => {
    let sql = commitSqls[n];
    if (sql === undefined) {
      if (n === 0) sql = `WITH u AS (${update} RETURNING 1) SELECT count(*)::int AS n FROM u`;
      else {
        const values = Array.from({ length: n }, (_, i) => {
          const b = COMMIT_WIDTH + 1 + i * LOG_WIDTH;
          return `(${i}, $${b}::text, $${b + 1}::int, $${b + 2}::text, $${b + 3}::text, $${b + 4}::int, $${b + 5}::text, $${b + 6}::text, $${b + 7}::bigint, $${b + 8}::bigint)`;
        });
        sql = `WITH u AS (${update} RETURNING id),
  l AS (INSERT INTO ${lt} (saga_id, step_id, slot, action, status, attempts, result, error, started_at, at)
    SELECT u.id, v.step_id, v.slot, v.action, v.status, v.attempts, v.result, v.error, v.started_at, v.at
    FROM u, (VALUES ${values.join(', ')}) v(ord, step_id, slot, action, status, attempts, result, error, started_at, at)
    ORDER BY v.ord RETURNING 1)
SELECT count(*)::int AS n FROM u`;
      }
      commitSqls[n] = sql;
    }
    return sql;
  };
  const commitParams = (w: SagaCommit): unknown[] => {
    const lease = sagaCommitLease(w);
    const p: unknown[] = [
      w.id,
      w.expectedVersion,
      w.owner,
      w.status,
      w.context,
      w.cursor,
      w.error,
      w.now,
      lease.until,
      lease.keepOwner,
    ];
    for (const e of w.log as readonly SagaLogEntryInput[]) {
      p.push(e.stepId, e.slot, e.action, e.status, e.attempts, e.result, e.error, e.startedAt, e.at);
    }
    return p;
  };
  const acquireSql = `UPDATE ${t} SET lease_owner = $2::text, lease_until = $4::bigint, version = version + 1,
    attempts = attempts + 1, updated_at = $3::bigint
    WHERE id = $1::text AND (lease_owner IS NULL OR lease_owner = $2::text OR lease_until < $3::bigint)
      AND ($5::bigint IS NULL OR version = $5::bigint)
    RETURNING ${COLUMNS}`;
  const renewSql = `UPDATE ${t} SET lease_until = $4::bigint WHERE id = $1::text AND lease_owner = $2::text AND version = $3::bigint`;
  const releaseSql = `UPDATE ${t} SET lease_owner = NULL, lease_until = NULL WHERE id = $1::text AND lease_owner = $2::text AND version = $3::bigint`;
  const loadSql = `SELECT ${COLUMNS} FROM ${t} WHERE id = $1::text`;
  const historySql = `SELECT ${SAGA_LOG_COLUMNS} FROM ${lt} WHERE saga_id = $1::text ORDER BY seq`;
  // Interrupted sagas and failed compensations due for a retry: one branch per partial index.
  const recoverableFilter = `updated_at <= $2::bigint AND ($3::text[] IS NULL OR name = ANY($3::text[]))
      AND ($4::int IS NULL OR attempts < $4::int) ORDER BY updated_at, id LIMIT $5::int`;
  const recoverableSql = `(SELECT ${COLUMNS} FROM ${t}
    WHERE status IN ('running', 'compensating') AND (lease_owner IS NULL OR lease_until < $1::bigint)
      AND ${recoverableFilter})
    UNION ALL (SELECT ${COLUMNS} FROM ${t}
    WHERE status = 'compensation_failed' AND lease_until < $1::bigint
      AND ${recoverableFilter})
    ORDER BY updated_at, id LIMIT $5::int`;
  const listSql = `SELECT ${COLUMNS} FROM ${t}
    WHERE ($1::text[] IS NULL OR status = ANY($1::text[])) AND ($2::text[] IS NULL OR name = ANY($2::text[]))
      AND ($3::text IS NULL OR id > $3::text)
    ORDER BY id LIMIT $4::int`;

  const countSql = `SELECT status, count(*) AS n FROM ${t} WHERE ($1::text[] IS NULL OR name = ANY($1::text[])) GROUP BY status`;

  const query = async (sql: string, params: readonly unknown[]) => (await exec(sql, params, true)).rows;
  const changed = async (sql: string, params: readonly unknown[]) =>
    (await exec(sql, params, true)).count === 1;

  return createSqlSagaStore({
    ...options,
    adapter: 'postgres',
    outbox: outbox !== undefined,
    toStorageError,
    statements: {
      async create(input) {
        const r = await exec(createSql, sagaInsertParams(input), true);
        return r.count !== 0;
      },
      async commit(w, events) {
        const sql = commitSql(w.log.length);
        const params = commitParams(w);
        if (events.length === 0) return Number((await query(sql, params))[0]?.n) === 1;
        const refused = new Error('guard failed');
        try {
          await transact!(async (execute, tx) => {
            const r = await execute(sql, params, true);
            if (Number(r.rows[0]?.n) !== 1) throw refused;
            await outbox!.append(tx, events);
          });
          return true;
        } catch (error) {
          if (error === refused) return false;
          throw error;
        }
      },
      acquire: async (request) =>
        (
          await query(acquireSql, [
            request.id,
            request.owner,
            request.now,
            request.now + request.leaseMs,
            request.expectedVersion ?? null,
          ])
        )[0],
      renew: (r) => changed(renewSql, [r.id, r.owner, r.expectedVersion, r.now + r.leaseMs]),
      release: (r) => changed(releaseSql, [r.id, r.owner, r.expectedVersion]),
      load: async (id) => (await query(loadSql, [id]))[0],
      history: (id) => query(historySql, [id]),
      recoverable: (q) =>
        query(recoverableSql, [
          q.now,
          q.now - (q.staleAfterMs ?? 0),
          q.names ?? null,
          q.maxAttempts ?? null,
          q.limit,
        ]),
      list: (q) => query(listSql, [q.statuses ?? null, q.names ?? null, q.afterId ?? null, q.limit]),
      count: (q) => query(countSql, [q.names ?? null]),
    },
  });
}
