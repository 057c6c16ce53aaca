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

  /** A pg listener factory that keeps each client it makes, with a promise of its 'end'. */
  function listeners(name: string, gate?: (attempt: number) => Promise<void>) {
    const made: { client: pg.Client; ended: Promise<void> }[] = [];
    const connect = async () => {
      const client = new pg.Client({ connectionString: PG_URL, application_name: name });
      client.on('error', () => {});
      // Registered before the wake-up's own listeners, so by the time this resolves they have run too.
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      made.push({ client, ended });
      await client.connect();
      await gate?.(made.length);
      return client;
    };
    const backends = async () =>
      (
        await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
          name,
        ])
      ).rows[0].n as number;
    return { made, connect, backends };
  }

  it('pg: wakes on commit only, reconnects after its connection is killed, and stops cleanly', async () => {
    let wakes = 0;
    const l = listeners(channel);
    const wakeUp = createPostgresWakeUp({ channel, reconnectDelayMs: 50, connect: l.connect });
    await wakeUp.start(() => {
      wakes++;
    });
    try {
      // The listener's own connection also listens on a barrier channel: a connection gets notifications in
      // commit order, so once the barrier (committed after the uncommitted notify) is in, so would the notify be.
      const listener = l.made[0]!.client;
      const barrier = `${channel}_barrier`;
      let barriers = 0;
      listener.on('notification', (m) => {
        if (m.channel === barrier) barriers++;
      });
      await listener.query(`LISTEN ${barrier}`);
      const c = await pool.connect();
      await c.query('BEGIN');
      await c.query(`SELECT pg_notify('${channel}', '')`);
      await pool.query(`SELECT pg_notify('${barrier}', '')`);
      await waitFor(() => barriers === 1, 5000, 'barrier notification');
      expect(wakes).toBe(0); // not before commit
      await c.query('COMMIT');
      c.release();
      await waitFor(() => wakes === 1, 5000, 'wake after commit');
      await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
        channel,
      ]);
      // The drop wakes at once (notifications may have been missed), then the listener reconnects.
      await waitFor(() => wakes === 2, 10_000, 'wake on the dropped connection');
      await waitFor(
        async () => {
          await pool.query(`SELECT pg_notify('${channel}', '')`);
          return wakes >= 3;
        },
        10_000,
        'wake after reconnect',
      );
      expect(l.made).toHaveLength(2);
    } finally {
      await wakeUp.stop();
    }
    const after = wakes;
    // Every client the wake-up made has ended: nothing is left to hear a notification or report its end.
    await Promise.all(l.made.map((m) => m.ended));
    expect(wakes).toBe(after);
    expect(await l.backends()).toBe(0);
  });

  it('pg: stop() during a reconnect waits for it, closes the new connection and wakes no more', async () => {
    let wakes = 0;
    let releaseSecond!: () => void;
    const secondHeld = new Promise<void>((resolve) => {
      releaseSecond = resolve;
    });
    let secondConnecting!: () => void;
    const second = new Promise<void>((resolve) => {
      secondConnecting = resolve;
    });
    const name = `${channel}_stop`;
    const l = listeners(name, async (attempt) => {
      if (attempt !== 2) return;
      secondConnecting();
      await secondHeld;
    });
    const wakeUp = createPostgresWakeUp({ channel: name, reconnectDelayMs: 10, connect: l.connect });
    await wakeUp.start(() => {
      wakes++;
    });
    await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [
      name,
    ]);
    await second; // the reconnect has its connection, its LISTEN not sent yet
    expect(wakes).toBe(1); // the drop
    const stopping = wakeUp.stop();
    releaseSecond();
    await stopping;
    await Promise.all(l.made.map((m) => m.ended));
    expect(wakes).toBe(1);
    expect(await l.backends()).toBe(0);
  });

  it('postgres.js: wakes on notify and unlistens on stop', async () => {
    const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
    const name = `${channel}_js`;
    let wakes = 0;
    const wakeUp = createPostgresWakeUp({ channel: name, sql });
    await wakeUp.start(() => {
      wakes++;
    });
    expect(wakes).toBe(1); // postgres.js also wakes when its LISTEN is (re)established
    await pool.query(`SELECT pg_notify('${name}', '')`);
    await waitFor(() => wakes === 2, 5000, 'postgres.js wake');
    await wakeUp.stop();
    // A probe on the same connection and channel: postgres.js hands a notification to every listener of the
    // channel at once, so when the probe has it, a listener still registered would have it too.
    let probed = 0;
    const probe = await sql.listen(name, () => {
      probed++;
    });
    await pool.query(`SELECT pg_notify('${name}', '')`);
    await waitFor(() => probed === 1, 5000, 'probe notification');
    expect(wakes).toBe(2);
    await probe.unlisten();
    await sql.end();
  });

  it('rejects invalid channels', () => {
    expect(() => createPostgresWakeUp({ channel: 'bad; DROP TABLE x', sql: {} as never })).toThrow(/channel/);
  });
});
