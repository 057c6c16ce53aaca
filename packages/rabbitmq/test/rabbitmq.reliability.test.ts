/**
 * RabbitMQ reliability: the broker stopped for ~10 s mid-flow (publisher + relay and consumer resume by
 * themselves, nothing lost), a consumer process SIGKILLed inside a handler and after its commit (redelivered, one
 * effect with the Postgres inbox), and end to end from a command through the Postgres outbox and the relay to a
 * consumer in another process with the same correlation and trace ids.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import {
  type AnyEvent,
  createInMemoryOutboxStore,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
  runWithContext,
} from '@cqrs-ts/core';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { createRabbitConsumer, createRabbitPublisher, ensureRabbitTopology } from '@cqrs-ts/rabbitmq';
import { createTcpProxy } from '@cqrs-ts/testing/contracts';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeOutage,
  expectOutageSurvived,
  OUTAGE_MS,
  OUTAGE_TEST_TIMEOUT_MS,
  runOutageFlow,
} from '../../core/test/support/outage-flow.ts';
import { PG_URL, service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';
import { cleanup, RABBIT_URL, rabbitAvailable, topologyQueues, uniqueName } from './support.ts';

const run = promisify(execFile);
const available = await rabbitAvailable();
const pgAvailable =
  available &&
  (await service('postgres', async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
  }));
const canRestart = await run('rabbitmqctl', ['status'], { timeout: 30_000 }).then(
  () => true,
  (error: unknown) => {
    console.warn(`SKIP broker restart test: rabbitmqctl unusable (${String(error).slice(0, 200)})`);
    return false;
  },
);

const Ticked = defineEvent('rmqrel.ticked', {
  topic: 'rel.ticked',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();
const fixture = new URL('./fixtures/consumer-child.ts', import.meta.url).pathname;
const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

async function brokerUp(): Promise<void> {
  await run('rabbitmqctl', ['start_app'], { timeout: 120_000 });
  await run('rabbitmqctl', ['await_startup'], { timeout: 120_000 }).catch(() => {});
  await waitFor(() => rabbitAvailable(), 60_000, 'rabbitmq back');
}

describe.skipIf(!available)('rabbitmq reliability', () => {
  const exchanges: string[] = [];
  const queues: string[] = [];
  afterAll(async () => {
    await cleanup({ queues, exchanges });
  });
  const names = () => {
    const exchange = uniqueName('rel.ex');
    const queue = uniqueName('rel.q');
    exchanges.push(exchange);
    queues.push(...topologyQueues(queue, [50, 200]));
    return { exchange, queue };
  };

  it.skipIf(!canRestart)(
    'broker stopped for 10 s mid-flow: the relay and the consumer resume by themselves and nothing is lost',
    async () => {
      const { exchange, queue } = names();
      const store = createInMemoryOutboxStore();
      const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange, reconnect: { maxMs: 1000 } });
      const relay = createOutboxRelay({
        store,
        publisher,
        batchSize: 200,
        pollIntervalMs: 20,
        maxAttempts: 1000,
        backoff: { initialMs: 100, maxMs: 1000 },
        leaseMs: 5000,
      });
      const handled = new Set<string>();
      let deliveries = 0;
      const consumer = createRabbitConsumer({
        url: RABBIT_URL,
        exchange,
        queue,
        retry: { delaysMs: [50, 200] },
        concurrency: 8,
        reconnect: { maxMs: 1000 },
        handle: (event) => {
          deliveries++;
          handled.add(event.metadata.requestId);
        },
      });
      const appended: string[] = [];
      let producing = true;
      let brokerStopped = false;
      try {
        await consumer.start();
        relay.start();
        const producer = (async () => {
          let n = 0;
          while (producing) {
            const tx = store.begin();
            const events = Array.from(
              { length: 20 },
              () => Ticked.create({ k: `k${n % 10}`, n: n++ }) as AnyEvent,
            );
            await store.append(tx, events);
            tx.commit();
            for (const e of events) appended.push(e.metadata.requestId);
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
        await waitFor(() => handled.size >= 200, 20_000, 'flow before the outage');
        brokerStopped = true;
        await run('rabbitmqctl', ['stop_app'], { timeout: 120_000 });
        const stoppedAt = Date.now();
        const handledAtStop = handled.size;
        await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - stoppedAt))));
        expect(consumer.health().connected).toBe(false);
        await brokerUp();
        brokerStopped = false;
        await new Promise((r) => setTimeout(r, 3000)); // keep producing after the restart
        producing = false;
        await producer;
        await waitFor(() => handled.size === appended.length, 90_000, 'every event handled');
        expect(handled.size).toBeGreaterThan(handledAtStop);
        for (const id of appended) expect(handled.has(id)).toBe(true);
        // the consumer can see the last batch before the relay has its confirms and marks the rows published
        await waitFor(
          async () => (await relay.health()).backlog === 0,
          30_000,
          'the relay to mark every row',
        );
        const stats = await relay.health();
        expect(stats.backlog).toBe(0);
        expect(stats.dead).toBe(0);
        expect(consumer.health().reconnects).toBeGreaterThanOrEqual(1);
        console.info(
          `broker restart: ${appended.length} events, ${deliveries} deliveries (${deliveries - handled.size} duplicates), consumer reconnects ${consumer.health().reconnects}`,
        );
      } finally {
        producing = false;
        if (brokerStopped) await brokerUp();
        await relay.stop();
        await consumer.stop();
        await publisher.close();
      }
    },
    180_000,
  );

  describe.skipIf(!pgAvailable)('with Postgres', () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    pool.on('error', () => {});
    const dropped: string[] = [];
    const children = new Set<ChildProcess>();
    afterAll(async () => {
      for (const c of children) c.kill('SIGKILL');
      if (dropped.length > 0) await pool.query(`DROP TABLE IF EXISTS ${dropped.join(', ')}`);
      await pool.end();
    });

    async function tablesFor(tag: string) {
      const sfx = `${tag}_${uniqueSuffix}`;
      const t = {
        outbox: `rr_ob_${sfx}`,
        inbox: `rr_ib_${sfx}`,
        effects: `rr_fx_${sfx}`,
        deliveries: `rr_dl_${sfx}`,
      };
      dropped.push(t.outbox, t.inbox, t.effects, t.deliveries);
      await migrate(pool, { tables: { outbox: t.outbox, inbox: t.inbox } });
      await pool.query(`CREATE TABLE ${t.effects} (event_id TEXT NOT NULL)`);
      await pool.query(`CREATE TABLE ${t.deliveries} (event_id TEXT NOT NULL)`);
      return t;
    }

    type Line = { ready?: true; hanging?: string; committed?: string; handled?: Record<string, unknown> };
    function spawnConsumer(env: Record<string, string>) {
      const lines: Line[] = [];
      const child = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
        env: { ...process.env, RMQ_URL: RABBIT_URL, PG_URL, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let stderr = '';
      let buf = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i = buf.indexOf('\n');
        while (i >= 0) {
          lines.push(JSON.parse(buf.slice(0, i)) as Line);
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
        }
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      void exited.then(() => children.delete(child));
      const wait = async (pred: (l: Line) => boolean, what: string, timeoutMs = 30_000) => {
        const deadline = Date.now() + timeoutMs - 100;
        await waitFor(
          () => {
            if (child.exitCode !== null)
              throw new Error(`consumer child exited (${child.exitCode}): ${stderr}`);
            if (Date.now() > deadline)
              throw new Error(
                `no ${what}; lines: ${JSON.stringify(lines).slice(0, 2000)}; stderr: ${stderr}`,
              );
            return lines.some(pred);
          },
          timeoutMs,
          what,
        );
        return lines.find(pred)!;
      };
      const kill = async (signal: NodeJS.Signals) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill(signal);
        await exited;
      };
      return { child, lines, wait, kill };
    }

    const count = async (sql: string, args: unknown[] = []) =>
      Number((await pool.query(sql, args)).rows[0].n);

    it('a consumer SIGKILLed inside a handler and after its commit: redelivered, one effect each', async () => {
      const { exchange, queue } = names();
      const t = await tablesFor('kill');
      const Hang = defineEvent('rmqrel.hang', { topic: 'rel.hang' }).withPayload<{ n: number }>();
      const Freeze = defineEvent('rmqrel.freeze', { topic: 'rel.freeze' }).withPayload<{ n: number }>();
      const env = {
        RMQ_EXCHANGE: exchange,
        RMQ_QUEUE: queue,
        RMQ_BINDINGS: 'rel.#',
        PG_OUTBOX: t.outbox,
        PG_INBOX: t.inbox,
        PG_EFFECTS: t.effects,
        PG_DELIVERIES: t.deliveries,
      };
      await ensureRabbitTopology({
        url: RABBIT_URL,
        exchange,
        queue,
        bindings: ['rel.#'],
        retry: { delaysMs: [50, 200] },
      });
      const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
      try {
        const first = spawnConsumer({
          ...env,
          HANG_TYPE: 'rmqrel.hang',
          FREEZE_AFTER_COMMIT: 'rmqrel.freeze',
        });
        await first.wait((l) => l.ready === true, 'first consumer ready');
        const hang = Hang.create({ n: 1 }) as AnyEvent;
        const freeze = Freeze.create({ n: 2 }) as AnyEvent;
        const others = Array.from({ length: 8 }, (_, i) => Ticked.create({ k: `x${i}`, n: i }) as AnyEvent);
        expect((await publisher.publishEvents([hang, ...others])).every((r) => r.ok)).toBe(true);
        await first.wait((l) => l.hanging === hang.metadata.requestId, 'handler hanging');
        await waitFor(
          () => first.lines.filter((l) => l.handled !== undefined).length === others.length,
          30_000,
          'the other events handled',
        );
        expect((await publisher.publishEvents([freeze])).every((r) => r.ok)).toBe(true);
        await first.wait((l) => l.committed === freeze.metadata.requestId, 'committed, ack held');
        await first.kill('SIGKILL');
        expect(
          await count(`SELECT count(*) AS n FROM ${t.effects} WHERE event_id = $1`, [
            hang.metadata.requestId,
          ]),
        ).toBe(0);
        expect(
          await count(`SELECT count(*) AS n FROM ${t.effects} WHERE event_id = $1`, [
            freeze.metadata.requestId,
          ]),
        ).toBe(1);

        const second = spawnConsumer(env);
        await second.wait((l) => l.handled?.id === hang.metadata.requestId, 'hang redelivered and handled');
        await waitFor(
          async () =>
            (await count(`SELECT count(*) AS n FROM ${t.deliveries} WHERE event_id = $1`, [
              freeze.metadata.requestId,
            ])) >= 1 && (await count(`SELECT count(*) AS n FROM ${t.inbox}`)) === others.length + 2,
          30_000,
          'inbox complete',
        );
        // the redelivered, already committed message is a duplicate: its handler does not run again
        await new Promise((r) => setTimeout(r, 500));
        expect(second.lines.some((l) => l.handled?.id === freeze.metadata.requestId)).toBe(false);
        await second.kill('SIGTERM');
        expect(
          await count(`SELECT count(*) AS n FROM ${t.deliveries} WHERE event_id = $1`, [
            hang.metadata.requestId,
          ]),
        ).toBe(2);
        const fx = await pool.query(
          `SELECT event_id, count(*)::int AS n FROM ${t.effects} GROUP BY event_id`,
        );
        expect(fx.rows).toHaveLength(others.length + 2);
        for (const row of fx.rows) expect(row.n).toBe(1);
        expect(second.lines.find((l) => l.handled?.id === hang.metadata.requestId)!.handled!.attempt).toBe(2);
      } finally {
        await publisher.close();
      }
    }, 120_000);

    it('end to end: a command commits a row and an event through the Postgres outbox; another process handles it with the same ids', async () => {
      const { exchange, queue } = names();
      const t = await tablesFor('e2e');
      const orders = `rr_orders_${uniqueSuffix}`;
      dropped.push(orders);
      await pool.query(`CREATE TABLE ${orders} (id TEXT PRIMARY KEY)`);
      const PlaceOrder = defineCommand('rmqrel.place-order')
        .withPayload<{ orderId: string }>()
        .returns<void>();
      const OrderPlaced = defineEvent('rmqrel.order-placed', {
        topic: 'rel.orders.placed',
        key: (p: { orderId: string }) => p.orderId,
      }).withPayload<{ orderId: string }>();
      const store = createPostgresOutboxStore({
        client: pool,
        tables: { outbox: t.outbox, inbox: t.inbox },
        source: 'orders',
      });
      const placeOrder = async (cmd: { payload: { orderId: string } }) => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          await c.query(`INSERT INTO ${orders} (id) VALUES ($1)`, [cmd.payload.orderId]);
          // created inside the handler: linked to the command (same correlation, causation = command id, trace)
          await store.append(c, [OrderPlaced.create({ orderId: cmd.payload.orderId })]);
          await c.query('COMMIT');
        } catch (error) {
          await c.query('ROLLBACK');
          throw error;
        } finally {
          c.release();
        }
      };
      const mediator = createMediator({ handlers: [handle(PlaceOrder, placeOrder)] });
      const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
      const relay = createOutboxRelay({ store, publisher, pollIntervalMs: 50 });
      const consumer = spawnConsumer({
        RMQ_EXCHANGE: exchange,
        RMQ_QUEUE: queue,
        RMQ_BINDINGS: 'rel.orders.#',
        PG_OUTBOX: t.outbox,
        PG_INBOX: t.inbox,
        PG_EFFECTS: t.effects,
        PG_DELIVERIES: t.deliveries,
      });
      try {
        await consumer.wait((l) => l.ready === true, 'consumer ready');
        relay.start();
        const command = PlaceOrder.create(
          { orderId: 'o-77' },
          { correlationId: 'e2e-corr-1', traceparent: TRACE },
        );
        await runWithContext({ correlationId: 'e2e-corr-1', traceparent: TRACE }, () =>
          mediator.send(command),
        );
        const line = await consumer.wait(
          (l) => l.handled?.type === 'rmqrel.order-placed',
          'handled in the other process',
        );
        const h = line.handled!;
        expect(h.correlationId).toBe('e2e-corr-1');
        expect(h.ctxCorrelationId).toBe('e2e-corr-1');
        expect(String(h.traceparent).split('-')[1]).toBe(TRACE.split('-')[1]);
        expect(String(h.ctxTraceparent).split('-')[1]).toBe(TRACE.split('-')[1]);
        expect(h.ctxCausationId).toBe(h.id);
        expect(await count(`SELECT count(*) AS n FROM ${orders}`)).toBe(1);
        await waitFor(
          async () => (await count(`SELECT count(*) AS n FROM ${t.inbox}`)) === 1,
          10_000,
          'inbox mark',
        );
        expect(await count(`SELECT count(*) AS n FROM ${t.effects} WHERE event_id = $1`, [h.id])).toBe(1);
        expect(await count(`SELECT count(*) AS n FROM ${t.outbox} WHERE status = 'published'`)).toBe(1);
      } finally {
        await relay.stop();
        await publisher.close();
        await consumer.kill('SIGTERM');
      }
    }, 120_000);

    it(
      `outage of ${OUTAGE_MS / 1000} s (a TCP proxy in front of RabbitMQ refuses connections) under 500 events/s through the Postgres outbox: nothing dead or lost, key order kept, the backlog drains at once`,
      async () => {
        const { exchange, queue } = names();
        const target = new URL(RABBIT_URL);
        const proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
        const url = `amqp://${target.username}:${target.password}@127.0.0.1:${proxy.port}`;
        const publisher = createRabbitPublisher({ url, exchange });
        const direct = createRabbitPublisher({ url: RABBIT_URL, exchange });
        try {
          const result = await runOutageFlow({
            label: 'rabbitmq',
            pool,
            topic: 'rel.ticked',
            publisher,
            direct,
            async consume(handle) {
              const consumer = createRabbitConsumer({
                url,
                exchange,
                queue,
                retry: { delaysMs: [50, 200] },
                handle,
              });
              await consumer.start();
              return consumer;
            },
            down: () => proxy.block(),
            up: () => proxy.unblock(),
          });
          console.info(describeOutage('rabbitmq', result));
          expectOutageSurvived(result);
        } finally {
          await publisher.close();
          await direct.close();
          await proxy.close();
        }
      },
      OUTAGE_TEST_TIMEOUT_MS,
    );
  });
});
