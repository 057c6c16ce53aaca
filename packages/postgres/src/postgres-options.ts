import type { OutboxEncoderOptions, OutboxStore } from '@cqrs-ts/core/spi';
import type { KyselyExecutorLike, SqlSagaStoreOptions, SqlTableNames } from '@cqrs-ts/core/sql';

/** A node-postgres `Pool`, `PoolClient` or `Client` (the `query(text, values)` part). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** A postgres.js `sql` instance or transaction `sql` (the `unsafe` part). */
export interface PostgresJsSql {
  unsafe(query: string, parameters?: unknown[]): PromiseLike<readonly unknown[] & { count: number }>;
}

/** A Kysely instance or `Transaction` (the `executeQuery` part). */
export type KyselyExecutor = KyselyExecutorLike;

/**
 * Any supported client: pg, postgres.js or Kysely. The store is handed one for its own (relay) work, and
 * `append` / `markProcessed` take the caller's transaction as the same kind of object.
 * You own the client: create it, and end it after the relay stopped.
 */
export type PostgresClient = PgQueryable | PostgresJsSql | KyselyExecutor;

/** Table names (`name` or `schema.name`); defaults `cqrs_outbox`, `cqrs_inbox`, `cqrs_saga`, `cqrs_saga_log`. */
export type PostgresTables = SqlTableNames;

/** Options of {@link createPostgresOutboxStore}. */
export interface PostgresOutboxStoreOptions extends OutboxEncoderOptions {
  /** Client for relay work (claim, mark, purge); a pool, not a transaction. */
  readonly client: PostgresClient;
  readonly tables?: PostgresTables;
  /** `pg_notify` channel sent on append for {@link createPostgresWakeUp}; `false` disables it. @default 'cqrs_outbox' */
  readonly notifyChannel?: string | false;
  /**
   * Take a transaction-scoped advisory lock per ordering key in `append`, so two concurrent transactions
   * appending the same key cannot commit out of sequence order. @default true
   */
  readonly lockKeys?: boolean;
  /** Clock for `created_at`, epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * Keep published events as the event log: `purge` and `deleteDeadLetters` move rows to the archive table
   * (`tables.outboxArchive`) instead of deleting them, so the outbox stays small and the log stays whole.
   * Events of a stream are archived either way, never deleted. @default false
   */
  readonly archive?: boolean;
}

/** Options of {@link createPostgresInboxStore}. */
export interface PostgresInboxStoreOptions {
  readonly client: PostgresClient;
  readonly tables?: PostgresTables;
}

/** Options of {@link createPostgresSagaStore}. */
export interface PostgresSagaStoreOptions extends SqlSagaStoreOptions {
  /**
   * A pg `Pool`, a postgres.js `sql` or a Kysely instance (not a transaction: every store method is atomic on
   * its own). A single pg `Client` works too, except with `outbox` (a commit with events needs a transaction
   * on a connection of its own).
   */
  readonly client: PostgresClient;
  /** `saga` and `sagaLog` name the tables; `outbox` is ignored (the outbox store has its own). */
  readonly tables?: PostgresTables;
  /**
   * Stage step events in this outbox in the commit's transaction (`capabilities.outbox`): a store from
   * `createPostgresOutboxStore` over the same database.
   */
  readonly outbox?: OutboxStore<PostgresClient>;
}
