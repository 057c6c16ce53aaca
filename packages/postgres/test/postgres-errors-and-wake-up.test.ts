import { classifyPostgresError, createPostgresWakeUp } from '@cqrs-ts/postgres';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
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

describe.skipIf(!available)('postgres error classification (real server errors)', () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  pool.on('error', () => {});
  const table = `cls_${uniqueSuffix}`;
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.end();
  });

  it('missing table, unique violation, timeout', async () => {
    expect(classifyPostgresError(await failure(() => pool.query('SELECT * FROM no_such_table_xyz')))).toBe(
      'missing-table',
    );
    await pool.query(`CREATE TABLE ${table} (id INT PRIMARY KEY)`);
    await pool.query(`INSERT INTO ${table} VALUES (1)`);
    expect(classifyPostgresError(await failure(() => pool.query(`INSERT INTO ${table} VALUES (1)`)))).toBe(
      'unique-violation',
    );
    const c = await pool.connect();
    try {
      await c.query('SET statement_timeout = 50');
      expect(classifyPostgresError(await failure(() => c.query('SELECT pg_sleep(2)')))).toBe('timeout');
      await c.query('RESET statement_timeout');
    } finally {
      c.release();
    }
  });

  it('deadlock between two transactions', async () => {
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      await pool.query(`INSERT INTO ${table} VALUES (10), (11) ON CONFLICT DO NOTHING`);
      await a.query('BEGIN');
      await b.query('BEGIN');
      await a.query(`UPDATE ${table} SET id = id WHERE id = 10`);
      await b.query(`UPDATE ${table} SET id = id WHERE id = 11`);
      const results = await Promise.allSettled([
        a.query(`UPDATE ${table} SET id = id WHERE id = 11`),
        b.query(`UPDATE ${table} SET id = id WHERE id = 10`),
      ]);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(classifyPostgresError(rejected.reason)).toBe('deadlock');
      // the victim's transaction is aborted: further statements fail as a closed transaction
      const victim = results[0]?.status === 'rejected' ? a : b;
      expect(classifyPostgresError(await failure(() => victim.query('SELECT 1')))).toBe('closed-transaction');
    } finally {
      await a.query('ROLLBACK').catch(() => {});
      await b.query('ROLLBACK').catch(() => {});
      a.release();
      b.release();
    }
  });

  it('connection refused and terminated connections, for pg and postgres.js', async () => {
    const refused = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
    expect(classifyPostgresError(await failure(() => refused.connect()))).toBe('connection');
    const sql = postgres('postgres://postgres@127.0.0.1:1/test', { connect_timeout: 2, max: 1 });
    expect(classifyPostgresError(await failure(() => sql`SELECT 1`))).toBe('connection');
    await sql.end({ timeout: 0 });
    const victim = new pg.Client({ connectionString: PG_URL });
    victim.on('error', () => {});
    await victim.connect();
    const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    await pool.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(classifyPostgresError(await failure(() => victim.query('SELECT 1')))).toBe('connection');
    await victim.end().catch(() => {});
  });

  it('anything else is unknown', () => {
    expect(classifyPostgresError(new Error('boom'))).toBe('unknown');
    expect(classifyPostgresError(undefined)).toBe('unknown');
  });
});

describe.skipIf(!available)('postgres LISTEN/NOTIFY wake-up', () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  pool.on('error', () => {});
  afterAll(() => pool.end());
  const channel = `wake_${uniqueSuffix}`;

  it('pg: wakes on commit only, reconnects after its connection is killed, and stops cleanly', async () => {
    let wakes = 0;
    const wakeUp = createPostgresWakeUp({
      channel,
      reconnectDelayMs: 50,
      connect: async () => {
        const c = new pg.Client({ connectionString: PG_URL, application_name: channel });
        c.on('error', () => {});
        await c.connect();
        return c;
      },
    });
    await wakeUp.start(() => {
      wakes++;
    });
    try {
      const c = await pool.connect();
      await c.query('BEGIN');
      await c.query(`SELECT pg_notify('${channel}', '')`);
      await new Promise((r) => setTimeout(r, 100));
      expect(wakes).toBe(0); // not before commit
      await c.query('COMMIT');
      c.release();
      await waitFor(() => wakes === 1, 5000, 'wake after commit');
      await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
        channel,
      ]);
      await waitFor(
        async () =>
          (
            await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
              channel,
            ])
          ).rows[0].n === 1,
        10_000,
        'listener reconnected',
      );
      await waitFor(
        async () => {
          await pool.query(`SELECT pg_notify('${channel}', '')`);
          return wakes >= 2;
        },
        10_000,
        'wake after reconnect',
      );
    } finally {
      await wakeUp.stop();
    }
    const before = wakes;
    await pool.query(`SELECT pg_notify('${channel}', '')`);
    await new Promise((r) => setTimeout(r, 150));
    expect(wakes).toBe(before);
    expect(
      (
        await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
          channel,
        ])
      ).rows[0].n,
    ).toBe(0);
  });

  it('postgres.js: wakes on notify and unlistens on stop', async () => {
    const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
    let wakes = 0;
    const wakeUp = createPostgresWakeUp({ channel: `${channel}_js`, sql });
    await wakeUp.start(() => {
      wakes++;
    });
    // postgres.js also wakes once when the LISTEN is (re)established
    await new Promise((r) => setTimeout(r, 100));
    const base = wakes;
    await pool.query(`SELECT pg_notify('${channel}_js', '')`);
    await waitFor(() => wakes === base + 1, 5000, 'postgres.js wake');
    await wakeUp.stop();
    await pool.query(`SELECT pg_notify('${channel}_js', '')`);
    await new Promise((r) => setTimeout(r, 150));
    expect(wakes).toBe(base + 1);
    await sql.end();
  });

  it('rejects invalid channels', () => {
    expect(() => createPostgresWakeUp({ channel: 'bad; DROP TABLE x', sql: {} as never })).toThrow(/channel/);
  });
});
