import type { StateRepository } from '@cqrs-ts/core';
import { createStateRepository } from '@cqrs-ts/core/spi';
import { assertTableName, type StateTableOptions, stateColumns } from '@cqrs-ts/core/sql';
import { toStorageError } from './sqlite-errors.ts';
import type { SqliteDatabase, SqliteValue } from './sqlite-options.ts';

/** Options of {@link createSqliteStateRepository}. */
export type SqliteStateRepositoryOptions<TState> = StateTableOptions<TState>;

/**
 * A repository of state-based aggregates over a table of yours on SQLite: it loads a row with its version and
 * saves it with an expected-version check (`UPDATE … WHERE id = ? AND version = ?`, `INSERT … ON CONFLICT (id)
 * DO NOTHING` for a new row), on the connection you pass, inside your transaction. The table needs a primary
 * key on the id column and an INTEGER version column; the state is one JSON text column (`state`) unless
 * `columns` maps it to columns of its own.
 *
 * @example
 * // CREATE TABLE accounts (id TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL)
 * const accounts = createSqliteStateRepository<Account>({ name: 'account', table: 'accounts' });
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a malformed table or column name or a missing mapping
 */
export function createSqliteStateRepository<TState>(
  options: SqliteStateRepositoryOptions<TState>,
): StateRepository<TState, SqliteDatabase> {
  const table = assertTableName(options?.table, `sqlite state repository ${String(options?.name)}`);
  const { id, version, columns, toRow, fromRow } = stateColumns(options, (c) => `"${c}"`);
  const run = async <T>(what: string, fn: () => T): Promise<T> => {
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, `${options.name} ${what}`);
    }
  };
  const cols = columns.join(', ');
  const readSql = `SELECT ${version} AS cqrs_version, ${cols} FROM ${table} WHERE ${id} = ?`;
  const insertSql = `INSERT INTO ${table} (${id}, ${version}, ${cols}) VALUES (?, 1, ${columns.map(() => '?').join(', ')})
    ON CONFLICT (${id}) DO NOTHING`;
  const set = columns.map((c) => `${c} = ?`).join(', ');
  const updateAny = `UPDATE ${table} SET ${version} = ${version} + 1, ${set} WHERE ${id} = ?`;
  const updateAt = `${updateAny} AND ${version} = ?`;
  const versionSql = `SELECT ${version} AS cqrs_version FROM ${table} WHERE ${id} = ?`;
  const values = (state: TState) => toRow(state) as SqliteValue[];

  return createStateRepository<TState, SqliteDatabase>(options.name, {
    read: (tx, key) =>
      run('load', () => {
        const row = tx.prepare(readSql).all(key)[0] as Record<string, unknown> | undefined;
        return row === undefined ? undefined : { state: fromRow(row), version: Number(row.cqrs_version) };
      }),
    insert: (tx, key, state) => {
      const params = values(state);
      return run('insert', () => Number(tx.prepare(insertSql).run(key, ...params).changes) === 1);
    },
    update: (tx, key, state, expected) => {
      const params: SqliteValue[] = [...values(state), key];
      if (expected !== undefined) params.push(expected);
      return run('update', () => {
        if (Number(tx.prepare(expected === undefined ? updateAny : updateAt).run(...params).changes) === 0)
          return undefined;
        return Number((tx.prepare(versionSql).all(key)[0] as Record<string, unknown>).cqrs_version);
      });
    },
    remove: (tx, key, expected) =>
      run('delete', () => {
        const sql = `DELETE FROM ${table} WHERE ${id} = ?${expected === undefined ? '' : ` AND ${version} = ?`}`;
        return Number(tx.prepare(sql).run(...(expected === undefined ? [key] : [key, expected])).changes) > 0;
      }),
    version: (tx, key) =>
      run('version', () => {
        const row = tx.prepare(versionSql).all(key)[0] as Record<string, unknown> | undefined;
        return row === undefined ? undefined : Number(row.cqrs_version);
      }),
  });
}
