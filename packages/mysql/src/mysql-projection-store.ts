import { ConfigurationError } from '@cqrs-ts/core';
import type { ProjectionStore } from '@cqrs-ts/core/spi';
import { createSqlProjectionStore } from '@cqrs-ts/core/sql';
import { toStorageError } from './mysql-errors.ts';
import { execOf, inTransaction } from './mysql-executor.ts';
import type { MysqlClient, MysqlTables, MysqlTransaction } from './mysql-options.ts';
import { resolveTables } from './schema.ts';

/** Options of {@link createMysqlProjectionStore}. */
export interface MysqlProjectionStoreOptions {
  /** A mysql2 pool or a Kysely instance: the runner's transactions are opened on it. */
  readonly client: MysqlClient;
  /** `projection`, `projectionDocument` and `projectionParked` name the tables. */
  readonly tables?: MysqlTables;
}

/**
 * Projection checkpoints with their lease, documents (JSON text with a version) and parked events on
 * MariaDB/MySQL (InnoDB). The runner's transactions run on `client` with the handle a unit of work gives
 * handlers (a mysql2 connection or a Kysely `Transaction`). A batch's checkpoint `UPDATE` comes first and
 * locks the row until the commit; a runner that took over an expired lease waits for it, then reads the
 * moved checkpoint (an `UPDATE` reads the latest committed row) and commits nothing.
 * @throws ConfigurationError when `client` is not a mysql2 pool or Kysely instance, or for a bad table name
 */
export function createMysqlProjectionStore(
  options: MysqlProjectionStoreOptions,
): ProjectionStore<MysqlTransaction> {
  const client = options?.client;
  const c = client as { getConnection?: unknown; transaction?: unknown } | undefined;
  if (typeof c?.getConnection !== 'function' && typeof c?.transaction !== 'function')
    throw new ConfigurationError('mysql projection store: client must be a mysql2 pool or a Kysely instance');
  const t = resolveTables(options.tables);
  const own = execOf(client!);
  return createSqlProjectionStore<MysqlTransaction>({
    adapter: 'mysql',
    tables: { checkpoints: t.projection, documents: t.projectionDocument, parked: t.projectionParked },
    execute: (tx, sql, params) => (tx === undefined ? own : execOf(tx))(sql, params),
    transaction: (work) => inTransaction(client!, (_execute, tx) => work(tx)),
    param: () => '?',
    insertIgnore: (table, rest) => `INSERT IGNORE INTO ${table} ${rest}`,
    upsertDocs:
      'ON DUPLICATE KEY UPDATE doc = VALUES(doc), doc_version = VALUES(doc_version), updated_at = VALUES(updated_at)',
    toStorageError,
  });
}
