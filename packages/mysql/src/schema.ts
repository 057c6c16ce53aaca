import { resolveTableNames } from '@cqrs-ts/core/sql';
import { execOf } from './mysql-executor.ts';
import type { MysqlClient, MysqlTables } from './mysql-options.ts';

/** Resolved, validated table names. @internal */
export function resolveTables(tables?: MysqlTables): Readonly<Required<MysqlTables>> {
  return resolveTableNames(tables, 'mysql');
}

const STREAM_COLUMNS =
  'stream_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, stream_version BIGINT NULL';

/**
 * The DDL `migrate` runs (MariaDB ≥ 10.6 / MySQL ≥ 8 for `SKIP LOCKED`); idempotent. Times are epoch ms (UTC).
 *
 * ```sql
 * CREATE TABLE IF NOT EXISTS cqrs_outbox (
 *   seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, id CHAR(36) NOT NULL, type VARCHAR(255) NOT NULL,
 *   topic VARCHAR(255) NOT NULL, `key` VARCHAR(512) NULL, payload LONGBLOB NOT NULL, headers LONGTEXT NOT NULL,
 *   content_encoding VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL DEFAULT 'pending',
 *   attempts INT NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, last_error TEXT NULL,
 *   created_at BIGINT NOT NULL, published_at BIGINT NULL, claimed_by VARCHAR(255) NULL, claimed_until BIGINT NULL,
 *   stream_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, stream_version BIGINT NULL,
 *   UNIQUE KEY cqrs_outbox_id (id), KEY cqrs_outbox_status_seq (status, seq),
 *   KEY cqrs_outbox_key_status (`key`, status, seq), KEY cqrs_outbox_published (status, published_at),
 *   UNIQUE KEY cqrs_outbox_stream_version (stream_id, stream_version)
 * ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
 * -- an outbox table of an earlier version gets stream_id, stream_version and their key (ALTER TABLE)
 * CREATE TABLE IF NOT EXISTS cqrs_outbox_archive (
 *   seq BIGINT NOT NULL PRIMARY KEY, id CHAR(36) NOT NULL, type VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL,
 *   `key` VARCHAR(512) NULL, payload LONGBLOB NOT NULL, headers LONGTEXT NOT NULL, content_encoding VARCHAR(16) NOT NULL,
 *   status VARCHAR(16) NOT NULL, created_at BIGINT NOT NULL, published_at BIGINT NULL,
 *   stream_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, stream_version BIGINT NULL,
 *   archived_at BIGINT NOT NULL, UNIQUE KEY cqrs_outbox_archive_stream_version (stream_id, stream_version)
 * ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
 * CREATE TABLE IF NOT EXISTS cqrs_outbox_stream (
 *   stream_id VARCHAR(255) NOT NULL PRIMARY KEY, version BIGINT NOT NULL, snapshot LONGTEXT NULL,
 *   snapshot_version BIGINT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
 * ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
 * CREATE TABLE IF NOT EXISTS cqrs_inbox (message_id VARBINARY(1020) NOT NULL, consumer VARBINARY(1020) NOT NULL,
 *   processed_at BIGINT NOT NULL, fingerprint CHAR(64) NULL, result LONGTEXT NULL,
 *   source VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
 *   PRIMARY KEY (message_id, consumer, source), KEY cqrs_inbox_processed_at (processed_at)
 * ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
 * CREATE TABLE IF NOT EXISTS cqrs_saga (
 *   id VARCHAR(255) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, definition_version INT NOT NULL,
 *   status VARCHAR(32) NOT NULL, context LONGTEXT NOT NULL, `cursor` INT NOT NULL, version BIGINT NOT NULL,
 *   attempts INT NOT NULL, error LONGTEXT NULL, lease_owner VARCHAR(255) NULL, lease_until BIGINT NULL,
 *   deadline_at BIGINT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
 *   KEY cqrs_saga_recoverable (status, updated_at, id),
 *   CONSTRAINT cqrs_saga_status_check CHECK (status IN ('running', 'paused', 'compensating', 'completed',
 *     'compensated', 'compensation_failed', 'failed'))
 * ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
 * CREATE TABLE IF NOT EXISTS cqrs_saga_log (
 *   seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, saga_id VARCHAR(255) NOT NULL, step_id VARCHAR(255) NOT NULL,
 *   slot INT NOT NULL, action VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL, attempts INT NOT NULL,
 *   result LONGTEXT NULL, error LONGTEXT NULL, started_at BIGINT NOT NULL, at BIGINT NOT NULL,
 *   KEY cqrs_saga_log_saga (saga_id, seq),
 *   CONSTRAINT cqrs_saga_log_action_check CHECK (action IN ('act', 'compensate')),
 *   CONSTRAINT cqrs_saga_log_status_check CHECK (status IN ('completed', 'failed'))
 * ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
 * CREATE TABLE IF NOT EXISTS cqrs_projection (name VARCHAR(120) NOT NULL, version INT NOT NULL,
 *   position VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, active SMALLINT NOT NULL,
 *   lease_owner VARCHAR(255) NULL, lease_until BIGINT NULL, error LONGTEXT NULL, updated_at BIGINT NOT NULL,
 *   PRIMARY KEY (name, version)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
 * CREATE TABLE IF NOT EXISTS cqrs_projection_doc (name VARCHAR(120) NOT NULL, version INT NOT NULL,
 *   id VARCHAR(255) NOT NULL, doc LONGTEXT NOT NULL, doc_version BIGINT NOT NULL, updated_at BIGINT NOT NULL,
 *   PRIMARY KEY (name, version, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
 * CREATE TABLE IF NOT EXISTS cqrs_projection_parked (name VARCHAR(120) NOT NULL, version INT NOT NULL,
 *   event_id VARCHAR(64) NOT NULL, event_type VARCHAR(255) NOT NULL, position VARCHAR(64) NOT NULL,
 *   error LONGTEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (name, version, event_id))
 *   ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
 * ```
 * The projection tables hold each projection version's checkpoint and lease, the documents (JSON text) of
 * document projections and the events projections parked ({@link createMysqlProjectionStore}).
 * The inbox's `fingerprint` and `result` columns hold the idempotency records of a unit of work
 * ({@link createMysqlIdempotencyStore}); `migrate` adds them to an inbox table made by an older version.
 * Stream ids compare exactly (binary collation). The archive keeps the events `purge` moves out of the outbox
 * (all published ones with `archive: true`, and always those of a stream); the stream table holds each
 * stream's version and snapshot (see `createMysqlEventStore`).
 * The saga tables (for {@link createMysqlSagaStore}) use a binary collation, so names and ids compare exactly
 * (no case folding) and `list` pages in byte order.
 */
export function schemaStatements(tables: MysqlTables = {}): string[] {
  const { outbox: o, inbox: i, outboxArchive: a, stream: st } = resolveTables(tables);
  const ob = o.split('.').pop()!;
  const ab = a.split('.').pop()!;
  const ib = i.split('.').pop()!;
  const {
    saga: sg,
    sagaLog: sl,
    projection: pj,
    projectionDocument: pd,
    projectionParked: pp,
  } = resolveTables(tables);
  const sb = sg.split('.').pop()!;
  const lb = sl.split('.').pop()!;
  return [
    `CREATE TABLE IF NOT EXISTS ${o} (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, id CHAR(36) NOT NULL, type VARCHAR(255) NOT NULL,
  topic VARCHAR(255) NOT NULL, \`key\` VARCHAR(512) NULL, payload LONGBLOB NOT NULL, headers LONGTEXT NOT NULL,
  content_encoding VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL DEFAULT 'pending',
  attempts INT NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, last_error TEXT NULL,
  created_at BIGINT NOT NULL, published_at BIGINT NULL, claimed_by VARCHAR(255) NULL, claimed_until BIGINT NULL,
  ${STREAM_COLUMNS},
  UNIQUE KEY ${ob}_id (id), KEY ${ob}_status_seq (status, seq),
  KEY ${ob}_key_status (\`key\`, status, seq), KEY ${ob}_published (status, published_at),
  UNIQUE KEY ${ob}_stream_version (stream_id, stream_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${a} (
  seq BIGINT NOT NULL PRIMARY KEY, id CHAR(36) NOT NULL, type VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL,
  \`key\` VARCHAR(512) NULL, payload LONGBLOB NOT NULL, headers LONGTEXT NOT NULL, content_encoding VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL, created_at BIGINT NOT NULL, published_at BIGINT NULL, ${STREAM_COLUMNS},
  archived_at BIGINT NOT NULL, UNIQUE KEY ${ab}_stream_version (stream_id, stream_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${st} (
  stream_id VARCHAR(255) NOT NULL PRIMARY KEY, version BIGINT NOT NULL, snapshot LONGTEXT NULL,
  snapshot_version BIGINT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${i} (${INBOX_KEY_COLUMNS},
  processed_at BIGINT NOT NULL, fingerprint CHAR(64) NULL, result LONGTEXT NULL,
  ${INBOX_SOURCE_COLUMN}, PRIMARY KEY (message_id, consumer, source), KEY ${ib}_processed_at (processed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${sg} (
  id VARCHAR(255) NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, definition_version INT NOT NULL,
  status VARCHAR(32) NOT NULL, context LONGTEXT NOT NULL, \`cursor\` INT NOT NULL, version BIGINT NOT NULL,
  attempts INT NOT NULL, error LONGTEXT NULL, lease_owner VARCHAR(255) NULL, lease_until BIGINT NULL,
  deadline_at BIGINT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  KEY ${sb}_recoverable (status, updated_at, id),
  CONSTRAINT ${sb}_status_check CHECK (status IN ('running', 'paused', 'compensating', 'completed',
    'compensated', 'compensation_failed', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${sl} (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, saga_id VARCHAR(255) NOT NULL, step_id VARCHAR(255) NOT NULL,
  slot INT NOT NULL, action VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL, attempts INT NOT NULL,
  result LONGTEXT NULL, error LONGTEXT NULL, started_at BIGINT NOT NULL, at BIGINT NOT NULL,
  KEY ${lb}_saga (saga_id, seq),
  CONSTRAINT ${lb}_action_check CHECK (action IN ('act', 'compensate')),
  CONSTRAINT ${lb}_status_check CHECK (status IN ('completed', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${pj} (
  name VARCHAR(120) NOT NULL, version INT NOT NULL, position VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL,
  active SMALLINT NOT NULL, lease_owner VARCHAR(255) NULL, lease_until BIGINT NULL, error LONGTEXT NULL,
  updated_at BIGINT NOT NULL, PRIMARY KEY (name, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${pd} (
  name VARCHAR(120) NOT NULL, version INT NOT NULL, id VARCHAR(255) NOT NULL, doc LONGTEXT NOT NULL,
  doc_version BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (name, version, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS ${pp} (
  name VARCHAR(120) NOT NULL, version INT NOT NULL, event_id VARCHAR(64) NOT NULL,
  event_type VARCHAR(255) NOT NULL, position VARCHAR(64) NOT NULL, error LONGTEXT NOT NULL, at BIGINT NOT NULL,
  PRIMARY KEY (name, version, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  ];
}

/**
 * The inbox's message id and consumer name, compared byte for byte: a text collation would take `Order-1` and
 * `order-1` (case-insensitive collations) or `order-1 ` and `order-1` (PAD SPACE, even `utf8mb4_bin`) for one
 * message and ack the second as a duplicate without handling it. 1020 bytes hold 255 four-byte characters.
 */
const INBOX_KEY_COLUMNS = 'message_id VARBINARY(1020) NOT NULL, consumer VARBINARY(1020) NOT NULL';

/** The inbox's `source` column: the message's CloudEvents source, compared byte for byte. */
const INBOX_SOURCE_COLUMN =
  "source VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT ''";

/**
 * Creates the outbox (with its archive and stream tables), inbox and saga tables if missing, and adds the inbox's
 * idempotency columns and the outbox's stream columns to tables made by an older version (idempotent; MySQL has
 * no `ADD COLUMN IF NOT EXISTS`, so the catalog is read first).
 */
export async function migrate(client: MysqlClient, options: { tables?: MysqlTables } = {}): Promise<void> {
  const execute = execOf(client);
  for (const sql of schemaStatements(options.tables)) await execute(sql, []);
  const inbox = resolveTables(options.tables).inbox;
  const [schema, table] = inbox.includes('.') ? inbox.split('.') : [undefined, inbox];
  const { rows } = await execute(
    `SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_schema = ${schema === undefined ? 'DATABASE()' : '?'} AND table_name = ? AND column_name IN ('fingerprint', 'result', 'source', 'message_id')`,
    schema === undefined ? [table] : [schema, table],
  );
  const have = new Set(rows.map((r) => String(r.c ?? r.C ?? r.COLUMN_NAME).toLowerCase()));
  const idType = rows.find((r) => String(r.c ?? r.C ?? r.COLUMN_NAME).toLowerCase() === 'message_id');
  const textKeys =
    String(idType?.t ?? idType?.T ?? idType?.DATA_TYPE ?? 'varbinary').toLowerCase() !== 'varbinary';
  const add = [
    // an inbox made before ids compared byte for byte: the same bytes, now compared as bytes
    textKeys
      ? `MODIFY message_id VARBINARY(1020) NOT NULL, MODIFY consumer VARBINARY(1020) NOT NULL`
      : undefined,
    have.has('fingerprint') ? undefined : 'ADD COLUMN fingerprint CHAR(64) NULL',
    have.has('result') ? undefined : 'ADD COLUMN result LONGTEXT NULL',
    // an inbox made before the source column: add it and key the marks by source, id and consumer
    have.has('source')
      ? undefined
      : `ADD COLUMN ${INBOX_SOURCE_COLUMN}, DROP PRIMARY KEY, ADD PRIMARY KEY (message_id, consumer, source)`,
  ].filter((a) => a !== undefined);
  if (add.length > 0) await execute(`ALTER TABLE ${inbox} ${add.join(', ')}`, []);
  const o = resolveTables(options.tables).outbox;
  const [oschema, otable] = o.includes('.') ? o.split('.') : [undefined, o];
  const streamColumns = await execute(
    `SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_schema = ${oschema === undefined ? 'DATABASE()' : '?'}
       AND table_name = ? AND column_name = 'stream_id'`,
    oschema === undefined ? [otable] : [oschema, otable],
  );
  if (Number(streamColumns.rows[0]!.n) === 0) {
    await execute(
      `ALTER TABLE ${o} ADD COLUMN ${STREAM_COLUMNS.replace(', ', ', ADD COLUMN ')},
         ADD UNIQUE KEY ${otable}_stream_version (stream_id, stream_version)`,
      [],
    );
  }
}
