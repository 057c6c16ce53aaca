import type { InboxGuard, InboxStore } from '@cqrs-ts/core';
import { processOnce } from '@cqrs-ts/core';
import { toStorageError } from './postgres-errors.ts';
import { createPostgresInboxStore } from './postgres-inbox-store.ts';
import type { PostgresClient, PostgresTables } from './postgres-options.ts';

/** A node-postgres `Pool` (the part that checks out a client for a transaction). */
export interface PgPoolLike {
  connect(): Promise<{
    query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
    release(error?: Error | boolean): void;
  }>;
}

/** A postgres.js `sql` instance (the part that runs a transaction). */
export interface PostgresJsBegin {
  begin<T>(fn: (sql: unknown) => Promise<T>): Promise<T>;
}

/** A Kysely instance (the part that runs a transaction). */
export interface KyselyTransactional {
  transaction(): { execute<T>(fn: (trx: unknown) => Promise<T>): Promise<T> };
}

/** Options of {@link createPostgresInboxGuard}. */
export interface PostgresInboxGuardOptions {
  /** A pg `Pool`, a postgres.js `sql` or a Kysely instance; transactions are opened on it. */
  readonly client: PgPoolLike | PostgresJsBegin | KyselyTransactional;
  readonly tables?: PostgresTables;
  /** Use this store instead of creating one from `client` and `tables`. */
  readonly store?: InboxStore<PostgresClient>;
}

/**
 * An {@link InboxGuard} for broker consumers: each message's handler runs in one PostgreSQL transaction that
 * also inserts its inbox mark, so a redelivered message is skipped and its effects are never applied twice.
 * Handlers reach the transaction with `consumerTransaction()`.
 */
export function createPostgresInboxGuard(options: PostgresInboxGuardOptions): InboxGuard<PostgresClient> {
  const client = options.client;
  const store =
    options.store ??
    createPostgresInboxStore({
      client: client as unknown as PostgresClient,
      ...(options.tables !== undefined ? { tables: options.tables } : {}),
    });
  const once = async (
    tx: PostgresClient,
    id: string,
    consumer: string,
    work: (tx: PostgresClient) => Promise<void>,
  ) => (await processOnce(store, tx, id, consumer, work)).status === 'processed';

  if (typeof (client as KyselyTransactional).transaction === 'function') {
    const k = client as KyselyTransactional;
    return {
      once: (id, consumer, work) =>
        k.transaction().execute((trx) => once(trx as PostgresClient, id, consumer, work)),
    };
  }
  if (typeof (client as PostgresJsBegin).begin === 'function') {
    const s = client as PostgresJsBegin;
    return {
      once: (id, consumer, work) => s.begin((sql) => once(sql as PostgresClient, id, consumer, work)),
    };
  }
  const pool = client as PgPoolLike;
  return {
    async once(id, consumer, work) {
      let c: Awaited<ReturnType<PgPoolLike['connect']>>;
      try {
        c = await pool.connect();
      } catch (error) {
        throw toStorageError(error, 'inbox connect');
      }
      let broken = false;
      try {
        await c.query('BEGIN');
        const ran = await once(c, id, consumer, work);
        await c.query('COMMIT');
        return ran;
      } catch (error) {
        try {
          await c.query('ROLLBACK');
        } catch {
          broken = true;
        }
        throw error;
      } finally {
        c.release(broken);
      }
    },
  };
}
