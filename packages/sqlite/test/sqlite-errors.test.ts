import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { classifySqliteError } from '@cqrs-ts/sqlite';
import { afterAll, describe, expect, it } from 'vitest';

const failure = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
};

describe('sqlite error classification (real node:sqlite errors)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-err-'));
  const file = join(dir, 'db.sqlite');
  const a = new DatabaseSync(file);
  const b = new DatabaseSync(file);
  b.exec('PRAGMA busy_timeout = 0');
  afterAll(() => {
    if (a.isOpen) a.close();
    if (b.isOpen) b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('missing table, unique violation, busy database, closed database', () => {
    expect(classifySqliteError(failure(() => a.exec('SELECT * FROM no_such_table')))).toBe('missing-table');
    a.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    a.exec('INSERT INTO t VALUES (1)');
    expect(classifySqliteError(failure(() => a.exec('INSERT INTO t VALUES (1)')))).toBe('unique-violation');
    a.exec('BEGIN IMMEDIATE');
    expect(classifySqliteError(failure(() => b.exec('INSERT INTO t VALUES (2)')))).toBe('timeout');
    a.exec('ROLLBACK');
    b.close();
    expect(classifySqliteError(failure(() => b.exec('SELECT 1')))).toBe('closed-transaction');
    expect(classifySqliteError(new Error('boom'))).toBe('unknown');
  });
});
