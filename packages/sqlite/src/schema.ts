import { assertTableName } from '@cqrs-ts/core';
import type { SqliteDatabase, SqliteTables } from './sqlite-options.ts';

/** Resolved, validated table names. @internal */
export function resolveTables(tables: SqliteTables = {}): { outbox: string; inbox: string } {
  return {
    outbox: assertTableName(tables.outbox ?? 'cqrs_outbox', 'sqlite outbox table'),
    inbox: assertTableName(tables.inbox ?? 'cqrs_inbox', 'sqlite inbox table'),
  };
}

/**
 * The DDL `migrate` runs; idempotent. Times are epoch milliseconds (UTC).
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS cqrs_outbox (
 *   seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, topic TEXT NOT NULL,
 *   key TEXT, payload BLOB NOT NULL, headers TEXT NOT NULL, content_encoding TEXT NOT NULL,
 *   status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
 *   next_attempt_at INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, published_at INTEGER,
 *   claimed_by TEXT, claimed_until INTEGER);
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_pending ON cqrs_outbox (seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_key_pending ON cqrs_outbox (key, seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_published ON cqrs_outbox (published_at) WHERE status = 'published';
 * CREATE TABLE IF NOT EXISTS cqrs_inbox (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
 *   processed_at INTEGER NOT NULL, PRIMARY KEY (message_id, consumer)) WITHOUT ROWID;
 * CREATE INDEX IF NOT EXISTS cqrs_inbox_processed_at ON cqrs_inbox (processed_at);
 * ```
 */
export function schemaSql(tables: SqliteTables = {}): string {
  const { outbox: o, inbox: i } = resolveTables(tables);
  const ob = o.replace('.', '_');
  const ib = i.replace('.', '_');
  return `
CREATE TABLE IF NOT EXISTS ${o} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, topic TEXT NOT NULL,
  key TEXT, payload BLOB NOT NULL, headers TEXT NOT NULL, content_encoding TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, published_at INTEGER,
  claimed_by TEXT, claimed_until INTEGER);
CREATE INDEX IF NOT EXISTS ${ob}_pending ON ${o.split('.').pop()} (seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS ${ob}_key_pending ON ${o.split('.').pop()} (key, seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS ${ob}_published ON ${o.split('.').pop()} (published_at) WHERE status = 'published';
CREATE TABLE IF NOT EXISTS ${i} (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
  processed_at INTEGER NOT NULL, PRIMARY KEY (message_id, consumer)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${ib}_processed_at ON ${i.split('.').pop()} (processed_at);`;
}

/** Creates the outbox and inbox tables if missing (idempotent). */
export function migrate(database: SqliteDatabase, options: { tables?: SqliteTables } = {}): void {
  database.exec(schemaSql(options.tables));
}
