import { classifyMysqlError } from '@cqrs-ts/mysql';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { MYSQL_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('mariadb', async () => {
  const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 2000 });
  await c.end();
});

const failure = async (fn: () => Promise<unknown>): Promise<unknown> => {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
};

describe.skipIf(!available)('mariadb error classification (real server errors)', () => {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
  const table = `cls_${uniqueSuffix}`;
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('missing table and duplicate key', async () => {
    expect(classifyMysqlError(await failure(() => pool.query('SELECT * FROM no_such_table_xyz')))).toBe(
      'missing-table',
    );
    await pool.query(`CREATE TABLE ${table} (id INT PRIMARY KEY) ENGINE=InnoDB`);
    await pool.query(`INSERT INTO ${table} VALUES (1)`);
    expect(classifyMysqlError(await failure(() => pool.query(`INSERT INTO ${table} VALUES (1)`)))).toBe(
      'unique-violation',
    );
  });

  it('deadlock and lock wait timeout', async () => {
    await pool.query(`INSERT IGNORE INTO ${table} VALUES (10), (11)`);
    const a = await pool.getConnection();
    const b = await pool.getConnection();
    try {
      await a.query('START TRANSACTION');
      await b.query('START TRANSACTION');
      await a.query(`UPDATE ${table} SET id = id WHERE id = 10`);
      await b.query(`UPDATE ${table} SET id = id WHERE id = 11`);
      const results = await Promise.allSettled([
        a.query(`UPDATE ${table} SET id = id WHERE id = 11`),
        b.query(`UPDATE ${table} SET id = id WHERE id = 10`),
      ]);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(classifyMysqlError(rejected.reason)).toBe('deadlock');
      await a.query('ROLLBACK');
      await b.query('ROLLBACK');
      await a.query('START TRANSACTION');
      await a.query(`UPDATE ${table} SET id = id WHERE id = 10`);
      await b.query('SET SESSION innodb_lock_wait_timeout = 1');
      expect(
        classifyMysqlError(await failure(() => b.query(`UPDATE ${table} SET id = id WHERE id = 10`))),
      ).toBe('timeout');
    } finally {
      await a.query('ROLLBACK').catch(() => {});
      await b.query('ROLLBACK').catch(() => {});
      a.release();
      b.release();
    }
  });

  it('refused and killed connections', async () => {
    expect(
      classifyMysqlError(
        await failure(() =>
          mysql.createConnection({ uri: 'mysql://root@127.0.0.1:1/test', connectTimeout: 2000 }),
        ),
      ),
    ).toBe('connection');
    const victim = await mysql.createConnection({ uri: MYSQL_URL });
    // The server closing the killed connection is the event to wait for (mysql2 reports it as an 'error').
    const closed = new Promise<void>((resolve) => victim.on('error', () => resolve()));
    const [[row]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    await pool.query(`KILL ${row.id}`);
    await closed;
    const reason = classifyMysqlError(await failure(() => victim.query('SELECT 1')));
    // mysql2 reports "connection is in closed state": the handle is unusable, like a finished transaction
    expect(reason).toBe('closed-transaction');
    victim.destroy();
  });

  it('anything else is unknown', () => {
    expect(classifyMysqlError(new Error('boom'))).toBe('unknown');
  });
});
