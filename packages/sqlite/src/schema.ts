import { resolveTableNames } from '@cqrs-ts/core/sql';
import type { SqliteDatabase, SqliteTables } from './sqlite-options.ts';

/** Resolved, validated table names. @internal */
export function resolveTables(tables?: SqliteTables): Readonly<Required<SqliteTables>> {
  return resolveTableNames(tables, 'sqlite');
}

/** The inbox table's columns and key: marks are keyed by the message's source and id, and the consumer. */
const inboxColumns = `message_id TEXT NOT NULL, consumer TEXT NOT NULL,
  processed_at INTEGER NOT NULL, fingerprint TEXT, result TEXT, source TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (message_id, consumer, source)) WITHOUT ROWID`;

/**
 * The DDL `migrate` runs; idempotent. Times are epoch milliseconds (UTC).
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS cqrs_outbox (
 *   seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, topic TEXT NOT NULL,
 *   key TEXT, payload BLOB NOT NULL, headers TEXT NOT NULL, content_encoding TEXT NOT NULL,
 *   status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
 *   next_attempt_at INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, published_at INTEGER,
 *   claimed_by TEXT, claimed_until INTEGER, stream_id TEXT, stream_version INTEGER);
 * -- an outbox table of an earlier version gets stream_id and stream_version (ALTER TABLE ADD COLUMN)
 * CREATE UNIQUE INDEX IF NOT EXISTS cqrs_outbox_stream_version ON cqrs_outbox (stream_id, stream_version)
 *   WHERE stream_id IS NOT NULL;
 * CREATE TABLE IF NOT EXISTS cqrs_outbox_archive (
 *   seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, topic TEXT NOT NULL, key TEXT,
 *   payload BLOB NOT NULL, headers TEXT NOT NULL, content_encoding TEXT NOT NULL, status TEXT NOT NULL,
 *   created_at INTEGER NOT NULL, published_at INTEGER, stream_id TEXT, stream_version INTEGER,
 *   archived_at INTEGER NOT NULL);
 * CREATE UNIQUE INDEX IF NOT EXISTS cqrs_outbox_archive_stream_version ON cqrs_outbox_archive
 *   (stream_id, stream_version) WHERE stream_id IS NOT NULL;
 * CREATE TABLE IF NOT EXISTS cqrs_outbox_stream (stream_id TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL,
 *   snapshot TEXT, snapshot_version INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_pending ON cqrs_outbox (seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_key_pending ON cqrs_outbox (key, seq) WHERE status = 'pending';
 * CREATE INDEX IF NOT EXISTS cqrs_outbox_published ON cqrs_outbox (published_at) WHERE status = 'published';
 * CREATE TABLE IF NOT EXISTS cqrs_inbox (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
 *   processed_at INTEGER NOT NULL, fingerprint TEXT, result TEXT, source TEXT NOT NULL DEFAULT '',
 *   PRIMARY KEY (message_id, consumer, source)) WITHOUT ROWID;
 * CREATE INDEX IF NOT EXISTS cqrs_inbox_processed_at ON cqrs_inbox (processed_at);
 * CREATE TABLE IF NOT EXISTS cqrs_saga (
 *   id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, definition_version INTEGER NOT NULL,
 *   status TEXT NOT NULL CHECK (status IN ('running', 'paused', 'compensating', 'completed', 'compensated',
 *     'compensation_failed', 'failed')),
 *   context TEXT NOT NULL, cursor INTEGER NOT NULL, version INTEGER NOT NULL, attempts INTEGER NOT NULL,
 *   error TEXT, lease_owner TEXT, lease_until INTEGER, deadline_at INTEGER, created_at INTEGER NOT NULL,
 *   updated_at INTEGER NOT NULL) STRICT;
 * CREATE INDEX IF NOT EXISTS cqrs_saga_recoverable ON cqrs_saga (updated_at, id)
 *   WHERE status IN ('running', 'compensating');
 * CREATE INDEX IF NOT EXISTS cqrs_saga_retry ON cqrs_saga (updated_at, id)
 *   WHERE status = 'compensation_failed';
 * CREATE TABLE IF NOT EXISTS cqrs_saga_log (
 *   seq INTEGER PRIMARY KEY AUTOINCREMENT, saga_id TEXT NOT NULL, step_id TEXT NOT NULL, slot INTEGER NOT NULL,
 *   action TEXT NOT NULL CHECK (action IN ('act', 'compensate')),
 *   status TEXT NOT NULL CHECK (status IN ('completed', 'failed')), attempts INTEGER NOT NULL, result TEXT,
 *   error TEXT, started_at INTEGER NOT NULL, at INTEGER NOT NULL) STRICT;
 * CREATE INDEX IF NOT EXISTS cqrs_saga_log_saga ON cqrs_saga_log (saga_id, seq);
 * CREATE TABLE IF NOT EXISTS cqrs_projection (name TEXT NOT NULL, version INTEGER NOT NULL, position TEXT NOT NULL,
 *   state TEXT NOT NULL, active INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER, error TEXT,
 *   updated_at INTEGER NOT NULL, PRIMARY KEY (name, version)) STRICT;
 * CREATE TABLE IF NOT EXISTS cqrs_projection_doc (name TEXT NOT NULL, version INTEGER NOT NULL, id TEXT NOT NULL,
 *   doc TEXT NOT NULL, doc_version INTEGER NOT NULL, updated_at INTEGER NOT NULL,
 *   PRIMARY KEY (name, version, id)) STRICT, WITHOUT ROWID;
 * CREATE TABLE IF NOT EXISTS cqrs_projection_parked (name TEXT NOT NULL, version INTEGER NOT NULL,
 *   event_id TEXT NOT NULL, event_type TEXT NOT NULL, position TEXT NOT NULL, error TEXT NOT NULL,
 *   at INTEGER NOT NULL, PRIMARY KEY (name, version, event_id)) STRICT;
 * ```
 * The projection tables hold each projection version's checkpoint and lease, the documents (JSON text) of
 * document projections and the events projections parked ({@link createSqliteProjectionStore}).
 * The inbox's `fingerprint` and `result` columns hold the idempotency records of a unit of work
 * ({@link createSqliteIdempotencyStore}); `migrate` adds them to an inbox table made by an older version.
 * An inbox table made before the `source` column is rebuilt with it (SQLite cannot change a primary key in
 * place): its marks are copied with `source` `''`.
 * The archive keeps the events `purge` moves out of the outbox (all published ones with `archive: true`, and
 * always those of a stream); the stream table holds each stream's version and snapshot (see
 * `createSqliteEventStore`).
 * The saga tables (for {@link createSqliteSagaStore}) are STRICT: a value of the wrong type is refused.
 */
export function schemaSql(tables: SqliteTables = {}): string {
  const { outbox: o, inbox: i, outboxArchive: a, stream: st } = resolveTables(tables);
  const ob = o.replace('.', '_');
  const ab = a.replace('.', '_');
  const ib = i.replace('.', '_');
  const {
    saga: sg,
    sagaLog: sl,
    projection: pj,
    projectionDocument: pd,
    projectionParked: pp,
  } = resolveTables(tables);
  const sb = sg.replace('.', '_');
  const lb = sl.replace('.', '_');
  return `
CREATE TABLE IF NOT EXISTS ${o} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, topic TEXT NOT NULL,
  key TEXT, payload BLOB NOT NULL, headers TEXT NOT NULL, content_encoding TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, published_at INTEGER,
  claimed_by TEXT, claimed_until INTEGER, stream_id TEXT, stream_version INTEGER);
CREATE TABLE IF NOT EXISTS ${a} (
  seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, topic TEXT NOT NULL, key TEXT,
  payload BLOB NOT NULL, headers TEXT NOT NULL, content_encoding TEXT NOT NULL, status TEXT NOT NULL,
  created_at INTEGER NOT NULL, published_at INTEGER, stream_id TEXT, stream_version INTEGER,
  archived_at INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS ${ab}_stream_version ON ${a.split('.').pop()} (stream_id, stream_version)
  WHERE stream_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${st} (stream_id TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL,
  snapshot TEXT, snapshot_version INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS ${ob}_pending ON ${o.split('.').pop()} (seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS ${ob}_key_pending ON ${o.split('.').pop()} (key, seq) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS ${ob}_published ON ${o.split('.').pop()} (published_at) WHERE status = 'published';
CREATE TABLE IF NOT EXISTS ${i} (${inboxColumns};
CREATE INDEX IF NOT EXISTS ${ib}_processed_at ON ${i.split('.').pop()} (processed_at);
CREATE TABLE IF NOT EXISTS ${sg} (
  id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, definition_version INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'paused', 'compensating', 'completed', 'compensated',
    'compensation_failed', 'failed')),
  context TEXT NOT NULL, cursor INTEGER NOT NULL, version INTEGER NOT NULL, attempts INTEGER NOT NULL,
  error TEXT, lease_owner TEXT, lease_until INTEGER, deadline_at INTEGER, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS ${sb}_recoverable ON ${sg.split('.').pop()} (updated_at, id)
  WHERE status IN ('running', 'compensating');
CREATE INDEX IF NOT EXISTS ${sb}_retry ON ${sg.split('.').pop()} (updated_at, id)
  WHERE status = 'compensation_failed';
CREATE TABLE IF NOT EXISTS ${sl} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, saga_id TEXT NOT NULL, step_id TEXT NOT NULL, slot INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('act', 'compensate')),
  status TEXT NOT NULL CHECK (status IN ('completed', 'failed')), attempts INTEGER NOT NULL, result TEXT,
  error TEXT, started_at INTEGER NOT NULL, at INTEGER NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS ${lb}_saga ON ${sl.split('.').pop()} (saga_id, seq);
CREATE TABLE IF NOT EXISTS ${pj} (name TEXT NOT NULL, version INTEGER NOT NULL, position TEXT NOT NULL,
  state TEXT NOT NULL, active INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER, error TEXT,
  updated_at INTEGER NOT NULL, PRIMARY KEY (name, version)) STRICT;
CREATE TABLE IF NOT EXISTS ${pd} (name TEXT NOT NULL, version INTEGER NOT NULL, id TEXT NOT NULL,
  doc TEXT NOT NULL, doc_version INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (name, version, id))
  STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ${pp} (name TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL,
  event_type TEXT NOT NULL, position TEXT NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL,
  PRIMARY KEY (name, version, event_id)) STRICT;`;
}

/**
 * Creates the outbox (with its archive and stream tables), inbox and saga tables if missing, and adds the inbox's
 * idempotency columns and the outbox's stream columns to tables made by an older version (idempotent).
 */
export function migrate(database: SqliteDatabase, options: { tables?: SqliteTables } = {}): void {
  database.exec(schemaSql(options.tables));
  const inbox = resolveTables(options.tables).inbox;
  const dot = inbox.indexOf('.');
  const info =
    dot === -1
      ? `pragma_table_info('${inbox}')`
      : `pragma_table_info('${inbox.slice(dot + 1)}', '${inbox.slice(0, dot)}')`;
  const have = new Set(
    (database.prepare(`SELECT name FROM ${info}`).all() as { name: string }[]).map((r) => r.name),
  );
  for (const column of ['fingerprint', 'result']) {
    if (!have.has(column)) database.exec(`ALTER TABLE ${inbox} ADD COLUMN ${column} TEXT`);
  }
  if (!have.has('source')) rebuildInbox(database, inbox);
  const o = resolveTables(options.tables).outbox;
  const [schema, table] = o.includes('.') ? o.split('.') : ['main', o];
  const columns = database.prepare(`PRAGMA ${schema}.table_info(${table})`).all() as { name: string }[];
  if (!columns.some((c) => c.name === 'stream_id')) {
    database.exec(
      `ALTER TABLE ${o} ADD COLUMN stream_id TEXT; ALTER TABLE ${o} ADD COLUMN stream_version INTEGER;`,
    );
  }
  database.exec(
    `CREATE UNIQUE INDEX IF NOT EXISTS ${o.replace('.', '_')}_stream_version ON ${table} (stream_id, stream_version)
       WHERE stream_id IS NOT NULL`,
  );
}

/** Rebuilds an inbox table made before the `source` column, in one savepoint (a failure leaves it as it was). */
function rebuildInbox(database: SqliteDatabase, inbox: string): void {
  const dot = inbox.indexOf('.');
  const schema = dot === -1 ? '' : `${inbox.slice(0, dot)}.`;
  const table = inbox.slice(dot + 1);
  const next = `${schema}${table}_with_source`;
  database.exec('SAVEPOINT cqrs_inbox_source');
  try {
    database.exec(`DROP TABLE IF EXISTS ${next};
CREATE TABLE ${next} (${inboxColumns};
INSERT INTO ${next} (message_id, consumer, processed_at, fingerprint, result)
  SELECT message_id, consumer, processed_at, fingerprint, result FROM ${inbox};
DROP TABLE ${inbox};
ALTER TABLE ${next} RENAME TO ${table};
CREATE INDEX IF NOT EXISTS ${schema}${inbox.replace('.', '_')}_processed_at ON ${table} (processed_at);`);
    database.exec('RELEASE cqrs_inbox_source');
  } catch (error) {
    database.exec('ROLLBACK TO cqrs_inbox_source; RELEASE cqrs_inbox_source');
    throw error;
  }
}
