import { assertTableName } from '@cqrs-ts/core';
import { executorOf } from './postgres-executor.ts';
import type { PostgresClient, PostgresTables } from './postgres-options.ts';

/** Resolved, validated table names. @internal */
export function resolveTables(tables: PostgresTables = {}): { outbox: string; inbox: string } {
  return {
    outbox: assertTableName(tables.outbox ?? 'cqrs_outbox', 'postgres outbox table'),
    inbox: assertTableName(tables.inbox ?? 'cqrs_inbox', 'postgres inbox table'),
  };
}

const bare = (name: string) => name.split('.').pop()!;

/**
 * The DDL `migrate` runs; idempotent, usable as a migration file. Times are epoch milliseconds (UTC).
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS cqrs_outbox (
 *   seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id UUID NOT NULL UNIQUE, type TEXT NOT NULL,
 *   topic TEXT NOT NULL, key TEXT, payload BYTEA NOT NULL, headers JSONB NOT NULL,
 *   content_encoding TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INT NOT NULL DEFAULT 0,
 *   next_attempt_at BIGINT NOT NULL, last_error TEXT, created_at BIGINT NOT NULL, published_at BIGINT,
 *   claimed_by TEXT, claimed_until BIGINT);
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_pending ON cqrs_outbox (seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_key_pending ON cqrs_outbox (key, seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_published ON cqrs_outbox (published_at) WHERE status = 'published';
 * CREATE TABLE IF NOT EXISTS cqrs_inbox (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
 *   processed_at BIGINT NOT NULL, PRIMARY KEY (message_id, consumer));
 * CREATE INDEX IF NOT EXISTS cqrs_inbox_processed_at ON cqrs_inbox (processed_at);
 * ```
 */
export function schemaStatements(tables: PostgresTables = {}): string[] {
  const { outbox: o, inbox: i } = resolveTables(tables);
  const ob = bare(o);
  const ib = bare(i);
  return [
    `CREATE TABLE IF NOT EXISTS ${o} (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id UUID NOT NULL UNIQUE, type TEXT NOT NULL,
  topic TEXT NOT NULL, key TEXT, payload BYTEA NOT NULL, headers JSONB NOT NULL,
  content_encoding TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL, last_error TEXT, created_at BIGINT NOT NULL, published_at BIGINT,
  claimed_by TEXT, claimed_until BIGINT)`,
    `CREATE INDEX IF NOT EXISTS ${ob}_pending ON ${o} (seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${ob}_key_pending ON ${o} (key, seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${ob}_published ON ${o} (published_at) WHERE status = 'published'`,
    `CREATE TABLE IF NOT EXISTS ${i} (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
  processed_at BIGINT NOT NULL, PRIMARY KEY (message_id, consumer))`,
    `CREATE INDEX IF NOT EXISTS ${ib}_processed_at ON ${i} (processed_at)`,
  ];
}

/** Creates the outbox and inbox tables and indexes if missing (idempotent). Works with pg, postgres.js, Kysely. */
export async function migrate(
  client: PostgresClient,
  options: { tables?: PostgresTables } = {},
): Promise<void> {
  const execute = executorOf(client);
  for (const sql of schemaStatements(options.tables)) await execute(sql, []);
}
