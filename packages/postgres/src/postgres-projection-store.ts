import { ConfigurationError } from '@cqrs-ts/core';
import type { ProjectionStore } from '@cqrs-ts/core/spi';
import { createSqlProjectionStore } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import { executorOf, transactionOf } from './postgres-executor.ts';
import type { PostgresClient, PostgresTables } from './postgres-options.ts';
import type { PostgresTransactional } from './postgres-unit-of-work.ts';
import { resolveTables } from './schema.ts';

/** Options of {@link createPostgresProjectionStore}. */
export interface PostgresProjectionStoreOptions {
  /** A pg `Pool`, a postgres.js `sql` or a Kysely instance: the runner's transactions are opened on it. */
  readonly client: PostgresTransactional;
  /** `projection`, `projectionDocument` and `projectionParked` name the tables. */
  readonly tables?: PostgresTables;
}

/**
 * Projection checkpoints with their lease, documents (JSONB with a version) and parked events on PostgreSQL.
 * The runner's transactions run on `client`, with the same transaction handle a unit of work gives handlers
 * (a pg `PoolClient`, a postgres.js transaction `sql`, a Kysely `Transaction`), so a batch projection writes
 * its read model with it. A batch's checkpoint `UPDATE` comes first and holds the row lock until the commit:
 * a second runner that took over an expired lease waits for it, then finds the checkpoint moved and commits
 * nothing.
 * @throws ConfigurationError when `client` cannot open transactions, or for a malformed table name
 */
export function createPostgresProjectionStore(
  options: PostgresProjectionStoreOptions,
): ProjectionStore<PostgresClient> {
  const client = options?.client as unknown as PostgresClient;
  const transact = client === undefined || client === null ? undefined : transactionOf(client);
  if (transact === undefined)
    throw new ConfigurationError(
      'postgres projection store: client must be a pg Pool, a postgres.js sql or a Kysely instance',
    );
  const t = resolveTables(options.tables);
  const own = executorOf(client);
  return createSqlProjectionStore<PostgresClient>({
    adapter: 'postgres',
    tables: { checkpoints: t.projection, documents: t.projectionDocument, parked: t.projectionParked },
    execute: (tx, sql, params) => (tx === undefined ? own : executorOf(tx))(sql, params),
    transaction: (work) => transact((_execute, tx) => work(tx)),
    // JSON goes as text and is cast on the server (postgres.js would encode a string bound as jsonb again).
    param: (n, type) => `$${n}::${type === 'json' ? 'text::jsonb' : type}`,
    docText: 'doc::text',
    insertIgnore: (table, rest) => `INSERT INTO ${table} ${rest} ON CONFLICT DO NOTHING`,
    upsertDocs:
      'ON CONFLICT (name, version, id) DO UPDATE SET doc = EXCLUDED.doc, doc_version = EXCLUDED.doc_version, updated_at = EXCLUDED.updated_at',
    idArray: (n) => `id = ANY($${n}::text[])`,
    toStorageError,
  });
}
