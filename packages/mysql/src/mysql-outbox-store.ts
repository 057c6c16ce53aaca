import { type AnyEvent, ConfigurationError } from '@cqrs-ts/core';
import {
  createOutboxEncoder,
  type OutboxFailure,
  type OutboxRecord,
  type OutboxStore,
} from '@cqrs-ts/core/spi';
import { createSqlOutboxOperations, outboxRecordFromRow } from '@cqrs-ts/core/sql';
import { classifyMysqlError, toStorageError } from './mysql-errors.ts';
import { type Execute, execOf, inTransaction } from './mysql-executor.ts';
import type { MysqlOutboxStoreOptions, MysqlTransaction } from './mysql-options.ts';
import { resolveTables } from './schema.ts';

type Row = Record<string, unknown>;

/** Tries of a claim that InnoDB picked as a deadlock victim (each rolled back whole, nothing claimed). */
const CLAIM_ATTEMPTS = 3;

/** Maps a row of the outbox table. @internal */
export const toRecord: (r: Row) => OutboxRecord = outboxRecordFromRow;

const CHUNK = 1000;
const marks = (n: number) => Array.from({ length: n }, () => '?').join(',');

/**
 * The MariaDB/MySQL {@link OutboxStore} for mysql2 and Kysely. `append(tx, events)` is one multi-row INSERT on
 * the caller's transaction. Claims run `SELECT … FOR UPDATE SKIP LOCKED` in a short transaction on a
 * connection of the store's own. Same-key appends from concurrent transactions are ordered by AUTO_INCREMENT,
 * so serialize writers of one aggregate (e.g. lock its row) as you would anyway.
 */
export function createMysqlOutboxStore(options: MysqlOutboxStoreOptions): OutboxStore<MysqlTransaction> {
  const tables = resolveTables(options.tables);
  const t = tables.outbox;
  const archive = options.archive ?? false;
  if (typeof archive !== 'boolean') throw new ConfigurationError('mysql outbox: archive must be a boolean');
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  const client = options.client;
  const exec = execOf(client);
  const run = async (what: string, sql: string, params: readonly unknown[], execute: Execute = exec) => {
    try {
      return await execute(sql, params);
    } catch (error) {
      throw toStorageError(error, what);
    }
  };
  /**
   * Takes the rows matching `where` out of the outbox, one short transaction per chunk (never many locks at
   * once): locks them, copies those the archive keeps (all with `archive`, else those of a stream), deletes
   * them. Returns how many left.
   */
  const leave = async (what: string, where: string, params: readonly unknown[]): Promise<number> => {
    let n = 0;
    for (;;) {
      let moved: number;
      try {
        moved = await inTransaction(client, async (execute) => {
          const { rows } = await execute(
            `SELECT seq FROM ${t} WHERE ${where} ORDER BY seq LIMIT ${CHUNK} FOR UPDATE`,
            params,
          );
          if (rows.length === 0) return 0;
          const seqs = rows.map((r) => Number(r.seq));
          await execute(
            `INSERT INTO ${tables.outboxArchive} (seq, id, type, topic, \`key\`, payload, headers, content_encoding, status,
               created_at, published_at, stream_id, stream_version, archived_at)
             SELECT seq, id, type, topic, \`key\`, payload, headers, content_encoding, status, created_at, published_at,
               stream_id, stream_version, ? FROM ${t} WHERE seq IN (${marks(seqs.length)})${archive ? '' : ' AND stream_id IS NOT NULL'}`,
            [Date.now(), ...seqs],
          );
          await execute(`DELETE FROM ${t} WHERE seq IN (${marks(seqs.length)})`, seqs);
          return seqs.length;
        });
      } catch (error) {
        throw toStorageError(error, what);
      }
      n += moved;
      if (moved < CHUNK) return n;
    }
  };
  const shared = createSqlOutboxOperations({
    table: t,
    placeholder: () => '?',
    run: (what, sql, params) => run(what, sql, params),
    statsSql: `SELECT COALESCE(SUM(status = 'pending'), 0) AS backlog, COALESCE(SUM(status = 'dead'), 0) AS dead,
       MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM ${t} WHERE status <> 'published'`,
    remove: leave,
  });

  /** Locks up to `limit` due rows (SKIP LOCKED) and keeps those no earlier pending row of their key precedes. */
  const lockEligible = async (execute: Execute, at: number, limit: number): Promise<OutboxRecord[]> => {
    const { rows } = await execute(
      `SELECT * FROM ${t} WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
         ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED`,
      [at, at, limit],
    );
    if (rows.length === 0) return [] as OutboxRecord[];
    const candidates = rows.map(toRecord);
    const inBatch = new Set(candidates.map((r) => r.seq));
    const keys = [...new Set(candidates.map((r) => r.key).filter((k) => k !== null))];
    const firstOutside = new Map<string, number>();
    const maxSeq = candidates[candidates.length - 1]!.seq;
    // The candidates are pending rows up to maxSeq; when no other pending row comes before maxSeq (one count on
    // the (status, seq) index, the usual case) nothing blocks a key, and the per-key look-up is skipped.
    const before =
      keys.length === 0
        ? candidates.length
        : Number(
            (await execute(`SELECT COUNT(*) AS n FROM ${t} WHERE status = 'pending' AND seq <= ?`, [maxSeq]))
              .rows[0]!.n,
          );
    if (before > candidates.length) {
      const earlier = await execute(
        `SELECT seq, \`key\` FROM ${t} WHERE status = 'pending' AND \`key\` IN (${marks(keys.length)}) AND seq < ?`,
        [...keys, maxSeq],
      );
      for (const e of earlier.rows) {
        const seq = Number(e.seq);
        const key = e.key as string;
        if (!inBatch.has(seq) && seq < (firstOutside.get(key) ?? Number.POSITIVE_INFINITY)) {
          firstOutside.set(key, seq);
        }
      }
    }
    const claimed = candidates.filter(
      (r) => r.key === null || r.seq < (firstOutside.get(r.key) ?? Number.POSITIVE_INFINITY),
    );
    return claimed;
  };
  const markFailed = async (failures: readonly OutboxFailure[], execute: Execute = exec): Promise<void> => {
    for (let i = 0; i < failures.length; i += CHUNK) {
      const part = failures.slice(i, i + CHUNK);
      const cases = part.map(() => 'WHEN ? THEN ?').join(' ');
      const params: unknown[] = [];
      for (const f of part) params.push(f.id, f.error);
      for (const f of part) params.push(f.id, f.nextAttemptAt);
      for (const f of part) params.push(f.id, f.dead ? 'dead' : 'pending');
      params.push(...part.map((f) => f.id));
      await run(
        'outbox markFailed',
        `UPDATE ${t} SET attempts = attempts + 1, last_error = CASE id ${cases} END,
           next_attempt_at = CASE id ${cases} END, status = CASE id ${cases} END,
           claimed_by = NULL, claimed_until = NULL
         WHERE status = 'pending' AND id IN (${marks(part.length)})`,
        params,
        execute,
      );
    }
  };

  return {
    ...shared,
    async append(tx, events: readonly AnyEvent[]) {
      const rows = encoder.encode(events, now());
      const execute = execOf(tx);
      for (let i = 0; i < rows.length; i += CHUNK) {
        const part = rows.slice(i, i + CHUNK);
        const params: unknown[] = [];
        for (const r of part) {
          const p = r.payload;
          params.push(r.id, r.type, r.topic, r.key, Buffer.from(p.buffer, p.byteOffset, p.byteLength));
          params.push(JSON.stringify(r.headers), r.contentEncoding, r.createdAt, r.createdAt);
        }
        await run(
          'outbox append',
          `INSERT INTO ${t} (id, type, topic, \`key\`, payload, headers, content_encoding, next_attempt_at, created_at) VALUES ${part.map(() => '(?,?,?,?,?,?,?,?,?)').join(',')}`,
          params,
          execute,
        );
      }
    },
    async claimBatch({ relayId, limit, leaseMs, now: at }) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await inTransaction(client, async (execute) => {
            const claimed = await lockEligible(execute, at, limit);
            if (claimed.length === 0) return [];
            const until = at + leaseMs;
            await execute(
              `UPDATE ${t} SET claimed_by = ?, claimed_until = ? WHERE seq IN (${marks(claimed.length)})`,
              [relayId, until, ...claimed.map((r) => r.seq)],
            );
            return claimed.map((r) => ({ ...r, claimedBy: relayId, claimedUntil: until }));
          });
        } catch (error) {
          // Two relays' claims can deadlock on InnoDB's gap locks; the victim's transaction is rolled back whole
          // (nothing claimed), and the server asks to restart it.
          if (attempt < CLAIM_ATTEMPTS && classifyMysqlError(error) === 'deadlock') continue;
          throw toStorageError(error, 'outbox claim');
        }
      }
    },
    async processLocked({ limit, now: at }, process) {
      let locked = 0;
      const rollback = new Error('outbox: batch postponed');
      try {
        await inTransaction(client, async (execute) => {
          const records = await lockEligible(execute, at, limit);
          locked = records.length;
          const outcome = await process(records);
          if (outcome === undefined) throw rollback;
          if (outcome.published.length > 0) {
            const published = new Set(outcome.published);
            const seqs = records.filter((r) => published.has(r.id)).map((r) => r.seq);
            for (let i = 0; i < seqs.length; i += CHUNK) {
              const part = seqs.slice(i, i + CHUNK);
              await execute(
                `UPDATE ${t} SET status = 'published', published_at = ?, claimed_by = NULL, claimed_until = NULL WHERE seq IN (${marks(part.length)})`,
                [outcome.publishedAt, ...part],
              );
            }
          }
          if (outcome.failures.length > 0) await markFailed(outcome.failures, execute);
        });
      } catch (error) {
        if (error !== rollback) throw toStorageError(error, 'outbox locked batch');
      }
      return locked;
    },
    markFailed: (failures) => markFailed(failures),
  };
}
