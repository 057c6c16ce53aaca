import type { OutboxEncoderOptions, OutboxStore } from '@cqrs-ts/core/spi';
import type { KyselyExecutorLike, SqlSagaStoreOptions, SqlTableNames } from '@cqrs-ts/core/sql';

/** A mysql2/promise `Pool`, `PoolConnection` or `Connection` (the `query(sql, values)` part). */
export interface Mysql2Queryable {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
}

/** A mysql2/promise pool: the relay takes a connection of its own for each claim transaction. */
export interface Mysql2Pool extends Mysql2Queryable {
  getConnection(): Promise<Mysql2Queryable & { release(): void }>;
}

/** A Kysely instance or `Transaction` (the `executeQuery` part). */
export type KyselyMysqlExecutor = KyselyExecutorLike;

/** A Kysely instance (it runs the claim in `transaction().execute`). */
export interface KyselyMysql extends KyselyMysqlExecutor {
  transaction(): { execute<T>(fn: (trx: KyselyMysqlExecutor) => Promise<T>): Promise<T> };
}

/** Client for relay work: a mysql2 pool or a Kysely instance. You own it and end it after the relay stopped. */
export type MysqlClient = Mysql2Pool | KyselyMysql;
/** The caller's transaction: a mysql2 connection after `beginTransaction()`, or a Kysely `Transaction`. */
export type MysqlTransaction = Mysql2Queryable | KyselyMysqlExecutor;

/** Table names (`name` or `schema.name`); defaults `cqrs_outbox`, `cqrs_inbox`, `cqrs_saga`, `cqrs_saga_log`. */
export type MysqlTables = SqlTableNames;

/** Options of {@link createMysqlOutboxStore}. */
export interface MysqlOutboxStoreOptions extends OutboxEncoderOptions {
  readonly client: MysqlClient;
  readonly tables?: MysqlTables;
  /** Clock for `created_at`, epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * Keep published events as the event log: `purge` and `deleteDeadLetters` move rows to the archive table
   * (`tables.outboxArchive`) instead of deleting them, so the outbox stays small and the log stays whole.
   * Events of a stream are archived either way, never deleted. @default false
   */
  readonly archive?: boolean;
}

/** Options of {@link createMysqlInboxStore}. */
export interface MysqlInboxStoreOptions {
  readonly client: MysqlClient;
  readonly tables?: MysqlTables;
}

/**
 * Options of {@link createMysqlSagaStore}. Keep `maxTextBytes` well below the server's `max_allowed_packet`.
 */
export interface MysqlSagaStoreOptions extends SqlSagaStoreOptions {
  /**
   * A mysql2/promise pool or a Kysely instance (not a transaction: every store method is atomic on its own).
   * Keep mysql2's default `FOUND_ROWS` flag: guards read the matched-row count.
   */
  readonly client: MysqlClient;
  /** `saga` and `sagaLog` name the tables; `outbox` is ignored (the outbox store has its own). */
  readonly tables?: MysqlTables;
  /** Stage step events in this outbox in the commit's transaction (`capabilities.outbox`). */
  readonly outbox?: OutboxStore<MysqlTransaction>;
}
