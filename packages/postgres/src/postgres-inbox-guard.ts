import { ConfigurationError } from '@cqrs-ts/core';
import { createInboxGuard, type InboxGuard, type InboxStore } from '@cqrs-ts/core/spi';
import { toStorageError } from './postgres-errors.ts';
import { transactionOf } from './postgres-executor.ts';
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
 * @throws ConfigurationError when `client` cannot open transactions (a single `Client` or a checked-out one)
 */
export function createPostgresInboxGuard(options: PostgresInboxGuardOptions): InboxGuard<PostgresClient> {
  const client = options.client as unknown as PostgresClient;
  const transact = transactionOf(client);
  if (transact === undefined) {
    throw new ConfigurationError(
      'postgres inbox guard: client must be a pg Pool, a postgres.js sql or Kysely',
    );
  }
  const store =
    options.store ??
    createPostgresInboxStore({ client, ...(options.tables !== undefined ? { tables: options.tables } : {}) });
  return createInboxGuard({
    store,
    transaction: (fn) => transact((_execute, tx) => fn(tx)),
    toStorageError,
  });
}
