import type { OutboxStore } from '../outbox/outbox-store.ts';
import { outboxRecordFromRow } from './sql-outbox-rows.ts';

/** The rows and the affected-row count of one statement. */
export interface SqlRunResult {
  readonly rows: readonly Record<string, unknown>[];
  readonly count: number;
}

/** What {@link createSqlOutboxOperations} needs from an SQL outbox store. */
export interface SqlOutboxOperationsOptions {
  /** The outbox table, already checked (`resolveTableNames`). */
  readonly table: string;
  /** The placeholder of parameter `n` (1-based): `?` (MariaDB, SQLite) or `$n` (PostgreSQL). */
  readonly placeholder: (n: number) => string;
  /** Appended to each id placeholder, e.g. `::uuid` on PostgreSQL. @default '' */
  readonly idCast?: string;
  /** Ids per statement. @default 1000 */
  readonly chunk?: number;
  /** Runs one statement on the store's own connection; failures are the adapter's storage errors. */
  readonly run: (what: string, sql: string, params: readonly unknown[]) => Promise<SqlRunResult>;
  /** A SELECT of one row with `backlog`, `dead` and `oldest` (`created_at` of the oldest pending row, or NULL). */
  readonly statsSql: string;
  /**
   * Takes the rows matching `where` (parameters numbered from 1) out of the outbox for retention and dead-letter
   * deletes, and returns how many left; stores that keep an event log move them to their archive. @default a
   * `DELETE`
   */
  readonly remove?: (what: string, where: string, params: readonly unknown[]) => Promise<number>;
}

/**
 * The store operations every SQL outbox store writes the same way: marking published rows, releasing leases,
 * dead letters (list, replay, delete), the backlog figures and retention.
 */
export type SqlOutboxOperations = Pick<
  OutboxStore,
  | 'markPublished'
  | 'release'
  | 'listDeadLetters'
  | 'replayDeadLetters'
  | 'deleteDeadLetters'
  | 'stats'
  | 'publishedCounts'
  | 'purge'
>;

/**
 * The statements every SQL outbox store shares ({@link SqlOutboxOperations}); the adapter gives its
 * placeholders, its runner and its `stats` query.
 */
export function createSqlOutboxOperations(options: SqlOutboxOperationsOptions): SqlOutboxOperations {
  const { table: t, placeholder: p, run, statsSql } = options;
  const cast = options.idCast ?? '';
  const chunk = options.chunk ?? 1000;
  const list = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => `${p(from + i)}${cast}`).join(',');
  const byIds = async (
    what: string,
    ids: readonly string[],
    sql: (list: string) => string,
    head: readonly unknown[] = [],
  ) => {
    let n = 0;
    for (let i = 0; i < ids.length; i += chunk) {
      const part = ids.slice(i, i + chunk);
      n += (await run(what, sql(list(head.length + 1, part.length)), [...head, ...part])).count;
    }
    return n;
  };
  const remove =
    options.remove ??
    (async (what: string, where: string, params: readonly unknown[]) =>
      (await run(what, `DELETE FROM ${t} WHERE ${where}`, params)).count);
  const operations: SqlOutboxOperations = {
    async markPublished(ids, at) {
      await byIds(
        'outbox markPublished',
        ids,
        (l) =>
          `UPDATE ${t} SET status = 'published', published_at = ${p(1)}, claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND id IN (${l})`,
        [at],
      );
    },
    async release(ids) {
      await byIds(
        'outbox release',
        ids,
        (l) =>
          `UPDATE ${t} SET claimed_by = NULL, claimed_until = NULL WHERE status = 'pending' AND id IN (${l})`,
      );
    },
    async listDeadLetters(query = {}) {
      const r = await run(
        'outbox listDeadLetters',
        `SELECT * FROM ${t} WHERE status = 'dead' AND seq > ${p(1)} ORDER BY seq LIMIT ${p(2)}`,
        [query.afterSeq ?? 0, query.limit ?? 100],
      );
      return r.rows.map(outboxRecordFromRow);
    },
    replayDeadLetters(ids, at) {
      return byIds(
        'outbox replayDeadLetters',
        ids,
        (l) =>
          `UPDATE ${t} SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = ${p(1)} WHERE status = 'dead' AND id IN (${l})`,
        [at],
      );
    },
    async deleteDeadLetters(ids) {
      let n = 0;
      for (let i = 0; i < ids.length; i += chunk) {
        const part = ids.slice(i, i + chunk);
        n += await remove(
          'outbox deleteDeadLetters',
          `status = 'dead' AND id IN (${list(1, part.length)})`,
          part,
        );
      }
      return n;
    },
    async stats(at) {
      const row = (await run('outbox stats', statsSql, [])).rows[0] ?? {};
      const oldest = row.oldest === null || row.oldest === undefined ? at : Number(row.oldest);
      return {
        backlog: Number(row.backlog ?? 0),
        dead: Number(row.dead ?? 0),
        oldestPendingAgeMs: Math.max(0, at - oldest),
      };
    },
    async publishedCounts({ since, bucketMs, buckets }) {
      // one pass over the published index from `since`: a conditional sum per window, portable to all three
      const sums: string[] = [];
      const params: number[] = [];
      for (let i = 0; i < buckets; i++) {
        params.push(since + i * bucketMs, since + (i + 1) * bucketMs);
        sums.push(
          `SUM(CASE WHEN published_at >= ${p(2 * i + 1)} AND published_at < ${p(2 * i + 2)} THEN 1 ELSE 0 END) AS b${i}`,
        );
      }
      params.push(since, since + buckets * bucketMs);
      const row =
        (
          await run(
            'outbox publishedCounts',
            `SELECT ${sums.join(', ')} FROM ${t} WHERE status = 'published' AND published_at >= ${p(2 * buckets + 1)} AND published_at < ${p(2 * buckets + 2)}`,
            params,
          )
        ).rows[0] ?? {};
      return Array.from({ length: buckets }, (_, i) => Number(row[`b${i}`] ?? 0));
    },
    async purge({ publishedBefore, deadBefore }) {
      let n = await remove('outbox purge', `status = 'published' AND published_at < ${p(1)}`, [
        publishedBefore,
      ]);
      if (deadBefore !== undefined)
        n += await remove('outbox purge', `status = 'dead' AND created_at < ${p(1)}`, [deadBefore]);
      return n;
    },
  };
  return operations;
}
