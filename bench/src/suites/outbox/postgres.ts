/** The `outbox` suite on PostgreSQL (node-postgres pool), including the commit-to-publish latency cases. */
import { createInMemoryBroker, createOutboxRelay } from '@cqrs-ts/core';
import { createPostgresOutboxStore, createPostgresWakeUp, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import { benchEvents, type OutboxTarget, outboxTarget, suffix } from './common.ts';

const URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The target, or `undefined` (with a note on stdout) when Postgres is unreachable. */
export async function openPostgres(notifyChannel: string | false = false): Promise<OutboxTarget | undefined> {
  const pool = new pg.Pool({ connectionString: URL, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    console.log(`note: postgres unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return undefined;
  }
  const tables = { outbox: `bench_ob_${suffix}`, inbox: `bench_ib_${suffix}` };
  const business = `bench_biz_${suffix}`;
  await migrate(pool, { tables });
  await pool.query(`CREATE TABLE ${business} (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)`);
  const store = createPostgresOutboxStore({ client: pool, tables, notifyChannel });
  const tx = async (fn: (c: pg.PoolClient) => Promise<void>) => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await fn(c);
      await c.query('COMMIT');
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      c.release();
    }
  };
  const insertBusiness = (c: pg.PoolClient) =>
    c.query(`INSERT INTO ${business} (note) VALUES ($1)`, ['order placed']);
  return outboxTarget({
    store,
    tx,
    insertBusiness,
    // Autovacuum would analyze a table after this many inserts; do it now so both loops get real plans.
    afterSeed: async () => void (await pool.query(`ANALYZE ${tables.outbox}`)),
    async rawClaim(limit) {
      let moved = 0;
      await tx(async (c) => {
        const r = await c.query(
          `SELECT seq, id, type, topic, key, payload, headers, content_encoding FROM ${tables.outbox}
           WHERE status = 'pending' ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [limit],
        );
        moved = r.rows.length;
        if (moved === 0) return;
        await c.query(
          `UPDATE ${tables.outbox} SET status = 'published', published_at = $1 WHERE seq = ANY($2::bigint[])`,
          [Date.now(), r.rows.map((row: { seq: string }) => row.seq)],
        );
      });
      return moved;
    },
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${business}`);
      await pool.end();
    },
  });
}

/**
 * Commit-to-publish latency at a steady 1,000 events/s: every 5 ms a transaction appends 5 events (open loop,
 * not waiting for the previous one); the time from the COMMIT's reply to the in-memory broker's delivery is
 * recorded per event for 3 s after a 0.5 s warm-up. `notify`: LISTEN/NOTIFY wake-up and the default 1 s poll;
 * `poll`: no wake-up, a 100 ms poll. Returns the latencies in ms, or `undefined` when Postgres is unreachable.
 */
export async function commitToPublish(mode: 'notify' | 'poll'): Promise<number[] | undefined> {
  const channel = `bench_${suffix}`;
  const target = await openPostgres(mode === 'notify' ? channel : false);
  if (!target) return undefined;
  const committedAt = new Map<string, number>();
  const deliveredAt = new Map<string, number>();
  const broker = createInMemoryBroker();
  broker.subscribe('*', (m) => {
    if (!deliveredAt.has(m.id)) deliveredAt.set(m.id, performance.now());
  });
  const relay = createOutboxRelay({
    store: target.store,
    publisher: broker,
    batchSize: 100,
    ...(mode === 'notify'
      ? {
          wakeUp: createPostgresWakeUp({
            channel,
            connect: async () => new pg.Client({ connectionString: URL }),
          }),
        }
      : { pollIntervalMs: 100 }),
  });
  relay.start();
  const WARMUP_MS = 500;
  const RUN_MS = 3000;
  const TICK_MS = 5;
  const PER_TICK = 5;
  const start = performance.now();
  const measured: string[] = [];
  const inflight: Promise<void>[] = [];
  try {
    for (let tick = 0; ; tick++) {
      const due = start + tick * TICK_MS;
      if (due - start >= WARMUP_MS + RUN_MS) break;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const events = benchEvents(PER_TICK, tick * PER_TICK);
      const ids = events.map((e) => e.metadata.requestId);
      if (due - start >= WARMUP_MS) measured.push(...ids);
      inflight.push(
        target.appendTxn(events).then(() => {
          const t = performance.now();
          for (const id of ids) committedAt.set(id, t);
        }),
      );
    }
    await Promise.all(inflight);
    const end = performance.now() + 30_000;
    while (!measured.every((id) => deliveredAt.has(id))) {
      if (performance.now() > end) throw new Error('not every event was published within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await relay.stop();
    await target.close();
  }
  // A delivery can beat the COMMIT's reply to the producer: that counts as 0 ms.
  return measured.map((id) => Math.max(0, deliveredAt.get(id)! - committedAt.get(id)!));
}
