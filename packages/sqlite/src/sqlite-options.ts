import type { OutboxEncoderOptions, OutboxStore } from '@cqrs-ts/core/spi';
import type { SqlSagaStoreOptions, SqlTableNames } from '@cqrs-ts/core/sql';

/** A value node:sqlite binds or returns. */
export type SqliteValue = null | number | bigint | string | Uint8Array;

/** The part of a node:sqlite `StatementSync` the adapter uses. */
export interface SqliteStatement {
  run(...params: SqliteValue[]): { changes: number | bigint };
  all(...params: SqliteValue[]): unknown[];
  /** Return INTEGER columns as `bigint` (node:sqlite); the saga store reads with it to detect out-of-range values. */
  setReadBigInts?(enabled: boolean): void;
}

/**
 * The part of node:sqlite's `DatabaseSync` the adapter uses. You own the connection: open it, set
 * `PRAGMA journal_mode = WAL` and `PRAGMA busy_timeout`, and close it after the relay stopped.
 */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  /** `true` inside `BEGIN` … `COMMIT` (node:sqlite ≥ 22.16 / 24). */
  readonly isTransaction?: boolean;
}

/** Table names (`name` or `schema.name`); defaults `cqrs_outbox`, `cqrs_inbox`, `cqrs_saga`, `cqrs_saga_log`. */
export type SqliteTables = SqlTableNames;

/** Options of {@link createSqliteOutboxStore}. */
export interface SqliteOutboxStoreOptions extends OutboxEncoderOptions {
  /**
   * Connection the relay side (claim, mark, purge) uses. Prefer a connection of its own, so relay work
   * never runs inside an application transaction that is open across an `await`.
   */
  readonly database: SqliteDatabase;
  readonly tables?: SqliteTables;
  /** Clock for `created_at`, epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * `true` declares that `database` is the store's own connection, used by nothing else. The store then offers
   * the relay's `transaction` mode (`processLocked`): one write transaction per batch (`BEGIN IMMEDIATE`, read the
   * rows, publish, mark, `COMMIT`), one write per row instead of two. The transaction, and SQLite's single write
   * lock, is held while the batch is published: writers on other connections wait for it (give them a
   * `busy_timeout` longer than a publish takes). Statements that ran on a shared connection meanwhile would join
   * it, so it is off unless you declare the connection yours. @default false (lease mode only)
   */
  readonly ownConnection?: boolean;
  /**
   * Keep published events as the event log: `purge` and `deleteDeadLetters` move rows to the archive table
   * (`tables.outboxArchive`) instead of deleting them, so the outbox stays small and the log stays whole.
   * Events of a stream are archived either way, never deleted. @default false
   */
  readonly archive?: boolean;
}

/** Options of {@link createSqliteInboxStore}. */
export interface SqliteInboxStoreOptions {
  readonly database: SqliteDatabase;
  readonly tables?: SqliteTables;
}

/** Options of {@link createSqliteSagaStore}. */
export interface SqliteSagaStoreOptions extends SqlSagaStoreOptions {
  /**
   * The connection the store writes with. Give it a connection of its own (with `PRAGMA busy_timeout` set for
   * other processes): every method runs `BEGIN IMMEDIATE … COMMIT` or a single statement on it, so it must not
   * be inside a transaction of yours.
   */
  readonly database: SqliteDatabase;
  /** `saga` and `sagaLog` name the tables; `outbox` is ignored (the outbox store has its own). */
  readonly tables?: SqliteTables;
  /** Stage step events in this outbox (over the same database file) in the commit's transaction. */
  readonly outbox?: OutboxStore<SqliteDatabase>;
}
