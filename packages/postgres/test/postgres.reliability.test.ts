/**
 * Reliability of the Postgres outbox against real failures: a relay process SIGKILLed at random moments, and a
 * Postgres restart under load. Runs alone, after the main suite (vitest.reliability.config.ts): the restart
 * breaks every open connection to the server.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type AnyEvent, createInMemoryBroker, createOutboxRelay, defineEvent } from '@cqrs-ts/core';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

const Ticked = defineEvent('reliability.ticked', {
  topic: 'reliability',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls every 50 ms until `condition` holds; throws after `timeoutMs`. */
async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Deterministic PRNG (mulberry32), so the kill schedule is reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Makes `count` events over `keys` keys, each carrying its per-key sequence number `n` (0, 1, 2, ...). */
function makeEvents(count: number, keys: number, next: Map<string, number>): AnyEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const k = `k${i % keys}`;
    const n = next.get(k) ?? 0;
    next.set(k, n + 1);
    return Ticked.create({ k, n }) as AnyEvent;
  });
}

/** Per key, the `n` of each event in first-delivery order must be 0, 1, 2, ... */
function assertKeyOrder(rows: readonly { key: string; n: number }[]): void {
  const expected = new Map<string, number>();
  const broken: string[] = [];
  for (const { key, n } of rows) {
    const want = expected.get(key) ?? 0;
    if (n !== want && broken.length < 5) broken.push(`${key}: got n=${n}, expected ${want}`);
    expected.set(key, Math.max(want, n + 1));
  }
  expect(broken).toEqual([]);
}

async function count(pool: pg.Pool, sql: string): Promise<number> {
  return Number((await pool.query(sql)).rows[0].n);
}

const fixture = fileURLToPath(new URL('./fixtures/crash-relay.ts', import.meta.url));

describe('postgres outbox reliability', () => {
  let pool: pg.Pool | undefined;
  const dropped: string[] = [];

  beforeAll(() => {
    if (!available) return;
    pool = new pg.Pool({ connectionString: PG_URL, max: 6, connectionTimeoutMillis: 5000 });
    pool.on('error', () => {});
  });
  afterAll(async () => {
    if (!pool) return;
    if (dropped.length > 0) await pool.query(`DROP TABLE IF EXISTS ${dropped.join(', ')}`).catch(() => {});
    await pool.end();
  });

  /** Runs `fn` in a pg transaction on a pooled client; a client that broke is discarded. */
  async function tx(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const c = await pool!.connect();
    let broken = false;
    // A checked-out pg client has no error listener of the pool's: a connection dropped between queries
    // (the restart) would be an uncaught 'error' event.
    const onError = () => {
      broken = true;
    };
    c.on('error', onError);
    try {
      await c.query('BEGIN');
      await fn(c);
      await c.query('COMMIT');
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      c.removeListener('error', onError);
      c.release(broken);
    }
  }

  it('a relay SIGKILLed at random moments publishes every event, in key order, exactly once through the inbox', async (ctx) => {
    if (!pool) {
      ctx.skip();
      return;
    }
    const TOTAL = 20_000;
    const KEYS = 50;
    const PER_TX = 250;
    const LEASE_MS = 2000;
    const KILLS = 10;
    const sfx = `crash_${uniqueSuffix}`;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    const deliveries = `dl_${sfx}`;
    const effects = `fx_${sfx}`;
    const log = `pl_${sfx}`;
    dropped.push(tables.outbox, tables.inbox, deliveries, effects, log);
    await migrate(pool, { tables });
    await pool.query(
      `CREATE TABLE ${deliveries} (pos BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, key TEXT NOT NULL, n INT NOT NULL)`,
    );
    await pool.query(`CREATE TABLE ${effects} (event_id TEXT NOT NULL)`);
    await pool.query(
      `CREATE TABLE ${log} (pos BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL, key TEXT NOT NULL, n INT NOT NULL)`,
    );
    const store = createPostgresOutboxStore({ client: pool, tables, notifyChannel: false });

    const children = new Set<ChildProcess>();
    const spawnRelay = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
        env: {
          ...process.env,
          CRASH_PG_URL: PG_URL,
          CRASH_OUTBOX: tables.outbox,
          CRASH_INBOX: tables.inbox,
          CRASH_DELIVERIES: deliveries,
          CRASH_EFFECTS: effects,
          CRASH_LOG: log,
          CRASH_LEASE_MS: String(LEASE_MS),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      void exited.then(() => children.delete(child));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('relay child not ready after 20 s')), 20_000);
        child.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`relay child exited early (${code ?? signal}): ${stderr}`));
        });
      });
      return child;
    };
    const stopChild = async (child: ChildProcess, signal: NodeJS.Signals) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      await exited;
    };

    const started = Date.now();
    let appended = 0;
    const next = new Map<string, number>();
    const appending = (async () => {
      for (let i = 0; i < TOTAL; i += PER_TX) {
        const batch = makeEvents(PER_TX, KEYS, next);
        await tx((c) => store.append(c, batch));
        appended += batch.length;
      }
    })();
    const effectCount = () => count(pool!, `SELECT count(*) AS n FROM ${effects}`);
    const drained = async () =>
      appended === TOTAL &&
      (await count(pool!, `SELECT count(*) AS n FROM ${tables.outbox} WHERE status <> 'published'`)) === 0;

    const random = rng(20_260_101);
    let kills = 0;
    try {
      while (kills < KILLS && !(await drained())) {
        const child = await spawnRelay();
        // Kill only after this child made progress, so every cycle moves the outbox forward.
        const before = await effectCount();
        await until(async () => (await effectCount()) > before || (await drained()), 30_000, 'progress');
        await sleep(150 + Math.floor(random() * 450));
        await stopChild(child, 'SIGKILL');
        kills++;
      }
      const last = await spawnRelay();
      await until(drained, 120_000, 'the outbox to drain');
      await stopChild(last, 'SIGTERM');
    } finally {
      for (const c of children) await stopChild(c, 'SIGKILL');
      await appending;
    }

    // Every event published at least once, and the outbox knows it.
    expect(await count(pool, `SELECT count(*) AS n FROM ${tables.outbox}`)).toBe(TOTAL);
    expect(await count(pool, `SELECT count(DISTINCT event_id) AS n FROM ${deliveries}`)).toBe(TOTAL);
    // Exactly one effect per event, through the inbox.
    expect(await count(pool, `SELECT count(*) AS n FROM ${effects}`)).toBe(TOTAL);
    expect(await count(pool, `SELECT count(DISTINCT event_id) AS n FROM ${effects}`)).toBe(TOTAL);
    expect(await count(pool, `SELECT count(*) AS n FROM ${log}`)).toBe(TOTAL);
    // Per key, first deliveries follow the append order, and so do the applied effects.
    const first = await pool.query(
      `SELECT key, n FROM (SELECT event_id, key, n, min(pos) AS first FROM ${deliveries} GROUP BY event_id, key, n) s
       ORDER BY first`,
    );
    assertKeyOrder(first.rows as { key: string; n: number }[]);
    assertKeyOrder((await pool.query(`SELECT key, n FROM ${log} ORDER BY pos`)).rows);
    const attempts = await count(pool, `SELECT count(*) AS n FROM ${deliveries}`);
    console.log(
      `crash test: ${TOTAL} events, ${kills} SIGKILLs, ${attempts - TOTAL} duplicate deliveries (absorbed by the inbox), ${Date.now() - started} ms`,
    );
    expect(kills).toBe(KILLS);
  }, 200_000);

  it('a Postgres restart loses nothing committed and the relay resumes by itself', async (ctx) => {
    if (!pool) {
      ctx.skip();
      return;
    }
    const version = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql').sort()[0] : undefined;
    if (version === undefined) {
      console.warn('SKIP postgres restart: no /etc/postgresql cluster to restart with pg_ctlcluster');
      ctx.skip();
      return;
    }
    const ctl = (action: 'restart' | 'start') =>
      new Promise<void>((resolve, reject) => {
        execFile(
          'pg_ctlcluster',
          ['--skip-systemctl-redirect', version, 'main', action],
          { timeout: 60_000 },
          (error, _stdout, stderr) =>
            error ? reject(new Error(`pg_ctlcluster ${action}: ${stderr}`)) : resolve(),
        );
      });
    const accepting = async () => {
      const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await c.end().catch(() => {});
      }
    };

    const sfx = `restart_${uniqueSuffix}`;
    const tables = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
    dropped.push(tables.outbox, tables.inbox);
    await migrate(pool, { tables });
    const store = createPostgresOutboxStore({ client: pool, tables, notifyChannel: false });
    const broker = createInMemoryBroker();
    const seen = new Set<string>();
    const firstDeliveries: { key: string; n: number }[] = [];
    broker.subscribe('*', (d) => {
      if (seen.has(d.id)) return;
      seen.add(d.id);
      const { payload } = d.event as { payload: { k: string; n: number } };
      firstDeliveries.push({ key: payload.k, n: payload.n });
    });
    const relay = createOutboxRelay({
      store,
      publisher: broker,
      batchSize: 100,
      leaseMs: 2000,
      pollIntervalMs: 50,
      backoff: { initialMs: 50, maxMs: 500, factor: 2 },
    });

    const committed = new Set<string>();
    let committedAfterRestart = 0;
    let restarted = false;
    let stop = false;
    let appendErrors = 0;
    const next = new Map<string, number>();
    /** Appends one batch; retries the same events on errors (the outage), until it knows they committed. */
    const appendDurably = async (events: AnyEvent[]) => {
      const ids = events.map((e) => e.metadata.requestId);
      const end = Date.now() + 60_000;
      for (;;) {
        try {
          await tx((c) => store.append(c, events));
          break;
        } catch (error) {
          appendErrors++;
          if (Date.now() > end) throw error;
          await sleep(100);
          // The COMMIT may have succeeded with its reply lost: then the rows are there.
          const there = await pool!
            .query(`SELECT 1 FROM ${tables.outbox} WHERE id = $1`, [ids[0]])
            .then((r) => r.rowCount === 1)
            .catch(() => false);
          if (there) break;
        }
      }
      for (const id of ids) committed.add(id);
      if (restarted) committedAfterRestart += ids.length;
    };
    const appending = (async () => {
      while (!stop) {
        await appendDurably(makeEvents(20, 10, next));
        await sleep(10);
      }
    })();

    const started = Date.now();
    relay.start();
    try {
      await until(async () => seen.size >= 500, 30_000, 'events to flow before the restart');
      await ctl('restart');
      await until(accepting, 60_000, 'postgres to accept connections again');
      restarted = true;
      await until(async () => committedAfterRestart >= 1000, 60_000, 'appends after the restart');
      stop = true;
      await appending;
      await until(async () => [...committed].every((id) => seen.has(id)), 60_000, 'every committed event');
      // The last batch is delivered before its transaction commits the mark: wait for the backlog to drain.
      await until(async () => (await relay.health()).backlog === 0, 30_000, 'the backlog to drain');
      const health = await relay.health();
      expect(health.running).toBe(true);
      expect(health.backlog).toBe(0);
    } finally {
      stop = true;
      await appending.catch(() => {});
      await relay.stop();
      if (!(await accepting())) {
        await ctl('start').catch(() => {});
        await until(accepting, 60_000, 'postgres to start').catch(() => {});
      }
    }
    expect(committedAfterRestart).toBeGreaterThanOrEqual(1000);
    expect([...committed].filter((id) => !seen.has(id))).toEqual([]);
    expect(await count(pool, `SELECT count(*) AS n FROM ${tables.outbox} WHERE status <> 'published'`)).toBe(
      0,
    );
    assertKeyOrder(firstDeliveries);
    console.log(
      `restart test: ${committed.size} events committed (${committedAfterRestart} after the restart), ${appendErrors} append retries, ${broker.delivered - seen.size} duplicate deliveries, ${Date.now() - started} ms`,
    );
  }, 180_000);
});
