import type { OutboxEncoderOptions } from '@cqrs-ts/core';

/** A value node:sqlite binds or returns. */
export type SqliteValue = null | number | bigint | string | Uint8Array;

/** The part of a node:sqlite `StatementSync` the adapter uses. */
export interface SqliteStatement {
  run(...params: SqliteValue[]): { changes: number | bigint };
  all(...params: SqliteValue[]): unknown[];
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

/** Table names; validated against `TABLE_NAME_RE`. */
export interface SqliteTables {
  /** @default 'cqrs_outbox' */
  readonly outbox?: string;
  /** @default 'cqrs_inbox' */
  readonly inbox?: string;
}

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
}

/** Options of {@link createSqliteInboxStore}. */
export interface SqliteInboxStoreOptions {
  readonly database: SqliteDatabase;
  readonly tables?: SqliteTables;
}
