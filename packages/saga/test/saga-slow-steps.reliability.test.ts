/**
 * Steps three times longer than the lease, over Postgres, with two recovery workers in separate processes
 * (`fixtures/slow-step-worker.ts`): 200 sagas of 2 steps, each step taking 3 to 4 s under a 1 s lease, left
 * behind by a starter that died right after creating them. Each worker starts a recovery pass every second (20
 * sagas at a time), as a timer would, so passes of one worker overlap each other and the other worker's, and
 * every pass works from a list that grows stale while its slow steps run.
 * Then: every saga completed; every step started exactly once and finished (none aborted, none run twice, in
 * one worker or across both); each step is recorded once; and the workers' recovery reports count each saga
 * completed once.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { uuidv7 } from '@cqrs-ts/core/spi';
import { createPostgresSagaStore, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, service, uniqueSuffix } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

const SAGAS = 200;
const STEPS = 2;
const LEASE_MS = 1_000;
const STEP_MS = 3 * LEASE_MS;
const fixture = fileURLToPath(new URL('./fixtures/slow-step-worker.ts', import.meta.url));
const sfx = `slow_${uniqueSuffix}`;
const tables = { saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}`, ex: `ex_${sfx}` };
const migrateTables = { saga: tables.saga, sagaLog: tables.sagaLog, outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };

interface Totals {
  worker: string;
  passes: number;
  found: number;
  completed: number;
  skipped: number;
  errors: number;
  onError: string[];
}

describe.skipIf(!available)('saga steps longer than the lease, two recovery workers (postgres)', () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  pool.on('error', () => {});
  const children = new Set<ReturnType<typeof spawn>>();
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await pool.query(
      `DROP TABLE IF EXISTS ${[...Object.values(tables), migrateTables.outbox, migrateTables.inbox].join(', ')}`,
    );
    await pool.end();
  });

  const worker = (name: string) =>
    new Promise<Totals>((resolve, reject) => {
      const config = {
        url: PG_URL,
        tables,
        name: `slow-${sfx}`,
        steps: STEPS,
        worker: name,
        leaseMs: LEASE_MS,
        stepMs: STEP_MS,
        stepJitterMs: LEASE_MS,
        concurrency: 20,
        passEveryMs: 1_000,
      };
      const child = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
        env: { ...process.env, SAGA_WORKER: JSON.stringify(config) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
      });
      child.on('exit', (code, signal) => {
        children.delete(child);
        if (code !== 0) reject(new Error(`worker ${name} exited with ${code ?? signal}`));
        else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Totals);
      });
    });

  it('no step runs twice and each saga is counted completed once', async () => {
    await migrate(pool, { tables: migrateTables });
    await pool.query(`CREATE TABLE ${tables.ex} (id BIGSERIAL PRIMARY KEY, saga_id TEXT NOT NULL,
      step TEXT NOT NULL, worker TEXT NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT, outcome TEXT)`);
    // A starter created the sagas and died before running any step: every lease has run out.
    const store = createPostgresSagaStore({
      client: pool,
      tables: { saga: tables.saga, sagaLog: tables.sagaLog },
    });
    const ids: string[] = [];
    for (let i = 0; i < SAGAS; i++) {
      const id = uuidv7();
      ids.push(id);
      await store.create({
        id,
        name: `slow-${sfx}`,
        definitionVersion: 1,
        context: JSON.stringify({ n: i }),
        owner: 'dead-starter',
        now: Date.now() - 2 * LEASE_MS,
        leaseMs: LEASE_MS,
        deadlineAt: null,
      });
    }
    const started = Date.now();
    const [a, b] = await Promise.all([worker('worker-a'), worker('worker-b')]);
    const seconds = (Date.now() - started) / 1000;

    const rows = (await pool.query(`SELECT id, status, cursor FROM ${tables.saga}`)).rows as {
      status: string;
      cursor: number;
    }[];
    const ex = (
      await pool.query(`SELECT saga_id, step, worker, started_at, ended_at, outcome FROM ${tables.ex}`)
    ).rows as {
      saga_id: string;
      step: string;
      worker: string;
      started_at: string;
      ended_at: string;
      outcome: string;
    }[];
    const starts = new Map<string, number>();
    for (const e of ex) starts.set(`${e.saga_id}/${e.step}`, (starts.get(`${e.saga_id}/${e.step}`) ?? 0) + 1);
    const twice = [...starts].filter(([, n]) => n > 1);
    const log = (await pool.query(`SELECT saga_id, step_id, status FROM ${tables.sagaLog}`)).rows as {
      saga_id: string;
      step_id: string;
      status: string;
    }[];
    const byWorker = (w: string) => new Set(ex.filter((e) => e.worker === w).map((e) => e.saga_id)).size;
    console.log(
      `slow steps: ${SAGAS} sagas x ${STEPS} steps of ${STEP_MS}-${STEP_MS + LEASE_MS} ms under a ${LEASE_MS} ms lease in ${seconds.toFixed(1)} s; ` +
        `${ex.length} step executions (${twice.length} steps started more than once, ${ex.filter((e) => e.outcome !== 'done').length} aborted); ` +
        `counted completed ${a.completed + b.completed} times; ` +
        `worker-a completed ${a.completed} (ran steps of ${byWorker('worker-a')} sagas), skipped ${a.skipped} in ${a.passes} passes; ` +
        `worker-b completed ${b.completed} (ran steps of ${byWorker('worker-b')} sagas), skipped ${b.skipped} in ${b.passes} passes`,
    );

    expect(rows).toHaveLength(SAGAS);
    expect(rows.filter((r) => r.status !== 'completed' || r.cursor !== STEPS)).toEqual([]);
    // Every step started once and ran to its end.
    expect(twice, 'steps started more than once').toEqual([]);
    expect(starts.size).toBe(SAGAS * STEPS);
    expect(ex.filter((e) => e.outcome !== 'done')).toEqual([]);
    expect(ex.every((e) => Number(e.ended_at) - Number(e.started_at) >= STEP_MS)).toBe(true);
    // Each step is recorded once.
    expect(log).toHaveLength(SAGAS * STEPS);
    expect(log.every((e) => e.status === 'completed')).toBe(true);
    expect(new Set(log.map((e) => `${e.saga_id}/${e.step_id}`)).size).toBe(SAGAS * STEPS);
    // Counted once: the two workers' reports add up to exactly the sagas there were; both took part.
    expect(a.completed + b.completed).toBe(SAGAS);
    expect(a.completed).toBeGreaterThan(0);
    expect(b.completed).toBeGreaterThan(0);
    expect([...a.onError, ...b.onError]).toEqual([]);
  }, 240_000);
});
