import type { IdempotencyStore } from '@cqrs-ts/core/spi';
import { createSqlIdempotencyStore, type IdempotencyRow } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import { flushCommitTail, pgLiteral, sendWithCommit, takeBegin } from './postgres-executor.ts';
import type { PgQueryable, PostgresClient, PostgresTables } from './postgres-options.ts';
import { execOf } from './postgres-outbox-store.ts';
import { resolveTables } from './schema.ts';

/** Options of {@link createPostgresIdempotencyStore}. */
export interface PostgresIdempotencyStoreOptions {
  /** Reads replays outside any transaction: a pg `Pool`, a postgres.js `sql` or a Kysely instance. */
  readonly client: PostgresClient;
  /** `inbox` names the table (the inbox table, with its `fingerprint` and `result` columns). */
  readonly tables?: PostgresTables;
}

/**
 * The PostgreSQL {@link IdempotencyStore} of a unit of work: records are rows of the inbox table (consumer
 * `cqrs:idempotency`). A claim is `INSERT … ON CONFLICT DO NOTHING` in the command's transaction, so a second
 * claim of the same key waits for the first transaction, then reads what it committed (read committed). In a
 * pg pool transaction of the unit of work, the claim goes with its BEGIN and that read in one round trip, and
 * the result's UPDATE in the COMMIT's: a first send costs no round trip more than the same send without a key,
 * a replay two (the claim, the COMMIT).
 */
export function createPostgresIdempotencyStore(
  options: PostgresIdempotencyStoreOptions,
): IdempotencyStore<PostgresClient> {
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = $1 AND consumer = $2`;
  const claimSql = `INSERT INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`;
  const completeSql = `UPDATE ${t} SET result = $3 WHERE message_id = $1 AND consumer = $2`;
  return createSqlIdempotencyStore<PostgresClient>({
    find: async (id, consumer) => (await execOf(options.client)(findSql, [id, consumer], true)).rows[0],
    insert: async (tx, id, consumer, now, fingerprint) => {
      if (takeBegin(tx)) {
        // The transaction's first statement: BEGIN, the claim and the read of a committed row in one round trip.
        const key = `message_id = ${pgLiteral(id)} AND consumer = ${pgLiteral(consumer)}`;
        const [, claimed, found] = (await (tx as PgQueryable).query(
          `BEGIN; INSERT INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES (${pgLiteral(id)}, ${pgLiteral(consumer)}, ${Math.trunc(now)}, ${pgLiteral(fingerprint)}) ON CONFLICT DO NOTHING; SELECT fingerprint, result FROM ${t} WHERE ${key}`,
        )) as unknown as { rowCount: number | null; rows: IdempotencyRow[] }[];
        return claimed!.rowCount === 1 ? 1 : (found!.rows[0] ?? 0);
      }
      // A result queued for the commit is written first: a nested send of its key then replays it.
      await flushCommitTail(tx);
      return (await execOf(tx)(claimSql, [id, consumer, now, fingerprint], true)).count;
    },
    read: async (tx, id, consumer) => (await execOf(tx)(findSql, [id, consumer], true)).rows[0],
    complete: (tx, id, consumer, result) =>
      sendWithCommit(
        tx,
        `UPDATE ${t} SET result = ${pgLiteral(result)} WHERE message_id = ${pgLiteral(id)} AND consumer = ${pgLiteral(consumer)}`,
      ) || execOf(tx)(completeSql, [id, consumer, result], true),
    toStorageError,
  });
}
