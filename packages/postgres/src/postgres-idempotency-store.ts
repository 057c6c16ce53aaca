import type { IdempotencyStore } from '@cqrs-ts/core/spi';
import { createSqlIdempotencyStore, type IdempotencyRow } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import {
  createInlineStatements,
  pgLiteral,
  sendWithCommit,
  takeBegin,
  transactionLocal,
} from './postgres-executor.ts';
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

/** A prepared statement the connection should have is gone (26000), or one it should not have is there (42P05). */
const lostPrepared = (error: unknown): boolean => {
  const code = (error as { code?: unknown })?.code;
  return code === '26000' || code === '42P05';
};

/** First key of the claims' two-key advisory locks (`pg_advisory_xact_lock(int, int)`): "cqrs" in ASCII. */
const LOCK_CLASS = 0x63717273;

/**
 * A key claimed in a pg pool transaction: its row is INSERTed with the COMMIT (`insert`), or was inserted at the
 * claim and gets its result with the COMMIT (`update`, under REPEATABLE READ or SERIALIZABLE).
 */
interface Claimed {
  readonly write: 'insert' | 'update';
  readonly now: number;
  readonly fingerprint: string;
  result: string | null;
}

/**
 * The PostgreSQL {@link IdempotencyStore} of a unit of work: records are rows of the inbox table (consumer
 * `cqrs:idempotency`).
 *
 * In a pg pool transaction of the unit of work (read committed, PostgreSQL's default), a record is written
 * once: the claim takes a transaction-scoped advisory lock on the key, unless its row is committed already, then
 * reads the row; the row, with its fingerprint and result, is INSERTed with the COMMIT. A second claim of the key
 * waits on the lock until the first transaction ends, then reads what it committed. The claim goes with the
 * BEGIN in one round trip, the row with the COMMIT: a first send costs no round trip more than the same send
 * without a key, a replay two (the claim, the COMMIT), and takes no lock. Both statements are `PREPARE`d once per
 * connection. Under REPEATABLE READ or SERIALIZABLE, a claim that took the lock also inserts the row at once,
 * as the other clients do.
 *
 * With a postgres.js or Kysely client, a claim is `INSERT … ON CONFLICT DO NOTHING` in the command's
 * transaction (a second claim waits for the first transaction, then reads what it committed), and the result is
 * an UPDATE of that row.
 */
export function createPostgresIdempotencyStore(
  options: PostgresIdempotencyStoreOptions,
): IdempotencyStore<PostgresClient> {
  const t = resolveTables(options.tables).inbox;
  const findSql = `SELECT fingerprint, result FROM ${t} WHERE message_id = $1 AND consumer = $2`;
  const claimSql = `INSERT INTO ${t} (message_id, consumer, processed_at, fingerprint) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`;
  const completeSql = `UPDATE ${t} SET result = $3 WHERE message_id = $1 AND consumer = $2`;
  const key = (p: (n: number) => string) => `message_id = ${p(1)} AND consumer = ${p(2)}`;
  const [LOCK, READ, INSERT] = [0, 1, 2];
  const inline = createInlineStatements([
    {
      types: ['text', 'text'],
      sql: (p) =>
        `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(${p(2)} || ':' || ${p(1)})), current_setting('transaction_isolation') AS isolation WHERE NOT EXISTS (SELECT 1 FROM ${t} WHERE ${key(p)})`,
    },
    { types: ['text', 'text'], sql: (p) => `SELECT fingerprint, result FROM ${t} WHERE ${key(p)}` },
    {
      types: ['text', 'text', 'bigint', 'text', 'text'],
      sql: (p) =>
        `INSERT INTO ${t} (message_id, consumer, processed_at, fingerprint, result) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)})`,
    },
  ]);
  /** The keys this store claimed in one pg pool transaction. */
  const claimsIn = (tx: PostgresClient) => transactionLocal(tx, inline, () => new Map<string, Claimed>());

  /** Lock and read in a pg pool transaction: 1 when `tx` holds the claim now, or the committed row. */
  const claimLocked = async (
    tx: PostgresClient,
    claims: Map<string, Claimed>,
    [id, consumer, now, fingerprint]: [string, string, number, string],
  ): Promise<number | IdempotencyRow> => {
    const mine = claims.get(id);
    // Claimed by an enclosing command of this unit: its record, with no result while it runs.
    if (mine !== undefined) return { fingerprint: mine.fingerprint, result: mine.result };
    const begin = takeBegin(tx);
    const query = async () => {
      const prepare = inline.prepare(tx);
      const text = `${begin ? 'BEGIN; ' : ''}${prepare}${inline.text(tx, LOCK, [id, consumer])}; ${inline.text(tx, READ, [id, consumer])}`;
      try {
        return (await (tx as PgQueryable).query(text)) as unknown as { rows: Record<string, unknown>[] }[];
      } catch (error) {
        if (prepare !== '' || lostPrepared(error)) inline.failed(tx);
        throw error;
      }
    };
    let results: { rows: Record<string, unknown>[] }[];
    try {
      results = await query();
    } catch (error) {
      // The connection lost its prepared statements (a DISCARD ALL, a transaction pooler): the transaction did
      // nothing else yet, so it starts again, with the values inlined.
      if (!(begin && lostPrepared(error))) throw error;
      await (tx as PgQueryable).query('ROLLBACK');
      results = await query();
    }
    const locked = results.at(-2)!.rows[0];
    const found = results.at(-1)!.rows[0];
    if (found !== undefined) return found;
    if (locked === undefined || locked.isolation === 'read committed') {
      claims.set(id, { write: 'insert', now, fingerprint, result: null });
      return 1;
    }
    // The read saw the snapshot the lock was waited for in: claim by inserting, which fails (serialization)
    // when a transaction committed the key meanwhile.
    const inserted = (await execOf(tx)(claimSql, [id, consumer, now, fingerprint], true)).count;
    if (inserted === 1) claims.set(id, { write: 'update', now, fingerprint, result: null });
    return inserted;
  };

  return createSqlIdempotencyStore<PostgresClient>({
    find: async (id, consumer) => (await execOf(options.client)(findSql, [id, consumer], true)).rows[0],
    insert: async (tx, id, consumer, now, fingerprint) => {
      const claims = claimsIn(tx);
      if (claims !== undefined) return claimLocked(tx, claims, [id, consumer, now, fingerprint]);
      return (await execOf(tx)(claimSql, [id, consumer, now, fingerprint], true)).count;
    },
    read: async (tx, id, consumer) => (await execOf(tx)(findSql, [id, consumer], true)).rows[0],
    complete: (tx, id, consumer, result) => {
      const claimed = claimsIn(tx)?.get(id);
      if (claimed === undefined) return execOf(tx)(completeSql, [id, consumer, result], true);
      claimed.result = result;
      sendWithCommit(
        tx,
        claimed.write === 'insert'
          ? inline.text(tx, INSERT, [id, consumer, claimed.now, claimed.fingerprint, result])
          : `UPDATE ${t} SET result = ${pgLiteral(result)} WHERE message_id = ${pgLiteral(id)} AND consumer = ${pgLiteral(consumer)}`,
      );
      return undefined;
    },
    toStorageError,
  });
}
