import type { StateRepository } from '@cqrs-ts/core';
import { createStateRepository } from '@cqrs-ts/core/spi';
import { assertTableName, type StateTableOptions, stateColumns } from '@cqrs-ts/core/sql';
import { classifyMysqlError, toStorageError } from './mysql-errors.ts';
import { execOf } from './mysql-executor.ts';
import type { MysqlTransaction } from './mysql-options.ts';

/** Options of {@link createMysqlStateRepository}. */
export type MysqlStateRepositoryOptions<TState> = StateTableOptions<TState>;

/**
 * A repository of state-based aggregates over a table of yours on MariaDB/MySQL: it loads a row with its version
 * and saves it with an expected-version check (`UPDATE … WHERE id = ? AND version = ?`, a plain `INSERT` for a
 * new row), in the caller's transaction. The table needs a primary key on the id column and a BIGINT version
 * column; the state is one JSON text column (`state`, LONGTEXT or JSON) unless `columns` maps it to columns of
 * its own. Keep mysql2's default `FOUND_ROWS` flag: a save reads the matched-row count.
 *
 * @example
 * // CREATE TABLE accounts (id VARCHAR(64) PRIMARY KEY, version BIGINT NOT NULL, state LONGTEXT NOT NULL)
 * const accounts = createMysqlStateRepository<Account>({ name: 'account', table: 'accounts' });
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a malformed table or column name or a missing mapping
 */
export function createMysqlStateRepository<TState>(
  options: MysqlStateRepositoryOptions<TState>,
): StateRepository<TState, MysqlTransaction> {
  const table = assertTableName(options?.table, `mysql state repository ${String(options?.name)}`);
  const { id, version, columns, toRow, fromRow } = stateColumns(options, (c) => `\`${c}\``);
  const run = async (what: string, tx: MysqlTransaction, sql: string, params: readonly unknown[]) => {
    try {
      return await execOf(tx)(sql, params);
    } catch (error) {
      throw toStorageError(error, `${options.name} ${what}`);
    }
  };
  const cols = columns.join(', ');
  const readSql = `SELECT ${version} AS cqrs_version, ${cols} FROM ${table} WHERE ${id} = ?`;
  const insertSql = `INSERT INTO ${table} (${id}, ${version}, ${cols}) VALUES (?, 1, ${columns.map(() => '?').join(', ')})`;
  const set = columns.map((c) => `${c} = ?`).join(', ');
  const updateAny = `UPDATE ${table} SET ${version} = ${version} + 1, ${set} WHERE ${id} = ?`;
  const updateAt = `${updateAny} AND ${version} = ?`;
  // a locking read sees the last committed version, also under REPEATABLE READ
  const versionSql = `SELECT ${version} AS cqrs_version FROM ${table} WHERE ${id} = ? LOCK IN SHARE MODE`;

  return createStateRepository<TState, MysqlTransaction>(options.name, {
    async read(tx, key) {
      const { rows } = await run('load', tx, readSql, [key]);
      const row = rows[0];
      return row === undefined ? undefined : { state: fromRow(row), version: Number(row.cqrs_version) };
    },
    async insert(tx, key, state) {
      const values = toRow(state);
      try {
        await execOf(tx)(insertSql, [key, ...values]);
        return true;
      } catch (error) {
        if (classifyMysqlError(error) === 'unique-violation') return false;
        throw toStorageError(error, `${options.name} insert`);
      }
    },
    async update(tx, key, state, expected) {
      const params = [...toRow(state), key];
      if (expected !== undefined) params.push(expected);
      const r = await run('update', tx, expected === undefined ? updateAny : updateAt, params);
      if (r.count === 0) return undefined;
      if (expected !== undefined) return expected + 1;
      const { rows } = await run('version', tx, versionSql, [key]);
      return Number(rows[0]!.cqrs_version);
    },
    async remove(tx, key, expected) {
      const sql = `DELETE FROM ${table} WHERE ${id} = ?${expected === undefined ? '' : ` AND ${version} = ?`}`;
      const r = await run('delete', tx, sql, expected === undefined ? [key] : [key, expected]);
      return r.count > 0;
    },
    async version(tx, key) {
      const { rows } = await run('version', tx, versionSql, [key]);
      return rows.length === 0 ? undefined : Number(rows[0]!.cqrs_version);
    },
  });
}
