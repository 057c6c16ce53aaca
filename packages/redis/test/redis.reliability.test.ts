/**
 * Reliability of the Redis Streams adapter against real failures: Redis stopped for ~10 s mid-flow and started
 * again (it runs without persistence here: `--save "" --appendonly no`), a consumer process SIGKILLed inside a
 * handler and after a commit but before its ack, and the end-to-end path from a command through the Postgres
 * outbox to a consumer in another process. Runs alone (vitest.reliability.config.ts); Redis is running again
 * when each test ends, also on failure.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type AnyEvent,
  consumerTransaction,
  correlation,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
} from '@cqrs-ts/core';
import { createPostgresInboxGuard, createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { createRedisStreamsConsumer, createRedisStreamsPublisher } from '@cqrs-ts/redis';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeOutage,
  expectOutageSurvived,
  OUTAGE_MS,
  OUTAGE_TEST_TIMEOUT_MS,
  runOutageFlow,
} from '../../core/test/support/outage-flow.ts';
import { PG_URL, service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';
import {
  deleteKeys,
  keyPrefix,
  newRedis,
  REDIS_URL,
  redisAvailable,
  sleep,
  startPrivateRedis,
} from './support.ts';

const run = promisify(execFile);
const redisUp = await redisAvailable();
const pgUp = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});
const ROOT = keyPrefix('reliability');
const fixture = fileURLToPath(new URL('./fixtures/consumer-child.ts', import.meta.url));
const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** The start command of scripts/services.sh. */
const REDIS_START = [
  '--daemonize',
  'yes',
  '--bind',
  '127.0.0.1',
  '-::1',
  '--port',
  '6379',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  '/var/lib/redis',
  '--logfile',
  '/var/log/redis/ci.log',
];

async function redisPing(): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'ping'], { timeout: 2000 });
    return stdout.trim() === 'PONG';
  } catch {
    return false;
  }
}

async function stopRedis(): Promise<void> {
  await run('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'shutdown', 'nosave']).catch(() => {});
  await waitFor(async () => !(await redisPing()), 10_000, 'redis to stop');
}

async function startRedis(): Promise<void> {
  if (await redisPing()) return;
  await run('redis-server', REDIS_START).catch(() => {});
  await waitFor(redisPing, 20_000, 'redis to start');
}

/** Spawns the child consumer and collects its JSON lines. */
function child(env: Record<string, string>): { proc: ChildProcess; lines: Record<string, unknown>[] } {
  const proc = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
    env: { ...process.env, CHILD_REDIS_URL: REDIS_URL, CHILD_PG_URL: PG_URL, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not ours
    }
  });
  return { proc, lines };
}

const killed = (proc: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });

describe.skipIf(!redisUp || !pgUp)('redis streams reliability', () => {
  let pool: pg.Pool;
  let redis: Redis;
  const dropped: string[] = [];

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 6 });
    pool.on('error', () => {});
    redis = newRedis();
  });
  afterAll(async () => {
    await startRedis();
    await deleteKeys(redis, ROOT).catch(() => {});
    redis.disconnect();
    if (dropped.length > 0) await pool.query(`DROP TABLE IF EXISTS ${dropped.join(', ')}`);
    await pool.end();
  });

  async function tables(name: string) {
    const t = {
      outbox: `redis_rel_${name}_outbox_${uniqueSuffix}`,
      inbox: `redis_rel_${name}_inbox_${uniqueSuffix}`,
    };
    dropped.push(t.outbox, t.inbox);
    await migrate(pool, { tables: t });
    return t;
  }

  async function inTx(work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await work(c);
      await c.query('COMMIT');
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      c.release();
    }
  }

  it('Redis stopped for 10 s mid-flow: the relay publishes every committed event, the consumer resumes by itself', async () => {
    const t = await tables('restart');
    const prefix = `${ROOT}restart:`;
    const Ticked = defineEvent('reliability.ticked', {
      topic: 'ticks',
      key: (p: { k: string; n: number }) => p.k,
    }).withPayload<{ k: string; n: number }>();
    const store = createPostgresOutboxStore({ client: pool, tables: t, notifyChannel: false });
    const publisher = createRedisStreamsPublisher({ url: REDIS_URL, streamPrefix: prefix, timeoutMs: 2000 });
    const relay = createOutboxRelay({
      store,
      publisher,
      batchSize: 200,
      pollIntervalMs: 20,
      maxAttempts: 1000,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    const received = new Map<string, number>(); // event id -> times
    const consumer = createRedisStreamsConsumer({
      url: REDIS_URL,
      streams: [`${prefix}ticks`],
      group: 'g',
      blockMs: 500,
      claimIdleMs: 3000,
      reclaimIntervalMs: 500,
      processor: {
        name: 'restart',
        handle: (e) => void received.set(e.metadata.requestId, (received.get(e.metadata.requestId) ?? 0) + 1),
      },
    });
    let writing = true;
    const committed: AnyEvent[] = [];
    const writer = (async () => {
      let n = 0;
      while (writing) {
        const batch = Array.from({ length: 10 }, () => Ticked.create({ k: `k${n % 7}`, n: n++ }));
        await inTx((c) => store.append(c, batch));
        committed.push(...batch);
        await sleep(50);
      }
    })();
    let stoppedAt = 0;
    let restartAt = 0;
    try {
      relay.start();
      await consumer.start();
      await sleep(2000);
      const beforeStop = received.size;
      const runId = await redis.info('server').then((i) => /run_id:(\w+)/.exec(i)?.[1]);
      stoppedAt = Date.now();
      await stopRedis();
      await sleep(10_000);
      restartAt = Date.now();
      await startRedis();
      expect(await redis.info('server').then((i) => /run_id:(\w+)/.exec(i)?.[1])).not.toBe(runId);
      await sleep(2000);
      writing = false;
      await writer;
      await waitFor(async () => (await store.stats(Date.now())).backlog === 0, 60_000, 'outbox drained');
      const publishedAfter = await pool.query(
        `SELECT id, published_at FROM ${t.outbox} WHERE status = 'published'`,
      );
      const publishedAt = new Map(publishedAfter.rows.map((r) => [r.id as string, Number(r.published_at)]));
      expect(publishedAt.size).toBe(committed.length); // nothing committed is lost by the relay
      // Every event Redis acknowledged after it came back reaches the consumer.
      const late = committed.filter((e) => publishedAt.get(e.metadata.requestId)! >= restartAt);
      await waitFor(
        () => late.every((e) => received.has(e.metadata.requestId)),
        30_000,
        'events published after the restart',
      );
      const committedDuringOutage = committed.filter(
        (e) => Date.parse(e.metadata.requestedAt) > stoppedAt + 1000,
      );
      expect(committedDuringOutage.length).toBeGreaterThan(50);
      expect(committedDuringOutage.every((e) => received.has(e.metadata.requestId))).toBe(true);
      // Only entries held in Redis's memory when it stopped can be missing (no persistence).
      const missing = committed.filter((e) => !received.has(e.metadata.requestId));
      for (const e of missing) expect(publishedAt.get(e.metadata.requestId)!).toBeLessThan(restartAt);
      console.info(
        `redis restart: ${committed.length} committed, ${beforeStop} consumed before the stop, ${late.length} published after the restart, ${missing.length} lost with Redis's memory, consumer reconnected ${consumer.health().reconnects} time(s)`,
      );
      expect(consumer.health().reconnects).toBeGreaterThan(0); // the group was created again
    } finally {
      writing = false;
      await writer.catch(() => {});
      await startRedis();
      await relay.stop();
      await consumer.stop();
      await publisher.close();
    }
  });

  it('a consumer SIGKILLed inside a handler and after a commit before its ack: entries reclaimed, one effect each', async () => {
    const t = await tables('kill');
    const effects = `redis_rel_effects_${uniqueSuffix}`;
    dropped.push(effects);
    await pool.query(
      `CREATE TABLE ${effects} (event_id text NOT NULL, n int NOT NULL, attempt int NOT NULL)`,
    );
    const stream = `${ROOT}kill:jobs`;
    const Job = defineEvent('reliability.job', {
      topic: 'jobs',
      key: (p: { n: number }) => `j${p.n}`,
    }).withPayload<{
      n: number;
    }>();
    const publisher = createRedisStreamsPublisher({ redis, stream: () => stream });
    const events = [0, 1, 2].map((n) => Job.create({ n }));
    const { proc, lines } = child({
      CHILD_MODE: 'crash',
      CHILD_STREAM: stream,
      CHILD_GROUP: 'g',
      CHILD_CONSUMER: 'doomed',
      CHILD_EFFECTS: effects,
      CHILD_INBOX: t.inbox,
    });
    const survivor = createRedisStreamsConsumer({
      redis,
      streams: [stream],
      group: 'g',
      consumer: 'survivor',
      blockMs: 200,
      claimIdleMs: 1500,
      reclaimIntervalMs: 250,
      processor: {
        name: 'redis-crash',
        inbox: createPostgresInboxGuard({ client: pool, tables: { inbox: t.inbox } }),
        handle: async (e, ctx) => {
          const tx = consumerTransaction<pg.PoolClient>()!;
          await tx.query(`INSERT INTO ${effects} VALUES ($1, $2, $3)`, [
            e.metadata.requestId,
            (e.payload as { n: number }).n,
            ctx.deliveryAttempt,
          ]);
        },
      },
    });
    try {
      await waitFor(() => lines.some((l) => l.started), 30_000, 'child start');
      await publisher.publishEvents([events[0]!, events[1]!]);
      await waitFor(
        () => lines.some((l) => l.handling === 0) && lines.some((l) => l.committed === 1),
        15_000,
        'child in handler',
      );
      proc.kill('SIGKILL');
      await killed(proc);
      await publisher.publishEvents([events[2]!]);
      await survivor.start();
      await waitFor(() => survivor.health().handled + survivor.health().duplicates === 3, 20_000, 'survivor');
      expect(survivor.health()).toMatchObject({ handled: 2, duplicates: 1 }); // the crashed consumer's two entries, reclaimed
      const rows = await pool.query(`SELECT n, attempt FROM ${effects} ORDER BY n`);
      // n=0: rolled back with the killed process, applied once on attempt 2; n=1: committed once, its redelivery
      // was a duplicate; n=2: a first delivery to the survivor.
      expect(rows.rows).toEqual([
        { n: 0, attempt: 2 },
        { n: 1, attempt: 1 },
        { n: 2, attempt: 1 },
      ]);
      await waitFor(async () => Number((await redis.xpending(stream, 'g'))[0]) === 0, 5000, 'all acked');
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await survivor.stop();
    }
  });

  it('end to end: a command commits a row and an event through the Postgres outbox; a consumer in another process handles it in the same trace', async () => {
    const t = await tables('e2e');
    const orders = `redis_rel_orders_${uniqueSuffix}`;
    dropped.push(orders);
    await pool.query(`CREATE TABLE ${orders} (id text PRIMARY KEY)`);
    const prefix = `${ROOT}e2e:`;
    const topic = 'shop.orders';
    const PlaceOrder = defineCommand('shop.place-order').withPayload<{ orderId: string }>().returns<void>();
    const OrderPlaced = defineEvent('shop.order-placed', { topic }).withPayload<{ orderId: string }>();
    const store = createPostgresOutboxStore({ client: pool, tables: t, notifyChannel: false });
    const mediator = createMediator({
      behaviors: [correlation()],
      handlers: [
        handle(PlaceOrder, async (cmd) => {
          await inTx(async (c) => {
            await c.query(`INSERT INTO ${orders} (id) VALUES ($1)`, [cmd.payload.orderId]);
            await store.append(c, [OrderPlaced.create({ orderId: cmd.payload.orderId })]);
          });
        }),
      ],
    });
    const publisher = createRedisStreamsPublisher({ url: REDIS_URL, streamPrefix: prefix });
    const relay = createOutboxRelay({ store, publisher, pollIntervalMs: 50 });
    const { proc, lines } = child({
      CHILD_MODE: 'e2e',
      CHILD_STREAM: `${prefix}${topic}`,
      CHILD_GROUP: 'g',
      CHILD_CONSUMER: 'e2e',
      CHILD_TOPIC: topic,
    });
    try {
      await waitFor(() => lines.some((l) => l.started), 30_000, 'child start');
      relay.start();
      const command = PlaceOrder.create(
        { orderId: 'o-42' },
        { correlationId: 'corr-e2e-42', traceparent: TRACE },
      );
      await mediator.send(command);
      expect((await pool.query(`SELECT id FROM ${orders}`)).rows).toEqual([{ id: 'o-42' }]);
      await waitFor(() => lines.some((l) => l.handled), 20_000, 'handled in the child');
      const handled = lines.find((l) => l.handled)!.handled as Record<string, unknown>;
      const [row] = (await pool.query(`SELECT id FROM ${t.outbox}`)).rows;
      expect(handled).toEqual({
        orderId: 'o-42',
        id: row.id,
        correlationId: 'corr-e2e-42',
        causationId: command.metadata.requestId,
        traceparent: TRACE,
        // Inside the handler the ambient context describes the event being handled, as in-process dispatch does.
        context: {
          requestId: row.id,
          correlationId: 'corr-e2e-42',
          causationId: command.metadata.requestId,
          traceparent: TRACE,
        },
      });
    } finally {
      proc.kill('SIGTERM');
      await killed(proc);
      await relay.stop();
      await publisher.close();
    }
  });

  it(
    `outage of ${OUTAGE_MS / 1000} s (a private redis-server killed) under 500 events/s through the Postgres outbox: nothing dead or lost, key order kept, the backlog drains at once`,
    async () => {
      const server = await startPrivateRedis();
      const prefix = `${ROOT}outage:`;
      const publisher = createRedisStreamsPublisher({
        url: server.url,
        streamPrefix: prefix,
        timeoutMs: 2000,
      });
      try {
        const result = await runOutageFlow({
          label: 'redis',
          pool,
          topic: 'ticks',
          publisher,
          direct: publisher,
          async consume(handle) {
            const consumer = createRedisStreamsConsumer({
              url: server.url,
              streams: [`${prefix}ticks`],
              group: 'outage',
              processor: { name: 'outage', handle },
            });
            await consumer.start();
            return consumer;
          },
          down: () => server.kill(),
          up: () => server.start(),
        });
        console.info(describeOutage('redis', result));
        expectOutageSurvived(result);
      } finally {
        await publisher.close();
        await server.dispose();
      }
    },
    OUTAGE_TEST_TIMEOUT_MS,
  );
});
