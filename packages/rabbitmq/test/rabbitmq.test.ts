import net from 'node:net';
import {
  type AnyEvent,
  BrokerError,
  ConfigurationError,
  createInMemoryOutboxStore,
  createMessageCatalog,
  createOutboxRelay,
  defineEvent,
  isCqrsError,
  isUnavailableError,
  runWithContext,
} from '@cqrs-ts/core';
import type { OutboxMessage } from '@cqrs-ts/core/spi';
import {
  createRabbitConsumer,
  createRabbitPublisher,
  ensureRabbitTopology,
  type RabbitPublisher,
} from '@cqrs-ts/rabbitmq';
import {
  type BrokerDeadLetter,
  type BrokerHarness,
  describeBrokerContract,
} from '@cqrs-ts/testing/contracts';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { callRecorder, waitFor } from '../../core/test/support/services.ts';
import {
  cleanup,
  drainQueue,
  RABBIT_URL,
  rabbitAvailable,
  rabbitProxy,
  rawChannel,
  topologyQueues,
  uniqueName,
} from './support.ts';

const available = await rabbitAvailable();

/**
 * The broker contract over a fresh exchange and queue (with retry and dead-letter queues) per test; consumers
 * connect through a TCP proxy the test can cut.
 */
describeBrokerContract('rabbitmq', async (): Promise<BrokerHarness | undefined> => {
  if (!available) return undefined;
  const { proxy, url: viaProxy } = await rabbitProxy();
  const raw = await rawChannel();
  const delays = [50, 200];
  const exchanges: string[] = [];
  const queues: string[] = [];
  let exchange = '';
  let queue = '';
  let publisher: RabbitPublisher | undefined;
  let dead: BrokerDeadLetter[] = [];
  const topology = () => ({ exchange, queue, bindings: ['ticks'], retry: { delaysMs: delays } });
  return {
    topic: 'ticks',
    publisher: () => publisher!,
    consumer(options) {
      return createRabbitConsumer({
        ...options,
        ...topology(),
        url: viaProxy,
        name: 'contract',
        reconnect: { initialMs: 50, maxMs: 200 },
      });
    },
    async publishRaw(data, attributes = {}) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(attributes))
        if (k !== 'datacontenttype') headers[`cloudEvents:${k}`] = v;
      raw.ch.publish(exchange, 'ticks', Buffer.from(data), {
        persistent: true,
        headers,
        ...(attributes.datacontenttype !== undefined ? { contentType: attributes.datacontenttype } : {}),
      });
      await raw.ch.waitForConfirms();
    },
    async deadLetters() {
      for (;;) {
        const m = await raw.ch.get(`${queue}.dead`, { noAck: true });
        if (m === false) return dead;
        const id = m.properties.headers?.['cloudEvents:id'];
        dead.push({
          id: typeof id === 'string' ? id : undefined,
          reason: String(m.properties.headers?.['cloudEvents:deadletterreason'] ?? ''),
          data: m.content,
        });
      }
    },
    async backlog() {
      let n = 0;
      for (const q of [queue, ...delays.map((d) => `${queue}.retry.${d}`)]) {
        n += (await raw.ch.checkQueue(q)).messageCount;
      }
      return n;
    },
    interrupt: async () => proxy.cut(),
    async reset() {
      await publisher?.close();
      exchange = uniqueName('ex');
      queue = uniqueName('q');
      exchanges.push(exchange);
      queues.push(...topologyQueues(queue, delays));
      dead = [];
      await ensureRabbitTopology({ url: RABBIT_URL, ...topology() });
      publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    },
    async close() {
      await publisher?.close();
      await raw.close();
      await proxy.close();
      await cleanup({ queues, exchanges });
    },
  };
});

const Shipped = defineEvent('rmq.shipped', {
  topic: 'orders.shipped',
  schema: z.object({ orderId: z.string().min(1), items: z.number().int() }),
  key: (p) => p.orderId,
});
const Noted = defineEvent('rmq.noted', { topic: 'orders.noted' }).withPayload<{ text: string }>();
const catalog = createMessageCatalog([Shipped, Noted]);
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

  it('publishes the CloudEvents AMQP binding: cloudEvents: headers and AMQP properties', async () => {
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
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange, source: 'orders-svc' });
    try {
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
    } finally {
      await publisher.close();
      await raw.close();
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
      const errs = results.map((r) => (r.ok ? undefined : (r.error as BrokerError)));
      expect(errs[1]).toBeInstanceOf(BrokerError);
      expect(errs[1]!.reason).toBe('unroutable');
      expect(errs[1]!.nativeCode).toBe(312);
      expect(isCqrsError(errs[1], 'CQRS_BROKER')).toBe(true);
      expect(results[1]).toMatchObject({ retryable: true });
      expect(errs[2]!.reason).toBe('too-large');
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

  /** A backlog of `n` events consumed through a proxy; `slow` holds one message: the writes of the consumer and what is left. */
  async function consumeBacklog(n: number, slow?: number) {
    const { exchange, queue } = names();
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    // the consumer connects through a proxy: every write to the proxy's port is the consumer's
    const { proxy, url: viaProxy } = await rabbitProxy();
    const write = net.Socket.prototype.write;
    let writes = 0;
    const seen: number[] = [];
    const consumer = createRabbitConsumer({
      url: viaProxy,
      exchange,
      queue,
      retry: { delaysMs: [50, 200] },
      concurrency: 16,
      prefetch: 64,
      catalog,
      handle: async (event) => {
        const i = (event.payload as { items: number }).items;
        if (i === slow) await new Promise((r) => setTimeout(r, 200));
        seen.push(i);
      },
    });
    const raw = await rawChannel();
    try {
      // a backlog, as after a pause or a deploy: the broker delivers it as fast as acks free the prefetch window
      await ensureRabbitTopology({ url: RABBIT_URL, exchange, queue, retry: { delaysMs: [50, 200] } });
      const events = Array.from(
        { length: n },
        (_, i) => Shipped.create({ orderId: `w${i}`, items: i }) as AnyEvent,
      );
      expect((await publisher.publishEvents(events)).every((r) => r.ok)).toBe(true);
      net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
        if (this.remotePort === proxy.port) writes++;
        return (write as (...a: unknown[]) => boolean).apply(this, args);
      } as typeof write;
      await consumer.start();
      await waitFor(() => seen.length >= n, 20_000, 'every message handled');
      await consumer.stop(); // unacked deliveries would go back to the queue here
      net.Socket.prototype.write = write;
      return {
        writes,
        seen,
        handled: consumer.health().handled,
        left: (await raw.ch.checkQueue(queue)).messageCount,
      };
    } finally {
      net.Socket.prototype.write = write;
      await consumer.stop();
      await publisher.close();
      await raw.close();
      await proxy.close();
    }
  }

  it('acks of one turn leave in one multiple ack for the settled run of deliveries, not a socket write each', async () => {
    const N = 400;
    const r = await consumeBacklog(N);
    expect(r.handled).toBe(N);
    expect(r.writes).toBeGreaterThan(0);
    expect(r.writes).toBeLessThan(N / 4); // an ack each would be N writes
    expect(r.left).toBe(0);
  });

  it('acks behind a message still running go out alone, and the multiple ack after it covers nothing unhandled', async () => {
    const N = 200;
    const r = await consumeBacklog(N, 3);
    expect(r.handled).toBe(N);
    expect(new Set(r.seen).size).toBe(N); // nothing handled twice
    expect(r.left).toBe(0); // nothing left unacked (requeued by the stop)
  });

  it('a message delivered into a connection that died unseen (half open) comes back once the heartbeat notices', async () => {
    const { exchange, queue } = names();
    const { proxy, url: viaProxy } = await rabbitProxy();
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    const seen: number[] = [];
    const consumer = createRabbitConsumer({
      // the broker's default heartbeat (60 s) would hold the lost delivery for minutes
      url: `${viaProxy}?heartbeat=2`,
      exchange,
      queue,
      retry: { delaysMs: [50, 200] },
      reconnect: { initialMs: 50, maxMs: 200 },
      catalog,
      handle: (event) => {
        seen.push((event.payload as { items: number }).items);
      },
    });
    const raw = await rawChannel();
    try {
      await consumer.start();
      expect((await publisher.publishEvents([Shipped.create({ orderId: 'h1', items: 1 })]))[0]!.ok).toBe(
        true,
      );
      await waitFor(() => seen.includes(1), 10_000, 'the message before the cut');
      // the broker keeps the old connection and its consumer: the next message is delivered into it and lost
      proxy.halfOpen();
      expect((await publisher.publishEvents([Shipped.create({ orderId: 'h2', items: 2 })]))[0]!.ok).toBe(
        true,
      );
      await waitFor(() => seen.includes(2), 20_000, 'the message delivered into the dead connection');
      expect(consumer.health().reconnects).toBeGreaterThanOrEqual(1);
      await waitFor(
        async () => (await raw.ch.checkQueue(queue)).messageCount === 0,
        10_000,
        'nothing left in the queue',
      );
      // 2 once; 1 may come back too: its ack leaves at the end of the turn and can be lost with the connection
      expect(seen.filter((n) => n === 2)).toHaveLength(1);
      expect(new Set(seen)).toEqual(new Set([1, 2]));
    } finally {
      await consumer.stop();
      await publisher.close();
      await raw.close();
      await proxy.close();
    }
  }, 40_000);

  it('a stop releases the prefetched messages that did not start to the next consumer', async () => {
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
          // handlers of different lengths (the subject)
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
      expect(first.health().handled).toBe(afterStop);
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

  it('a hung broker (connections open, nothing answers): every publish settles with a timeout after confirmTimeoutMs, on the open channel and while waiting for a new one, and publishing resumes when it answers again', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['orders.#'],
      retry: { delaysMs: [50, 200] },
    });
    const { proxy, url: viaProxy } = await rabbitProxy();
    const publisher = createRabbitPublisher({
      url: viaProxy,
      exchange,
      maxInFlight: 4,
      confirmTimeoutMs: 300,
    });
    try {
      expect(await publisher.publish([message('orders.hung', 'k', 0)])).toEqual([{ ok: true }]);
      proxy.stall();
      // more messages than maxInFlight: the call waits for slots that no confirm will free
      let t0 = performance.now();
      const stuck = await publisher.publish(
        Array.from({ length: 20 }, (_, i) => message('orders.hung', `k${i}`, i)),
      );
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(
        stuck.every((r) => !r.ok && r.error instanceof BrokerError && r.error.reason === 'timeout'),
      ).toBe(true);
      // the connection lost while the broker is hung: the next channel waits for a handshake that never comes
      proxy.cut();
      t0 = performance.now();
      const [waiting] = await publisher.publish([message('orders.hung', 'k', 1)]);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(waiting).toMatchObject({ ok: false, retryable: true });
      expect(isUnavailableError(waiting!.ok ? undefined : waiting!.error)).toBe(true);
      proxy.resume();
      await waitFor(
        async () => (await publisher.publish([message('orders.hung', 'k', 2)]))[0]!.ok,
        20_000,
        'publishing once the broker answers',
      );
    } finally {
      await publisher.close();
      await proxy.close();
    }
  });

  it('onAvailable: re-opens a lost channel in the background and tells each listener, until the listener is removed', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({ url: RABBIT_URL, exchange, queue, bindings: ['orders.#'] });
    const { proxy, url: viaProxy } = await rabbitProxy();
    const publisher = createRabbitPublisher({
      url: viaProxy,
      exchange,
      reconnect: { initialMs: 20, maxMs: 200 },
    });
    const raw = await rawChannel();
    try {
      expect(await publisher.publish([message('orders.available', 'k', 0)])).toEqual([{ ok: true }]);
      const first = callRecorder();
      const stop = publisher.onAvailable(first.listener);
      const heard = first.nextCall();
      const connections = proxy.connections;
      await proxy.block(); // the broker is gone: the channel closes, connecting is refused
      await proxy.unblock();
      await heard; // no publish made it reconnect: the listener itself is the event
      expect(first.calls).toBe(1);
      expect(proxy.connections).toBeGreaterThan(connections);
      // the channel it re-opened is the one the next publish uses
      const before = proxy.connections;
      expect(await publisher.publish([message('orders.available', 'k', 1)])).toEqual([{ ok: true }]);
      expect(proxy.connections).toBe(before);
      stop();
      // removed: a second listener hears the next reconnection, the first is not told any more
      const second = callRecorder();
      publisher.onAvailable(second.listener);
      const heardAgain = second.nextCall();
      proxy.cut();
      await heardAgain;
      expect([first.calls, second.calls]).toEqual([1, 1]);
      expect(() => publisher.onAvailable(42 as never)).toThrow(ConfigurationError);
      expect((await drainQueue(raw.ch, queue, 2)).map((m) => m.properties.messageId)).toHaveLength(2);
    } finally {
      await publisher.close();
      await raw.close();
      await proxy.close();
    }
  }, 30_000);

  it('a relay whose circuit opened in an outage publishes once the broker is back, not at its next probe a minute later', async () => {
    const { exchange, queue } = names();
    await ensureRabbitTopology({ url: RABBIT_URL, exchange, queue, bindings: ['orders.#'] });
    const { proxy, url: viaProxy } = await rabbitProxy();
    const publisher = createRabbitPublisher({
      url: viaProxy,
      exchange,
      reconnect: { initialMs: 20, maxMs: 200 },
      confirmTimeoutMs: 500,
    });
    const store = createInMemoryOutboxStore();
    const relay = createOutboxRelay({
      store,
      publisher,
      pollIntervalMs: 20,
      circuit: { probeIntervalMs: 60_000, maxProbeIntervalMs: 60_000 },
    });
    const raw = await rawChannel();
    try {
      await proxy.block();
      await store.transaction((tx) => store.append(tx, [Noted.create({ text: 'held' })]));
      relay.start();
      await waitFor(async () => (await relay.health()).circuit === 'open', 10_000, 'the circuit to open');
      await proxy.unblock();
      const [got] = await drainQueue(raw.ch, queue, 1, 10_000);
      expect(JSON.parse(got!.content.toString())).toEqual({ text: 'held' });
      // the probe's outcome is recorded once publish returned: just after the message is in the queue
      await waitFor(async () => (await relay.health()).circuit === 'closed', 5000, 'the circuit to close');
      expect((await relay.health()).dead).toBe(0);
    } finally {
      await relay.stop();
      await publisher.close();
      await raw.close();
      await proxy.close();
    }
  }, 40_000);

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
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).toMatchObject({ code: 'CQRS_BROKER', reason: 'topology', nativeCode: 406, retryable: false });
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
