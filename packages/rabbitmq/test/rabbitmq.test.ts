import {
  type AnyEvent,
  ConfigurationError,
  consumerTransaction,
  createMessageCatalog,
  currentContext,
  defineEvent,
  isCqrsError,
  runWithContext,
} from '@cqrs-ts/core';
import type { OutboxMessage } from '@cqrs-ts/core/spi';
import { createPostgresInboxGuard, migrate } from '@cqrs-ts/postgres';
import {
  createRabbitConsumer,
  createRabbitPublisher,
  ensureRabbitTopology,
  RabbitMqError,
} from '@cqrs-ts/rabbitmq';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { PG_URL, service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';
import {
  cleanup,
  drainQueue,
  RABBIT_URL,
  rabbitAvailable,
  rawChannel,
  topologyQueues,
  uniqueName,
} from './support.ts';

const available = await rabbitAvailable();
const pgAvailable =
  available &&
  (await service('postgres', async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
  }));

const Shipped = defineEvent('rmq.shipped', {
  topic: 'orders.shipped',
  schema: z.object({ orderId: z.string().min(1), items: z.number().int() }),
  key: (p) => p.orderId,
});
const Poison = defineEvent('rmq.poison', { topic: 'orders.poison' }).withPayload<{ n: number }>();
const Noted = defineEvent('rmq.noted', { topic: 'orders.noted' }).withPayload<{ text: string }>();
const catalog = createMessageCatalog([Shipped, Poison, Noted]);
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const utf8 = new TextEncoder();

const message = (topic: string, key: string | null, n: number): OutboxMessage => {
  const e = Shipped.create({ orderId: key ?? `none${n}`, items: n }) as AnyEvent;
  return {
    id: e.metadata.requestId,
    type: e.type,
    topic,
    key,
    headers: {
      specversion: '1.0',
      id: e.metadata.requestId,
      source: 'test',
      type: e.type,
      datacontenttype: 'application/json',
      correlationid: e.metadata.correlationId,
      ...(key !== null ? { partitionkey: key } : {}),
    },
    body: utf8.encode(JSON.stringify(e.payload)),
    attempts: 0,
  };
};

describe.skipIf(!available)('rabbitmq publisher and consumer', () => {
  const exchanges: string[] = [];
  const queues: string[] = [];
  afterAll(async () => {
    await cleanup({ queues, exchanges });
  });
  const names = (delays: readonly number[] = [50, 200]) => {
    const exchange = uniqueName('ex');
    const queue = uniqueName('q');
    exchanges.push(exchange);
    queues.push(...topologyQueues(queue, delays));
    return { exchange, queue };
  };

  it('round-trips an event with CloudEvents headers and restores correlation, causation and trace', async () => {
    const { exchange, queue } = names();
    const peek = uniqueName('peek');
    queues.push(peek);
    await ensureRabbitTopology({
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['orders.#'],
      retry: { delaysMs: [50, 200] },
    });
    const raw = await rawChannel();
    await raw.ch.assertQueue(peek, { durable: false, autoDelete: false });
    await raw.ch.bindQueue(peek, exchange, 'orders.#');
    const seen: { event: AnyEvent; ctx: ReturnType<typeof currentContext> }[] = [];
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['orders.#'],
      retry: { delaysMs: [50, 200] },
      catalog,
      handle: (event) => {
        seen.push({ event, ctx: currentContext() });
      },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange, source: 'orders-svc' });
    try {
      await consumer.start();
      const event = runWithContext(
        {
          correlationId: 'corr-42',
          requestId: 'cmd-1',
          traceparent: TRACE,
          tenantId: 't1',
          requestedBy: 'alice',
        },
        () => Shipped.create({ orderId: 'o-1', items: 3 }),
      ) as AnyEvent;
      const results = await publisher.publishEvents([event]);
      expect(results).toEqual([{ ok: true }]);
      await waitFor(() => seen.length === 1, 10_000, 'delivery');
      const got = seen[0]!;
      expect(got.event.type).toBe('rmq.shipped');
      expect(got.event.payload).toEqual({ orderId: 'o-1', items: 3 });
      expect(got.event.metadata).toMatchObject({
        requestId: event.metadata.requestId,
        correlationId: 'corr-42',
        causationId: 'cmd-1',
        traceparent: TRACE,
        tenantId: 't1',
        requestedBy: 'alice',
      });
      expect(got.ctx).toMatchObject({
        correlationId: 'corr-42',
        causationId: event.metadata.requestId,
        traceparent: TRACE,
        tenantId: 't1',
      });
      // the wire format: CloudEvents AMQP binding
      const [m] = await drainQueue(raw.ch, peek, 1);
      expect(m).toBeDefined();
      const p = m!.properties;
      expect(p.contentType).toBe('application/json');
      expect(p.messageId).toBe(event.metadata.requestId);
      expect(p.correlationId).toBe('corr-42');
      expect(p.deliveryMode).toBe(2);
      expect(p.timestamp).toBe(Math.floor(Date.parse(event.metadata.requestedAt) / 1000));
      expect(m!.fields.routingKey).toBe('orders.shipped');
      expect(p.headers).toMatchObject({
        'cloudEvents:specversion': '1.0',
        'cloudEvents:id': event.metadata.requestId,
        'cloudEvents:source': 'orders-svc',
        'cloudEvents:type': 'rmq.shipped',
        'cloudEvents:time': event.metadata.requestedAt,
        'cloudEvents:correlationid': 'corr-42',
        'cloudEvents:causationid': 'cmd-1',
        'cloudEvents:traceparent': TRACE,
        'cloudEvents:partitionkey': 'o-1',
        'cloudEvents:tenantid': 't1',
      });
      expect(p.headers!['content-type']).toBeUndefined();
      expect(consumer.stats()).toMatchObject({ handled: 1, deadLettered: 0 });
    } finally {
      await consumer.stop();
      await publisher.close();
      await raw.close();
    }
  });

  it('handles messages that waited in the queue before start on their first delivery', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({ url: RABBIT_URL, exchange, queue, retry: { delaysMs: [50, 200] } });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    const attempts: number[] = [];
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      retry: { delaysMs: [50, 200] },
      handle: (_e, ctx) => {
        attempts.push(ctx.deliveryAttempt);
      },
    });
    try {
      const events = Array.from(
        { length: 40 },
        (_, i) => Shipped.create({ orderId: `w${i}`, items: i }) as AnyEvent,
      );
      expect((await publisher.publishEvents(events)).every((r) => r.ok)).toBe(true);
      await consumer.start();
      await waitFor(() => attempts.length === 40, 10_000, 'handling');
      expect(attempts.every((a) => a === 1)).toBe(true);
    } finally {
      await consumer.stop();
      await publisher.close();
    }
  });

  it('compresses big data when asked and the consumer restores it', async () => {
    const { exchange, queue } = names();
    const seen: AnyEvent[] = [];
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      queueType: 'classic',
      retry: { delaysMs: [50, 200] },
      catalog,
      handle: (e) => {
        seen.push(e);
      },
    });
    const publisher = createRabbitPublisher({
      url: RABBIT_URL,
      exchange,
      compression: { algorithm: 'gzip', thresholdBytes: 10 },
    });
    const peek = uniqueName('peek');
    queues.push(peek);
    const raw = await rawChannel();
    try {
      await consumer.start();
      await raw.ch.assertQueue(peek, { durable: false });
      await raw.ch.bindQueue(peek, exchange, '#');
      const big = Noted.create({ text: 'x'.repeat(50_000) }) as AnyEvent;
      expect(await publisher.publishEvents([big])).toEqual([{ ok: true }]);
      await waitFor(() => seen.length === 1, 10_000, 'delivery');
      expect(seen[0]!.payload).toEqual(big.payload);
      const [m] = await drainQueue(raw.ch, peek, 1);
      expect(m!.properties.headers).toMatchObject({ 'cloudEvents:contentencoding': 'gzip' });
      expect(m!.properties.contentEncoding).toBe('gzip');
      expect(m!.content.byteLength).toBeLessThan(1000);
    } finally {
      await consumer.stop();
      await publisher.close();
      await raw.close();
    }
  });

  it('reports one result per message: unroutable (mandatory) and invalid fail, the others are confirmed', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['orders.*'],
      queueType: 'classic',
      retry: { delaysMs: [50, 200] },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange, maxMessageBytes: 1000 });
    const raw = await rawChannel();
    try {
      const huge = { ...message('orders.a', null, 9), body: new Uint8Array(2000) };
      const longKey = message('x'.repeat(300), null, 10);
      const batch = [
        message('orders.a', null, 1),
        message('nowhere.a', null, 2), // no binding matches
        huge,
        longKey,
        message('orders.b', null, 3),
      ];
      const results = await publisher.publish(batch);
      expect(results.map((r) => r.ok)).toEqual([true, false, false, false, true]);
      const errs = results.map((r) => (r.ok ? undefined : (r.error as RabbitMqError)));
      expect(errs[1]).toBeInstanceOf(RabbitMqError);
      expect(errs[1]!.reason).toBe('unroutable');
      expect(errs[1]!.replyCode).toBe(312);
      expect(isCqrsError(errs[1], 'CQRS_BROKER')).toBe(true);
      expect(results[1]).toMatchObject({ retryable: true });
      expect(errs[2]!.reason).toBe('invalid');
      expect(results[2]).toMatchObject({ retryable: false });
      expect(errs[3]!.reason).toBe('invalid');
      const got = await drainQueue(raw.ch, queue, 2);
      expect(got.map((m) => m.properties.messageId).sort()).toEqual([batch[0]!.id, batch[4]!.id].sort());
      expect(await raw.ch.get(queue, { noAck: true })).toBe(false);
    } finally {
      await publisher.close();
      await raw.close();
    }
  });

  it('keeps key order: after a failed message the later ones of its key are not sent', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['orders.*'],
      queueType: 'classic',
      retry: { delaysMs: [50, 200] },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    const raw = await rawChannel();
    try {
      expect(publisher.capabilities.preservesKeyOrder).toBe(true);
      const batch = [
        message('orders.a', 'k1', 1),
        message('lost.a', 'k2', 2), // unroutable
        message('orders.b', 'k1', 3),
        message('orders.c', 'k2', 4), // routable, but after a failed k2
        message('orders.d', 'k1', 5),
        message('orders.e', null, 6),
      ];
      const results = await publisher.publish(batch);
      expect(results.map((r) => r.ok)).toEqual([true, false, true, false, true, true]);
      const got = await drainQueue(raw.ch, queue, 4);
      const ids = got.map((m) => m.properties.messageId);
      expect(ids).toHaveLength(4);
      expect(ids).not.toContain(batch[3]!.id);
      // k1 arrived in batch order
      const k1 = ids.filter((id) => [batch[0]!.id, batch[2]!.id, batch[4]!.id].includes(id as string));
      expect(k1).toEqual([batch[0]!.id, batch[2]!.id, batch[4]!.id]);
    } finally {
      await publisher.close();
      await raw.close();
    }
  });

  it('fails the in-flight messages of a channel the broker closes, then re-opens it by itself', async () => {
    const { exchange, queue } = names();
    const opts = {
      url: RABBIT_URL,
      exchange,
      queue,
      queueType: 'classic',
      retry: { delaysMs: [50, 200] },
    } as const;
    await ensureRabbitTopology(opts);
    const publisher = createRabbitPublisher({
      url: RABBIT_URL,
      exchange,
      reconnect: { initialMs: 10, maxMs: 50 },
    });
    const raw = await rawChannel();
    try {
      expect((await publisher.publish([message('a', null, 1)])).every((r) => r.ok)).toBe(true);
      await raw.ch.deleteExchange(exchange); // the broker closes the publisher's channel on its next publish (404)
      const lost = await publisher.publish(Array.from({ length: 50 }, (_, i) => message('a', null, i)));
      expect(lost.some((r) => !r.ok)).toBe(true);
      for (const r of lost) {
        if (!r.ok) expect(r).toMatchObject({ retryable: true, error: { reason: 'connection' } });
      }
      // next call: a new channel re-declares the exchange; the queue's binding went with the old exchange
      const [unbound] = await publisher.publish([message('a', null, 2)]);
      expect(unbound).toMatchObject({ ok: false, error: { reason: 'unroutable' } });
      await raw.ch.bindQueue(queue, exchange, '#');
      expect((await publisher.publish([message('a', null, 3)])).every((r) => r.ok)).toBe(true);
    } finally {
      await publisher.close();
      await raw.close();
    }
  });

  it('pipelines a large batch and confirms every message', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({
      url: RABBIT_URL,
      exchange,
      queue,
      queueType: 'classic',
      retry: { delaysMs: [50, 200] },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange, maxInFlight: 64 });
    const raw = await rawChannel();
    try {
      const batch = Array.from({ length: 2000 }, (_, i) => message('orders.x', `k${i % 7}`, i));
      const results = await publisher.publish(batch);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(publisher.inFlight).toBe(0);
      const q = await raw.ch.checkQueue(queue);
      expect(q.messageCount).toBe(2000);
    } finally {
      await publisher.close();
      await raw.close();
    }
  });

  it('dead-letters a poison message after N attempts and malformed bytes at once, while later messages flow', async () => {
    const delays = [20, 60];
    const { exchange, queue } = names(delays);
    const handled: string[] = [];
    const attempts: number[] = [];
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      retry: { delaysMs: delays },
      maxAttempts: 3,
      backoff: { initialMs: 20, maxMs: 60, jitter: 'none' },
      catalog,
      concurrency: 4,
      handle: (event, ctx) => {
        if (event.type === 'rmq.poison') {
          attempts.push(ctx.deliveryAttempt);
          throw new Error('poison always fails');
        }
        handled.push((event.payload as { orderId: string }).orderId);
      },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    const raw = await rawChannel();
    try {
      await consumer.start();
      const poison = Poison.create({ n: 1 }) as AnyEvent;
      expect((await publisher.publishEvents([poison])).every((r) => r.ok)).toBe(true);
      // malformed: bytes with no CloudEvents headers, and a known type with an invalid payload
      raw.ch.publish(exchange, 'orders.raw', Buffer.from([0xff, 0x00, 0x13]), { persistent: true });
      raw.ch.publish(exchange, 'orders.shipped', Buffer.from('{"orderId":""}'), {
        persistent: true,
        contentType: 'application/json',
        headers: {
          'cloudEvents:specversion': '1.0',
          'cloudEvents:id': 'bad-1',
          'cloudEvents:source': 's',
          'cloudEvents:type': 'rmq.shipped',
        },
      });
      raw.ch.publish(exchange, 'orders.raw', Buffer.from('{}'), {
        persistent: true,
        headers: {
          'cloudEvents:specversion': '1.0',
          'cloudEvents:id': 'u-1',
          'cloudEvents:source': 's',
          'cloudEvents:type': 'rmq.unknown',
        },
      });
      await raw.ch.waitForConfirms();
      const good = Array.from(
        { length: 20 },
        (_, i) => Shipped.create({ orderId: `g${i}`, items: i }) as AnyEvent,
      );
      expect((await publisher.publishEvents(good)).every((r) => r.ok)).toBe(true);
      await waitFor(() => handled.length === 20 && consumer.stats().deadLettered === 4, 15_000, 'handling');
      expect(attempts).toEqual([1, 2, 3]);
      const dead = await drainQueue(raw.ch, `${queue}.dead`, 4);
      expect(dead).toHaveLength(4);
      const byReason = dead.map((m) => ({
        id: m.properties.headers?.['cloudEvents:id'] as string | undefined,
        reason: String(m.properties.headers?.['cloudEvents:deadletterreason']),
        attempts: m.properties.headers?.['cloudEvents:deadletterattempts'],
        source: m.properties.headers?.['cloudEvents:deadlettersource'],
        body: m.content,
      }));
      const poisoned = byReason.find((d) => d.id === poison.metadata.requestId)!;
      expect(poisoned.reason).toMatch(/failed 3 times: Error: poison always fails/);
      expect(poisoned.attempts).toBe('3');
      expect(poisoned.source).toBe(queue);
      const malformed = byReason.find((d) => d.id === undefined)!;
      expect(malformed.reason).toMatch(/^undecodable: EnvelopeError/);
      expect([...malformed.body]).toEqual([0xff, 0x00, 0x13]);
      expect(byReason.find((d) => d.id === 'bad-1')!.reason).toMatch(/undecodable: ValidationError/);
      expect(byReason.find((d) => d.id === 'u-1')!.reason).toMatch(/undecodable: UnknownMessageTypeError/);
      expect(consumer.stats()).toMatchObject({ handled: 20, retried: 2, deadLettered: 4 });
    } finally {
      await consumer.stop();
      await publisher.close();
      await raw.close();
    }
  });

  it('handles messages of one key one at a time, in order, and different keys in parallel', async () => {
    const { exchange, queue } = names();
    const order = new Map<string, number[]>();
    let running = 0;
    let maxRunning = 0;
    let overlaps = 0;
    const busy = new Set<string>();
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      retry: { delaysMs: [50, 200] },
      concurrency: 6,
      catalog,
      handle: async (event) => {
        const p = event.payload as { orderId: string; items: number };
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (busy.has(p.orderId)) overlaps++;
        busy.add(p.orderId);
        await new Promise((r) => setTimeout(r, Math.random() * 8));
        busy.delete(p.orderId);
        const list = order.get(p.orderId) ?? [];
        order.set(p.orderId, list);
        list.push(p.items); // completion order
        running--;
      },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    try {
      await consumer.start();
      const events = Array.from(
        { length: 120 },
        (_, i) => Shipped.create({ orderId: `o${i % 6}`, items: i }) as AnyEvent,
      );
      expect((await publisher.publishEvents(events)).every((r) => r.ok)).toBe(true);
      await waitFor(() => consumer.stats().handled === 120, 15_000, 'handling');
      for (const [k, list] of order) {
        expect(list, k).toEqual([...list].sort((a, b) => a - b));
        expect(list).toHaveLength(20);
      }
      expect(overlaps).toBe(0);
      expect(maxRunning).toBeGreaterThan(1);
      expect(maxRunning).toBeLessThanOrEqual(6);
    } finally {
      await consumer.stop();
      await publisher.close();
    }
  });

  it('stops gracefully: running handlers finish and are acked, the rest is released to the next consumer', async () => {
    const { exchange, queue } = names();
    const done: number[] = [];
    let started = 0;
    const make = (delay: number) =>
      createRabbitConsumer({
        url: RABBIT_URL,
        exchange,
        queue,
        retry: { delaysMs: [50, 200] },
        concurrency: 2,
        prefetch: 20,
        catalog,
        handle: async (event) => {
          started++;
          await new Promise((r) => setTimeout(r, delay));
          done.push((event.payload as { items: number }).items);
        },
      });
    const first = make(150);
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    try {
      await first.start();
      const events = Array.from(
        { length: 30 },
        (_, i) => Shipped.create({ orderId: `s${i}`, items: i }) as AnyEvent,
      );
      expect((await publisher.publishEvents(events)).every((r) => r.ok)).toBe(true);
      await waitFor(() => started >= 2, 10_000, 'handlers running');
      const startedBeforeStop = started;
      await first.stop();
      const afterStop = done.length;
      expect(afterStop).toBe(startedBeforeStop); // only the running handlers finished
      expect(afterStop).toBeGreaterThanOrEqual(2);
      expect(afterStop).toBeLessThan(30);
      expect(first.stats().handled).toBe(afterStop);
      const second = make(0);
      await second.start();
      await waitFor(() => new Set(done).size === 30, 10_000, 'the rest');
      await second.stop();
      expect(done).toHaveLength(30); // nothing handled twice
    } finally {
      await first.stop();
      await publisher.close();
    }
  });

  it.skipIf(!pgAvailable)('with the Postgres inbox a redelivered message has one effect', async () => {
    const { exchange, queue } = names();
    const tables = { outbox: `rmq_ob_${uniqueSuffix}`, inbox: `rmq_ib_${uniqueSuffix}` };
    const fx = `rmq_fx_${uniqueSuffix}`;
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    pool.on('error', () => {});
    await migrate(pool, { tables });
    await pool.query(`CREATE TABLE ${fx} (id TEXT NOT NULL)`);
    let calls = 0;
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      retry: { delaysMs: [50, 200] },
      catalog,
      inbox: createPostgresInboxGuard({ client: pool, tables }),
      handle: async (event) => {
        calls++;
        const tx = consumerTransaction<pg.PoolClient>()!;
        await tx.query(`INSERT INTO ${fx} VALUES ($1)`, [event.metadata.requestId]);
      },
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    try {
      await consumer.start();
      const e = Shipped.create({ orderId: 'dup', items: 1 }) as AnyEvent;
      // the relay may publish the same event twice (a lost confirm): same id, two messages
      expect((await publisher.publishEvents([e])).every((r) => r.ok)).toBe(true);
      expect((await publisher.publishEvents([e])).every((r) => r.ok)).toBe(true);
      await waitFor(() => consumer.stats().handled + consumer.stats().duplicates === 2, 10_000, 'both');
      expect(consumer.stats()).toMatchObject({ handled: 1, duplicates: 1 });
      expect(calls).toBe(1);
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${fx}`)).rows[0].n).toBe(1);
    } finally {
      await consumer.stop();
      await publisher.close();
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${fx}`);
      await pool.end();
    }
  });

  it('declares a topology idempotently and reports a conflicting one as a typed error', async () => {
    const { exchange, queue } = names();
    const opts = {
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['a.#', 'b.#'],
      retry: { delaysMs: [50, 200] },
    } as const;
    const t1 = await ensureRabbitTopology(opts);
    const t2 = await ensureRabbitTopology(opts);
    expect(t2).toEqual(t1);
    expect(t1).toMatchObject({ queue, deadLetterQueue: `${queue}.dead`, exchangeType: 'topic' });
    expect(t1.retryQueues.map((r) => r.queue)).toEqual([`${queue}.retry.50`, `${queue}.retry.200`]);
    const err = await ensureRabbitTopology({ ...opts, queueType: 'classic' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RabbitMqError);
    expect(err).toMatchObject({ code: 'CQRS_BROKER', reason: 'topology', replyCode: 406, retryable: false });
    // a consumer with the conflicting topology fails to start instead of retrying forever
    const consumer = createRabbitConsumer({ ...opts, queueType: 'classic', handle: () => {} });
    await expect(consumer.start()).rejects.toMatchObject({ reason: 'topology' });
  });

  it('rejects bad options and bad input with typed errors', async () => {
    const handle = () => {};
    expect(() => createRabbitPublisher({ exchange: 'e' })).toThrow(ConfigurationError);
    expect(() =>
      createRabbitPublisher({
        url: RABBIT_URL,
        connection: async () => {
          throw new Error();
        },
        exchange: 'e',
      }),
    ).toThrow(/exactly one/);
    expect(() => createRabbitPublisher({ url: RABBIT_URL, exchange: 'amq.topic' })).toThrow(
      ConfigurationError,
    );
    expect(() => createRabbitPublisher({ url: RABBIT_URL, exchange: 'e', maxInFlight: 0 })).toThrow(
      ConfigurationError,
    );
    expect(() => createRabbitConsumer({ url: RABBIT_URL, queue: 'bad name!', handle })).toThrow(
      ConfigurationError,
    );
    expect(() => createRabbitConsumer({ url: RABBIT_URL, queue: 'q', concurrency: 0, handle })).toThrow(
      ConfigurationError,
    );
    expect(() =>
      createRabbitConsumer({ url: RABBIT_URL, queue: 'q', retry: { delaysMs: [-1] }, handle }),
    ).toThrow(/retry delays/);
    expect(() => createRabbitConsumer({ url: RABBIT_URL, queue: 'q' })).toThrow(/mediator or a handle/);
    expect(() =>
      createRabbitConsumer({ url: RABBIT_URL, queue: 'q', queueType: 'classic', retry: false, handle }),
    ).toThrow(/quorum/);

    const { exchange } = names();
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    try {
      await expect(publisher.publish('nope' as never)).rejects.toThrow(ConfigurationError);
      await expect(publisher.publishEvents([{ kind: 'command' } as never])).rejects.toThrow(/not an event/);
      const results = await publisher.publish([
        null as never,
        { ...message('t', null, 1), body: 'text' as never },
        { ...message('t', null, 2), id: '' },
      ]);
      for (const r of results) {
        expect(r.ok).toBe(false);
        expect(r).toMatchObject({ retryable: false, error: { reason: 'invalid', code: 'CQRS_BROKER' } });
      }
      // a header table over AMQP's 64 KiB limit fails that message only
      const big = {
        ...message('t', null, 3),
        headers: { ...message('t', null, 3).headers, cqrsattributes: 'x'.repeat(70_000) },
      };
      const [r1, r2] = await publisher.publish([big, message('t', null, 4)]);
      expect(r1).toMatchObject({ ok: false, retryable: false, error: { reason: 'invalid' } });
      expect(r2).toMatchObject({ ok: false, error: { reason: 'unroutable' } }); // nothing bound: still one result each
    } finally {
      await publisher.close();
    }
    // an unreachable broker fails every message as retryable `connection`
    const down = createRabbitPublisher({ url: 'amqp://guest:guest@127.0.0.1:1', exchange: 'e' });
    const [r] = await down.publish([message('t', null, 1)]);
    expect(r).toMatchObject({ ok: false, retryable: true, error: { reason: 'connection' } });
    await down.close();
  });
});
