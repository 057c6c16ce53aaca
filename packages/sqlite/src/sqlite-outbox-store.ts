import { type AnyEvent, ConfigurationError, StorageError } from '@cqrs-ts/core';
import {
  createOutboxEncoder,
  type OutboxFailure,
  type OutboxRecord,
  type OutboxStore,
} from '@cqrs-ts/core/spi';
import { createSqlOutboxOperations, outboxRecordFromRow } from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { toStorageError } from './sqlite-errors.ts';
import type {
  SqliteDatabase,
  SqliteOutboxStoreOptions,
  SqliteStatement,
  SqliteValue,
} from './sqlite-options.ts';
import { createStatementCache } from './sqlite-statements.ts';

type Row = Record<string, SqliteValue>;

/** Maps a row of the outbox table. @internal */
export const toRecord: (r: Row) => OutboxRecord = outboxRecordFromRow;

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(',');
const CHUNK = 500;

/**
 * The SQLite {@link OutboxStore} over node:sqlite. `append(db, events)` must run inside the caller's open
 * transaction on that connection (`BEGIN` … `COMMIT`); it throws a StorageError (`closed-transaction`) otherwise.
 * Claims are one `UPDATE … RETURNING` statement; SQLite's single writer makes them exclusive.
 */
export function createSqliteOutboxStore(options: SqliteOutboxStoreOptions): OutboxStore<SqliteDatabase> {
  const db = options.database;
  const tables = resolveTables(options.tables);
  const t = tables.outbox;
  const archive = options.archive ?? false;
  if (typeof archive !== 'boolean') throw new ConfigurationError('sqlite outbox: archive must be a boolean');
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  // Prepared statements per connection (preparing costs more than running them); appends, the hot path, run on
  // the caller's connection with one INSERT text per row count.
  const statements = createStatementCache();
  const stmt = (sql: string) => statements(db, sql);
  const insertSql: string[] = [];
  const insertFor = (tx: SqliteDatabase, rows: number): SqliteStatement => {
    let sql = insertSql[rows];
    if (sql === undefined) {
      sql = `INSERT INTO ${t} (id, type, topic, key, payload, headers, content_encoding, next_attempt_at, created_at) VALUES ${Array.from({ length: rows }, () => '(?,?,?,?,?,?,?,?,?)').join(',')}`;
      insertSql[rows] = sql;
    }
    return statements(tx, sql);
  };
  const guard = async <T>(what: string, fn: () => T): Promise<T> => {
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, what);
    }
  };
  const shared = createSqlOutboxOperations({
    table: t,
    placeholder: () => '?',
    chunk: CHUNK,
    run: (what, sql, params) =>
      guard(what, () => {
        const statement = stmt(sql);
        if (/^\s*SELECT/i.test(sql))
          return { rows: statement.all(...(params as SqliteValue[])) as Row[], count: 0 };
        return { rows: [], count: Number(statement.run(...(params as SqliteValue[])).changes) };
      }),
    statsSql: `SELECT COALESCE(SUM(status = 'pending'), 0) AS backlog, COALESCE(SUM(status = 'dead'), 0) AS dead,
       MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM ${t} WHERE status <> 'published'`,
    remove: (what, where, params) => leave(what, where, params as SqliteValue[]),
  });
  /**
   * Takes the rows matching `where` out of the outbox, chunk by chunk under a savepoint: copies those the archive
   * keeps (all with `archive`, else those of a stream), then deletes them. Returns how many left.
   */
  function leave(what: string, where: string, params: readonly SqliteValue[]): Promise<number> {
    return guard(what, () => {
      let n = 0;
      for (;;) {
        const seqs = (
          stmt(`SELECT seq FROM ${t} WHERE ${where} ORDER BY seq LIMIT ${CHUNK}`).all(...params) as Row[]
        ).map((r) => Number(r.seq));
        if (seqs.length === 0) return n;
        const list = placeholders(seqs.length);
        db.exec('SAVEPOINT cqrs_outbox_leave');
        try {
          stmt(
            `INSERT INTO ${tables.outboxArchive} (seq, id, type, topic, key, payload, headers, content_encoding, status,
               created_at, published_at, stream_id, stream_version, archived_at)
             SELECT seq, id, type, topic, key, payload, headers, content_encoding, status, created_at, published_at,
               stream_id, stream_version, ? FROM ${t} WHERE seq IN (${list})${archive ? '' : ' AND stream_id IS NOT NULL'}`,
          ).run(Date.now(), ...seqs);
          stmt(`DELETE FROM ${t} WHERE seq IN (${list})`).run(...seqs);
          db.exec('RELEASE cqrs_outbox_leave');
        } catch (error) {
          db.exec('ROLLBACK TO cqrs_outbox_leave');
          db.exec('RELEASE cqrs_outbox_leave');
          throw error;
        }
        n += seqs.length;
        if (seqs.length < CHUNK) return n;
      }
    });
  }

  // Writers are serialized (no SKIP LOCKED), so every due, unleased pending row up to the batch's last seq is in
  // the batch: the rows that can block a key are exactly the pending ones before it that are backing off or
  // leased. One range scan finds the first of them per key.
  const eligible = `c AS MATERIALIZED (SELECT seq, key FROM ${t} WHERE status = 'pending' AND next_attempt_at <= ?1
      AND (claimed_until IS NULL OR claimed_until < ?1) ORDER BY seq LIMIT ?2),
    b AS (SELECT key, min(seq) AS s FROM ${t} WHERE status = 'pending' AND key IS NOT NULL
      AND seq < (SELECT max(seq) FROM c)
      AND NOT (next_attempt_at <= ?1 AND (claimed_until IS NULL OR claimed_until < ?1)) GROUP BY key)`;
  const failSql = `UPDATE ${t} SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ?,
      claimed_by = NULL, claimed_until = NULL WHERE id = ? AND status = 'pending'`;
  const writeFailures = (failures: readonly OutboxFailure[]) => {
    const s = stmt(failSql);
    for (const f of failures) s.run(f.error, f.nextAttemptAt, f.dead ? 'dead' : 'pending', f.id);
  };
  /** Marks published by `seq` (the rowid), in chunks. */
  const publishSeqs = (seqs: readonly number[], at: number) => {
    for (let i = 0; i < seqs.length; i += CHUNK) {
      const part = seqs.slice(i, i + CHUNK);
      stmt(
        `UPDATE ${t} SET status = 'published', published_at = ?, claimed_by = NULL, claimed_until = NULL WHERE seq IN (${placeholders(part.length)})`,
      ).run(at, ...part);
    }
  };

  const store: OutboxStore<SqliteDatabase> = {
    ...shared,
    async append(tx, events: readonly AnyEvent[]) {
      const rows = encoder.encode(events, now());
      if (rows.length === 0) return;
      if (tx.isTransaction === false) {
        throw new StorageError('closed-transaction', 'sqlite outbox append needs an open transaction');
      }
      await guard('outbox append', () => {
        for (let i = 0; i < rows.length; i += CHUNK) {
          const part = rows.slice(i, i + CHUNK);
          const params: SqliteValue[] = [];
          for (const r of part) {
            params.push(
              r.id,
              r.type,
              r.topic,
              r.key,
              r.payload,
              JSON.stringify(r.headers),
              r.contentEncoding,
            );
            params.push(r.createdAt, r.createdAt);
          }
          insertFor(tx, part.length).run(...params);
        }
      });
    },
    claimBatch({ relayId, limit, leaseMs, now: at }) {
      return guard('outbox claim', () => {
        const rows = stmt(
          `WITH ${eligible} UPDATE ${t} SET claimed_by = ?3, claimed_until = ?4
           WHERE seq IN (SELECT c.seq FROM c LEFT JOIN b ON b.key = c.key WHERE b.s IS NULL OR c.seq < b.s)
           RETURNING *`,
        ).all(at, limit, relayId, at + leaseMs) as Row[];
        return rows.map(toRecord).sort((a, b) => a.seq - b.seq);
      });
    },
    markFailed(failures) {
      return guard('outbox markFailed', () => {
        db.exec('SAVEPOINT cqrs_mark_failed');
        try {
          writeFailures(failures);
          db.exec('RELEASE cqrs_mark_failed');
        } catch (error) {
          db.exec('ROLLBACK TO cqrs_mark_failed');
          db.exec('RELEASE cqrs_mark_failed');
          throw error;
        }
      });
    },
  };
  if (options.ownConnection === true) {
    // Inside BEGIN IMMEDIATE nothing else writes, so one pass over the pending rows in seq order decides: a row
    // that is backing off or leased blocks the later rows of its key; due rows of unblocked keys are taken.
    const pageSql = `SELECT * FROM ${t} WHERE status = 'pending' AND seq > ? ORDER BY seq LIMIT ?`;
    const lockRows = (at: number, limit: number): OutboxRecord[] => {
      const out: OutboxRecord[] = [];
      let blocked: Set<string> | undefined;
      let after = 0;
      for (;;) {
        const rows = stmt(pageSql).all(after, limit) as Row[];
        for (const r of rows) {
          const key = r.key as string | null;
          const due =
            Number(r.next_attempt_at) <= at && (r.claimed_until === null || Number(r.claimed_until) < at);
          if (key !== null && (!due || blocked?.has(key))) {
            blocked ??= new Set();
            blocked.add(key);
            continue;
          }
          if (!due) continue;
          out.push(toRecord(r));
          if (out.length >= limit) return out;
        }
        if (rows.length < limit) return out;
        after = Number(rows[rows.length - 1]!.seq);
      }
    };
    // One locked batch at a time on the connection: a second relay on the same store waits for the first.
    let turn: Promise<unknown> = Promise.resolve();
    store.processLocked = (request, process) => {
      const run = turn.then(() => lockedBatch(request, process));
      turn = run.catch(() => undefined);
      return run;
    };
    const lockedBatch: NonNullable<OutboxStore<SqliteDatabase>['processLocked']> = async (
      { limit, now: at },
      process,
    ) => {
      if (db.isTransaction === true) {
        throw new ConfigurationError(
          'sqlite outbox: ownConnection is set but the connection is inside a transaction of someone else',
        );
      }
      await guard('outbox lock', () => db.exec('BEGIN IMMEDIATE'));
      let open = true;
      const end = (sql: 'COMMIT' | 'ROLLBACK') => {
        open = false;
        db.exec(sql);
      };
      try {
        const records = lockRows(at, limit);
        const outcome = records.length === 0 ? undefined : await process(records);
        if (outcome === undefined) {
          end('ROLLBACK');
          return records.length;
        }
        if (outcome.published.length > 0) {
          const published = new Set(outcome.published);
          const seqs: number[] = [];
          for (const r of records) if (published.has(r.id)) seqs.push(r.seq);
          publishSeqs(seqs, outcome.publishedAt);
        }
        if (outcome.failures.length > 0) writeFailures(outcome.failures);
        end('COMMIT');
        return records.length;
      } catch (error) {
        if (open) {
          try {
            db.exec('ROLLBACK');
          } catch {
            // the transaction is gone already
          }
        }
        throw toStorageError(error, 'outbox locked batch');
      }
    };
  }
  return store;
}
