import { type AnyEvent, ConfigurationError } from '@cqrs-ts/core';
import {
  createOutboxEncoder,
  type OutboxFailure,
  type OutboxRecord,
  type OutboxStore,
} from '@cqrs-ts/core/spi';
import { createSqlOutboxOperations, outboxRecordFromRow } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import { type Execute, executorOf, planEachTime, transactionOf } from './postgres-executor.ts';
import type { PostgresClient, PostgresOutboxStoreOptions } from './postgres-options.ts';
import { resolveTables } from './schema.ts';

type Row = Record<string, unknown>;

/** Maps a row of the outbox table. @internal */
export const toRecord: (r: Row) => OutboxRecord = outboxRecordFromRow;

const CHANNEL_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const CHUNK = 1000;
const executors = new WeakMap<object, Execute>();

/** Cached {@link executorOf}. @internal */
export function execOf(client: PostgresClient): Execute {
  let e = executors.get(client);
  if (!e) {
    e = executorOf(client);
    executors.set(client, e);
  }
  return e;
}

/**
 * A CTE `l` that takes a transaction-scoped advisory lock per ordering key (parameters `$from`…, texts), in hash
 * order so two appenders cannot deadlock; an INSERT that joins `l` holds the locks before any row draws its `seq`.
 * @internal
 */
export const keyLocks = (keys: number, from: number): string =>
  `l AS MATERIALIZED (SELECT count(pg_advisory_xact_lock(h)) AS n FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM (VALUES ${Array.from({ length: keys }, (_, j) => `($${from + j}::text)`).join(',')}) lk(k) ORDER BY h) s)`;

/**
 * The PostgreSQL {@link OutboxStore} for pg, postgres.js and Kysely.
 *
 * `append(tx, events)` runs on the caller's transaction (a pg `PoolClient` after `BEGIN`, a postgres.js
 * `sql.begin` transaction, or a Kysely `Transaction`): one multi-row INSERT, plus `pg_advisory_xact_lock` per
 * key and a `pg_notify` that is delivered on commit. Claims use `FOR UPDATE SKIP LOCKED` and a lease.
 */
export function createPostgresOutboxStore(options: PostgresOutboxStoreOptions): OutboxStore<PostgresClient> {
  const tables = resolveTables(options.tables);
  const t = tables.outbox;
  const archive = options.archive ?? false;
  if (typeof archive !== 'boolean')
    throw new ConfigurationError('postgres outbox: archive must be a boolean');
  // Rows leaving the outbox go to the archive when it keeps the log, and always when they belong to a stream.
  const leave = (where: string) => `WITH gone AS (DELETE FROM ${t} WHERE ${where} RETURNING *),
  kept AS (INSERT INTO ${tables.outboxArchive} (seq, tx_id, id, type, topic, key, payload, headers, content_encoding,
      status, created_at, published_at, stream_id, stream_version, archived_at)
    SELECT seq, tx_id, id, type, topic, key, payload, headers, content_encoding, status, created_at, published_at,
      stream_id, stream_version, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
    FROM gone${archive ? '' : ' WHERE stream_id IS NOT NULL'} RETURNING 1)
  SELECT (SELECT count(*) FROM gone) AS n`;
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  const channel = options.notifyChannel ?? 'cqrs_outbox';
  if (channel !== false && !CHANNEL_RE.test(channel)) {
    throw new ConfigurationError(`postgres outbox: invalid notifyChannel ${JSON.stringify(channel)}`);
  }
  const lockKeys = options.lockKeys ?? true;
  const exec = execOf(options.client);
  const run = async (
    what: string,
    sql: string,
    params: readonly unknown[],
    execute: Execute = exec,
    prepare = false,
  ) => {
    try {
      return await execute(sql, params, prepare);
    } catch (error) {
      throw toStorageError(error, what);
    }
  };
  const shared = createSqlOutboxOperations({
    table: t,
    placeholder: (n) => `$${n}`,
    idCast: '::uuid',
    run: (what, sql, params) => run(what, sql, params),
    statsSql: `SELECT count(*) FILTER (WHERE status = 'pending') AS backlog, count(*) FILTER (WHERE status = 'dead') AS dead,
       min(created_at) FILTER (WHERE status = 'pending') AS oldest FROM ${t} WHERE status <> 'published'`,
    remove: async (what, where, params) => Number((await run(what, leave(where), params)).rows[0]!.n),
  });

  // Per-key order: the candidates are the first due, unleased rows by seq that no other transaction holds.
  // Every other pending row before the last candidate (backing off, leased, or locked by another relay) blocks
  // its key from its seq on; one range scan of the pending index finds the first blocker per key, and a
  // candidate is eligible when its key has no blocker before it.
  //
  // Every scan is bounded by what the claim reads, whatever the backlog and whatever the planner believes, so
  // no plan can read the whole backlog (a plain `ORDER BY seq LIMIT n FOR UPDATE` is planned from the table's
  // statistics: when they predate the backlog, as after an outage or on a table never analyzed, the plan reads
  // and sorts every pending row for each batch, spilling whole rows to disk, and the drain slows to seconds per
  // batch). `w` walks the pending index in windows of `$2` seqs: the first pending row at or after the end of
  // the previous window (an ordered probe stopped at its first row), then a count of the due rows in the
  // window (a range scan that holds at most `$2` rows), until twice the batch is due. The candidates and the
  // blockers are then range scans between the first pending row and the end of the last window. Blockers are
  // the pending rows of that range less the candidates, found by counting (an aggregate, never a join whose
  // plan depends on an estimate). Both statements run unnamed: planned with the table as it is at each claim,
  // never a generic plan cached while it was small.
  const isDue = (a: string) =>
    `${a}next_attempt_at <= $1 AND (${a}claimed_until IS NULL OR ${a}claimed_until < $1)`;
  const walk = `w(lo, found) AS (
    (SELECT s.seq, 0::bigint FROM ${t} s WHERE s.status = 'pending' ORDER BY s.seq LIMIT 1)
    UNION ALL
    SELECT n.seq, w.found + r.due FROM w
    CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE ${isDue('s.')}) AS due FROM ${t} s
      WHERE s.status = 'pending' AND s.seq >= w.lo AND s.seq < w.lo + $2::int) r
    CROSS JOIN LATERAL (SELECT s.seq FROM ${t} s WHERE s.status = 'pending' AND s.seq >= w.lo + $2::int
      ORDER BY s.seq LIMIT 1) n
    WHERE w.found < 2 * $2::int)`;
  const picked = (columns: string) => `c AS MATERIALIZED (
    SELECT ${columns} FROM ${t}
    WHERE status = 'pending' AND seq >= (SELECT min(lo) FROM w) AND seq < (SELECT max(lo) FROM w) + $2::int
      AND ${isDue('')}
    ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)`;
  // `passed`: a condition on `p` for pending rows that block nothing (see LockedBatchRequest.committing).
  const blockers = (passed = '') => `b AS (SELECT u.key, min(u.seq) AS s FROM (
      SELECT seq, key FROM (
        SELECT p.seq, p.key, 1 AS v FROM ${t} p
        WHERE p.status = 'pending' AND p.key IS NOT NULL
          AND p.seq >= (SELECT min(lo) FROM w) AND p.seq < (SELECT max(seq) FROM c)${passed === '' ? '' : ` AND NOT (${passed})`}
        UNION ALL SELECT c.seq, c.key, -1 FROM c) a
      GROUP BY seq, key HAVING sum(v) > 0) u
    GROUP BY u.key)`;
  const claimSql = planEachTime(`WITH RECURSIVE ${walk}, ${picked('seq, key')}, ${blockers()},
  e AS (SELECT c.seq FROM c LEFT JOIN b ON b.key = c.key WHERE b.s IS NULL OR c.seq < b.s)
  UPDATE ${t} o SET claimed_by = $3, claimed_until = $4 FROM e WHERE o.seq = e.seq
  RETURNING o.*`);

  // Same selection, but the locked CTE carries whole rows, so no second lookup per row. `$3`: the seqs of the
  // relay's previous batch, locked by another transaction still publishing or committing them, which block
  // nothing (the relay publishes this batch only after them).
  const lockSql =
    planEachTime(`WITH RECURSIVE ${walk}, ${picked('*')}, ${blockers('p.seq = ANY($3::bigint[])')}
  SELECT c.* FROM c LEFT JOIN b ON b.key = c.key WHERE b.s IS NULL OR c.seq < b.s ORDER BY c.seq`);
  const publishedBySeqSql = `UPDATE ${t} SET status = 'published', published_at = $1, claimed_by = NULL, claimed_until = NULL WHERE seq = ANY($2::bigint[])`;
  const publishedSql = `UPDATE ${t} SET status = 'published', published_at = $1, claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND id = ANY($2::uuid[])`;
  const failSql = (
    values: string,
  ) => `UPDATE ${t} o SET attempts = o.attempts + 1, last_error = f.err, next_attempt_at = f.next_at, status = f.status,
             claimed_by = NULL, claimed_until = NULL
           FROM (VALUES ${values}) AS f(id, err, next_at, status)
           WHERE o.id = f.id AND o.status = 'pending'`;
  const markFailed = async (failures: readonly OutboxFailure[], execute: Execute) => {
    for (let i = 0; i < failures.length; i += CHUNK) {
      const part = failures.slice(i, i + CHUNK);
      const params: unknown[] = [];
      const values = part.map((f, j) => {
        params.push(f.id, f.error, f.nextAttemptAt, f.dead ? 'dead' : 'pending');
        const b = j * 4;
        return `($${b + 1}::uuid,$${b + 2}::text,$${b + 3}::bigint,$${b + 4}::text)`;
      });
      await run('outbox markFailed', failSql(values.join(',')), params, execute);
    }
  };
  const transact = transactionOf(options.client);

  const store: OutboxStore<PostgresClient> = {
    ...shared,
    async append(tx, events: readonly AnyEvent[]) {
      const rows = encoder.encode(events, now());
      if (rows.length === 0) return;
      const execute = execOf(tx);
      // One round trip per 1,000 rows: the per-key advisory locks (first chunk only; they are held until the
      // transaction ends), the INSERT and the pg_notify are one statement. The locks are taken by a
      // materialized aggregate the INSERT joins, so they are held before any row draws its `seq`.
      let keys: string[] | undefined;
      if (lockKeys) {
        const distinct = new Set<string>();
        for (const r of rows) if (r.key !== null) distinct.add(r.key);
        if (distinct.size > 0) keys = [...distinct];
      }
      for (let i = 0; i < rows.length; i += CHUNK) {
        const part = rows.slice(i, i + CHUNK);
        const params: unknown[] = [];
        const values: string[] = [];
        for (const r of part) {
          const b = params.length;
          values.push(
            `($${b + 1}::uuid,$${b + 2}::text,$${b + 3}::text,$${b + 4}::text,$${b + 5}::bytea,$${b + 6}::text::jsonb,$${b + 7}::text,$${b + 8}::bigint)`,
          );
          const p = r.payload;
          params.push(r.id, r.type, r.topic, r.key, Buffer.from(p.buffer, p.byteOffset, p.byteLength));
          params.push(JSON.stringify(r.headers), r.contentEncoding, r.createdAt);
        }
        let locks = '';
        let from = `(VALUES ${values.join(',')}) v(id, type, topic, key, payload, headers, ce, at)`;
        if (keys !== undefined && i === 0) {
          const b = params.length;
          locks = `${keyLocks(keys.length, b + 1)}, `;
          params.push(...keys);
          from += ', l';
        }
        const insert = `INSERT INTO ${t} (id, type, topic, key, payload, headers, content_encoding, next_attempt_at, created_at) SELECT v.id, v.type, v.topic, v.key, v.payload, v.headers, v.ce, v.at, v.at FROM ${from}`;
        const last = i + CHUNK >= rows.length;
        const notify = last && channel !== false;
        const sql =
          locks === '' && !notify
            ? insert
            : `WITH ${locks}ins AS (${insert} RETURNING 1) SELECT ${notify ? `pg_notify('${channel}', '')` : 'count(*) FROM ins'}`;
        await run('outbox append', sql, params, execute, true);
      }
    },
    async claimBatch({ relayId, limit, leaseMs, now: at }) {
      const r = await run('outbox claim', claimSql, [at, limit, relayId, at + leaseMs]);
      return r.rows.map(toRecord).sort((a, b) => a.seq - b.seq);
    },
    async markPublished(ids, at) {
      for (let i = 0; i < ids.length; i += CHUNK) {
        await run('outbox markPublished', publishedSql, [at, ids.slice(i, i + CHUNK)]);
      }
    },
    markFailed: (failures) => markFailed(failures, exec),
  };
  if (transact !== undefined) {
    store.overlapsLocked = true;
    store.processLocked = async ({ limit, now: at, committing = [] }, process) => {
      let locked = 0;
      const rollback = new Error('outbox: batch postponed');
      try {
        await transact(async (execute) => {
          const rows = (await run('outbox lock', lockSql, [at, limit, committing], execute)).rows;
          locked = rows.length;
          const records = rows.map(toRecord);
          const outcome = await process(records);
          if (outcome === undefined) throw rollback;
          if (outcome.published.length > 0) {
            const published = new Set(outcome.published);
            const seqs: number[] = [];
            for (const r of records) if (published.has(r.id)) seqs.push(r.seq);
            await run('outbox markPublished', publishedBySeqSql, [outcome.publishedAt, seqs], execute);
          }
          if (outcome.failures.length > 0) await markFailed(outcome.failures, execute);
        });
      } catch (error) {
        if (error !== rollback) throw toStorageError(error, 'outbox locked batch');
      }
      return locked;
    };
  }
  return store;
}
