/**
 * The console's outbox panel data on SQLite: what the page fetches every refresh (`/api/outbox` with its
 * throughput windows, and `/api/outbox/dead-letters`), through `console.fetch` (routing, security headers,
 * problem handling, JSON), against a hand-written equivalent: the same three queries as prepared statements
 * on the same database and the same JSON. 20,000 published rows over the last 15 minutes, 500 pending, 50 dead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createConsole } from '@cqrs-ts/console';
import { createSqliteOutboxStore, migrate } from '@cqrs-ts/sqlite';
import type { Metrics } from '../../lib/types.ts';

const PUBLISHED = 20_000;
const PENDING = 500;
const DEAD = 50;
const BUCKET_MS = 60_000;
const BUCKETS = 15;
const WARMUP_MS = 1_000;
const MEASURE_MS = 3_000;

function seed(db: DatabaseSync, now: number): void {
  const insert = db.prepare(
    `INSERT INTO bench_ob (id, type, topic, key, payload, headers, content_encoding, created_at, status, attempts,
       next_attempt_at, last_error, published_at) VALUES (?, 'orders.order-placed', 'orders', ?, ?, ?, 'identity', ?, ?, ?, ?, ?, ?)`,
  );
  const payload = new TextEncoder().encode(
    JSON.stringify({ orderId: 'o', lines: Array(8).fill({ sku: 'book', qty: 1 }) }),
  );
  const headers = JSON.stringify({
    id: 'x',
    source: 'bench',
    type: 'orders.order-placed',
    specversion: '1.0',
  });
  let n = 0;
  const id = () => `0190f0aa-0000-7000-8000-${(n++).toString(16).padStart(12, '0')}`;
  db.exec('BEGIN');
  for (let i = 0; i < PUBLISHED; i++) {
    const at = now - Math.floor((i / PUBLISHED) * BUCKETS * BUCKET_MS);
    insert.run(id(), `k${i % 100}`, payload, headers, at - 5, 'published', 0, at, null, at - 1);
  }
  for (let i = 0; i < PENDING; i++)
    insert.run(id(), `k${i % 100}`, payload, headers, now - i, 'pending', 0, now, null, null);
  for (let i = 0; i < DEAD; i++)
    insert.run(id(), `k${i % 100}`, payload, headers, now - i, 'dead', 10, now, 'broker refused: 503', null);
  db.exec('COMMIT');
}

/** Loops `op` for {@link MEASURE_MS} after a warm-up; operations per second and µs per operation. */
async function measure(op: () => Promise<unknown>): Promise<Metrics> {
  const until = (ms: number) => performance.now() + ms;
  for (const end = until(WARMUP_MS); performance.now() < end; ) await op();
  let ops = 0;
  const start = performance.now();
  for (const end = until(MEASURE_MS); performance.now() < end; ops++) await op();
  const ms = performance.now() - start;
  return { per_s: (ops * 1000) / ms, us_per_op: (ms * 1000) / ops };
}

export async function run(variant: string): Promise<Metrics> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-bench-console-'));
  const db = new DatabaseSync(join(dir, 'outbox.db'));
  try {
    db.exec('PRAGMA journal_mode = WAL;');
    migrate(db, { tables: { outbox: 'bench_ob', inbox: 'bench_ib' } });
    const now = Date.now();
    seed(db, now);
    if (variant === 'console' || variant === 'console-cold') {
      const store = createSqliteOutboxStore({
        database: db,
        tables: { outbox: 'bench_ob', inbox: 'bench_ib' },
      });
      const make = () => createConsole({ outbox: { store }, readOnly: true, now: () => now });
      let c = make();
      const get = async (path: string) => {
        const r = await c.fetch(new Request(`http://127.0.0.1/console/api${path}`));
        if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
        return r.text();
      };
      const check = JSON.parse(await get('/outbox')) as { backlog: number; throughput: { counts: number[] } };
      // the console's windows are aligned to the minute: the oldest one may be cut
      const counted = check.throughput.counts.reduce((a, b) => a + b, 0);
      if (check.backlog !== PENDING || counted < PUBLISHED * 0.9 || counted > PUBLISHED)
        throw new Error(`unexpected figures ${JSON.stringify(check)}`);
      // cold: a new console per load, so no settled window is known (every load counts all 15 windows)
      return await measure(() => {
        if (variant === 'console-cold') c = make();
        return Promise.all([get('/outbox'), get('/outbox/dead-letters?limit=50')]);
      });
    }
    // hand-written: the same figures and rows with prepared statements, the same JSON
    const stats = db.prepare(
      `SELECT COALESCE(SUM(status = 'pending'), 0) AS backlog, COALESCE(SUM(status = 'dead'), 0) AS dead,
       MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest FROM bench_ob WHERE status <> 'published'`,
    );
    const windows = db.prepare(
      `SELECT (published_at - ?) / ? AS b, COUNT(*) AS n FROM bench_ob
       WHERE status = 'published' AND published_at >= ? AND published_at < ? GROUP BY b`,
    );
    const dead = db.prepare(
      `SELECT id, seq, type, topic, key, attempts, last_error, created_at, headers, payload FROM bench_ob
       WHERE status = 'dead' ORDER BY seq LIMIT ?`,
    );
    const decoder = new TextDecoder();
    const outbox = async () => {
      const s = stats.get() as { backlog: number; dead: number; oldest: number | null };
      const since = now - BUCKETS * BUCKET_MS;
      const counts = new Array<number>(BUCKETS).fill(0);
      for (const r of windows.all(since, BUCKET_MS, since, now) as { b: number; n: number }[])
        counts[r.b] = r.n;
      return JSON.stringify({
        backlog: s.backlog,
        dead: s.dead,
        oldestPendingAgeMs: s.oldest === null ? 0 : now - s.oldest,
        throughput: { bucketMs: BUCKET_MS, counts },
      });
    };
    const letters = async () =>
      JSON.stringify({
        items: (dead.all(50) as Record<string, unknown>[]).map((r) => ({
          id: r.id,
          seq: r.seq,
          type: r.type,
          topic: r.topic,
          key: r.key,
          attempts: r.attempts,
          lastError: r.last_error,
          createdAt: r.created_at,
          headers: JSON.parse(r.headers as string),
          payload: decoder.decode(r.payload as Uint8Array),
        })),
      });
    return await measure(() => Promise.all([outbox(), letters()]));
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
