import type { StateRepository } from '@cqrs-ts/core';
import { createStateRepository } from '@cqrs-ts/core/spi';
import { assertTableName, type StateTableOptions, stateColumns } from '@cqrs-ts/core/sql';
import { toStorageError } from './postgres-errors.ts';
import type { PostgresClient } from './postgres-options.ts';
import { execOf } from './postgres-outbox-store.ts';

/** Options of {@link createPostgresStateRepository}. */
export type PostgresStateRepositoryOptions<TState> = StateTableOptions<TState>;

/**
 * A repository of state-based aggregates over a table of yours: it loads a row with its version and saves it
 * with an expected-version check (`UPDATE … WHERE id = $1 AND version = $2`, `INSERT … ON CONFLICT (id) DO
 * NOTHING` for a new row), in the caller's transaction. The table needs a primary key (or unique index) on the
 * id column and a BIGINT version column; the state is one JSON column (`state`, TEXT or JSONB) unless `columns`
 * maps it to columns of its own.
 *
 * @example
 * // CREATE TABLE accounts (id TEXT PRIMARY KEY, version BIGINT NOT NULL, state JSONB NOT NULL)
 * const accounts = createPostgresStateRepository<Account>({ name: 'account', table: 'accounts' });
 * await accounts.update(tx, 'acc-1', (s) => ({ ...s!, balance: s!.balance + 10 }));
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a malformed table or column name or a missing mapping
 */
export function createPostgresStateRepository<TState>(
  options: PostgresStateRepositoryOptions<TState>,
): StateRepository<TState, PostgresClient> {
  const table = assertTableName(options?.table, `postgres state repository ${String(options?.name)}`);
  const { id, version, columns, toRow, fromRow } = stateColumns(options, (c) => `"${c}"`);
  const run = async (what: string, tx: PostgresClient, sql: string, params: readonly unknown[]) => {
    try {
      return await execOf(tx)(sql, params, true);
    } catch (error) {
      throw toStorageError(error, `${options.name} ${what}`);
    }
  };
  const cols = columns.join(', ');
  const readSql = `SELECT ${version} AS cqrs_version, ${cols} FROM ${table} WHERE ${id} = $1`;
  const insertSql = `INSERT INTO ${table} (${id}, ${version}, ${cols}) VALUES ($1, 1, ${columns.map((_, i) => `$${i + 2}`).join(', ')})
    ON CONFLICT (${id}) DO NOTHING RETURNING ${version} AS cqrs_version`;
  const set = columns.map((c, i) => `${c} = $${i + 2}`).join(', ');
  const updateSql = (checked: boolean) =>
    `UPDATE ${table} SET ${version} = ${version} + 1, ${set} WHERE ${id} = $1${checked ? ` AND ${version} = $${columns.length + 2}` : ''}
    RETURNING ${version} AS cqrs_version`;
  const updateAny = updateSql(false);
  const updateAt = updateSql(true);
  const removeAny = `DELETE FROM ${table} WHERE ${id} = $1`;
  const removeAt = `DELETE FROM ${table} WHERE ${id} = $1 AND ${version} = $2`;
  const versionSql = `SELECT ${version} AS cqrs_version FROM ${table} WHERE ${id} = $1`;

  return createStateRepository<TState, PostgresClient>(options.name, {
    async read(tx, key) {
      const { rows } = await run('load', tx, readSql, [key]);
      const row = rows[0];
      return row === undefined ? undefined : { state: fromRow(row), version: Number(row.cqrs_version) };
    },
    async insert(tx, key, state) {
      const { rows } = await run('insert', tx, insertSql, [key, ...toRow(state)]);
      return rows.length === 1;
    },
    async update(tx, key, state, expected) {
      const params = [key, ...toRow(state)];
      if (expected !== undefined) params.push(expected);
      const { rows } = await run('update', tx, expected === undefined ? updateAny : updateAt, params);
      return rows.length === 0 ? undefined : Number(rows[0]!.cqrs_version);
    },
    async remove(tx, key, expected) {
      const r = await run(
        'delete',
        tx,
        expected === undefined ? removeAny : removeAt,
        expected === undefined ? [key] : [key, expected],
      );
      return r.count > 0;
    },
    async version(tx, key) {
      const { rows } = await run('version', tx, versionSql, [key]);
      return rows.length === 0 ? undefined : Number(rows[0]!.cqrs_version);
    },
  });
}
