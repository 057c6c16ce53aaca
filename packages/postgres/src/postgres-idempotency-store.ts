import { IDEMPOTENCY_CONSUMER, type IdempotencyRecord, type IdempotencyStore } from '@cqrs-ts/core/spi';
import { toStorageError } from './postgres-errors.ts';
import type { Execute } from './postgres-executor.ts';
import type { PostgresClient, PostgresTables } from './postgres-options.ts';
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
 * claim of the same key waits for the first transaction and then reads what it committed.
 */
export function createPostgresIdempotencyStore(
  options: PostgresIdempotencyStoreOptions,
): IdempotencyStore<PostgresClient> {
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = $1 AND consumer = $2`;
  const claimSql = `INSERT INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`;
  const completeSql = `UPDATE ${t} SET result = $3 WHERE message_id = $1 AND consumer = $2`;
  const read = async (execute: Execute, id: string): Promise<IdempotencyRecord | undefined> => {
    const row = (await execute(findSql, [id, IDEMPOTENCY_CONSUMER], true)).rows[0];
    if (row === undefined) return undefined;
    return {
      fingerprint: (row.fingerprint as string | null) ?? null,
      result: (row.result as string | null) ?? null,
    };
  };
  return {
    async find(id) {
      try {
        return await read(execOf(options.client), id);
      } catch (error) {
        throw toStorageError(error, 'idempotency find');
      }
    },
    async claim(tx, id, fingerprint, now) {
      const execute = execOf(tx);
      try {
        for (;;) {
          const inserted = await execute(claimSql, [id, IDEMPOTENCY_CONSUMER, now, fingerprint], true);
          if (inserted.count === 1) return undefined;
          // Read committed: this statement sees the row the conflicting transaction committed (unless a purge
          // removed it meanwhile: then claim again).
          const found = await read(execute, id);
          if (found !== undefined) return found;
        }
      } catch (error) {
        throw toStorageError(error, 'idempotency claim');
      }
    },
    async complete(tx, id, result) {
      try {
        await execOf(tx)(completeSql, [id, IDEMPOTENCY_CONSUMER, result], true);
      } catch (error) {
        throw toStorageError(error, 'idempotency complete');
      }
    },
  };
}
