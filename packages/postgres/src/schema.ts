import { resolveTableNames } from '@cqrs-ts/core/sql';
import { executorOf } from './postgres-executor.ts';
import type { PostgresClient, PostgresTables } from './postgres-options.ts';

/** Resolved, validated table names. @internal */
export function resolveTables(tables?: PostgresTables): Readonly<Required<PostgresTables>> {
  return resolveTableNames(tables, 'postgres');
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
 *   claimed_by TEXT, claimed_until BIGINT, tx_id XID8 NOT NULL DEFAULT pg_current_xact_id(), stream_id TEXT,
 *   stream_version BIGINT);
 * ALTER TABLE cqrs_outbox ADD COLUMN IF NOT EXISTS tx_id XID8 NOT NULL DEFAULT pg_current_xact_id(),
 *   ADD COLUMN IF NOT EXISTS stream_id TEXT, ADD COLUMN IF NOT EXISTS stream_version BIGINT;
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_pending ON cqrs_outbox (seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_key_pending ON cqrs_outbox (key, seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_published ON cqrs_outbox (published_at) WHERE status = 'published';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_log ON cqrs_outbox (tx_id, seq);
 * CREATE UNIQUE INDEX IF NOT EXISTS cqrs_outbox_stream_version ON cqrs_outbox (stream_id, stream_version)
 *   WHERE stream_id IS NOT NULL;
 * CREATE TABLE IF NOT EXISTS cqrs_outbox_archive (
 *   seq BIGINT PRIMARY KEY, tx_id XID8 NOT NULL, id UUID NOT NULL, type TEXT NOT NULL, topic TEXT NOT NULL,
 *   key TEXT, payload BYTEA NOT NULL, headers JSONB NOT NULL, content_encoding TEXT NOT NULL, status TEXT NOT NULL,
 *   created_at BIGINT NOT NULL, published_at BIGINT, stream_id TEXT, stream_version BIGINT,
 *   archived_at BIGINT NOT NULL);
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_archive_log ON cqrs_outbox_archive (tx_id, seq);
 * CREATE UNIQUE INDEX IF NOT EXISTS cqrs_outbox_archive_stream_version ON cqrs_outbox_archive (stream_id, stream_version)
 *   WHERE stream_id IS NOT NULL;
 * CREATE TABLE IF NOT EXISTS cqrs_outbox_stream (stream_id TEXT PRIMARY KEY, version BIGINT NOT NULL,
 *   snapshot TEXT, snapshot_version BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
 * CREATE TABLE IF NOT EXISTS cqrs_inbox (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
 *   processed_at BIGINT NOT NULL, fingerprint TEXT, result TEXT, source TEXT NOT NULL DEFAULT '',
 *   PRIMARY KEY (message_id, consumer, source));
 * ALTER TABLE cqrs_inbox ADD COLUMN IF NOT EXISTS fingerprint TEXT, ADD COLUMN IF NOT EXISTS result TEXT;
 * -- an inbox table made before the source column: add it and put it in the primary key
 * ALTER TABLE cqrs_inbox ADD COLUMN source TEXT NOT NULL DEFAULT '', DROP CONSTRAINT cqrs_inbox_pkey,
 *   ADD PRIMARY KEY (message_id, consumer, source);
 * CREATE INDEX IF NOT EXISTS cqrs_inbox_processed_at ON cqrs_inbox (processed_at);
 * CREATE TABLE IF NOT EXISTS cqrs_saga (
 *   id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, definition_version INT NOT NULL,
 *   status TEXT NOT NULL CHECK (status IN ('running', 'paused', 'compensating', 'completed', 'compensated',
 *     'compensation_failed', 'failed')),
 *   context TEXT NOT NULL, cursor INT NOT NULL, version BIGINT NOT NULL, attempts INT NOT NULL, error TEXT,
 *   lease_owner TEXT, lease_until BIGINT, deadline_at BIGINT, created_at BIGINT NOT NULL,
 *   updated_at BIGINT NOT NULL);
 * CREATE INDEX IF NOT EXISTS cqrs_saga_recoverable ON cqrs_saga (updated_at, id)
 *   WHERE status IN ('running', 'compensating');
 * CREATE INDEX IF NOT EXISTS cqrs_saga_retry ON cqrs_saga (updated_at, id)
 *   WHERE status = 'compensation_failed';
 * CREATE TABLE IF NOT EXISTS cqrs_saga_log (
 *   seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, saga_id TEXT NOT NULL, step_id TEXT NOT NULL,
 *   slot INT NOT NULL, action TEXT NOT NULL CHECK (action IN ('act', 'compensate')),
 *   status TEXT NOT NULL CHECK (status IN ('completed', 'failed')), attempts INT NOT NULL, result TEXT,
 *   error TEXT, started_at BIGINT NOT NULL, at BIGINT NOT NULL);
 * CREATE INDEX IF NOT EXISTS cqrs_saga_log_saga ON cqrs_saga_log (saga_id, seq);
 * CREATE TABLE IF NOT EXISTS cqrs_projection (name TEXT NOT NULL, version INT NOT NULL, position TEXT NOT NULL,
 *   state TEXT NOT NULL, active SMALLINT NOT NULL, lease_owner TEXT, lease_until BIGINT, error TEXT,
 *   updated_at BIGINT NOT NULL, PRIMARY KEY (name, version));
 * CREATE TABLE IF NOT EXISTS cqrs_projection_doc (name TEXT NOT NULL, version INT NOT NULL, id TEXT NOT NULL,
 *   doc JSONB NOT NULL, doc_version BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (name, version, id));
 * CREATE TABLE IF NOT EXISTS cqrs_projection_parked (name TEXT NOT NULL, version INT NOT NULL,
 *   event_id TEXT NOT NULL, event_type TEXT NOT NULL, position TEXT NOT NULL, error TEXT NOT NULL,
 *   at BIGINT NOT NULL, PRIMARY KEY (name, version, event_id));
 * ```
 * The projection tables hold each projection version's checkpoint and lease, the documents of document
 * projections and the events projections parked ({@link createPostgresProjectionStore}).
 * The inbox's `fingerprint` and `result` columns hold the idempotency records of a unit of work
 * ({@link createPostgresIdempotencyStore}); the `ALTER` adds them to an inbox table made by an older version.
 * An inbox mark is keyed by the message's CloudEvents `source` and `id` (its identity) and the consumer; marks
 * written before the `source` column have `source` `''`.
 * `tx_id` (PostgreSQL >= 13) orders the event log: readers see a row once every transaction older than its own
 * has ended (see `createPostgresEventStore`). The archive keeps the events `purge` moves out of the outbox (all
 * published ones with `archive: true`, and always those of a stream); the stream table holds each stream's
 * version and snapshot.
 * The saga tables are written by {@link createPostgresSagaStore}: `id` compares byte-wise (`COLLATE "C"`) so
 * `list` pages in the same order as JavaScript string comparison for ASCII ids (UUIDs).
 */
export function schemaStatements(tables: PostgresTables = {}): string[] {
  const {
    outbox: o,
    inbox: i,
    saga: s,
    sagaLog: l,
    outboxArchive: a,
    stream: st,
    projection: pj,
    projectionDocument: pd,
    projectionParked: pp,
  } = resolveTables(tables);
  const ob = bare(o);
  const ab = bare(a);
  const ib = bare(i);
  const sb = bare(s);
  const lb = bare(l);
  return [
    `CREATE TABLE IF NOT EXISTS ${o} (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id UUID NOT NULL UNIQUE, type TEXT NOT NULL,
  topic TEXT NOT NULL, key TEXT, payload BYTEA NOT NULL, headers JSONB NOT NULL,
  content_encoding TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', attempts INT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL, last_error TEXT, created_at BIGINT NOT NULL, published_at BIGINT,
  claimed_by TEXT, claimed_until BIGINT, tx_id XID8 NOT NULL DEFAULT pg_current_xact_id(), stream_id TEXT,
  stream_version BIGINT)`,
    `ALTER TABLE ${o} ADD COLUMN IF NOT EXISTS tx_id XID8 NOT NULL DEFAULT pg_current_xact_id(),
  ADD COLUMN IF NOT EXISTS stream_id TEXT, ADD COLUMN IF NOT EXISTS stream_version BIGINT`,
    `CREATE INDEX IF NOT EXISTS ${ob}_pending ON ${o} (seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${ob}_key_pending ON ${o} (key, seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${ob}_published ON ${o} (published_at) WHERE status = 'published'`,
    `CREATE INDEX IF NOT EXISTS ${ob}_log ON ${o} (tx_id, seq)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${ob}_stream_version ON ${o} (stream_id, stream_version)
  WHERE stream_id IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${a} (
  seq BIGINT PRIMARY KEY, tx_id XID8 NOT NULL, id UUID NOT NULL, type TEXT NOT NULL, topic TEXT NOT NULL,
  key TEXT, payload BYTEA NOT NULL, headers JSONB NOT NULL, content_encoding TEXT NOT NULL, status TEXT NOT NULL,
  created_at BIGINT NOT NULL, published_at BIGINT, stream_id TEXT, stream_version BIGINT,
  archived_at BIGINT NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS ${ab}_log ON ${a} (tx_id, seq)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${ab}_stream_version ON ${a} (stream_id, stream_version)
  WHERE stream_id IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${st} (stream_id TEXT PRIMARY KEY, version BIGINT NOT NULL,
  snapshot TEXT, snapshot_version BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${i} (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
  processed_at BIGINT NOT NULL, fingerprint TEXT, result TEXT, source TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (message_id, consumer, source))`,
    `ALTER TABLE ${i} ADD COLUMN IF NOT EXISTS fingerprint TEXT, ADD COLUMN IF NOT EXISTS result TEXT`,
    // An inbox made before the source column: add it to the table and to its primary key, in one statement.
    `DO $$
DECLARE pk TEXT;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '${i}'::regclass AND attname = 'source'
                 AND NOT attisdropped) THEN
    SELECT conname INTO pk FROM pg_constraint WHERE conrelid = '${i}'::regclass AND contype = 'p';
    EXECUTE format('ALTER TABLE ${i} ADD COLUMN source TEXT NOT NULL DEFAULT '''', DROP CONSTRAINT %I, '
      'ADD PRIMARY KEY (message_id, consumer, source)', pk);
  END IF;
END $$`,
    `CREATE INDEX IF NOT EXISTS ${ib}_processed_at ON ${i} (processed_at)`,
    `CREATE TABLE IF NOT EXISTS ${s} (
  id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, definition_version INT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'paused', 'compensating', 'completed', 'compensated',
    'compensation_failed', 'failed')),
  context TEXT NOT NULL, cursor INT NOT NULL, version BIGINT NOT NULL, attempts INT NOT NULL, error TEXT,
  lease_owner TEXT, lease_until BIGINT, deadline_at BIGINT, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS ${sb}_recoverable ON ${s} (updated_at, id)
  WHERE status IN ('running', 'compensating')`,
    `CREATE INDEX IF NOT EXISTS ${sb}_retry ON ${s} (updated_at, id)
  WHERE status = 'compensation_failed'`,
    `CREATE TABLE IF NOT EXISTS ${l} (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, saga_id TEXT NOT NULL, step_id TEXT NOT NULL,
  slot INT NOT NULL, action TEXT NOT NULL CHECK (action IN ('act', 'compensate')),
  status TEXT NOT NULL CHECK (status IN ('completed', 'failed')), attempts INT NOT NULL, result TEXT,
  error TEXT, started_at BIGINT NOT NULL, at BIGINT NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS ${lb}_saga ON ${l} (saga_id, seq)`,
    `CREATE TABLE IF NOT EXISTS ${pj} (name TEXT NOT NULL, version INT NOT NULL, position TEXT NOT NULL,
  state TEXT NOT NULL, active SMALLINT NOT NULL, lease_owner TEXT, lease_until BIGINT, error TEXT,
  updated_at BIGINT NOT NULL, PRIMARY KEY (name, version))`,
    `CREATE TABLE IF NOT EXISTS ${pd} (name TEXT NOT NULL, version INT NOT NULL, id TEXT NOT NULL,
  doc JSONB NOT NULL, doc_version BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (name, version, id))`,
    `CREATE TABLE IF NOT EXISTS ${pp} (name TEXT NOT NULL, version INT NOT NULL, event_id TEXT NOT NULL,
  event_type TEXT NOT NULL, position TEXT NOT NULL, error TEXT NOT NULL, at BIGINT NOT NULL,
  PRIMARY KEY (name, version, event_id))`,
  ];
}

/**
 * Creates the outbox (with its archive and stream tables), inbox and saga tables and indexes if missing, and
 * adds the event-log columns to an outbox table created by an earlier version (idempotent). Works with pg,
 * postgres.js, Kysely.
 */
export async function migrate(
  client: PostgresClient,
  options: { tables?: PostgresTables } = {},
): Promise<void> {
  const execute = executorOf(client);
  for (const sql of schemaStatements(options.tables)) {
    try {
      await execute(sql, []);
    } catch (error) {
      // Two sessions running `CREATE … IF NOT EXISTS` at once: the loser fails on the catalog's unique index;
      // the object exists now, so running the statement again is a no-op.
      // (42701: the other session added the inbox's source column first.)
      const code = (error as { code?: unknown })?.code;
      if (code !== '23505' && code !== '42P07' && code !== '42710' && code !== '42701') throw error;
      await execute(sql, []);
    }
  }
}
